"""`make demo`: build the demo home (engine.demo) and open the terminal app on it."""

from __future__ import annotations

import os
import sys

from engine.demo import prepare


def main() -> int:
    base = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".demo")
    home = prepare(base)
    if not sys.stdout.isatty():
        print(f"demo home ready at {home}; run 'SKYSYNC_HOME={home} .venv/bin/skysync' in a terminal")
        return 0
    from tui.app import run_app

    return run_app(home)


if __name__ == "__main__":
    sys.exit(main())
