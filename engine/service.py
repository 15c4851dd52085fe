"""The engine object that both the TUI and `skysync run` drive: continuous sync of every task of one home.

Threads: one scheduler that decides when each task's pass runs, one thread per running pass, watcher threads
per task folder, short-lived poll threads (connection checks and change feeds), and the control socket.
All shared state is guarded by one condition variable; the scheduler wakes on every trigger and at least
every TICK seconds to look at the clock.

Triggers for a task's pass: engine start, a local change (the watcher), its connection's poll timer (or its
change feed saying yes), sync_now, reload. A trigger that arrives while a pass runs marks the task dirty, so
the next pass picks up changes made during the current one.

What stops a pass: leaving the connection's schedule window, pausing the task or its connection, stop().
All of them *cancel* the pass: it starts no new transfer and abandons running ones; every write goes through a
temporary name and a rename, so no partial file is left under a real name, and the remaining work is done by
the next pass when the window opens or the task resumes. (We chose this over finishing the current file: a
multi-gigabyte file could otherwise run for hours past the hour the user reserved.)

Errors: a pass that fails as a whole (the service unreachable, a guard: guards re-check safely each time, so
an unmounted disk that comes back resumes by itself) puts the task in "error" and retries with exponential
backoff; sync_now(force=True) passes the mass-delete guard once. A refusal (a guard, or the service failing
before the pass could start) is logged once, and again only when its words change; the re-checks in between
are silent (`status` shows it and how often it was checked). A connection whose credentials are refused
(AuthError) is put in "error" with the reason, retried with backoff (and at once after reload), while other
connections keep going.

A pass that finishes with some items failed is not a failed pass: the task keeps reacting to changes at once,
and each failing item gets a backoff of its own (5 s doubling up to 15 min, kept in memory). A retry pass
runs when the earliest item is due. Passes run meanwhile for other changes try the item too (the pass plans
every path), but a failure there does not count against its schedule, nor is its unchanged error logged again.
So one unwritable or oversized file never delays anyone's other saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.config import Connection, Home, Task
from engine.errors import ConnectionFailed, GuardError, LockedError, UsageError
from engine.events import Event, LogRecord, PassFinished, PassStarted, TransferProgress
from engine.providers.base import AuthError, Provider, ProviderError
from engine.runtime import schedule as sched
from engine.runtime.control import inotify_marker_path
from engine.runtime.poll import ChangeFeed, PollTimer, clamp_period, poll_once
from engine.runtime.throttle import TokenBucket

LOCK_NAME = "engine.lock"
TICK = 0.25  # the scheduler's longest sleep: schedule boundaries and fake clocks are seen within this
CONFIG_CHECK_EVERY = 2.0  # seconds between looks at config.toml's mtime (auto reload after CLI edits)
BACKOFF_BASE = 5.0
BACKOFF_MAX = 900.0
LOCKED_RETRY = 5.0
MAX_FAILING_SHOWN = 20  # failing items listed in a task's status (the count is always given)

PassFn = Callable[..., Any]
ProviderFactory = Callable[[Home, str], Provider]


def _default_pass(*args: Any, **kwargs: Any) -> Any:
    from engine.sync import run_pass  # imported late: the CLI's fast paths never need it

    return run_pass(*args, **kwargs)


def _default_provider(home: Home, connection: str) -> Provider:
    from engine.connect import open_provider

    return open_provider(home, connection)


def backoff(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after the n-th failure in a row: base, 2 base, 4 base, ... up to cap."""
    return min(cap, base * (2 ** max(0, failures - 1)))


