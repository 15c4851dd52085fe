"""The engine in-process with the real sync pass and the local provider: traffic limit across concurrent
transfers, and the schedule window with an injectable clock."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

import pytest

from engine.events import TransferProgress
from engine.runtime import Engine

from .conftest import FakeClock, make_home, wait_for

MiB = 1 << 20


@pytest.fixture
def engines():
    started: list[Engine] = []
    yield started
    for e in started:
        e.stop(5)


def test_one_mib_limit_shared_by_four_concurrent_uploads(short_base, engines):
    setup = make_home(
        short_base, conns={"c": {"upload_limit": 1024, "polling_period": 3600}}, settings={"concurrency": "4"}
    )
    local = setup.local()
    for i in range(4):
        with open(os.path.join(local, f"f{i}.bin"), "wb") as f:
            f.write(os.urandom(5 * MiB))  # 20 MiB in all: still busy after the 10 s we measure
    done: dict[str, int] = {}
    lock = threading.Lock()

    def on_event(event) -> None:
        if isinstance(event, TransferProgress):
            with lock:
                done[event.path] = event.done

    def total() -> int:
        with lock:
            return sum(done.values())

    e = Engine(setup.path, watch=False, control=False)
    e.subscribe(on_event)
    e.start()
    engines.append(e)
    assert wait_for(lambda: len(done) == 4, 5), done  # all four transfers run at once
    time.sleep(0.5)
    b0, t0 = total(), time.monotonic()
    time.sleep(10.0)
    b1, t1 = total(), time.monotonic()
    rate = (b1 - b0) / (t1 - t0)
    assert abs(rate - MiB) / MiB < 0.10, f"measured {rate / MiB:.3f} MiB/s over 10 s"
    with lock:
        assert all(v > MiB for v in done.values()), done  # shared, not one after another
    print(f"4 concurrent uploads under a 1 MiB/s limit: {rate / MiB:.3f} MiB/s over {t1 - t0:.1f} s")
    e.stop(5)
    cloud = os.path.join(setup.remote_root(), "t")
    leftovers = [n for n in os.listdir(cloud) if n.startswith(".skysync-tmp-")] if os.path.isdir(cloud) else []
    assert leftovers == []  # the stop abandoned the uploads without partial files


def test_schedule_window_with_an_injectable_clock(short_base, engines):
    grid = ["0"] * 168
    grid[2 * 24 + 14] = "1"  # Wednesday 14:00-15:00 only
    setup = make_home(short_base, conns={"c": {"schedule": "".join(grid), "polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    with open(os.path.join(local, "report.pdf"), "wb") as f:
        f.write(b"%PDF" * 1000)
    clock = FakeClock(datetime(2026, 11, 25, 13, 50))  # Wednesday 13:50: ten minutes early
    e = Engine(setup.path, clock=clock, control=False)
    e.start()
    engines.append(e)
    time.sleep(1.5)
    assert not os.path.exists(os.path.join(cloud, "report.pdf"))  # nothing transfers outside the window
    with open(os.path.join(local, "later.txt"), "w") as f:
        f.write("a save outside the window waits too")
    time.sleep(1.0)
    assert not os.path.exists(cloud) or os.listdir(cloud) == []
    assert e.status()["tasks"]["t"]["state"] == "waiting-schedule"

    clock.set(datetime(2026, 11, 25, 14, 0, 1))  # the window opens
    assert wait_for(lambda: all(os.path.exists(os.path.join(cloud, n)) for n in ("later.txt", "report.pdf")), 10)
    assert e.wait_idle(5)

    clock.set(datetime(2026, 11, 25, 15, 0, 1))  # closed again: new saves wait for next Wednesday
    time.sleep(0.5)
    with open(os.path.join(local, "after.txt"), "w") as f:
        f.write("after hours")
    time.sleep(1.0)
    assert not os.path.exists(os.path.join(cloud, "after.txt"))
