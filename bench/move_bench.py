"""Renaming a big folder: one pass, server-side moves, no --force (issue 21: "renames are moves").

    python -m bench.move_bench                       # 10,000 small files, the local provider and moto
    python -m bench.move_bench --files 2000 --only local --json bench/out/move.json

For each provider: a folder of N small files is synced, renamed locally, and synced again through the real
pass (`run_pass`, no --force). Reported: the rename pass's time, its summary, whether anything was uploaded,
held back or failed; on moto also the HTTP requests it made (counted by the test server's gate) and the S3
operations by name (counted in the client), so "no PUT of data for the moved files" is checked, not assumed.
The moto server is the test suite's (tests/providers/servers/_moto.py), started in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from engine import manage
from engine.config import Home, Task
from engine.sync import run_pass

_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def _fill(folder: str, n: int) -> None:
    os.makedirs(folder)
    for i in range(n):
        with open(os.path.join(folder, f"f{i:05}.txt"), "wb") as f:
            f.write(f"file {i}\n".encode())


def _setup(work: str, kind: str, options: dict[str, str]) -> tuple[Home, str]:
    home = Home(os.path.join(work, kind, "home"))
    local = os.path.join(work, kind, "local")
    os.makedirs(local)
    manage.add_connection(home, "c", kind, options)
    manage.add_task(home, Task("t", "c", local, "/"))
    home.save()
    return home, local


def bench_local(work: str, files: int) -> dict[str, Any]:
    cloud = os.path.join(work, "local-cloud")
    os.makedirs(cloud)
    home, local = _setup(work, "local", {"root": cloud})
    _fill(os.path.join(local, "photos"), files)
    started = time.perf_counter()
    first = run_pass(Home(home.path), "t")
    initial = time.perf_counter() - started
    inodes = {e.name: e.inode() for e in os.scandir(os.path.join(cloud, "photos"))}
    os.rename(os.path.join(local, "photos"), os.path.join(local, "pictures"))
    started = time.perf_counter()
    r = run_pass(Home(home.path), "t")
    took = time.perf_counter() - started
    after = {e.name: e.inode() for e in os.scandir(os.path.join(cloud, "pictures"))}
    again = run_pass(Home(home.path), "t")
    return _result("local", files, first, initial, took, r, again,
                   renamed_in_place=after == inodes)  # the cloud files kept their inodes: renamed, not copied


def bench_moto(work: str, files: int) -> dict[str, Any]:
    from engine.providers.s3 import S3Provider
    from tests.providers.servers import _moto, s3

    options = s3.options(_moto.new_bucket())
    home, local = _setup(work, "s3", options)
    _fill(os.path.join(local, "photos"), files)
    started = time.perf_counter()
    first = run_pass(Home(home.path), "t")
    initial = time.perf_counter() - started
    os.rename(os.path.join(local, "photos"), os.path.join(local, "pictures"))
    provider = S3Provider(options)
    calls: Counter[str] = Counter()
    provider.client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    provider.client.meta.events.register(
        "provide-client-params.s3.PutObject",
        lambda params, **_: calls.update(["PutObject with data"] if params.get("Body") else []),
    )
    _moto.reset_counts()
    started = time.perf_counter()
    r = run_pass(Home(home.path), "t", provider=provider)
    took = time.perf_counter() - started
    requests = _moto.request_counts()
    provider.close()
    again = run_pass(Home(home.path), "t")
    return _result("s3 (moto)", files, first, initial, took, r, again, http_requests=dict(requests),
                   http_requests_total=sum(requests.values()), s3_operations=dict(calls))


def _result(provider: str, files: int, first: Any, initial: float, took: float, r: Any, again: Any,
            **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "files": files,
        "initial_pass_s": round(initial, 2) if not first.failed else None,
        "rename_pass_s": round(took, 2),
        "summary": r.summary,
        "exit_code": r.exit_code,
        "held_deletions": r.held_deletions,
        **extra,
        "next_pass": again.summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--only", choices=("local", "moto"))
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="skysync-move-bench-")
    results = []
    try:
        if args.only in (None, "local"):
            results.append(bench_local(work, args.files))
        if args.only in (None, "moto"):
            results.append(bench_moto(work, args.files))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} ({platform.node()}, {os.cpu_count()} cores)")
    ok = True
    for r in results:
        moved = r["summary"].get("moved-remote", 0)
        good = (r["exit_code"] == 0 and r["held_deletions"] == 0 and moved == r["files"]
                and "uploaded" not in r["summary"] and r["next_pass"] == {})
        if "s3_operations" in r:
            good = good and r["s3_operations"].get("PutObject with data", 0) == 0
        ok = ok and good
        extra = ""
        if "http_requests" in r:
            extra = f", {r['http_requests_total']} requests {r['http_requests']}, S3 calls {r['s3_operations']}"
        print(f"{r['provider']:10} {r['files']} files renamed: {r['rename_pass_s']} s, summary {r['summary']}"
              f"{extra} -> {'PASS' if good else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
