"""The `skysync` console script: the engine's command line, with this package's app for the no-command case."""

from __future__ import annotations

import os
import sys

APP_NOTE = (
    "With no command, skysync opens its terminal app on the home (keyboard-driven; works over SSH; F1 lists the "
    "keys). 'skysync COMMAND --help' describes a command."
)


def _run_app(home: str) -> int:
    from tui.app import run_app  # Textual loads only when the app is wanted

    return run_app(home)


def _asks_top_level_help(argv: list[str]) -> bool:
    """`skysync --help` or `skysync --home DIR -h`: the help of the whole tool, not of one command."""
    rest = list(argv)
    while rest[:1] == ["--home"] and len(rest) >= 2:
        rest = rest[2:]
    rest = [a for a in rest if not a.startswith("--home=")]
    return rest in (["-h"], ["--help"])


def main(argv: list[str] | None = None) -> int:
    # Before pydantic is first imported (engine.config, lazily): skysync installs no pydantic plugins, and
    # looking for them scans every installed distribution's entry points (~30 M instructions, ~10-15 ms) on
    # each start of a one-shot command. A value the user set stays theirs.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    args = sys.argv[1:] if argv is None else argv
    try:
        # Imported here, not at the top: a Ctrl+C while the engine loads is one line, like any later one.
        from engine.cli import build_parser
        from engine.cli import main as engine_main

        if _asks_top_level_help(args):
            # The engine's parser does not know the app exists (engine/ never imports tui/): say what no command
            # does.
            parser = build_parser()
            parser.epilog = APP_NOTE
            parser.print_help()
            return 0
        return engine_main(args, interactive=_run_app)
    except KeyboardInterrupt:
        print("skysync: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
