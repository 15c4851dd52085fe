"""The running engine's work for one saved file in a big tree: incremental passes against full ones.

    python -m bench.incremental_bench                  # 50,000 files, 10 saves each way
    python -m bench.incremental_bench --files 100000 --saves 20 --json bench/out/incremental.json

The engine runs in this process exactly as under `skysync run` (watchfiles watcher, scheduler, the real pass)
against the `local` provider, on a tree already in sync (sync_bench's data, both sides alike). Each save
rewrites one existing file; the figures per save are the engine's CPU (this process's user+system time from the
save until the engine is idle again, less the idle engine's own rate over the same time, measured beforehand)
and the latency to the `uploaded` event. It runs twice on the same tree: with incremental passes (what the
engine does), then with every pass forced to be a full one (what it did before issue 19), so the two figures
come from one run on one machine. Target (issue 19): engine CPU per saved file ≤ 0.05 s at 50,000 files, and
the upload within a second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from bench.sync_bench import build_tree, copy_tree, file_path
from engine.config import Connection, Home, Task
from engine.events import Event, LogRecord
from engine.runtime import Engine
from engine.sync import run_pass

TARGET_CPU = 0.05
TARGET_LATENCY = 1.0


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def measure(work: str, files: int, saves: int, incremental: bool) -> dict[str, Any]:
    local, cloud = os.path.join(work, "local"), os.path.join(work, "cloud")
    home = Home(os.path.join(work, f"home-{int(incremental)}"))
    home.put_connection(Connection("bench", "local", {"root": cloud}, polling_period=86400), {})
    home.put_task(Task("bench", "bench", local, "/", direction="bidirectional"))
    home.save()

    uploaded: dict[str, float] = {}
    scoped: list[bool] = []
    cond = threading.Condition()

    def on_event(event: Event) -> None:
        if isinstance(event, LogRecord) and event.kind == "uploaded":
            with cond:
                uploaded[event.path] = time.perf_counter()
                cond.notify_all()

    def pass_fn(*args: Any, **kwargs: Any) -> Any:
        if not incremental:
            kwargs.pop("scope", None)  # the engine as it was: every pass walks both sides
        result = run_pass(*args, **kwargs)
        scoped.append(result.scoped is not None)
        return result

    engine = Engine(home.path, control=False, pass_fn=pass_fn)
    engine.subscribe(on_event)
    engine.start()
    try:
        deadline = time.monotonic() + 600
        while not scoped and time.monotonic() < deadline:
            time.sleep(0.1)
        if not engine.wait_idle(600):
            raise RuntimeError("the engine did not settle after its first pass")
        watcher = engine._core.tasks["bench"].watcher
        while not watcher._signature and time.monotonic() < deadline:  # the rescan's first walk at start
            time.sleep(0.1)
        time.sleep(1.0)
        idle_cpu, idle_t = _cpu(), time.perf_counter()
        time.sleep(3.0)
        idle_rate = (_cpu() - idle_cpu) / (time.perf_counter() - idle_t)
        cpus, latencies = [], []
        first_scoped = len(scoped)
        for i in range(saves):
            rel = file_path((i * 7919) % files)
            cpu0 = _cpu()
            with open(os.path.join(local, rel), "ab") as f:
                f.write(b"saved %d\n" % i)
            saved = time.perf_counter()
            with cond:
                if not cond.wait_for(lambda r=rel, s=saved: uploaded.get(r, 0) > s, timeout=60):
                    raise RuntimeError(f"{rel} was not uploaded within 60 s")
                latencies.append(uploaded[rel] - saved)
            engine.wait_idle(60)
            spent = time.perf_counter() - saved
            cpus.append(max(0.0, _cpu() - cpu0 - idle_rate * spent))
            time.sleep(0.3)
        return {
            "incremental": incremental,
            "cpu_median_s": round(statistics.median(cpus), 4),
            "cpu_max_s": round(max(cpus), 4),
            "latency_median_s": round(statistics.median(latencies), 3),
            "latency_max_s": round(max(latencies), 3),
            "idle_cpu_per_s": round(idle_rate, 4),
            "scoped_passes": sum(scoped[first_scoped:]),
            "passes": len(scoped) - first_scoped,
        }
    finally:
        engine.stop(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--saves", type=int, default=10)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="skysync-incremental-")
    try:
        build_tree(os.path.join(work, "local"), args.files)
        copy_tree(os.path.join(work, "local"), os.path.join(work, "cloud"))  # both sides alike: a quick first pass
        runs = [measure(work, args.files, args.saves, incremental) for incremental in (True, False)]
    except RuntimeError as exc:
        print(f"incremental_bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    new, old = runs
    print(f"one saved file in a {args.files:,}-file tree, local provider, {args.saves} saves, "
          f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for r in runs:
        print(f"  {'incremental' if r['incremental'] else 'full passes'}: engine CPU median {r['cpu_median_s']:.4f} s "
              f"(max {r['cpu_max_s']:.4f}), save-to-upload median {r['latency_median_s']:.3f} s "
              f"(max {r['latency_max_s']:.3f}), {r['scoped_passes']}/{r['passes']} passes scoped")
    ok_cpu = new["cpu_median_s"] <= TARGET_CPU
    ok_latency = new["latency_max_s"] <= TARGET_LATENCY
    print(f"  target engine CPU <= {TARGET_CPU} s: {'ok' if ok_cpu else 'MISSED'} "
          f"({old['cpu_median_s'] / max(new['cpu_median_s'], 1e-4):.0f}x less than full passes); "
          f"upload within {TARGET_LATENCY:g} s: {'ok' if ok_latency else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"files": args.files, "saves": args.saves, "runs": runs}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
