"""Each task's local watcher (engine.runtime.watch), and what the engine does when inotify watches run out:
log it once, show it in status, and keep the home's marker that `skysync doctor` reads up to date."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import Any

from engine.config import Home
from engine.errors import SkysyncError
from engine.runtime.control import inotify_marker_path, private_dir
from engine.runtime.runs import Core, TaskRun

# Watcher reasons that name the paths that changed: a pass for them alone can be incremental (passes.py).
SCOPED_REASONS = frozenset({"local", "new-folder"})
FULL_LOCAL = "local-all"  # a local change without names


class Watchers:
    def __init__(self, core: Core, rescan_interval: float | None) -> None:
        self._core = core
        self._rescan_interval = rescan_interval
        self._marker_lock = threading.Lock()
        self._limit_logged: set[str] = set()  # tasks whose inotify exhaustion was logged (once per run)

    def forget_marker(self) -> None:
        """The last run's marker goes at start: our watchers report afresh."""
        with contextlib.suppress(OSError):
            os.unlink(inotify_marker_path(self._core.home_path))

    def make(self, run: TaskRun) -> Any:
        from engine.runtime.watch import RESCAN_INTERVAL, LocalWatcher

        core = self._core
        name = run.name

        def on_change(reason: str, paths: list[str]) -> None:
            with core.cond:
                current = core.tasks.get(name)
                if current is not None:
                    if reason in SCOPED_REASONS and paths and all(paths):
                        current.changed.update(paths)
                    else:  # no names (the folder came back, a rescan found something): look at everything
                        reason = FULL_LOCAL if reason in SCOPED_REASONS else reason
                    current.mark(reason)
                    core.cond.notify_all()

        def on_error(message: str) -> None:
            core.info(name, message, kind="error")

        def on_limit(exhausted: bool, limit: int | None, rescan_every: float) -> None:
            self._limit(name, exhausted, limit, rescan_every)

        watcher = LocalWatcher(
            run.task.local,
            on_change,
            on_error=on_error,
            on_limit=on_limit,
            rescan_interval=self._rescan_interval or self._rescan_setting(RESCAN_INTERVAL),
        )
        watcher.start()
        return watcher

    def _rescan_setting(self, default: float) -> float:
        """The `rescan-period` setting, read when a watcher starts (a changed setting reaches the next one)."""
        try:
            return float(Home(self._core.home_path).setting("rescan-period"))
        except SkysyncError:  # an unreadable config is reported by the pass; the watcher keeps the default
            return default

    def _limit(self, name: str, exhausted: bool, limit: int | None, rescan_every: float) -> None:
        """A task's watcher ran out of inotify watches (or has them all again)."""
        from engine.runtime.watch import limit_advice

        core = self._core
        with core.cond:
            run = core.tasks.get(name)
            if run is None:
                return
            if exhausted:
                since = run.watch_limit["since"] if run.watch_limit else core.clock()
                run.watch_limit = {"since": since, "limit": limit, "rescan_every": rescan_every}
            else:
                run.watch_limit = None
            first = exhausted and name not in self._limit_logged
            if first:
                self._limit_logged.add(name)
            local = run.task.local
        self._write_marker()
        if first:
            shown_limit = f"{limit:,}" if limit is not None else "unknown"
            core.info(
                name,
                f"inotify watch limit reached (fs.inotify.max_user_watches = {shown_limit}): changes in folders "
                f"of {local} without a watch are found by a full rescan every {rescan_every:g} s instead of at "
                f"once; {limit_advice(limit)}",
                kind="error",
            )
        elif not exhausted and name in self._limit_logged:
            core.info(name, "inotify watches are available again: every folder is watched, changes are seen at once")

    def _write_marker(self) -> None:
        """<home>/.run/inotify-exhausted: which tasks lack watches, for `skysync doctor` (gone when none)."""
        core = self._core
        with self._marker_lock:
            with core.cond:
                short = [r for r in core.tasks.values() if r.watch_limit]
                tasks = {r.name: {"since": r.watch_limit["since"], "folder": r.task.local} for r in short}
                limits = [r.watch_limit["limit"] for r in short]
                every = max([r.watch_limit["rescan_every"] for r in short] or [0])
            path = inotify_marker_path(core.home_path)
            try:
                if not tasks:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    return
                private_dir(os.path.dirname(path))
                data = {"pid": os.getpid(), "limit": limits[0], "rescan_every": every, "tasks": tasks}
                tmp = f"{path}.tmp-{os.getpid()}"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(data, f)
                os.replace(tmp, path)
            except OSError as exc:  # a read-only home must not stop the watcher; the log line still says it
                core.info(None, f"cannot record the inotify shortage for `skysync doctor`: {exc}", kind="error")
