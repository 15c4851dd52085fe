"""The one status model: what the engine says of its connections and tasks, typed.

The engine produces an `EngineStatus`; the control socket sends its `to_json()`, and `EngineStatus.from_json`
reads it back on the other side (`skysync status`, the TUI driving a `skysync run`). The TUI's engine host
without any engine builds one from the config and its on-demand passes. `HomeReport` is what `skysync status`
says (the state database's last passes next to the live status); its `to_json()` is `status --json`, a contract
other tools read (shared/GUIDE.md): keys and values stay as they are.

Every state word is decided here, by the small pure functions below, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Connection states.
SIGNIN_NEEDED = "sign-in needed"
CONNECTION_STATES = ("ok", "connecting", "paused", "waiting-schedule", "error", SIGNIN_NEEDED)
# Task states, live (the engine) and reported (`skysync status`, which also reads the state database).
TASK_STATES = ("idle", "syncing", "paused", "waiting-schedule", "error")
REPORT_STATES = ("ok", "failed", "error", "interrupted", "never", "paused", "syncing")


def connection_state(*, error: bool, signin_needed: bool, paused: bool, allowed: bool, ready: bool) -> str:
    if signin_needed:
        return SIGNIN_NEEDED
    if error:
        return "error"
    if paused:
        return "paused"
    if not allowed:
        return "waiting-schedule"
    return "ok" if ready else "connecting"


def task_state(*, syncing: bool, paused: bool, allowed: bool, failed: bool) -> str:
    """A task's live state. `paused` counts its connection's pause; `failed` its connection's error too."""
    if syncing:
        return "syncing"
    if paused:
        return "paused"
    if not allowed:
        return "waiting-schedule"
    return "error" if failed else "idle"


def connection_state_on_demand(task_states: Iterable[str]) -> str:
    """With no engine to check a connection, it is shown by what its tasks' on-demand passes did."""
    states = list(task_states)
    for wanted in ("error", "syncing"):
        if wanted in states:
            return wanted
    if states and all(s == "paused" for s in states):
        return "paused"
    return "up to date" if states else "no tasks"


@dataclass(frozen=True)
class Transfer:
    path: str
    direction: str
    done: int
    total: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "direction": self.direction, "done": self.done, "total": self.total}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Transfer:
        return cls(str(d.get("path", "")), str(d.get("direction", "up")), int(d.get("done") or 0),
                   int(d.get("total") or 0))


@dataclass(frozen=True)
class FailingItem:
    path: str | None  # None: failures the pass counted without naming them
    failures: int
    retry_in: float
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "failures": self.failures, "retry_in": self.retry_in, "error": self.error}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FailingItem:
        return cls(d.get("path"), int(d.get("failures") or 0), float(d.get("retry_in") or 0.0), str(d.get("error")))


@dataclass(frozen=True)
class RefusalStatus:
    """A safety guard (kind "guard") or the service (kind "connection") stopping every pass of the task: what it
    says, since when, how often it was checked since (silently, while the words stay)."""

    message: str
    kind: str
    since: float
    checks: int
    last_check: float

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "kind": self.kind, "since": self.since, "checks": self.checks,
                "last_check": self.last_check}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RefusalStatus:
        return cls(str(d["message"]), str(d["kind"]), d["since"], int(d["checks"]), d["last_check"])


@dataclass(frozen=True)
class WatchStatus:
    """How local changes are seen: "events" (inotify), or "rescan" while the kernel's watches are short."""

    mode: str
    since: float | None = None
    limit: int | None = None
    rescan_every: float | None = None

    def to_json(self) -> dict[str, Any]:
        if self.mode == "events":
            return {"mode": "events"}
        return {"mode": self.mode, "since": self.since, "limit": self.limit, "rescan_every": self.rescan_every}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WatchStatus:
        return cls(str(d.get("mode")), d.get("since"), d.get("limit"), d.get("rescan_every"))


@dataclass(frozen=True)
class ConnectionStatus:
    state: str
    error: str | None = None
    provider: str | None = None
    polling_period: int | None = None
    upload_limit: int | None = None
    download_limit: int | None = None
    schedule: str | None = None
    next_allowed: str | None = None  # ISO time the schedule opens again, while waiting for it
    next_poll_in: float | None = None
    retry_in: float | None = None
    change_feed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "error": self.error,
            "provider": self.provider,
            "polling_period": self.polling_period,
            "upload_limit": self.upload_limit,
            "download_limit": self.download_limit,
            "schedule": self.schedule,
            "next_allowed": self.next_allowed,
            "next_poll_in": self.next_poll_in,
            "retry_in": self.retry_in,
            "change_feed": self.change_feed,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ConnectionStatus:
        return cls(
            str(d.get("state", "")), d.get("error"), d.get("provider"), d.get("polling_period"),
            d.get("upload_limit"), d.get("download_limit"), d.get("schedule"), d.get("next_allowed"),
            d.get("next_poll_in"), d.get("retry_in"), bool(d.get("change_feed")),
        )


