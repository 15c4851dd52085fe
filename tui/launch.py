"""The `skysync` console script: the engine's command line, with this package's app for the no-command case."""

from __future__ import annotations

import sys

from engine.cli import main as engine_main


def _run_app(home: str) -> int:
    from tui.app import run_app  # Textual loads only when the app is wanted

    return run_app(home)


def main() -> int:
    return engine_main(sys.argv[1:], interactive=_run_app)


if __name__ == "__main__":
    sys.exit(main())
