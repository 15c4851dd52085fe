"""What a task's and a connection's run state becomes after a pass or a connection check: pure functions.

The engine's threads hand in what happened (an outcome) and the clock; these functions say what the state
becomes and what to log, and the engine applies it under its lock. Table-tested in tests/runtime.

Errors: a pass that fails as a whole (the service unreachable, a guard: guards re-check safely each time, so
an unmounted disk that comes back resumes by itself) puts the task in "error" and retries with backoff. A
refusal (a guard, or the service failing before the pass could start) is logged once, and again only when its
words change. A connection whose credentials are refused (AuthError) is in "error" and retried with backoff;
one whose sign-in is gone (ReauthRequired: the refresh token was revoked or expired) is "sign-in needed" and
is not retried at all until its config, secrets or token file change (`skysync connection login`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConnectionFailed, GuardError, LockedError, UsageError
from engine.providers.base import AuthError, ProviderError, ReauthRequired
from engine.runtime.retry import Backoff, ItemRetry, item_outcome

LOCKED_RETRY = 5.0  # `skysync sync` holds the task: look again this soon

STOP_WORDS = {
    "stop": "engine-stop",  # SIGINT/SIGTERM to `skysync run`, or the TUI closing
    "schedule": "schedule",
    "pause": "paused",
    "connection error": "connection-error",
    "removed": "task-removed",
}


def stop_word(reason: str) -> str:
    """The word a log line and status give for why a pass was stopped before its end."""
    return STOP_WORDS.get(reason, reason.replace(" ", "-") or "stopped")


@dataclass(frozen=True)
class Refusal:
    """A refusal that stopped every pass of a task before it began: a safety guard (kind "guard") or the
    service failing first (kind "connection"); how often it was checked since, silently."""

    message: str
    kind: str
    since: float
    checks: int
    last_check: float


@dataclass(frozen=True)
class TaskRunState:
    """The part of a task's run state that passes change (the rest is threads and triggers)."""

    state: str = "idle"  # idle | syncing | error
    error: str | None = None
    failures: int = 0  # passes failed as a whole, in a row
    retry_at: float = 0.0
    items: Mapping[str, ItemRetry] = field(default_factory=dict)
    refusal: Refusal | None = None


