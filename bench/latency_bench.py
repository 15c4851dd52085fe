"""Save-to-upload latency of the running engine: how long after a small file is saved is it in the cloud?

    python -m bench.latency_bench                    # 20 saves of a 4 KiB file, local provider
    python -m bench.latency_bench --runs 50 --size 65536 --json out.json

The engine runs in this process exactly as under `skysync run` (watchfiles watcher, scheduler, the real sync
pass) against the `local` provider. Each run writes a new file, then waits for the engine's `uploaded` log
event for it; the figure is the time between the end of the write and that event (the upload has completed
and been renamed into place remotely). Runs are spaced so each one starts from an idle engine.
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

from engine.config import Connection, Home, Task
from engine.events import Event, LogRecord
from engine.runtime import Engine


def measure(runs: int, size: int, work: str) -> list[float]:
    local, cloud = os.path.join(work, "local"), os.path.join(work, "cloud")
    os.makedirs(local)
    os.makedirs(cloud)
    home = Home(os.path.join(work, "home"))
    home.put_connection(Connection("bench", "local", {"root": cloud}, polling_period=3600), {})
    home.put_task(Task("latency", "bench", local, "/latency", direction="upload"))
    home.save()

    uploaded: dict[str, float] = {}
    cond = threading.Condition()

    def on_event(event: Event) -> None:
        if isinstance(event, LogRecord) and event.kind == "uploaded":
            with cond:
                uploaded[event.path] = time.perf_counter()
                cond.notify_all()

    engine = Engine(home.path, control=False)
    engine.subscribe(on_event)
    engine.start()
    try:
        if not engine.wait_idle(30):
            raise RuntimeError("the engine did not settle after its first pass")
        time.sleep(0.5)  # the watcher is armed
        payload = os.urandom(size)
        latencies = []
        for i in range(runs):
            name = f"note-{i:04d}.txt"
            with open(os.path.join(local, name), "wb") as f:
                f.write(payload)
            saved = time.perf_counter()
            with cond:
                if not cond.wait_for(lambda n=name: n in uploaded, timeout=30):
                    raise RuntimeError(f"{name} was not uploaded within 30 s")
                latencies.append(uploaded[name] - saved)
            if not os.path.exists(os.path.join(cloud, "latency", name)):
                raise RuntimeError(f"{name} reported uploaded but missing remotely")
            engine.wait_idle(10)
            time.sleep(0.2)
        return latencies
    finally:
        engine.stop(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096, help="bytes per saved file")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="skysync-latency-")
    try:
        latencies = measure(args.runs, args.size, work)
    except RuntimeError as exc:
        print(f"latency_bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ms = sorted(x * 1000 for x in latencies)
    result = {
        "benchmark": "save-to-upload latency (local provider)",
        "runs": len(ms),
        "file_size": args.size,
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[max(0, int(len(ms) * 0.9) - 1)], 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(
        f"save-to-upload latency, {args.size:,}-byte file, local provider, {len(ms)} runs: "
        f"median {result['median_ms']} ms (p90 {result['p90_ms']} ms, min {result['min_ms']} ms, "
        f"max {result['max_ms']} ms)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
