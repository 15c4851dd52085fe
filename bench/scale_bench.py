"""A no-change pass over a synthesized task of 1,000,000 entries: time and peak memory of the pass's core.

    python -m bench.scale_bench                     # 1,000,000 entries
    python -m bench.scale_bench --entries 200000 --json bench/out/scale.json

The state is a real state database (rows written once, in batches, like passes write them); the local and remote
listings are synthesized in canonical order, as the walk and a service listing stream them, so no disk of a
million files is needed. The figure is the reconcile of the three streams (state rows read from SQLite in order,
both listings consumed as they come): what a no-change pass does besides the `stat` calls and the service's
own listing time. Peak RSS is this process's (ru_maxrss), with the database-writing phase done in a child so
that only the pass counts. Target (issue 19): under 60 s on 2 cores, peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator

from engine.localfs import LocalEntry
from engine.policy import PathPolicy
from engine.providers.base import RemoteEntry
from engine.reconcile import plan
from engine.state import StateDB, StateRow

FILES_PER_FOLDER = 50
BASE_MTIME = 1_700_000_000
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 300


def paths(n: int) -> Iterator[tuple[str, bool, int]]:
    """(path, is_dir, i) in canonical order: folders of FILES_PER_FOLDER files, two levels of 100 folders."""
    i = 0
    for top in range(10_000):
        if i >= n:
            return
        yield f"d{top:04d}", True, -1
        for leaf in range(100):
            if i >= n:
                return
            yield f"d{top:04d}/e{leaf:02d}", True, -1
            for _ in range(FILES_PER_FOLDER):
                if i >= n:
                    return
                yield f"d{top:04d}/e{leaf:02d}/f{i:07d}", False, i
                i += 1


def state_row(path: str, is_dir: bool, i: int) -> StateRow:
    if is_dir:
        return StateRow(path, True, None, None, None, None, None, None, None)
    return StateRow(path, False, 100 + i % 500, (BASE_MTIME + i) * 10**9, 100 + i % 500, f"r{i}", None, None,
                    None, 10_000 + i, (BASE_MTIME + i) * 10**9)


def local_entries(n: int) -> Iterator[LocalEntry]:
    for path, is_dir, i in paths(n):
        if is_dir:
            yield LocalEntry(path, True, 0, 0)
        else:
            yield LocalEntry(path, False, 100 + i % 500, (BASE_MTIME + i) * 10**9, 10_000 + i,
                             (BASE_MTIME + i) * 10**9)


def remote_pairs(n: int) -> Iterator[tuple[str, RemoteEntry]]:
    for path, is_dir, i in paths(n):
        yield path, RemoteEntry(path, True) if is_dir else RemoteEntry(path, False, 100 + i % 500, None, None, f"r{i}")


def build_state(db_path: str, n: int) -> None:
    db = StateDB(db_path)
    task = db.task_id("scale")
    batch: list[StateRow] = []
    for path, is_dir, i in paths(n):
        batch.append(state_row(path, is_dir, i))
        if len(batch) >= 20_000:
            db.put_many(task, batch)
            batch = []
    if batch:
        db.put_many(task, batch)
    db.close()


def run(db_path: str, n: int, out: multiprocessing.Queue) -> None:
    db = StateDB(db_path)
    task = db.task_id("scale")
    policy = PathPolicy("local", {})
    t0, c0 = time.perf_counter(), time.process_time()
    p = plan(db.rows(task), local_entries(n), remote_pairs(n), "bidirectional", policy, frozen=lambda path: False)
    out.put({
        "entries": n,
        "actions": len(p.actions),
        "tracked_files": p.tracked_files,
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(time.process_time() - c0, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    })
    db.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="files (folders come on top)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="skysync-scale-")
    db_path = os.path.join(work, "state.db")
    try:
        t0 = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(target=build_state, args=(db_path, args.entries))
        writer.start()
        writer.join()
        built = time.perf_counter() - t0
        queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        child = multiprocessing.get_context("spawn").Process(target=run, args=(db_path, args.entries, queue))
        child.start()
        result = queue.get()
        child.join()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result["actions"]:
        print(f"scale_bench: the no-change pass planned {result['actions']} actions", file=sys.stderr)
        return 1
    ok = result["wall_s"] <= TARGET_SECONDS and result["peak_rss_mb"] <= TARGET_RSS_MB
    print(f"no-change pass over {args.entries:,} synthesized files (state in SQLite, written in {built:.1f} s): "
          f"{result['wall_s']} s wall, {result['cpu_s']} s CPU, peak RSS {result['peak_rss_mb']} MB; "
          f"load {os.getloadavg()[0]:.2f}; target < {TARGET_SECONDS:g} s and < {TARGET_RSS_MB} MB: "
          f"{'ok' if ok else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**result, "state_written_s": round(built, 1)}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