@dataclass(frozen=True)
class TaskStatus:
    state: str
    connection: str | None = None
    error: str | None = None
    pending: bool = False
    retry_in: float | None = None
    passes: int = 0
    last_pass: dict[str, Any] | None = None  # {finished, duration, reasons, summary, failed, exit_code, ...}
    transfers: tuple[Transfer, ...] = ()
    failing: tuple[FailingItem, ...] = ()  # the first few, earliest due first
    failing_count: int = 0
    refused: RefusalStatus | None = None
    watch: WatchStatus | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "connection": self.connection,
            "error": self.error,
            "pending": self.pending,
            "retry_in": self.retry_in,
            "passes": self.passes,
            "last_pass": self.last_pass,
            "transfers": [t.to_json() for t in self.transfers],
            "failing": [f.to_json() for f in self.failing],
            "failing_count": self.failing_count,
            "refused": None if self.refused is None else self.refused.to_json(),
            "watch": None if self.watch is None else self.watch.to_json(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TaskStatus:
        return cls(
            state=str(d.get("state", "")),
            connection=d.get("connection"),
            error=d.get("error"),
            pending=bool(d.get("pending")),
            retry_in=d.get("retry_in"),
            passes=int(d.get("passes") or 0),
            last_pass=d.get("last_pass"),
            transfers=tuple(Transfer.from_json(t) for t in d.get("transfers") or ()),
            failing=tuple(FailingItem.from_json(f) for f in d.get("failing") or ()),
            failing_count=int(d.get("failing_count") or 0),
            refused=None if not d.get("refused") else RefusalStatus.from_json(d["refused"]),
            watch=None if not d.get("watch") else WatchStatus.from_json(d["watch"]),
        )


@dataclass(frozen=True)
class EngineInfo:
    pid: int
    home: str
    started: float | None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "home": self.home, "started": self.started}


@dataclass(frozen=True)
class EngineStatus:
    """Every connection and task of a home; `engine` is None when no engine runs (passes run on demand)."""

    engine: EngineInfo | None
    connections: dict[str, ConnectionStatus] = field(default_factory=dict)
    tasks: dict[str, TaskStatus] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": None if self.engine is None else self.engine.to_json(),
            "connections": {name: c.to_json() for name, c in self.connections.items()},
            "tasks": {name: t.to_json() for name, t in self.tasks.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EngineStatus:
        e = d.get("engine")
        info = EngineInfo(int(e.get("pid") or 0), str(e.get("home", "")), e.get("started")) if isinstance(
            e, Mapping) else None
        return cls(
            info,
            {str(n): ConnectionStatus.from_json(c) for n, c in (d.get("connections") or {}).items()},
            {str(n): TaskStatus.from_json(t) for n, t in (d.get("tasks") or {}).items()},
        )

    def signin_needed(self) -> list[str]:
        return [name for name, c in self.connections.items() if c.state == SIGNIN_NEEDED]


# -- `skysync status`: the state database's view next to the live one -----------------------------------------


def report_state(paused: bool, last: Mapping[str, Any] | None, live: TaskStatus | None,
                 locked: bool) -> tuple[str, str | None, int | None]:
    """What `skysync status` says of a task: (state, error, failed items). `last` is the state database's last
    pass, `live` the running engine's view, `locked` whether some process holds the task's pass lock."""
    live_state = live.state if live is not None else None
    if live_state == "syncing" or locked:
        return "syncing", None, None
    if paused or live_state == "paused":
        return "paused", None, None
    if live_state == "error" and live is not None and live.error:
        return "error", live.error, None
    if not last or (not last.get("started") and last.get("finished") is None):
        return "never", None, None
    finished, started = last.get("finished"), last.get("started")
    if finished is None or (started is not None and finished < started):
        return "interrupted", None, None
    if last.get("error"):
        return "error", last["error"], None
    if last.get("ok") is False:
        return "failed", None, int((last.get("summary") or {}).get("failed", 0))
    return "ok", None, None


@dataclass(frozen=True)
class TaskReport:
    connection: str
    direction: str
    paused: bool
    tracked_files: int
    tracked_folders: int
    last_pass: dict[str, Any] | None
    held_deletions: int  # deletions the last pass held back (mass-delete guard): they wait for sync --force
    state: str
    error: str | None = None
    failed: int | None = None
    live: TaskStatus | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "connection": self.connection,
            "direction": self.direction,
            "paused": self.paused,
            "tracked_files": self.tracked_files,
            "tracked_folders": self.tracked_folders,
            "last_pass": self.last_pass,
            "held_deletions": self.held_deletions,
            "state": self.state,
        }
        if self.error is not None:
            d["error"] = self.error
        if self.failed is not None:
            d["failed"] = self.failed
        if self.live is not None:
            d["live"] = self.live.to_json()
        return d


@dataclass(frozen=True)
class HomeReport:
    live: EngineStatus | None  # None: no engine runs for the home
    tasks: dict[str, TaskReport]

    @property
    def engine_running(self) -> bool:
        return self.live is not None

    def to_json(self) -> dict[str, Any]:
        return {"engine_running": self.engine_running, "tasks": {n: t.to_json() for n, t in self.tasks.items()}}
