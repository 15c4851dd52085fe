"""Runs the engine next to the UI: every call is made from a worker thread, never from the event loop.

Three ways to sync, one status model (engine.runtime.status) for all: the engine runs here; or a `skysync run`
of the same home does, and the host drives it through engine.runtime.client; or neither can run, and "sync now"
runs one-shot passes through engine.sync, whose outcomes the host turns into the same model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.errors import LockedError, SkysyncError
from engine.events import Event
from engine.runtime.client import EngineClient
from engine.runtime.status import (
    SIGNIN_NEEDED,
    ConnectionStatus,
    EngineStatus,
    TaskStatus,
    connection_state_on_demand,
    task_state,
)
from tui import bridge


class EngineLike(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...
    def sync_now(self, task: str | None = None) -> None: ...
    def pause_task(self, task: str) -> None: ...
    def resume_task(self, task: str) -> None: ...
    def pause_connection(self, connection: str) -> None: ...
    def resume_connection(self, connection: str) -> None: ...
    def reload(self) -> None: ...
    def status(self) -> dict: ...
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...


def default_engine(home_path: str) -> EngineLike:
    from engine.runtime import Engine

    return Engine(home_path)


class EngineHost:
    """The app's handle on the engine. Thread-safe; methods block, so call them from thread workers."""

    def __init__(self, home_path: str, factory: Callable[[str], EngineLike] | None = None) -> None:
        self.home_path = home_path
        self._factory = factory or default_engine
        self._engine: EngineLike | None = None
        self._running = False  # True when the real engine service started
        self._listeners: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self._passes: dict[str, threading.Thread] = {}  # fallback one-shot passes by task
        self._syncing: set[str] = set()
        self._last: dict[str, dict[str, Any]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.fallback_reason = ""
        self.remote = False  # True when another process's engine (skysync run) does the syncing
        self._seen_log = 0.0
        self._remote_transfers: dict[tuple[str, str], Any] = {}
        self._client = EngineClient(home_path)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the engine service; False when it cannot run here (passes then run on demand).

        That happens when another engine (`skysync run`) already holds this home: each pass still takes the
        task's lock, so the two never sync the same task at once.
        """
        try:
            engine = self._factory(self.home_path)
            self._unsubscribe = engine.subscribe(self._emit)
            engine.start()
        except (NotImplementedError, SkysyncError) as exc:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if isinstance(exc, LockedError) and self._client.running():
                # `skysync run` already syncs this home: drive it through its control socket instead
                self.remote = True
                self._seen_log = time.time()
                return True
            self.fallback_reason = str(exc) or "the engine service is not available"
            return False
        self._engine = engine
        self._running = True
        return True

    @property
    def running(self) -> bool:
        # An engine that stopped by itself (its home's lock file gone: engine.runtime.engine) runs no more.
        return self._running and not getattr(self._engine, "ended", None)

    def stop(self, timeout: float = 10.0) -> None:
        if self._engine is not None and self._running:
            self._engine.stop(timeout)
            self._running = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for thread in list(self._passes.values()):
            thread.join(timeout)  # passes write through temp files; joining avoids abandoning one midway

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def _emit(self, event: Event) -> None:
        from engine.events import PassFinished, PassStarted

        if isinstance(event, PassStarted):
            self._syncing.add(event.task)
        elif isinstance(event, PassFinished):
            self._syncing.discard(event.task)
            self._last[event.task] = {"summary": dict(event.summary), "ok": event.ok, "error": event.error}
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    # -- the engine of another process, through its control socket ---------------------------------------------
    def _pump_history(self) -> None:
        """The other engine's log lines reach us through the state database: emit the new ones."""
        home = Home(self.home_path)
        fresh = [r for r in bridge.load_history(home, limit=1000) if r.time > self._seen_log]
        for record in fresh:
            self._seen_log = max(self._seen_log, record.time)
            self._emit(record)

    def _pump_transfers(self, status: EngineStatus) -> None:
        """The other engine's running transfers come with its status: replay them as progress events, and
        end the ones that are no longer there, so the Overview shows them as it does for its own engine."""
        from engine.events import TransferProgress

        now = {(task, t.path): t for task, info in status.tasks.items() for t in info.transfers}
        for key in self._remote_transfers.keys() - now.keys():
            gone = self._remote_transfers[key]
            self._emit(TransferProgress(key[0], key[1], gone.direction, gone.total, gone.total))
        for (task, path), t in now.items():
            self._emit(TransferProgress(task, path, t.direction, t.done, t.total))
        self._remote_transfers = now

    # -- actions ------------------------------------------------------------------------------------------------
    def sync_now(self, tasks: list[str]) -> None:
        if self.remote:
            for task in tasks:
                self._client.sync_now(task)
            return
        if self._running and self._engine is not None:
            for task in tasks:
                self._engine.sync_now(task)
            return
        for task in tasks:
            if task in self._passes and self._passes[task].is_alive():
                continue
            thread = threading.Thread(target=self._one_pass, args=(task,), name=f"pass-{task}", daemon=True)
            self._passes[task] = thread
            thread.start()

    def _one_pass(self, task: str) -> None:
        from engine.events import PassFinished, PassStarted

        finished = False

        def on_event(event: Event) -> None:
            nonlocal finished
            finished = finished or isinstance(event, PassFinished)
            self._emit(event)

        try:
            bridge.run_pass(self.home_path, task, dry_run=False, on_event=on_event)
        except Exception as exc:  # the pass reports its own failures; only one that never started needs words here
            if not finished:
                self._emit(PassStarted(task, False))
                self._emit(PassFinished(task, {}, False, str(exc) or exc.__class__.__name__))

    def dry_run(self, task: str, on_event: Callable[[Event], None]) -> Any:
        return bridge.run_pass(self.home_path, task, dry_run=True, on_event=on_event)

    def pause_task(self, task: str, paused: bool) -> None:
        if self.remote:
            (self._client.pause if paused else self._client.resume)(task=task)
        elif self._running and self._engine is not None:
            (self._engine.pause_task if paused else self._engine.resume_task)(task)

    def pause_connection(self, connection: str, paused: bool) -> None:
        if self.remote:
            (self._client.pause if paused else self._client.resume)(connection=connection)
        elif self._running and self._engine is not None:
            (self._engine.pause_connection if paused else self._engine.resume_connection)(connection)

    def reload(self) -> None:
        if self.remote:
            self._client.reload()
        elif self._running and self._engine is not None:
            self._engine.reload()

    def status(self) -> dict:
        """The status model's JSON form (what the screens read): the engine's, or one made from the config and
        the on-demand passes."""
        if self.remote:
            remote = self._client.status()
            if remote is not None:
                self._pump_history()
                self._pump_transfers(remote)
                return remote.to_json()
            self.remote = False  # it stopped: from now on passes run here, on demand
            self.fallback_reason = "the engine of this home (skysync run) stopped"
        if self._running and self._engine is not None:
            return self._engine.status()
        return self._on_demand_status().to_json()

    def _on_demand_status(self) -> EngineStatus:
        """No engine: a task is what its last on-demand pass here did; a connection, what its tasks are."""
        home = Home(self.home_path)
        tasks: dict[str, TaskStatus] = {}
        for task in home.tasks():
            last = self._last.get(task.name)
            failed = last is not None and not last["ok"]
            state = task_state(syncing=task.name in self._syncing, paused=task.paused, allowed=True, failed=failed)
            tasks[task.name] = TaskStatus(state=state, connection=task.connection, last_pass=last,
                                          error=last["error"] if failed and last is not None else None)
        conns = {
            conn.name: ConnectionStatus(
                # No engine checks the connection, but its token file records a refused sign-in (as doctor reads it)
                state=SIGNIN_NEEDED if TokenStore(home.path, conn.name).needs_signin()
                else connection_state_on_demand(tasks[t.name].state for t in home.tasks(conn.name)),
                provider=conn.provider,
            )
            for conn in home.connections()
        }
        return EngineStatus(None, conns, tasks)
