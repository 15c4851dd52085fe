"""Fixtures for the continuous-sync tests: homes with local-provider connections, fake pass and clock."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from engine.config import Connection, Home, Task
from engine.events import PassFinished, PassStarted


@dataclass
class HomeSetup:
    path: str
    base: str

    def home(self) -> Home:
        return Home(self.path)

    def local(self, task: str = "t") -> str:
        return self.home().task(task).local

    def remote_root(self, conn: str = "c") -> str:
        return self.home().connection(conn).options["root"]


def make_home(
    base: str,
    tasks: dict[str, str] | None = None,
    conns: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, str] | None = None,
) -> HomeSetup:
    """tasks: task -> connection; conns: connection -> Connection field overrides. All local providers."""
    tasks = tasks or {"t": "c"}
    conns = conns or {c: {} for c in set(tasks.values())}
    home = Home(os.path.join(base, "home"))
    for name, overrides in conns.items():
        root = os.path.join(base, f"cloud-{name}")
        os.makedirs(root, exist_ok=True)
        home.put_connection(Connection(name, "local", {"root": root}, **overrides), {})
    for name, conn in tasks.items():
        local = os.path.join(base, f"local-{name}")
        os.makedirs(local, exist_ok=True)
        home.put_task(Task(name, conn, local, f"/{name}"))
    for key, value in (settings or {}).items():
        home.set_setting(key, value)
    home.save()
    return HomeSetup(home.path, base)


@pytest.fixture
def short_base():
    """A short base folder, so the control socket lives inside the home (sun_path is ~100 bytes)."""
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="sk-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


class FakeClock:
    """Epoch seconds that only move when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def set(self, when: datetime) -> None:
        with self._lock:
            self.now = when.timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass
class FakeResult:
    summary: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return 2 if self.error else (1 if self.failed else 0)


@dataclass
class Call:
    task: str
    force: bool
    at: float
    buckets: tuple[Any, Any]
    cancel: threading.Event
    cancelled: bool = False


class FakePass:
    """Stands in for engine.sync.run_pass: records calls, can hold a pass open, raise, or fail items."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self.cond = threading.Condition()
        self.hold = False  # passes wait for `release` or cancellation
        self.release = threading.Event()
        self.raises: list[BaseException] = []  # raised by the next passes, one each
        self.failed_items: list[int] = []

    def __call__(self, home, task, *, dry_run=False, force=False, on_event=None, cancel=None, buckets=(None, None)):
        call = Call(task, force, self.clock(), buckets, cancel or threading.Event())
        with self.cond:
            self.calls.append(call)
            exc = self.raises.pop(0) if self.raises else None
            failed = self.failed_items.pop(0) if self.failed_items else 0
            self.cond.notify_all()
        if on_event:
            on_event(PassStarted(task, dry_run))
        if exc is not None:
            raise exc
        if self.hold:
            while not (call.cancel.is_set() or self.release.is_set()):
                time.sleep(0.01)
            call.cancelled = call.cancel.is_set()
        result = FakeResult({"uploaded": 1}, failed)
        if on_event:
            on_event(PassFinished(task, result.summary, not failed))
        return result

    def count(self, task: str | None = None) -> int:
        with self.cond:
            return sum(1 for c in self.calls if task is None or c.task == task)

    def wait_count(self, n: int, task: str | None = None, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for c in self.calls if task is None or c.task == task) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)
