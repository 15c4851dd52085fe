"""The engine's shared run state: one record per task and per connection, guarded by one condition variable.

Every part of the engine (scheduler, connections, passes, watchers, the facade) holds the same `Core` and takes
`core.cond` before it reads or changes a run; the scheduler wakes on every notify and at least every TICK.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.config import Connection, Task
from engine.errors import UsageError
from engine.events import Event, LogRecord
from engine.providers.base import Provider
from engine.runtime.poll import ChangeFeed, PollTimer
from engine.runtime.retry import Backoff, earliest_due
from engine.runtime.throttle import TokenBucket
from engine.runtime.transitions import ConnState, TaskRunState

TICK = 0.25  # the scheduler's longest sleep: schedule boundaries and fake clocks are seen within this


@dataclass
class TaskRun:
    task: Task
    dirty: bool = True  # the start trigger
    reasons: set[str] = field(default_factory=lambda: {"start"})
    # The local paths the watcher named since the last pass started: a pass marked for them alone looks at
    # those only (engine.incremental); any other reason makes it a full pass.
    changed: set[str] = field(default_factory=set)
    force: bool = False
    paused: bool | None = None  # None: follow the config's `paused`
    thread: threading.Thread | None = None
    cancel: threading.Event | None = None
    cancel_reason: str = ""
    st: TaskRunState = field(default_factory=TaskRunState)  # what passes change (engine.runtime.transitions)
    last_pass: dict[str, Any] | None = None
    passes: int = 0
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    watcher: Any = None
    # Set while the watcher has folders without an inotify watch: {"since", "limit", "rescan_every"}.
    watch_limit: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def is_paused(self) -> bool:
        return self.task.paused if self.paused is None else self.paused

    @property
    def items_due(self) -> float:
        return earliest_due(self.st.items)

    def mark(self, reason: str) -> None:
        """A trigger: the task is due for a pass (after the running one, if any)."""
        self.dirty = True
        self.reasons.add(reason)

    def stop_pass(self, reason: str) -> None:
        """Cancel the running pass: it starts no new transfer and abandons the running ones."""
        if self.cancel is not None and not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel.set()


@dataclass
class ConnRun:
    conn: Connection
    up: TokenBucket
    down: TokenBucket
    timer: PollTimer
    paused: bool = False
    busy: bool = False  # a check or feed poll is running in its thread
    cs: ConnState = field(default_factory=ConnState)  # what checks change (engine.runtime.transitions)
    feed: ChangeFeed | None = None
    provider: Provider | None = None
    was_allowed: bool = True
    token_stamp: float = 0.0  # the token file's mtime when the sign-in was found gone

    @property
    def name(self) -> str:
        return self.conn.name


class Core:
    """What the engine's parts share."""

    def __init__(self, home_path: str, clock: Callable[[], float], policy: Backoff) -> None:
        self.home_path = home_path
        self.clock = clock
        self.policy = policy
        self.cond = threading.Condition(threading.RLock())
        self.tasks: dict[str, TaskRun] = {}
        self.conns: dict[str, ConnRun] = {}
        self.subscribers: list[Callable[[Event], None]] = []
        self.stopping = False
        self.max_parallel = 1

    def emit(self, event: Event) -> None:
        with self.cond:
            subscribers = list(self.subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not stop the engine or the other subscribers
                pass

    def info(self, task: str | None, message: str, kind: str = "info") -> None:
        self.emit(LogRecord(self.clock(), task or "", kind, "", message))

    def task_run(self, name: str) -> TaskRun:
        run = self.tasks.get(name)
        if run is None:
            raise UsageError(f"no task named '{name}'")
        return run

    def conn_run(self, name: str) -> ConnRun:
        run = self.conns.get(name)
        if run is None:
            raise UsageError(f"no connection named '{name}'")
        return run

    def tasks_of(self, connection: str) -> list[TaskRun]:
        with self.cond:
            return [r for r in self.tasks.values() if r.task.connection == connection]
