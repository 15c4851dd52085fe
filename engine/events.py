"""Events a sync pass emits; the TUI and the headless engine subscribe to them. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One history-log line (also stored in SQLite)."""

    time: float
    task: str
    kind: str  # uploaded, downloaded, deleted-local, deleted-remote, mkdir-local, mkdir-remote, conflict,
    # skipped, error, renamed, info
    path: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class PassStarted:
    task: str
    dry_run: bool


@dataclass(frozen=True, slots=True)
class PassFinished:
    task: str
    summary: dict[str, int]  # counts by action kind, plus "failed" and "skipped"
    ok: bool
    error: str | None = None  # set when a guard or a fatal error stopped the pass
    # Set when the pass was stopped on purpose before it finished (a signal, the schedule, a pause): why.
    # Such a pass is not ok (work is left for the next one), and it is not an error either.
    stopped: str | None = None


@dataclass(frozen=True, slots=True)
class TransferProgress:
    task: str
    path: str
    direction: str  # "up" or "down"
    done: int
    total: int


Event = LogRecord | PassStarted | PassFinished | TransferProgress
