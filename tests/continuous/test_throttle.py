"""Token bucket sharing, live limit changes and cancellation, measured with real threads and time."""

from __future__ import annotations

import io
import threading
import time

import pytest

from engine.runtime.throttle import MeteredReader, MeteredWriter, TokenBucket

MiB = 1 << 20


def _pump(reader: MeteredReader, stop: threading.Event) -> None:
    try:
        while not stop.is_set() and reader.read(64 * 1024):
            pass
    except InterruptedError:
        pass


def test_four_readers_share_one_limit():
    """4 concurrent transfers through one 1 MiB/s bucket: together they get 1 MiB/s, not 4."""
    bucket = TokenBucket(MiB)
    stop = threading.Event()
    readers = [MeteredReader(io.BytesIO(bytes(16 * MiB)), bucket, cancelled=stop.is_set) for _ in range(4)]
    threads = [threading.Thread(target=_pump, args=(r, stop)) for r in readers]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)  # steady state
    b0, t1 = sum(r.count for r in readers), time.monotonic()
    time.sleep(3.0)
    b1, t2 = sum(r.count for r in readers), time.monotonic()
    stop.set()
    for t in threads:
        t.join(2)
    rate = (b1 - b0) / (t2 - t1)
    assert abs(rate - MiB) / MiB < 0.10, f"{rate / MiB:.3f} MiB/s"
    assert all(r.count > 0 for r in readers), "every transfer made progress"
    assert time.monotonic() - t0 < 6


def test_unlimited_bucket_does_not_wait():
    bucket = TokenBucket(0)
    reader = MeteredReader(io.BytesIO(bytes(32 * MiB)), bucket)
    t0 = time.monotonic()
    while reader.read(MiB):
        pass
    assert reader.count == 32 * MiB
    assert time.monotonic() - t0 < 2


def test_raising_the_limit_while_running_takes_effect_at_once():
    bucket = TokenBucket(64 * 1024)
    reader = MeteredReader(io.BytesIO(bytes(8 * MiB)), bucket)
    done = threading.Event()

    def pump() -> None:
        while reader.read(MiB):
            pass
        done.set()

    threading.Thread(target=pump, daemon=True).start()
    time.sleep(0.5)
    assert reader.count < MiB  # throttled: 8 MiB at 64 KiB/s would take two minutes
    bucket.set_rate(0)
    assert done.wait(2.0), "lifting the limit let the transfer finish"


def test_lowering_the_limit_slows_running_transfers():
    bucket = TokenBucket(0)
    reader = MeteredReader(io.BytesIO(bytes(64 * MiB)), bucket)
    stop = threading.Event()
    threading.Thread(target=_pump, args=(reader, stop), daemon=True).start()
    time.sleep(0.05)
    bucket.set_rate(256 * 1024)
    time.sleep(0.3)
    before = reader.count
    time.sleep(1.0)
    stop.set()
    moved = reader.count - before
    assert moved < 512 * 1024, moved


def test_cancel_interrupts_a_long_wait():
    bucket = TokenBucket(1024)  # 1 KiB/s: a 64 KiB write would take a minute
    cancelled = threading.Event()
    writer = MeteredWriter(io.BytesIO(), bucket, cancelled=cancelled.is_set)
    threading.Timer(0.3, cancelled.set).start()
    t0 = time.monotonic()
    with pytest.raises(InterruptedError):
        writer.write(bytes(64 * 1024))
    assert time.monotonic() - t0 < 2.0  # not the minute the write would take (slack for a loaded CI machine)


def test_writer_pays_large_writes_piecewise_and_reports_progress():
    bucket = TokenBucket(4 * MiB)
    seen: list[int] = []
    out = io.BytesIO()
    writer = MeteredWriter(out, bucket, progress=seen.append)
    t0 = time.monotonic()
    assert writer.write(bytes(2 * MiB)) == 2 * MiB
    elapsed = time.monotonic() - t0
    assert out.getvalue() == bytes(2 * MiB)
    assert len(seen) >= 4 and seen[-1] == 2 * MiB  # several progress steps, not one
    assert 0.3 < elapsed < 2.0, elapsed  # ~0.5 s at 4 MiB/s; the upper bound only leaves room for a loaded machine


def test_reader_passes_file_methods_through():
    reader = MeteredReader(io.BytesIO(b"abcdef"), None)
    assert reader.read(2) == b"ab"
    assert reader.tell() == 2
    reader.seek(0)
    assert reader.read() == b"abcdef"
