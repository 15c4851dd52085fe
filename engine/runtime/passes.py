"""One pass of a task, in its own thread: its events go to the engine's subscribers, and what it did goes
through `transitions.after_pass` into the task's run state.

What stops a pass: leaving the connection's schedule window, pausing the task or its connection, stop(). All of
them *cancel* it: it starts no new transfer and abandons running ones; every write goes through a temporary name
and a rename, so no partial file is left under a real name, and the rest is done by the next pass. (We chose this
over finishing the current file: a multi-gigabyte file could otherwise run for hours past the hour reserved.)

While a guard refuses, a pass's events are held until it does something else than refuse again, so the log says
a refusal once. An item that failed in a pass run early for other changes, the same way as before, is not logged
again: its own schedule stands.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.config import Home
from engine.events import Event, LogRecord, PassFinished, PassStarted, TransferProgress
from engine.runtime.connections import Connections
from engine.runtime.runs import Core, TaskRun
from engine.runtime.throttle import TokenBucket
from engine.runtime.transitions import AfterPass, PassOutcome, TaskRunState, after_pass, stop_word
from engine.runtime.watchers import SCOPED_REASONS

PassFn = Callable[..., Any]


def default_pass(*args: Any, **kwargs: Any) -> Any:
    from engine.sync import run_pass  # imported late: the CLI's fast paths never need it

    return run_pass(*args, **kwargs)


def refusal_echo(event: Event, text: str, first_line: str) -> bool:
    """An event that only repeats a known guard refusal: the pass starting, the refusal, the pass ending."""
    if isinstance(event, PassStarted):
        return True
    if isinstance(event, LogRecord):
        return event.kind == "error" and not event.path and event.message in (text, first_line)
    if isinstance(event, PassFinished):
        return not event.ok and event.error in (text, first_line)
    return False


REMOTE_REASONS = frozenset({"poll", "remote-change"})  # a change feed said yes (a poll, a long poll)


def pass_scope(reasons: set[str], changed: set[str], force: bool, feed: bool = False) -> list[str] | None:
    """The local paths an incremental pass looks at, or None for a full pass. Incremental only when its reasons
    are the watcher's named changes and, with `feed` (the connection's change feed names what changed remotely
    and the hourly full pass is not owed), the feed's polls; a start, a check, a retry, a reload, a cancelled
    pass or a rescan is a full pass. The pass adds the paths the feed names (sync.run_pass)."""
    allowed = SCOPED_REASONS | REMOTE_REASONS if feed else SCOPED_REASONS
    if force or not reasons or not reasons <= allowed or not (changed or reasons & REMOTE_REASONS):
        return None
    return sorted(changed)


def keep_unseen_items(before: TaskRunState, after: TaskRunState, looked_at: tuple[str, ...]) -> TaskRunState:
    """After an incremental pass: the failing items it did not look at keep their schedule (the pass says
    nothing about them); the ones it looked at are as it found them."""
    if after.items is before.items:
        return after

    def seen(path: str) -> bool:
        return any(path == root or path.startswith(root + "/") for root in looked_at)

    items = {**{p: i for p, i in before.items.items() if not seen(p)}, **after.items}
    if after.state != "idle" or items == after.items:
        return after
    return dataclasses.replace(after, items=items, error=f"{len(items)} item(s) failed" if items else None)


class Passes:
    def __init__(self, core: Core, connections: Connections, pass_fn: PassFn) -> None:
        self._core = core
        self._connections = connections
        self._pass_fn = pass_fn
        self._full_started: dict[str, float] = {}  # task -> when its last full pass started (engine clock)

    def start(self, run: TaskRun) -> None:
        """Start a pass of `run` (under core.cond)."""
        conn = self._core.conns[run.task.connection]
        run.dirty = False
        reasons, run.reasons = run.reasons, set()
        changed, run.changed = run.changed, set()
        force, run.force = run.force, False
        from engine.feeds import feed_capable  # imported late, as the pass itself: the CLI's fast paths

        feed = (conn.provider is not None and feed_capable(conn.provider)
                and conn.timer.full_asked <= self._full_started.get(run.name, -1.0))
        scope = pass_scope(reasons, changed, force, feed)
        if scope is None:
            self._full_started[run.name] = self._core.clock()
        run.cancel = threading.Event()
        run.cancel_reason = ""
        run.st = dataclasses.replace(run.st, state="syncing")
        run.transfers = {}
        run.thread = threading.Thread(
            target=self._thread,
            args=(run, run.cancel, force, (conn.up, conn.down), sorted(reasons), scope),
            name=f"pass:{run.name}",
            daemon=True,  # a pass stuck in an SDK call must not keep a stopping process alive
        )
        run.thread.start()

    def _thread(
        self,
        run: TaskRun,
        cancel: threading.Event,
        force: bool,
        buckets: tuple[TokenBucket, TokenBucket],
        reasons: list[str],
        scope: list[str] | None = None,
    ) -> None:
        core = self._core
        name = run.name
        seen: set[str] = set()
        failed: dict[str, str] = {}  # path -> message of the items this pass failed
        with core.cond:
            known = {path: (r.due, r.message) for path, r in run.st.items.items()}
            refusal = run.st.refusal.message if run.st.refusal else None
        held: list[Event] | None = [] if refusal is not None else None
        held_lock = threading.Lock()
        first_line = refusal.splitlines()[0] if refusal else ""

        def deliver(event: Event) -> None:
            self.track(run, event)
            core.emit(event)

        def on_event(event: Event) -> None:
            nonlocal held
            seen.add(type(event).__name__)
            if isinstance(event, LogRecord) and event.kind == "error" and event.path:
                failed[event.path] = event.message
                due, message = known.get(event.path, (0.0, None))
                if message == event.message and core.clock() < due:
                    # Tried early, in a pass for other changes, and failed the same way: its own schedule
                    # stands, and the log has this line already.
                    self.track(run, event)
                    return
            if isinstance(event, PassFinished) and event.stopped:
                event = dataclasses.replace(event, stopped=stop_word(run.cancel_reason))
            if held is not None:
                with held_lock:
                    if held is not None:
                        if refusal is not None and refusal_echo(event, refusal, first_line):
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
            extra = {} if scope is None else {"scope": scope}
            result = self._pass_fn(
                Home(core.home_path), name, force=force, on_event=on_event, cancel=cancel, buckets=buckets, **extra
            )
        except BaseException as exc:  # every outcome must reach the bookkeeping below
            error = exc
        outcome = PassOutcome(
            error=error,
            whole_error=(str(result.error) if result is not None and getattr(result, "error", None) else None),
            failed=failed,
            n_failed=int(getattr(result, "failed", 0) or 0),
            cancelled=cancel.is_set(),
            cancel_reason=run.cancel_reason,
            summary=dict(getattr(result, "summary", {}) or {}),
            exit_code=getattr(result, "exit_code", None),
            duration=time.monotonic() - started,
            reasons=tuple(reasons),
            result_returned=hasattr(result, "exit_code"),
        )
        looked_at = getattr(result, "looked_at", None) if getattr(result, "scoped", None) is not None else None
        after, signin_news = self._finish(run, outcome, looked_at)
        with held_lock:
            pending, held = held, None
        if not after.repeated:
            for e in pending or ():
                deliver(e)
            if "PassFinished" not in seen:
                deliver(PassFinished(run.name, dict(outcome.summary), after.ok, after.message, after.stopped))
        for note in after.notes:
            core.info(name, note)
        if signin_news is not None:
            for t in core.tasks_of(run.task.connection):
                core.info(t.name, signin_news, kind="error")

    def _finish(
        self, run: TaskRun, outcome: PassOutcome, looked_at: tuple[str, ...] | None = None
    ) -> tuple[AfterPass, str | None]:
        """Apply the pass's outcome; also returns the line to log when the connection's sign-in was just lost."""
        core = self._core
        signin_news: str | None = None
        with core.cond:
            after = after_pass(run.st, outcome, core.clock(), core.policy)
            if looked_at is not None:
                after = dataclasses.replace(after, run=keep_unseen_items(run.st, after.run, looked_at))
            run.st = after.run
            run.thread = None
            run.cancel = None
            run.transfers = {}
            run.passes += 1
            run.last_pass = after.last_pass
            for reason in after.marks:
                run.mark(reason)
            conn = core.conns.get(run.task.connection)
            if conn is not None and after.check_connection:
                # Was it the credentials? A connection check tells (and marks the connection if so).
                conn.cs = dataclasses.replace(conn.cs, needs_check=True, ready=conn.cs.ready and not after.auth_failed)
            lost = conn is not None and after.signin_needed is not None
            if lost and self._connections.lose_signin(conn, after.signin_needed):
                signin_news = f"connection '{conn.name}': {conn.cs.error}"
            core.cond.notify_all()
        return after, signin_news

    def track(self, run: TaskRun, event: Event) -> None:
        """Keep a task's running transfers for status."""
        with self._core.cond:
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