@dataclass(frozen=True)
class PassOutcome:
    """What one pass did, as the pass thread saw it."""

    error: BaseException | None = None  # raised by the pass
    whole_error: str | None = None  # the pass returned, but failed as a whole (its result's `error`)
    failed: Mapping[str, str] = field(default_factory=dict)  # path -> message of the items it failed
    n_failed: int = 0  # items failed, named or not
    cancelled: bool = False
    cancel_reason: str = ""
    summary: Mapping[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    duration: float = 0.0
    reasons: tuple[str, ...] = ()
    result_returned: bool = False  # the pass returned a result (False: it raised, or returned nothing)


@dataclass(frozen=True)
class AfterPass:
    run: TaskRunState
    last_pass: dict[str, Any]
    message: str | None  # the pass's error, one line
    marks: frozenset[str]  # the task is due again, for these reasons
    repeated: bool  # the pass only repeated the refusal already known: log nothing new
    notes: tuple[str, ...]  # info lines to log
    check_connection: bool  # was it the credentials? the connection is checked again
    auth_failed: bool  # the credentials were refused: the connection is not ready until checked
    signin_needed: str | None  # the sign-in is gone (ReauthRequired): the connection waits for a login
    ok: bool  # for the closing PassFinished when the pass did not emit one
    stopped: str | None


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _caused(error: BaseException, kind: type[BaseException]) -> bool:
    """The pass may wrap a provider failure (a listing) in a GuardError; look at the cause too."""
    cause = error.__cause__ or error.__context__
    return isinstance(error, kind) or isinstance(cause, kind)


def _failed(run: TaskRunState, message: str, now: float, policy: Backoff) -> TaskRunState:
    """The pass failed as a whole: the task backs off."""
    failures = run.failures + 1
    return dataclasses.replace(run, failures=failures, retry_at=now + policy.after(failures), error=message,
                               state="error")


def _refused(known: Refusal | None, text: str, kind: str, now: float) -> tuple[bool, Refusal]:
    """Record a refusal; True when it is the one already known, word for word (nothing new to log)."""
    if known is not None and known.message == text:
        return True, dataclasses.replace(known, checks=known.checks + 1, last_check=now)
    return False, Refusal(text, kind, now, 1, now)


def after_pass(run: TaskRunState, outcome: PassOutcome, now: float, policy: Backoff) -> AfterPass:
    """The task's run state after one pass, and what to log."""
    error = outcome.error
    marks: set[str] = set()
    notes: list[str] = []
    message: str | None = None
    repeated = auth_failed = provider_failed = False
    signin: str | None = None
    if outcome.cancelled:
        marks.add("cancelled")  # the rest of the work waits for the next pass
    if error is not None:
        message = _first_line(error)
        if isinstance(error, LockedError):
            # `skysync sync` runs this task right now: not an error, try again shortly.
            marks.add("locked")
            run = dataclasses.replace(run, retry_at=now + LOCKED_RETRY, state="idle")
        else:
            auth_failed = _caused(error, AuthError)
            if _caused(error, ReauthRequired):
                signin = message
            if not isinstance(error, ProviderError | GuardError | UsageError):
                message = f"{type(error).__name__}: {message}"
            # Guards and config errors retry too: the guard re-checks safely every time, and a missing disk or
            # a fixed config then resumes without the user having to ask.
            run = _failed(run, message, now, policy)
            marks.add("retry")
            provider_failed = _caused(error, ProviderError)
            if isinstance(error, GuardError):
                kind = "connection" if isinstance(error, ConnectionFailed) else "guard"
                repeated, refusal = _refused(run.refusal, str(error) or message, kind, now)
                run = dataclasses.replace(run, refusal=refusal)
    elif outcome.cancelled:
        # Stopped on purpose (schedule, pause, stop): items abandoned mid-way are not failures.
        run = dataclasses.replace(run, state="idle", error=None)
    elif outcome.whole_error:
        message = outcome.whole_error
        run = _failed(run, message, now, policy)
        marks.add("retry")
    else:
        # The pass ran to its end: the task is fine, whatever single items did.
        n = outcome.n_failed
        run = dataclasses.replace(
            run,
            state="idle",
            failures=0,
            retry_at=0.0,
            items=item_outcome(run.items, outcome.failed, n, now, policy),
            error=f"{n} item(s) failed" if n else None,
        )
        if run.refusal is not None:
            if run.refusal.kind == "guard":  # (a connection that works again says so itself)
                notes.append("the safety guard no longer refuses: syncing resumed")
            run = dataclasses.replace(run, refusal=None)
    stopped = stop_word(outcome.cancel_reason) if outcome.cancelled and error is None else None
    exit_code = outcome.exit_code if outcome.result_returned else (
        None if error is None else getattr(error, "exit_code", 1))
    last_pass = {
        "finished": now,
        "duration": round(outcome.duration, 3),
        "reasons": list(outcome.reasons),
        "summary": dict(outcome.summary),
        "failed": outcome.n_failed,
        "exit_code": exit_code,
        "error": message,
        "cancelled": outcome.cancel_reason if outcome.cancelled else None,
        "stopped": stopped,
    }
    return AfterPass(
        run=run,
        last_pass=last_pass,
        message=message,
        marks=frozenset(marks),
        repeated=repeated,
        notes=tuple(notes),
        check_connection=auth_failed or (error is not None and provider_failed) or bool(outcome.whole_error),
        auth_failed=auth_failed,
        signin_needed=signin,
        ok=error is None and not stopped and not outcome.whole_error and not outcome.n_failed,
        stopped=stopped,
    )


# -- connections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnState:
    """What checks change of a connection's run state."""

    ready: bool = False  # the first check (credentials, change-feed cursor) has succeeded
    needs_check: bool = True
    error: str | None = None
    signin_needed: bool = False  # the sign-in is gone: no check, no pass, until a login or a config change
    failures: int = 0
    retry_at: float = 0.0


NEVER = float("inf")


def signin_message(connection: str, reason: str) -> str:
    return f"sign-in needed ({reason}); run `skysync connection login {connection}`"


@dataclass(frozen=True)
class AfterCheck:
    conn: ConnState
    mark: str | None  # the connection's tasks are due, for this reason
    cancel_tasks: bool  # the connection failed: its running passes stop
    lines: tuple[tuple[str, str], ...]  # (kind, message) to log for each of its tasks


def after_check(
    conn: ConnState, name: str, error: BaseException | None, changed: bool, feed_only: bool, now: float,
    policy: Backoff,
) -> AfterCheck:
    """A connection's state after a check (credentials, change-feed cursor) or a change-feed poll."""
    if error is None:
        lines = (("info", f"connection '{name}' works again"),) if conn.error is not None else ()
        after = ConnState(ready=True, needs_check=False, error=None, signin_needed=False, failures=0,
                          retry_at=conn.retry_at)
        return AfterCheck(after, ("poll" if feed_only else "check") if changed else None, False, lines)
    failures = conn.failures + 1
    text = str(error) or type(error).__name__
    if isinstance(error, ReauthRequired):
        # Retrying cannot help (the service refused the refresh token): wait for a login, log it once.
        after = dataclasses.replace(conn, failures=failures, needs_check=True, error=signin_message(name, text),
                                    signin_needed=True, retry_at=NEVER)
        return AfterCheck(after, None, True, (("error", f"connection '{name}': {after.error}"),))
    if isinstance(error, AuthError):
        text = f"credentials refused: {text}"
    after = dataclasses.replace(conn, failures=failures, needs_check=True, error=text,
                                retry_at=now + policy.after(failures))
    return AfterCheck(after, None, True, (("error", f"connection '{name}': {text}"),))


def signin_lost(conn: ConnState, name: str, reason: str) -> tuple[ConnState, bool]:
    """A pass found the sign-in gone: the connection waits for a login. True when that is news (log it)."""
    news = not conn.signin_needed
    return dataclasses.replace(conn, ready=False, needs_check=True, error=signin_message(name, reason),
                               signin_needed=True, retry_at=NEVER), news