class EngineLock:
    """One engine per home: an exclusive flock on <home>/engine.lock; the kernel drops it if we crash."""

    def __init__(self, home_path: str) -> None:
        self.path = os.path.join(home_path, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            raise LockedError(
                f"another skysync engine is already running for this home{holder}; use `skysync status` to talk to it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


@dataclass
class _ItemRetry:
    """One failing item's own retry schedule (engine clock seconds)."""

    failures: int
    due: float
    message: str


STOP_WORDS = {
    "stop": "engine-stop",  # SIGINT/SIGTERM to `skysync run`, or the TUI closing
    "schedule": "schedule",
    "pause": "paused",
    "connection error": "connection-error",
    "removed": "task-removed",
}


def _stop_word(reason: str) -> str:
    return STOP_WORDS.get(reason, reason.replace(" ", "-") or "stopped")


def _refusal_echo(event: Event, text: str, first_line: str) -> bool:
    """An event that only repeats a known guard refusal: the pass starting, the refusal, the pass ending."""
    if isinstance(event, PassStarted):
        return True
    if isinstance(event, LogRecord):
        return event.kind == "error" and not event.path and event.message in (text, first_line)
    if isinstance(event, PassFinished):
        return not event.ok and event.error in (text, first_line)
    return False


@dataclass
class _TaskRun:
    task: Task
    dirty: bool = True  # the start trigger
    reasons: set[str] = field(default_factory=lambda: {"start"})
    force: bool = False
    paused: bool | None = None  # None: follow the config's `paused`
    thread: threading.Thread | None = None
    cancel: threading.Event | None = None
    cancel_reason: str = ""
    state: str = "idle"
    error: str | None = None
    provider_failed: bool = False  # the last failure came from the service: check the connection
    failures: int = 0
    retry_at: float = 0.0
    last_pass: dict[str, Any] | None = None
    passes: int = 0
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    watcher: Any = None
    # Failing items, each on its own retry schedule; "" stands for failures the pass did not name by path.
    items: dict[str, _ItemRetry] = field(default_factory=dict)
    items_due: float = 0.0  # the earliest due time among `items` (0 when there are none)
    # The last refusal that stopped the pass before it began (a GuardError: a safety guard, or the service
    # failing first): {"message", "kind", "since", "checks", "last_check"}; None once a pass runs again.
    refusal: dict[str, Any] | None = None
    # Set while the watcher has folders without an inotify watch: {"since", "limit", "rescan_every"}.
    watch_limit: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def is_paused(self) -> bool:
        return self.task.paused if self.paused is None else self.paused


@dataclass
class _ConnRun:
    conn: Connection
    up: TokenBucket
    down: TokenBucket
    timer: PollTimer
    paused: bool = False
    ready: bool = False  # the first check (credentials, change-feed cursor) has succeeded
    busy: bool = False  # a check or feed poll is running in its thread
    needs_check: bool = True
    feed: ChangeFeed | None = None
    provider: Provider | None = None
    error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    was_allowed: bool = True

    @property
    def name(self) -> str:
        return self.conn.name


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
        self._clock = clock or time.time
        self._pass_fn = pass_fn or _default_pass
        self._provider_factory = provider_factory or _default_provider
        self._watch = watch
        self._control_enabled = control
        self._rescan_interval = rescan_interval
        self._backoff = (backoff_base, backoff_max)
        self._cond = threading.Condition(threading.RLock())
        self._tasks: dict[str, _TaskRun] = {}
        self._conns: dict[str, _ConnRun] = {}
        self._subscribers: list[Callable[[Event], None]] = []
        self._lock = EngineLock(self.home_path)
        self._stopping = False
        self._started_at: float | None = None
        self._scheduler: threading.Thread | None = None
        self._control: Any = None
        self._config_stamp: tuple[float, float] = (0.0, 0.0)
        self._max_parallel = 1
        self._marker_lock = threading.Lock()
        self._limit_logged: set[str] = set()  # tasks whose inotify exhaustion was logged (once per run)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start watching, polling and scheduling every task of the home (worker threads).

        Raises LockedError when another engine (a `skysync run`, or a TUI) already runs for this home, and
        UsageError when the config cannot be read.
        """
        self._lock.acquire()
        try:
            with contextlib.suppress(OSError):
                os.unlink(inotify_marker_path(self.home_path))  # the last run's; our watchers report afresh
            home = Home(self.home_path)
            with self._cond:
                self._started_at = self._clock()
                self._apply_config(home, initial=True)
            if self._control_enabled:
                from engine.runtime.control import ControlServer

                self._control = ControlServer(self.home_path, self.handle_request)
                self._control.start()
            self._scheduler = threading.Thread(target=self._schedule_loop, name="scheduler", daemon=True)
            self._scheduler.start()
        except BaseException:
            self._teardown(1.0)
            raise
        self._info(None, f"engine started (pid {os.getpid()}, {len(self._tasks)} task(s))")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: running passes are cancelled (transfers abandoned, no partial files) and joined."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            for run in self._tasks.values():
                self._cancel(run, "stop")
            self._cond.notify_all()
        self._teardown(timeout)

    def _teardown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
            runs = list(self._tasks.values())
            conns = list(self._conns.values())
        watchers = [run.watcher for run in runs if run.watcher]
        for w in watchers:
            w.request_stop()  # all at once, then join: stopping takes one watcher's time, not N
        for w in watchers:
            w.stop(0.5)
        if self._scheduler and self._scheduler is not threading.current_thread():
            self._scheduler.join(max(0.0, deadline - time.monotonic()))
        for run in runs:
            t = run.thread
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        if self._control:
            self._control.stop()
            self._control = None
        for c in conns:
            if c.provider is not None:
                with contextlib.suppress(Exception):
                    c.provider.close()
        self._lock.release()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no pass runs and none is pending (tests and tools); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                busy = any(r.thread is not None or (r.dirty and self._can_start(r)) for r in self._tasks.values())
                if not busy:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, TICK))

    # -- commands --------------------------------------------------------------------------------------------
    def sync_now(self, task: str | None = None, force: bool = False) -> None:
        """Queue one pass of `task` (all tasks when None); returns at once. `force` passes the mass-delete
        guard once, like `skysync sync --force`. Paused tasks and closed schedule windows still apply."""
        with self._cond:
            runs = [self._task_run(task)] if task else list(self._tasks.values())
            for run in runs:
                self._mark(run, "sync-now")
                run.force = run.force or force
                run.retry_at = 0.0
                conn = self._conns.get(run.task.connection)
                if conn and conn.error:
                    conn.retry_at = 0.0
            self._cond.notify_all()

    def pause_task(self, task: str) -> None:
        with self._cond:
            run = self._task_run(task)
            run.paused = True
            self._cancel(run, "pause")
            self._cond.notify_all()
        self._info(task, "paused")

    def resume_task(self, task: str) -> None:
        with self._cond:
            run = self._task_run(task)
            run.paused = False
            self._mark(run, "resume")
            self._cond.notify_all()
        self._info(task, "resumed")

    def pause_connection(self, connection: str) -> None:
        with self._cond:
            conn = self._conn_run(connection)
            conn.paused = True
            for run in self._tasks_of(connection):
                self._cancel(run, "pause")
            self._cond.notify_all()
        for run in self._tasks_of(connection):
            self._info(run.name, f"paused with its connection '{connection}'")

    def resume_connection(self, connection: str) -> None:
        with self._cond:
            conn = self._conn_run(connection)
            conn.paused = False
            for run in self._tasks_of(connection):
                self._mark(run, "resume")
            self._cond.notify_all()
        for run in self._tasks_of(connection):
            self._info(run.name, f"resumed with its connection '{connection}'")

    def reload(self) -> None:
        """Re-read the home's config after the TUI changed it (limits, schedule, tasks).

        Limits and the schedule apply to running passes at once; errors are cleared so everything retries.
        """
        home = Home(self.home_path)
        with self._cond:
            self._apply_config(home, initial=False)
            self._cond.notify_all()

    def status(self) -> dict:
        """{"connections": {name: {"state": ..., "error": ...}},
        "tasks": {name: {"state": idle|syncing|paused|waiting-schedule|error, "last_pass": {...},
        "transfers": [...], "failing": [...], "refused": {...}|None, "watch": {"mode": ...}|None}}}
        plus "engine": {pid, home, started}. `last_pass.stopped` says why a pass was stopped before its end."""
        with self._cond:
            now = self._clock()
            conns = {c.name: self._conn_status(c, now) for c in self._conns.values()}
            tasks = {r.name: self._task_status(r, now) for r in self._tasks.values()}
            return {
                "engine": {"pid": os.getpid(), "home": self.home_path, "started": self._started_at},
                "connections": conns,
                "tasks": tasks,
            }

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` from engine threads for every event; returns an unsubscribe function."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

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
        now = self._clock()
        self._config_stamp = self._config_mtimes()
        self._max_parallel = int(home.setting("concurrency"))
        conns = {c.name: c for c in home.connections()}
        for name in list(self._conns):
            if name not in conns:
                c = self._conns.pop(name)
                if c.provider is not None:
                    with contextlib.suppress(Exception):
                        c.provider.close()
        for name, conn in conns.items():
            if clamp_period(conn.polling_period) != conn.polling_period:
                # A hand-edited config.toml bypasses the CLI's check: say so, and keep within the spec's bounds.
                for t in home.tasks(name):
                    self._info(
                        t.name,
                        f"connection '{name}': polling_period {conn.polling_period} s is outside 10..86400; "
                        f"using {clamp_period(conn.polling_period):g} s",
                        kind="error",
                    )
            run = self._conns.get(name)
            if run is None:
                timer = PollTimer(conn.polling_period, next_due=now + clamp_period(conn.polling_period))
                run = _ConnRun(
                    conn,
                    TokenBucket(conn.upload_limit * 1024),
                    TokenBucket(conn.download_limit * 1024),
                    timer,
                )
                self._conns[name] = run
            else:
                credentials_changed = (conn.provider, conn.options) != (run.conn.provider, run.conn.options)
                run.conn = conn
                run.up.set_rate(conn.upload_limit * 1024)  # live: running transfers slow down or speed up now
                run.down.set_rate(conn.download_limit * 1024)
                run.timer.set_period(conn.polling_period, now)
                # Secrets may have changed without config.toml's options changing: check again either way.
                run.error, run.failures, run.retry_at, run.needs_check = None, 0, 0.0, True
                if credentials_changed and run.provider is not None:
                    with contextlib.suppress(Exception):
                        run.provider.close()
                    run.provider, run.feed, run.ready = None, None, False
        tasks = {t.name: t for t in home.tasks()}
        for name in list(self._tasks):
            if name not in tasks:
                run = self._tasks.pop(name)
                self._cancel(run, "removed")
                if run.watcher:
                    run.watcher.stop(0.5)
        for name, task in tasks.items():
            run = self._tasks.get(name)
            if run is None:
                run = _TaskRun(task)
                self._tasks[name] = run
            else:
                old_local = run.task.local
                run.task = task
                run.error, run.failures, run.retry_at = None, 0, 0.0
                self._mark(run, "reload")
                if old_local != task.local and run.watcher:
                    run.watcher.stop(0.5)
                    run.watcher = None
            if run.watcher is None and self._watch and task.direction != "download":
                run.watcher = self._make_watcher(run)
        if not initial:
            self._info(None, "configuration reloaded")

    def _make_watcher(self, run: _TaskRun) -> Any:
        from engine.runtime.watch import RESCAN_INTERVAL, LocalWatcher

        name = run.name

        def on_change(reason: str, paths: list[str]) -> None:
            with self._cond:
                current = self._tasks.get(name)
                if current is not None:
                    self._mark(current, reason)
                    self._cond.notify_all()

        def on_error(message: str) -> None:
            self._info(name, message, kind="error")

        def on_limit(exhausted: bool, limit: int | None, rescan_every: float) -> None:
            self._watch_limit(name, exhausted, limit, rescan_every)

        watcher = LocalWatcher(
            run.task.local,
            on_change,
            on_error=on_error,
            on_limit=on_limit,
            rescan_interval=self._rescan_interval or RESCAN_INTERVAL,
        )
        watcher.start()
        return watcher

    def _watch_limit(self, name: str, exhausted: bool, limit: int | None, rescan_every: float) -> None:
        """A task's watcher ran out of inotify watches (or has them all again): log it once, show it in
        status, and keep the home's marker (`skysync doctor` reads it) up to date."""
        from engine.runtime.watch import limit_advice

        with self._cond:
            run = self._tasks.get(name)
            if run is None:
                return
            if exhausted:
                since = run.watch_limit["since"] if run.watch_limit else self._clock()
                run.watch_limit = {"since": since, "limit": limit, "rescan_every": rescan_every}
            else:
                run.watch_limit = None
            first = exhausted and name not in self._limit_logged
            if first:
                self._limit_logged.add(name)
            local = run.task.local
        self._write_limit_marker()
        if first:
            shown_limit = f"{limit:,}" if limit is not None else "unknown"
            self._info(
                name,
                f"inotify watch limit reached (fs.inotify.max_user_watches = {shown_limit}): changes in folders "
                f"of {local} without a watch are found by a full rescan every {rescan_every:g} s instead of at "
                f"once; {limit_advice(limit)}",
                kind="error",
            )
        elif not exhausted and name in self._limit_logged:
            self._info(name, "inotify watches are available again: every folder is watched, changes are seen at once")

    def _write_limit_marker(self) -> None:
        """<home>/.run/inotify-exhausted: which tasks lack watches, for `skysync doctor` (gone when none)."""
        with self._marker_lock:
            with self._cond:
                tasks = {
                    r.name: {"since": r.watch_limit["since"], "folder": r.task.local}
                    for r in self._tasks.values()
                    if r.watch_limit
                }
                limits = [r.watch_limit["limit"] for r in self._tasks.values() if r.watch_limit]
                every = max([r.watch_limit["rescan_every"] for r in self._tasks.values() if r.watch_limit] or [0])
            path = inotify_marker_path(self.home_path)
            try:
                if not tasks:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    return
                from engine.runtime.control import private_dir

                private_dir(os.path.dirname(path))
                data = {"pid": os.getpid(), "limit": limits[0], "rescan_every": every, "tasks": tasks}
                tmp = f"{path}.tmp-{os.getpid()}"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(data, f)
                os.replace(tmp, path)
            except OSError as exc:  # a read-only home must not stop the watcher; the log line still says it
                self._info(None, f"cannot record the inotify shortage for `skysync doctor`: {exc}", kind="error")

    def _config_mtimes(self) -> tuple[float, float]:
        stamps = []
        for name in ("config.toml", "secrets.toml"):
            try:
                stamps.append(os.stat(os.path.join(self.home_path, name)).st_mtime)
            except OSError:
                stamps.append(0.0)
        return stamps[0], stamps[1]

    # -- scheduling ------------------------------------------------------------------------------------------
    def _schedule_loop(self) -> None:
        last_config_check = time.monotonic()
        while True:
            with self._cond:
                if self._stopping:
                    return
                try:
                    self._tick(self._clock())
                except Exception as exc:  # keep scheduling whatever one tick hit; say what happened
                    self._info(None, f"scheduler error: {type(exc).__name__}: {exc}", kind="error")
                self._cond.wait(TICK)
            if time.monotonic() - last_config_check >= CONFIG_CHECK_EVERY:
                last_config_check = time.monotonic()
                if self._config_mtimes() != self._config_stamp:
                    try:
                        self.reload()  # `skysync task add` or a TUI edit while we run
                    except UsageError as exc:
                        self._config_stamp = self._config_mtimes()
                        self._info(None, f"configuration not reloaded: {exc}", kind="error")

    def _tick(self, now: float) -> None:
        when = datetime.fromtimestamp(now)
        for conn in self._conns.values():
            is_allowed = sched.allowed(conn.conn.schedule, when)
            if is_allowed != conn.was_allowed:
                conn.was_allowed = is_allowed
                self._schedule_changed(conn, is_allowed, when)
            if not is_allowed:
                for run in self._tasks_of(conn.name):
                    self._cancel(run, "schedule")
                continue
            if conn.paused or conn.busy:
                continue
            if conn.needs_check or not conn.ready:
                if now >= conn.retry_at:
                    self._spawn_check(conn)
                continue
            if conn.timer.due(now):
                if conn.feed is None:
                    poll_once(None, conn.timer, now)
                    for run in self._tasks_of(conn.name):
                        self._mark(run, "poll")
                else:
                    self._spawn_check(conn, feed_only=True)
        for run in self._tasks.values():
            if run.items and run.thread is None and not run.dirty and now >= run.items_due:
                self._mark(run, "retry-items")  # the earliest failing item is due again
        running = sum(1 for r in self._tasks.values() if r.thread is not None)
        for run in self._tasks.values():
            if running >= self._max_parallel:
                break
            if run.thread is None and run.dirty and self._can_start(run) and now >= run.retry_at:
                self._start_pass(run)
                running += 1

    def _can_start(self, run: _TaskRun) -> bool:
        conn = self._conns.get(run.task.connection)
        if conn is None or self._stopping or run.is_paused:
            return False
        if conn.paused or not conn.ready or conn.error:
            return False
        return sched.allowed(conn.conn.schedule, datetime.fromtimestamp(self._clock()))

    def _schedule_changed(self, conn: _ConnRun, is_allowed: bool, when: datetime) -> None:
        if is_allowed:
            for run in self._tasks_of(conn.name):
                self._mark(run, "schedule")  # the window opened: catch up on what waited
                self._info(run.name, "schedule window open: syncing resumes")
        else:
            nxt = sched.next_allowed(conn.conn.schedule, when)
            until = nxt.strftime("%a %H:%M") if nxt else "never (no hour is allowed)"
            for run in self._tasks_of(conn.name):
                self._info(run.name, f"outside the schedule: paused until {until}")

    def _mark(self, run: _TaskRun, reason: str) -> None:
        run.dirty = True
        run.reasons.add(reason)

    def _cancel(self, run: _TaskRun, reason: str) -> None:
        if run.cancel is not None and not run.cancel.is_set():
            run.cancel_reason = reason
            run.cancel.set()

    # -- connection checks and change feeds ------------------------------------------------------------------
    def _spawn_check(self, conn: _ConnRun, feed_only: bool = False) -> None:
        conn.busy = True
        threading.Thread(
            target=self._check_connection, args=(conn, feed_only), name=f"check:{conn.name}", daemon=True
        ).start()

    def _check_connection(self, conn: _ConnRun, feed_only: bool) -> None:
        """Reach the service (credentials), take or advance the change-feed cursor; runs in its own thread."""
        changed = True
        error: BaseException | None = None
        try:
            provider = conn.provider
            if provider is None:
                provider = self._provider_factory(Home(self.home_path), conn.name)
                conn.provider = provider
                conn.feed = ChangeFeed(provider) if ChangeFeed.supported(provider) else None
            if not feed_only:
                provider.check()
            if conn.feed is not None:
                changed = poll_once(conn.feed, conn.timer, self._clock()) or not feed_only
        except (ProviderError, UsageError) as exc:
            error = exc
        except Exception as exc:  # an SDK's surprise: treat like a transient provider error
            error = ProviderError(f"{type(exc).__name__}: {exc}")
        with self._cond:
            conn.busy = False
            now = self._clock()
            if error is None:
                recovered = conn.error is not None
                conn.ready, conn.needs_check, conn.error, conn.failures = True, False, None, 0
                if changed:
                    for run in self._tasks_of(conn.name):
                        self._mark(run, "poll" if feed_only else "check")
                if recovered:
                    for run in self._tasks_of(conn.name):
                        self._info(run.name, f"connection '{conn.name}' works again")
            else:
                if conn.feed is not None:
                    conn.feed.reset()
                conn.failures += 1
                conn.needs_check = True
                conn.error = str(error) or type(error).__name__
                if isinstance(error, AuthError):
                    conn.error = f"credentials refused: {conn.error}"
                conn.retry_at = now + backoff(conn.failures, *self._backoff)
                for run in self._tasks_of(conn.name):
                    self._cancel(run, "connection error")
            self._cond.notify_all()
        if error is not None:
            for run in self._tasks_of(conn.name):
                self._info(run.name, f"connection '{conn.name}': {conn.error}", kind="error")

    # -- passes ----------------------------------------------------------------------------------------------
    def _start_pass(self, run: _TaskRun) -> None:
        conn = self._conns[run.task.connection]
        run.dirty = False
        reasons, run.reasons = run.reasons, set()
        force, run.force = run.force, False
        run.cancel = threading.Event()
        run.cancel_reason = ""
        run.state = "syncing"
        run.transfers = {}
        run.thread = threading.Thread(
            target=self._pass_thread,
            args=(run, run.cancel, force, (conn.up, conn.down), sorted(reasons)),
            name=f"pass:{run.name}",
            daemon=True,  # a pass stuck in an SDK call must not keep a stopping process alive
        )
        run.thread.start()

    def _pass_thread(
        self,
        run: _TaskRun,
        cancel: threading.Event,
        force: bool,
        buckets: tuple[TokenBucket, TokenBucket],
        reasons: list[str],
    ) -> None:
        name = run.name
        seen: set[str] = set()
        failed: dict[str, str] = {}  # path -> message of the items this pass failed
        with self._cond:
            known = {path: (r.due, r.message) for path, r in run.items.items()}
            refusal = run.refusal["message"] if run.refusal else None
        # While a guard refuses, a pass's events are held until it does something else than refuse again.
        held: list[Event] | None = [] if refusal is not None else None
        held_lock = threading.Lock()
        first_line = refusal.splitlines()[0] if refusal else ""

        def deliver(event: Event) -> None:
            self._track(run, event)
            self._emit(event)

        def on_event(event: Event) -> None:
            nonlocal held
            seen.add(type(event).__name__)
            if isinstance(event, LogRecord) and event.kind == "error" and event.path:
                failed[event.path] = event.message
                due, message = known.get(event.path, (0.0, None))
                if message == event.message and self._clock() < due:
                    # Tried early, in a pass for other changes, and failed the same way: its own schedule
                    # stands, and the log has this line already.
                    self._track(run, event)
                    return
            if isinstance(event, PassFinished) and event.stopped:
                event = dataclasses.replace(event, stopped=_stop_word(run.cancel_reason))
            if held is not None:
                with held_lock:
                    if held is not None:
                        if refusal is not None and _refusal_echo(event, refusal, first_line):
                            held.append(event)
                            return
                        pending, held = held, None
                        for e in pending:
                            deliver(e)
            deliver(event)

        started = time.monotonic()
        result: Any = None
        error: BaseException | None = None
        try:
            result = self._pass_fn(
                Home(self.home_path), name, force=force, on_event=on_event, cancel=cancel, buckets=buckets
            )
        except BaseException as exc:  # every outcome must reach the bookkeeping below
            error = exc
        duration = time.monotonic() - started
        repeated, closing, notes = self._finish_pass(run, cancel, result, error, duration, reasons, seen, failed)
        with held_lock:
            pending, held = held, None
        if not repeated:
            for e in pending or ():
                deliver(e)
        if closing is not None and not repeated:
            deliver(closing)
        for note in notes:
            self._info(name, note)

    def _finish_pass(
        self,
        run: _TaskRun,
        cancel: threading.Event,
        result: Any,
        error: BaseException | None,
        duration: float,
        reasons: list[str],
        seen: set[str],
        failed: dict[str, str],
    ) -> tuple[bool, PassFinished | None, list[str]]:
        """Bookkeeping after a pass. Returns (the pass only repeated the guard's known refusal, the PassFinished
        to emit when the pass did not emit one, info lines to log)."""
        now = self._clock()
        message: str | None = None
        auth_failed = False
        repeated = False
        notes: list[str] = []
        with self._cond:
            run.provider_failed = False
            run.thread = None
            run.cancel = None
            run.transfers = {}
            run.passes += 1
            cancelled = cancel.is_set()
            n_failed = int(getattr(result, "failed", 0) or 0)
            if cancelled:
                self._mark(run, "cancelled")  # the rest of the work waits for the next pass
            if error is not None:
                message = str(error).splitlines()[0] if str(error) else type(error).__name__
                if isinstance(error, LockedError):
                    # `skysync sync` runs this task right now: not an error, try again shortly.
                    self._mark(run, "locked")
                    run.retry_at = now + LOCKED_RETRY
                    run.state = "idle"
                else:
                    # The pass may wrap a provider failure (listing) in a GuardError; look at the cause too.
                    cause = error.__cause__ or error.__context__
                    auth_failed = isinstance(error, AuthError) or isinstance(cause, AuthError)
                    if not isinstance(error, ProviderError | GuardError | UsageError):
                        message = f"{type(error).__name__}: {message}"
                    # Guards and config errors retry too: the guard re-checks safely every time, and a missing
                    # disk or a fixed config then resumes without the user having to ask.
                    self._failed(run, message, now)
                    run.provider_failed = isinstance(error, ProviderError) or isinstance(cause, ProviderError)
                    if isinstance(error, GuardError):
                        kind = "connection" if isinstance(error, ConnectionFailed) else "guard"
                        repeated = self._refused(run, str(error) or message, kind, now)
            elif cancelled:
                # Stopped on purpose (schedule, pause, stop): items abandoned mid-way are not failures.
                run.state, run.error = "idle", None
            elif result is not None and getattr(result, "error", None):
                message = str(result.error)
                self._failed(run, message, now)
            else:
                # The pass ran to its end: the task is fine, whatever single items did.
                run.state, run.failures, run.retry_at = "idle", 0, 0.0
                self._item_outcome(run, failed, n_failed, now)
                run.error = f"{n_failed} item(s) failed" if n_failed else None
                if run.refusal is not None:
                    if run.refusal["kind"] == "guard":  # (a connection that works again says so itself)
                        notes.append("the safety guard no longer refuses: syncing resumed")
                    run.refusal = None
            summary = dict(getattr(result, "summary", {}) or {})
            run.last_pass = {
                "finished": now,
                "duration": round(duration, 3),
                "reasons": reasons,
                "summary": summary,
                "failed": n_failed,
                "exit_code": getattr(result, "exit_code", None if error is None else getattr(error, "exit_code", 1)),
                "error": message,
                "cancelled": run.cancel_reason if cancelled else None,
                "stopped": _stop_word(run.cancel_reason) if cancelled and error is None else None,
            }
            conn = self._conns.get(run.task.connection)
            if conn is not None and (
                auth_failed
                or (error is not None and run.provider_failed)
                or (result is not None and getattr(result, "error", None))
            ):
                # Was it the credentials? A connection check tells (and marks the connection if so).
                conn.needs_check = True
                conn.ready = conn.ready and not auth_failed
            self._cond.notify_all()
        closing = None
        if "PassFinished" not in seen:
            stopped = _stop_word(run.cancel_reason) if cancelled and error is None else None
            whole = result is not None and getattr(result, "error", None)
            ok = error is None and not stopped and not whole and not n_failed
            closing = PassFinished(run.name, summary, ok, message, stopped)
        return repeated, closing, notes

    def _failed(self, run: _TaskRun, message: str, now: float) -> None:
        """The pass failed as a whole: the task backs off."""
        run.failures += 1
        run.retry_at = now + backoff(run.failures, *self._backoff)
        run.error = message
        run.state = "error"
        self._mark(run, "retry")

    def _refused(self, run: _TaskRun, text: str, kind: str, now: float) -> bool:
        """Record a refusal (a guard, or the service failing before the pass could start); True when it is the
        one already known, word for word (nothing new to log)."""
        known = run.refusal
        if known is not None and known["message"] == text:
            known["checks"] += 1
            known["last_check"] = now
            return True
        run.refusal = {"message": text, "kind": kind, "since": now, "checks": 1, "last_check": now}
        return False

    def _item_outcome(self, run: _TaskRun, failed: dict[str, str], n_failed: int, now: float) -> None:
        """After a pass that ran to its end: each failing item moves on its own schedule; the others are done.

        A failure counts (and doubles the item's wait) only when the item was due; one in an earlier pass, run
        for other changes, leaves the schedule as it was.
        """
        named = dict(failed)
        unnamed = n_failed - len(named)
        if unnamed > 0:
            named[""] = f"{unnamed} item(s) failed"  # a pass that did not say which
        for path in [p for p in run.items if p not in named]:
            del run.items[path]  # synced, gone, or no longer planned
        for path, message in named.items():
            item = run.items.get(path)
            if item is None:
                run.items[path] = _ItemRetry(1, now + backoff(1, *self._backoff), message)
            elif now >= item.due:
                item.failures += 1
                item.due = now + backoff(item.failures, *self._backoff)
                item.message = message
            else:
                item.message = message
        run.items_due = min((i.due for i in run.items.values()), default=0.0)

    # -- events ----------------------------------------------------------------------------------------------
    def _track(self, run: _TaskRun, event: Event) -> None:
        with self._cond:
            if isinstance(event, TransferProgress):
                if event.total and event.done >= event.total:
                    run.transfers.pop(event.path, None)
                else:
                    run.transfers[event.path] = {
                        "path": event.path,
                        "direction": event.direction,
                        "done": event.done,
                        "total": event.total,
                    }
            elif isinstance(event, LogRecord):
                run.transfers.pop(event.path, None)

    def _emit(self, event: Event) -> None:
        with self._cond:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not stop the engine or the other subscribers
                pass

    def _info(self, task: str | None, message: str, kind: str = "info") -> None:
        self._emit(LogRecord(self._clock(), task or "", kind, "", message))

    # -- status ----------------------------------------------------------------------------------------------
    def _conn_status(self, c: _ConnRun, now: float) -> dict[str, Any]:
        when = datetime.fromtimestamp(now)
        if c.error:
            state = "error"
        elif c.paused:
            state = "paused"
        elif not sched.allowed(c.conn.schedule, when):
            state = "waiting-schedule"
        else:
            state = "ok" if c.ready else "connecting"
        nxt = sched.next_allowed(c.conn.schedule, when)
        return {
            "state": state,
            "error": c.error,
            "provider": c.conn.provider,
            "polling_period": c.conn.polling_period,
            "upload_limit": c.conn.upload_limit,
            "download_limit": c.conn.download_limit,
            "schedule": sched.describe(c.conn.schedule),
            "next_allowed": nxt.isoformat(timespec="seconds") if nxt and state == "waiting-schedule" else None,
            "next_poll_in": max(0.0, round(c.timer.next_due - now, 1)),
            "retry_in": max(0.0, round(c.retry_at - now, 1)) if c.error else None,
            "change_feed": c.feed is not None,
        }

    def _task_status(self, r: _TaskRun, now: float) -> dict[str, Any]:
        conn = self._conns.get(r.task.connection)
        if r.thread is not None:
            state = "syncing"
        elif r.is_paused or (conn is not None and conn.paused):
            state = "paused"
        elif conn is not None and not sched.allowed(conn.conn.schedule, datetime.fromtimestamp(now)):
            state = "waiting-schedule"
        elif r.state == "error" or (conn is not None and conn.error):
            state = "error"
        else:
            state = "idle"
        error = r.error if r.state == "error" or r.error else None
        if conn is not None and conn.error and state == "error" and not error:
            error = f"connection '{conn.name}': {conn.error}"
        if r.retry_at > now:
            retry_in: float | None = max(0.0, round(r.retry_at - now, 1))
        elif r.items:
            retry_in = max(0.0, round(r.items_due - now, 1))  # the next retry pass, for the earliest item
        else:
            retry_in = None
        failing = sorted(r.items.items(), key=lambda kv: (kv[1].due, kv[0]))[:MAX_FAILING_SHOWN]
        refusal = r.refusal
        return {
            "state": state,
            "connection": r.task.connection,
            "error": error,
            "pending": r.dirty,
            "retry_in": retry_in,
            "passes": r.passes,
            "last_pass": r.last_pass,
            "transfers": list(r.transfers.values()),
            # Items retried on their own schedule (the first MAX_FAILING_SHOWN, earliest due first).
            "failing": [
                {
                    "path": path or None,
                    "failures": item.failures,
                    "retry_in": max(0.0, round(item.due - now, 1)),
                    "error": item.message,
                }
                for path, item in failing
            ],
            "failing_count": len(r.items),
            # A safety guard (kind "guard") or the service (kind "connection") stopping every pass of the task:
            # what it says, since when, how often it was checked since (silently, while the words stay).
            "refused": None
            if refusal is None
            else {
                "message": refusal["message"],
                "kind": refusal["kind"],
                "since": refusal["since"],
                "checks": refusal["checks"],
                "last_check": refusal["last_check"],
            },
            # How local changes are seen: "events" (inotify), or "rescan" while watches are short.
            "watch": None
            if r.watcher is None
            else ({"mode": "events"} if r.watch_limit is None else {"mode": "rescan", **r.watch_limit}),
        }

    # -- lookups ---------------------------------------------------------------------------------------------
    def _task_run(self, name: str) -> _TaskRun:
        run = self._tasks.get(name)
        if run is None:
            raise UsageError(f"no task named '{name}'")
        return run

    def _conn_run(self, name: str) -> _ConnRun:
        run = self._conns.get(name)
        if run is None:
            raise UsageError(f"no connection named '{name}'")
        return run

    def _tasks_of(self, connection: str) -> list[_TaskRun]:
        with self._cond:
            return [r for r in self._tasks.values() if r.task.connection == connection]
