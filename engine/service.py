"""The engine object that both the TUI and `skysync run` drive.

INTERFACE STUB: the continuous-sync work (watchers, pollers, schedule, traffic control, control socket) fills
this in. The TUI codes against exactly these methods; keep their names and meanings.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.events import Event


class Engine:
    def __init__(self, home_path: str, clock: Callable[[], float] | None = None) -> None:
        self.home_path = home_path

    def start(self) -> None:
        """Start watching, polling and scheduling every task of the home (worker threads)."""
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: running transfers finish or are abandoned without partial files."""
        raise NotImplementedError

    def sync_now(self, task: str | None = None) -> None:
        """Queue one pass of `task` (all tasks when None); returns at once."""
        raise NotImplementedError

    def pause_task(self, task: str) -> None: ...
    def resume_task(self, task: str) -> None: ...
    def pause_connection(self, connection: str) -> None: ...
    def resume_connection(self, connection: str) -> None: ...
    def reload(self) -> None:
        """Re-read the home's config after the TUI changed it (limits, schedule, tasks)."""

    def status(self) -> dict:
        """{"connections": {name: {"state": ..., "error": ...}}, "tasks": {name: {"state": idle|syncing|paused|
        waiting-schedule|error, "last_pass": {...}, "transfers": [...]}}}"""
        raise NotImplementedError

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` from engine threads for every event; returns an unsubscribe function."""
        raise NotImplementedError
