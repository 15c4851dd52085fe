"""The engine object that both the TUI and `skysync run` drive: continuous sync of every task of one home.

A facade over the parts: `Core` (the shared run state under one condition variable), `Scheduler` (one thread
deciding when passes run), `Connections` (checks, change feeds, sign-in), `Passes` (one thread per running pass),
`Watchers` (one per task folder), the control socket (engine.runtime.control) and `EngineLock` (one engine per
home). Its public methods are the engine's whole API; `status()` returns the typed model of engine.runtime.status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.config import Home
from engine.errors import UsageError
from engine.events import Event
from engine.providers.base import Provider
from engine.runtime import schedule as sched
from engine.runtime.connections import Connections, ProviderFactory
from engine.runtime.lock import EngineLock
from engine.runtime.passes import Passes, PassFn, default_pass
from engine.runtime.retry import BACKOFF_BASE, BACKOFF_MAX, Backoff
from engine.runtime.runs import TICK, ConnRun, Core, TaskRun
from engine.runtime.scheduler import Scheduler, config_mtimes
from engine.runtime.status import (
    ConnectionStatus,
    EngineInfo,
    EngineStatus,
    FailingItem,
    RefusalStatus,
    TaskStatus,
    Transfer,
    WatchStatus,
    connection_state,
    task_state,
)
from engine.runtime.watchers import Watchers

MAX_FAILING_SHOWN = 20  # failing items listed in a task's status (the count is always given)


def _default_provider(home: Home, connection: str) -> Provider:
    from engine.connect import open_provider

    return open_provider(home, connection)


class Engine:
    def __init__(
        self,
        home_path: str,
        clock: Callable[[], float] | None = None,
        *,
        pass_fn: PassFn | None = None,
        provider_factory: ProviderFactory | None = None,
        watch: bool = True,
        control: bool = True,
        rescan_interval: float | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        """`clock` returns epoch seconds (time.time by default); the schedule grid and every due time are read
        from it, so tests can move it across hour boundaries. The other keywords exist for tests and tools."""
        self.home_path = os.path.abspath(home_path)
        self._core = Core(self.home_path, clock or time.time, Backoff(backoff_base, backoff_max))
        self._connections = Connections(self._core, provider_factory or _default_provider)
        self._passes = Passes(self._core, self._connections, pass_fn or default_pass)
        self._watchers = Watchers(self._core, rescan_interval)
        self._lock = EngineLock(self.home_path)
        self._scheduler = Scheduler(self._core, self._connections, self._passes, self.reload,
                                    home_kept=self._lock.held, home_lost=self._home_lost)
        # Why the engine stopped by itself (its home's lock file gone), for `skysync run` and the app to say.
        self.ended: str | None = None
        self._watch = watch
        self._control_enabled = control
        self._started_at: float | None = None
        self._thread: threading.Thread | None = None
        self._control: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start watching, polling and scheduling every task of the home (worker threads).

        Raises LockedError when another engine (a `skysync run`, or a TUI) already runs for this home, and
        UsageError when the config cannot be read.
        """
        core = self._core
        self._lock.acquire()
        try:
            self._watchers.forget_marker()
            home = Home(self.home_path)
            with core.cond:
                self._started_at = core.clock()
                self._apply_config(home, initial=True)
            if self._control_enabled:
                from engine.runtime.control import ControlServer

                self._control = ControlServer(self.home_path, self.handle_request)
                self._control.start()
            self._thread = threading.Thread(target=self._scheduler.loop, name="scheduler", daemon=True)
            self._thread.start()
        except BaseException:
            self._teardown(1.0)
            raise
        core.info(None, f"engine started (pid {os.getpid()}, {len(core.tasks)} task(s))")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: running passes are cancelled (transfers abandoned, no partial files) and joined."""
        core = self._core
        with core.cond:
            if core.stopping:
                return
            core.stopping = True
            for run in core.tasks.values():
                run.stop_pass("stop")
            core.cond.notify_all()
        self._teardown(timeout)

    def _home_lost(self) -> None:
        """The home's engine.lock is not the file this engine locked any more (the home deleted or replaced while
        it ran): another engine could now start on the same home, and two engines must never sync one home.
        Stop, saying why; the scheduler thread has returned already, so the stop runs in a thread of its own."""
        self.ended = "home-lost"
        self._core.info(None, f"the engine's lock file {self._lock.path} was deleted or replaced while the engine "
                        "ran (was the home removed or moved?); this engine stops so that two never sync one home: "
                        "start skysync again", kind="error")
        threading.Thread(target=self.stop, name="engine-stop", daemon=True).start()

    def _teardown(self, timeout: float) -> None:
        core = self._core
        deadline = time.monotonic() + timeout
        core.stopping = True
        with core.cond:
            core.cond.notify_all()
            runs = list(core.tasks.values())
        watchers = [run.watcher for run in runs if run.watcher]
        for w in watchers:
            w.request_stop()  # all at once, then join: stopping takes one watcher's time, not N
        for w in watchers:
            w.stop(0.5)
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for run in runs:
            t = run.thread
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        if self._control:
            self._control.stop()
            self._control = None
        self._connections.close_all()
        self._lock.release()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no pass runs and none is pending (tests and tools); False on timeout."""
        core = self._core
        deadline = time.monotonic() + timeout
        with core.cond:
            while True:
                busy = any(
                    r.thread is not None or (r.dirty and self._scheduler.can_start(r)) for r in core.tasks.values()
                )
                if not busy:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                core.cond.wait(min(left, TICK))

    # -- commands --------------------------------------------------------------------------------------------
    def sync_now(self, task: str | None = None, force: bool = False) -> None:
        """Queue one pass of `task` (all tasks when None); returns at once. `force` passes the mass-delete
        guard once, like `skysync sync --force`. Paused tasks and closed schedule windows still apply, and so
        does a connection waiting for a sign-in (asking again cannot sign in)."""
        core = self._core
        with core.cond:
            runs = [core.task_run(task)] if task else list(core.tasks.values())
            for run in runs:
                run.mark("sync-now")
                run.force = run.force or force
                run.st = dataclasses.replace(run.st, retry_at=0.0)
                conn = core.conns.get(run.task.connection)
                if conn and conn.cs.error and not conn.cs.signin_needed:
                    conn.cs = dataclasses.replace(conn.cs, retry_at=0.0)
            core.cond.notify_all()

    def pause_task(self, task: str) -> None:
        core = self._core
        with core.cond:
            run = core.task_run(task)
            run.paused = True
            run.stop_pass("pause")
            core.cond.notify_all()
        core.info(task, "paused")

    def resume_task(self, task: str) -> None:
        core = self._core
        with core.cond:
            run = core.task_run(task)
            run.paused = False
            run.mark("resume")
            core.cond.notify_all()
        core.info(task, "resumed")

    def pause_connection(self, connection: str) -> None:
        core = self._core
        with core.cond:
            core.conn_run(connection).paused = True
            for run in core.tasks_of(connection):
                run.stop_pass("pause")
            core.cond.notify_all()
        for run in core.tasks_of(connection):
            core.info(run.name, f"paused with its connection '{connection}'")

    def resume_connection(self, connection: str) -> None:
        core = self._core
        with core.cond:
            core.conn_run(connection).paused = False
            for run in core.tasks_of(connection):
                run.mark("resume")
            core.cond.notify_all()
        for run in core.tasks_of(connection):
            core.info(run.name, f"resumed with its connection '{connection}'")

    def reload(self) -> None:
        """Re-read the home's config after the TUI changed it (limits, schedule, tasks).

        Limits and the schedule apply to running passes at once; errors are cleared so everything retries.
        """
        home = Home(self.home_path)
        with self._core.cond:
            self._apply_config(home, initial=False)
            self._core.cond.notify_all()

    def status(self) -> dict[str, Any]:
        """The status model's JSON form, as the control socket sends it: {"engine": {pid, home, started},
        "connections": {name: {"state", "error", ...}}, "tasks": {name: {"state", "last_pass", "transfers",
        "failing", "refused", "watch", ...}}} (engine.runtime.status documents every field)."""
        return self.status_model().to_json()

    def status_model(self) -> EngineStatus:
        """Every connection and task, typed (engine.runtime.status). `last_pass.stopped` says why a pass was
        stopped before its end."""
        core = self._core
        with core.cond:
            now = core.clock()
            return EngineStatus(
                EngineInfo(os.getpid(), self.home_path, self._started_at),
                {c.name: self._conn_status(c, now) for c in core.conns.values()},
                {r.name: self._task_status(r, now) for r in core.tasks.values()},
            )

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` from engine threads for every event; returns an unsubscribe function."""
        core = self._core
        with core.cond:
            core.subscribers.append(callback)

        def unsubscribe() -> None:
            with core.cond, contextlib.suppress(ValueError):
                core.subscribers.remove(callback)

        return unsubscribe

    def handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """The control socket's dispatcher (engine.runtime.control documents the requests)."""
        cmd = request.get("cmd", request.get("op"))  # "op" accepted too: the CLI's first draft used it
        task, connection = request.get("task"), request.get("connection")
        try:
            if cmd == "ping":
                return {"ok": True, "pid": os.getpid()}
            if cmd == "status":
                return {"ok": True, **self.status()}
            if cmd == "sync-now":
                self.sync_now(task, force=bool(request.get("force")))
            elif cmd in ("pause", "resume"):
                if bool(task) == bool(connection):
                    raise UsageError(f"{cmd} needs exactly one of task or connection")
                if task:
                    (self.pause_task if cmd == "pause" else self.resume_task)(task)
                else:
                    (self.pause_connection if cmd == "pause" else self.resume_connection)(connection)
            elif cmd == "reload":
                self.reload()
            else:
                raise UsageError(f"unknown command {cmd!r}")
        except UsageError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True}

    # -- config ----------------------------------------------------------------------------------------------
    def _apply_config(self, home: Home, initial: bool) -> None:
        core = self._core
        self._scheduler.config_stamp = config_mtimes(self.home_path)
        core.max_parallel = int(home.setting("concurrency"))
        self._connections.apply(home, core.clock())
        tasks = {t.name: t for t in home.tasks()}
        for name in list(core.tasks):
            if name not in tasks:
                run = core.tasks.pop(name)
                run.stop_pass("removed")
                if run.watcher:
                    run.watcher.stop(0.5)
        for name, task in tasks.items():
            run = core.tasks.get(name)
            if run is None:
                run = TaskRun(task)
                core.tasks[name] = run
            else:
                old_local = run.task.local
                run.task = task
                run.st = dataclasses.replace(run.st, error=None, failures=0, retry_at=0.0)
                run.mark("reload")
                if old_local != task.local and run.watcher:
                    run.watcher.stop(0.5)
                    run.watcher = None
            if run.watcher is None and self._watch and task.direction != "download":
                run.watcher = self._watchers.make(run)
        if not initial:
            core.info(None, "configuration reloaded")

    # -- status ----------------------------------------------------------------------------------------------
    def _conn_status(self, c: ConnRun, now: float) -> ConnectionStatus:
        when = datetime.fromtimestamp(now)
        allowed = sched.allowed(c.conn.schedule, when)
        state = connection_state(
            error=bool(c.cs.error), signin_needed=c.cs.signin_needed, paused=c.paused, allowed=allowed,
            ready=c.cs.ready,
        )
        nxt = sched.next_allowed(c.conn.schedule, when)
        retry_in = None
        if c.cs.error and not c.cs.signin_needed:
            retry_in = max(0.0, round(c.cs.retry_at - now, 1))
        return ConnectionStatus(
            state=state,
            error=c.cs.error,
            provider=c.conn.provider,
            polling_period=c.conn.polling_period,
            upload_limit=c.conn.upload_limit,
            download_limit=c.conn.download_limit,
            schedule=sched.describe(c.conn.schedule),
            next_allowed=nxt.isoformat(timespec="seconds") if nxt and state == "waiting-schedule" else None,
            next_poll_in=max(0.0, round(c.timer.next_due - now, 1)),
            retry_in=retry_in,
            change_feed=c.feed is not None,
        )

    def _task_status(self, r: TaskRun, now: float) -> TaskStatus:
        conn = self._core.conns.get(r.task.connection)
        conn_error = conn.cs.error if conn is not None else None
        state = task_state(
            syncing=r.thread is not None,
            paused=r.is_paused or (conn is not None and conn.paused),
            allowed=conn is None or sched.allowed(conn.conn.schedule, datetime.fromtimestamp(now)),
            failed=r.st.state == "error" or bool(conn_error),
        )
        error = r.st.error if r.st.state == "error" or r.st.error else None
        if conn is not None and conn_error and state == "error" and not error:
            error = f"connection '{conn.name}': {conn_error}"
        if r.st.retry_at > now:
            retry_in: float | None = max(0.0, round(r.st.retry_at - now, 1))
        elif r.st.items:
            retry_in = max(0.0, round(r.items_due - now, 1))  # the next retry pass, for the earliest item
        else:
            retry_in = None
        failing = sorted(r.st.items.items(), key=lambda kv: (kv[1].due, kv[0]))[:MAX_FAILING_SHOWN]
        refusal = r.st.refusal
        watch = None
        if r.watcher is not None:
            watch = WatchStatus("events") if r.watch_limit is None else WatchStatus("rescan", **r.watch_limit)
        return TaskStatus(
            state=state,
            connection=r.task.connection,
            error=error,
            pending=r.dirty,
            retry_in=retry_in,
            passes=r.passes,
            last_pass=r.last_pass,
            transfers=tuple(Transfer(**t) for t in r.transfers.values()),
            failing=tuple(
                FailingItem(path or None, item.failures, max(0.0, round(item.due - now, 1)), item.message)
                for path, item in failing
            ),
            failing_count=len(r.st.items),
            refused=None if refusal is None else RefusalStatus(
                refusal.message, refusal.kind, refusal.since, refusal.checks, refusal.last_check
            ),
            watch=watch,
        )
