"""Retries in the running engine: a failing item backs off on its own (other saves still sync at once), a
guard's refusal is logged once while it is re-checked, and a pass stopped by a signal is logged as stopped."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from engine.errors import GuardError
from engine.events import LogRecord, PassFinished, PassStarted, TransferProgress
from engine.localfs import FileSystem
from engine.runtime import Engine
from engine.runtime.daemon import format_event
from engine.state import StateDB
from engine.sync import run_pass

from .conftest import FakeClock, FakeResult, make_home, wait_for

MON_0830 = datetime(2026, 11, 23, 8, 30)
SKYSYNC = os.path.join(os.path.dirname(sys.executable), "skysync")


@pytest.fixture
def engines():
    started: list[Engine] = []
    yield started
    for e in started:
        e.stop(5)


class Events:
    """Every event the engine delivers to its subscribers, and the log lines `skysync run` would print."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list = []

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append(event)

    def lines(self) -> list[str]:
        with self.lock:
            return [line for e in self.events if (line := format_event(e)) is not None]

    def errors(self, path: str) -> list[LogRecord]:
        with self.lock:
            return [e for e in self.events if isinstance(e, LogRecord) and e.kind == "error" and e.path == path]


# -- one permanently failing item, real passes -----------------------------------------------------------------


class OneBadFile(FileSystem):
    """The local disk refuses to read one file, every time (as an unreadable or locked file would)."""

    bad = {"bad.bin"}

    def open_read(self, path: str):
        if os.path.basename(path) in self.bad:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return super().open_read(path)


