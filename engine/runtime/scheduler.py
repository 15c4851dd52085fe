"""The scheduler: one thread that decides when each task's pass runs.

Triggers for a task's pass: engine start, a local change (the watcher), its connection's poll timer (or its
change feed saying yes), its connection's long poll (engine.runtime.poll.LongPoll), sync_now, reload, a failing
item falling due. A trigger that arrives while a pass runs marks the task dirty, so the next pass picks up
changes made during the current one. The loop wakes on every notify of core.cond and at least every TICK to look
at the clock; every CONFIG_CHECK_EVERY seconds it checks that the home's engine lock is still the file it locked
(engine.runtime.lock: else the engine stops), looks at config.toml's and secrets.toml's mtimes (a CLI edit
reloads the engine) and at the token files of connections waiting for a sign-in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime

from engine.errors import UsageError
from engine.runtime import schedule as sched
from engine.runtime.connections import Connections
from engine.runtime.passes import Passes
from engine.runtime.poll import poll_once
from engine.runtime.runs import TICK, ConnRun, Core, TaskRun

CONFIG_CHECK_EVERY = 2.0  # seconds between looks at config.toml's mtime (auto reload after CLI edits)
CONFIG_FILES = ("config.toml", "secrets.toml")


def config_mtimes(home_path: str) -> tuple[float, ...]:
    stamps = []
    for name in CONFIG_FILES:
        try:
            stamps.append(os.stat(os.path.join(home_path, name)).st_mtime)
        except OSError:
            stamps.append(0.0)
    return tuple(stamps)


class Scheduler:
    def __init__(self, core: Core, connections: Connections, passes: Passes, reload: Callable[[], None],
                 home_kept: Callable[[], bool] = lambda: True, home_lost: Callable[[], None] = lambda: None) -> None:
        self._core = core
        self._connections = connections
        self._passes = passes
        self._reload = reload
        self._home_kept = home_kept
        self._home_lost = home_lost
        self.config_stamp: tuple[float, ...] = ()

    def loop(self) -> None:
        core = self._core
        last_config_check = time.monotonic()
        while True:
            with core.cond:
                if core.stopping:
                    return
                try:
                    self.tick(core.clock())
                except Exception as exc:  # keep scheduling whatever one tick hit; say what happened
                    core.info(None, f"scheduler error: {type(exc).__name__}: {exc}", kind="error")
                core.cond.wait(TICK)
            if time.monotonic() - last_config_check >= CONFIG_CHECK_EVERY:
                last_config_check = time.monotonic()
                if not core.stopping and not self._home_kept():  # a stopping engine lets its lock go itself
                    self._home_lost()
                    return
                if config_mtimes(core.home_path) != self.config_stamp:
                    try:
                        self._reload()  # `skysync task add` or a TUI edit while we run
                    except UsageError as exc:
                        self.config_stamp = config_mtimes(core.home_path)
                        core.info(None, f"configuration not reloaded: {exc}", kind="error")
                self._connections.watch_tokens()

    def tick(self, now: float) -> None:
        core = self._core
        when = datetime.fromtimestamp(now)
        for conn in core.conns.values():
            is_allowed = sched.allowed(conn.conn.schedule, when)
            if is_allowed != conn.was_allowed:
                conn.was_allowed = is_allowed
                self._schedule_changed(conn, is_allowed, when)
            if not is_allowed:
                for run in core.tasks_of(conn.name):
                    run.stop_pass("schedule")
                continue
            if conn.paused or conn.busy:
                continue
            if conn.cs.needs_check or not conn.cs.ready:
                if now >= conn.cs.retry_at:
                    self._connections.spawn_check(conn)
                continue
            if conn.timer.due(now):
                if conn.feed is None:
                    poll_once(None, conn.timer, now)
                    for run in core.tasks_of(conn.name):
                        run.mark("poll")
                else:
                    self._connections.spawn_check(conn, feed_only=True)
        self._connections.tend_waiters(when)  # long polls run for the connections that may use them, now
        for run in core.tasks.values():
            if run.st.items and run.thread is None and not run.dirty and now >= run.items_due:
                run.mark("retry-items")  # the earliest failing item is due again
        running = sum(1 for r in core.tasks.values() if r.thread is not None)
        for run in core.tasks.values():
            if running >= core.max_parallel:
                break
            if run.thread is None and run.dirty and self.can_start(run) and now >= run.st.retry_at:
                self._passes.start(run)
                running += 1

    def can_start(self, run: TaskRun) -> bool:
        core = self._core
        conn = core.conns.get(run.task.connection)
        if conn is None or core.stopping or run.is_paused:
            return False
        if conn.paused or not conn.cs.ready or conn.cs.error:
            return False
        return sched.allowed(conn.conn.schedule, datetime.fromtimestamp(core.clock()))

    def _schedule_changed(self, conn: ConnRun, is_allowed: bool, when: datetime) -> None:
        core = self._core
        if is_allowed:
            for run in core.tasks_of(conn.name):
                run.mark("schedule")  # the window opened: catch up on what waited
                core.info(run.name, "schedule window open: syncing resumes")
        else:
            nxt = sched.next_allowed(conn.conn.schedule, when)
            until = nxt.strftime("%a %H:%M") if nxt else "never (no hour is allowed)"
            for run in core.tasks_of(conn.name):
                core.info(run.name, f"outside the schedule: paused until {until}")
