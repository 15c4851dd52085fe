"""Run every benchmark in bench/ and print their figures (`make bench`).

    python -m bench.run                        # every bench/*_bench.py with its defaults
    python -m bench.run --only sync            # just sync_bench
    python -m bench.run --only sync -- --files 100000   # arguments after -- go to each selected script

A script is any module named `*_bench.py` in this folder, runnable as `python -m bench.NAME`; each runs in its own
child process (so one bench's imports and memory never colour another's figures) and its output streams through as
it comes. The exit code is the worst of theirs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def discover() -> list[str]:
    """Module names of the bench scripts present, sync first (the one the issue's targets are about)."""
    names = sorted(f[:-3] for f in os.listdir(HERE) if f.endswith("_bench.py"))
    return sorted(names, key=lambda n: (n != "sync_bench", n))


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this bench (sync, crypto, latency… or the module name); repeatable")
    p.add_argument("--list", action="store_true", help="list the bench scripts found and exit")
    return p.parse_args(argv), passthrough


def main(argv: Sequence[str] | None = None) -> int:
    args, passthrough = parse(sys.argv[1:] if argv is None else argv)
    found = discover()
    if args.list:
        print("\n".join(found))
        return 0
    chosen = found
    if args.only:
        wanted = {w if w.endswith("_bench") else f"{w}_bench" for w in args.only}
        missing = sorted(wanted - set(found))
        if missing:
            print(f"bench.run: no such bench: {', '.join(missing)} (found: {', '.join(found) or 'none'})",
                  file=sys.stderr)
            return 2
        chosen = [n for n in found if n in wanted]
    if not chosen:
        print("bench.run: no *_bench.py scripts in bench/", file=sys.stderr)
        return 2

    worst = 0
    outcomes: list[tuple[str, int, float]] = []
    for name in chosen:
        print(f"=== {name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}", *passthrough], cwd=ROOT)
        outcomes.append((name, rc, time.perf_counter() - t0))
        worst = max(worst, rc)
        print(flush=True)
    if len(outcomes) > 1 or worst:
        print("=== summary ===")
        for name, rc, secs in outcomes:
            print(f"  {name:<20} {'ok' if rc == 0 else f'exit {rc}':<8} {secs:7.1f} s")
    return worst


if __name__ == "__main__":
    sys.exit(main())