def test_one_failing_item_does_not_delay_other_saves(short_base, engines):
    setup = make_home(short_base, conns={"c": {"polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    with open(os.path.join(local, "bad.bin"), "wb") as f:
        f.write(b"x" * 1000)
    OneBadFile.bad = {"bad.bin"}

    def pass_fn(*args, **kwargs):
        return run_pass(*args, fs=OneBadFile(), **kwargs)

    events = Events()
    e = Engine(setup.path, pass_fn=pass_fn, control=False, backoff_base=1.0, backoff_max=900.0)
    e.subscribe(events)
    e.start()
    engines.append(e)

    def failing() -> dict:
        items = e.status()["tasks"]["t"]["failing"]
        return items[0] if items else {}

    # 1 s, 2 s, 4 s: the fourth failure comes about 7 s after the first; the next try is 8 s after it
    assert wait_for(lambda: failing().get("failures", 0) >= 4, 20), e.status()["tasks"]["t"]
    st = e.status()["tasks"]["t"]
    assert st["state"] == "idle" and st["failing_count"] == 1, st  # not an error of the task: only of one item
    assert failing()["path"] == "bad.bin" and "Permission denied" in failing()["error"]
    assert failing()["retry_in"] > 5, failing()
    assert len(events.errors("bad.bin")) == 4  # one log line per counted failure
    fourth = time.monotonic()

    latencies = []
    for i in range(3):
        name = f"doc-{i}.txt"
        t0 = time.monotonic()
        with open(os.path.join(local, name), "w") as f:
            f.write(f"save {i}")
        assert wait_for(lambda name=name: os.path.exists(os.path.join(cloud, name)), 5, 0.005), name
        latencies.append(time.monotonic() - t0)
        assert e.wait_idle(5)
    print(f"save-to-cloud with one item failing 4+ times: {', '.join(f'{x:.3f}' for x in latencies)} s")
    assert max(latencies) < 2.0, latencies
    if time.monotonic() - fourth < 7.0:  # the bad item was not due during those passes
        assert failing()["failures"] == 4, failing()  # tried again in them, but that did not count
        assert len(events.errors("bad.bin")) == 4  # nor was its unchanged error logged again
    passes = sum(isinstance(ev, PassFinished) for ev in events.events)
    assert passes >= 7, passes

    OneBadFile.bad = set()  # the file becomes readable: the next pass takes it and the task is clean
    e.sync_now("t")
    assert wait_for(lambda: os.path.exists(os.path.join(cloud, "bad.bin")), 5)
    assert wait_for(lambda: e.status()["tasks"]["t"]["failing_count"] == 0, 5)
    st = e.status()["tasks"]["t"]
    assert st["error"] is None and st["retry_in"] is None, st


# -- per-item schedule, fake passes and a fake clock -----------------------------------------------------------


class ItemPass:
    """A pass that fails the items named in `bad` (one error record each) and finishes."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.bad: set[str] = set()
        self.calls = 0
        self.cond = threading.Condition()

    def __call__(self, home, task, *, force=False, on_event=None, cancel=None, buckets=None, **_):
        on_event(PassStarted(task, False))
        for path in sorted(self.bad):
            on_event(LogRecord(self.clock(), task, "error", path, "no space left on the device"))
        result = FakeResult({"uploaded": 1}, len(self.bad))
        on_event(PassFinished(task, result.summary, not self.bad))
        with self.cond:
            self.calls += 1
            self.cond.notify_all()
        return result

    def wait(self, n: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.calls >= n, timeout)


def test_items_have_their_own_schedule_and_early_tries_do_not_count(tmp_path, engines):
    setup = make_home(str(tmp_path))
    clock = FakeClock(MON_0830)
    fake = ItemPass(clock)
    fake.bad = {"big.iso"}
    events = Events()
    e = Engine(setup.path, clock=clock, pass_fn=fake, watch=False, control=False, backoff_base=10)
    e.subscribe(events)
    e.start()
    engines.append(e)
    assert fake.wait(1) and e.wait_idle(5)
    st = e.status()["tasks"]["t"]
    assert st["failing"] == [{"path": "big.iso", "failures": 1, "retry_in": 10.0,
                              "error": "no space left on the device"}]
    assert st["state"] == "idle" and st["retry_in"] == 10.0

    e.sync_now("t")  # another change: runs at once, not after the item's 10 s
    assert fake.wait(2, 2) and e.wait_idle(5)
    st = e.status()["tasks"]["t"]
    assert st["failing"][0]["failures"] == 1 and st["failing"][0]["retry_in"] == 10.0  # its schedule stands
    assert len(events.errors("big.iso")) == 1

    clock.advance(10.5)  # due: the engine runs a retry pass by itself
    assert fake.wait(3) and e.wait_idle(5)
    st = e.status()["tasks"]["t"]
    assert st["failing"][0]["failures"] == 2 and st["failing"][0]["retry_in"] == 20.0
    assert len(events.errors("big.iso")) == 2
    assert e.status()["tasks"]["t"]["last_pass"]["reasons"] == ["retry-items"]

    fake.bad = set()
    clock.advance(20.5)
    assert fake.wait(4) and e.wait_idle(5)
    st = e.status()["tasks"]["t"]
    assert st["failing"] == [] and st["error"] is None and st["retry_in"] is None


# -- a guard's refusal ---------------------------------------------------------------------------------------


class GuardPass:
    """Raises the next refusal of `refusals` (the last one again and again); None lets the pass run."""

    def __init__(self) -> None:
        self.refusals: list[str | None] = []
        self.calls = 0
        self.cond = threading.Condition()

    def __call__(self, home, task, *, force=False, on_event=None, cancel=None, buckets=None, **_):
        with self.cond:
            message = self.refusals.pop(0) if len(self.refusals) > 1 else self.refusals[0]
            self.calls += 1
            self.cond.notify_all()
        on_event(PassStarted(task, False))
        if message is not None:
            # as engine.sync does: the refusal is logged, the pass ends with it, and it is raised
            on_event(LogRecord(time.time(), task, "error", "", message))
            on_event(PassFinished(task, {}, False, message))
            raise GuardError(message)
        on_event(PassFinished(task, {"uploaded": 1}, True))
        return FakeResult({"uploaded": 1})

    def wait(self, n: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.calls >= n, timeout)


def test_a_guard_refusal_is_logged_once_and_again_only_when_it_changes(tmp_path, engines):
    setup = make_home(str(tmp_path))
    clock = FakeClock(MON_0830)
    empty = "the local folder /x is empty but 40 synced files were in it (unmounted disk?); nothing was changed"
    fake = GuardPass()
    fake.refusals = [empty] * 5 + ["the local folder /x is missing (unmounted disk?); nothing was changed"] * 3
    fake.refusals += [None]
    events = Events()
    e = Engine(setup.path, clock=clock, pass_fn=fake, watch=False, control=False, backoff_base=10, backoff_max=40)
    e.subscribe(events)
    e.start()
    engines.append(e)
    for n in range(1, 6):
        assert fake.wait(n), n
        assert wait_for(lambda n=n: e.status()["tasks"]["t"]["passes"] == n, 5)
        clock.advance(41)
    st = e.status()["tasks"]["t"]
    assert st["state"] == "error" and st["error"] == empty
    assert st["refused"]["message"] == empty and st["refused"]["checks"] == 5 and st["refused"]["kind"] == "guard"
    lines = events.lines()
    assert sum(empty in line for line in lines) == 2, lines  # the refusal, and the pass that ended with it
    assert sum("pass-started" in line for line in lines) == 1, lines  # the silent re-checks print nothing

    for n in range(6, 9):  # the words change: logged once more
        assert fake.wait(n), n
        assert wait_for(lambda n=n: e.status()["tasks"]["t"]["passes"] == n, 5)
        clock.advance(41)
    lines = events.lines()
    assert sum("is missing" in line for line in lines) == 2, lines
    assert e.status()["tasks"]["t"]["refused"]["checks"] == 3

    assert fake.wait(9) and e.wait_idle(5)  # the guard lets the pass run: said once, and the task is clean
    assert wait_for(lambda: e.status()["tasks"]["t"]["refused"] is None, 5)
    assert wait_for(lambda: any("no longer refuses" in line for line in events.lines()), 5)
    assert e.status()["tasks"]["t"]["state"] == "idle"


def test_the_empty_folder_guard_of_a_real_pass_is_logged_once(short_base, engines):
    setup = make_home(short_base, conns={"c": {"polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    for i in range(3):
        with open(os.path.join(local, f"f{i}.txt"), "w") as f:
            f.write("x")
    events = Events()
    e = Engine(setup.path, control=False, backoff_base=0.2, backoff_max=0.4)
    e.subscribe(events)
    e.start()
    engines.append(e)
    assert wait_for(lambda: len(os.listdir(cloud)) == 3 if os.path.isdir(cloud) else False, 10)
    assert e.wait_idle(5)
    for i in range(3):
        os.unlink(os.path.join(local, f"f{i}.txt"))  # an emptied folder (an unmounted disk looks the same)
    assert wait_for(lambda: (e.status()["tasks"]["t"]["refused"] or {}).get("checks", 0) >= 6, 15)
    lines = events.lines()
    refusal = [line for line in lines if "is empty" in line]
    assert len(refusal) == 2, lines  # the error line and its pass-finished line, once
    assert sorted(os.listdir(cloud)) == ["f0.txt", "f1.txt", "f2.txt"]  # nothing was deleted
    print("\n".join(refusal))


# -- a pass stopped by a signal -------------------------------------------------------------------------------


def test_a_pass_stopped_by_sigterm_is_logged_as_stopped(short_base):
    setup = make_home(short_base, conns={"c": {"upload_limit": 256, "polling_period": 3600}})
    with open(os.path.join(setup.local(), "big.bin"), "wb") as f:
        f.write(os.urandom(4 << 20))  # 16 s at 256 KiB/s: still running when the signal comes
    log_path = os.path.join(short_base, "run.log")
    command = [SKYSYNC] if os.path.exists(SKYSYNC) else [sys.executable, "-m", "engine.cli"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*command, "--home", setup.path, "run"], stdout=log, stderr=log,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            from engine.runtime import control

            def transferring() -> bool:
                st = control.query(setup.path, {"cmd": "status"}, timeout=2) or {}
                return bool(((st.get("tasks") or {}).get("t") or {}).get("transfers"))

            assert wait_for(transferring, 10, 0.05), pathlib.Path(log_path).read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = pathlib.Path(log_path).read_text()
    finished = [line for line in text.splitlines() if "pass-finished" in line]
    assert finished and finished[-1].split(" skysync ", 1)[1].startswith(
        "task=t pass-finished ok=0 stopped=1 reason=engine-stop"), text
    assert "ok=1" not in text, text
    status = subprocess.run([*command, "--home", setup.path, "status", "--json"], capture_output=True, text=True)
    data = json.loads(status.stdout)["tasks"]["t"]
    assert data["state"] == "interrupted", data  # not "ok": the next pass completes it
    db = StateDB(setup.home().setting("database-path"))
    try:
        last = db.last_pass("t")
    finally:
        db.close()
    assert last is not None and (last["finished"] is None or last["finished"] < last["started"]), last


def test_an_engine_stop_mid_pass_is_a_stopped_pass_event(short_base, engines):
    setup = make_home(short_base, conns={"c": {"upload_limit": 256, "polling_period": 3600}})
    with open(os.path.join(setup.local(), "big.bin"), "wb") as f:
        f.write(os.urandom(2 << 20))
    events = Events()
    e = Engine(setup.path, control=False)
    e.subscribe(events)
    e.start()
    assert wait_for(lambda: any(isinstance(ev, TransferProgress) for ev in events.events), 10)
    e.stop(5)
    finished = [ev for ev in events.events if isinstance(ev, PassFinished)]
    assert len(finished) == 1 and not finished[0].ok and finished[0].stopped == "engine-stop", finished
    assert e.status()["tasks"]["t"]["last_pass"]["stopped"] == "engine-stop"
