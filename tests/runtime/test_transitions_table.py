"""The post-pass and post-check transitions as tables: (state before, what happened, now) -> state after."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.errors import ConnectionFailed, GuardError, LockedError, UsageError
from engine.providers.base import AuthError, ProviderError, ReauthRequired, TransientError
from engine.runtime.retry import Backoff, ItemRetry
from engine.runtime.transitions import (
    LOCKED_RETRY,
    NEVER,
    ConnState,
    PassOutcome,
    Refusal,
    TaskRunState,
    after_check,
    after_pass,
    signin_lost,
)

NOW = 1000.0
POLICY = Backoff(10.0, 80.0)
FRESH = TaskRunState()
FAILING = TaskRunState(state="error", error="boom", failures=2, retry_at=NOW - 1)
GUARDED = TaskRunState(
    state="error", error="x", failures=1, refusal=Refusal("local folder missing", "guard", 1.0, 3, 2.0)
)


def _wrapped(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


# before, outcome, (state, error, failures, retry_at), marks, check_connection, signin_needed
PASS_TABLE = [
    ("clean pass", FRESH, PassOutcome(result_returned=True, exit_code=0),
     ("idle", None, 0, 0.0), set(), False, None),
    ("clean pass clears a failing streak", FAILING, PassOutcome(result_returned=True, exit_code=0),
     ("idle", None, 0, 0.0), set(), False, None),
    ("items failed: the task is fine", FRESH, PassOutcome(failed={"a": "denied"}, n_failed=1),
     ("idle", "1 item(s) failed", 0, 0.0), set(), False, None),
    ("failed as a whole: first backoff", FRESH, PassOutcome(whole_error="listing failed"),
     ("error", "listing failed", 1, NOW + 10), {"retry"}, True, None),
    ("failed again: doubled", FAILING, PassOutcome(whole_error="listing failed"),
     ("error", "listing failed", 3, NOW + 40), {"retry"}, True, None),
    ("provider error raised", FRESH, PassOutcome(error=TransientError("503 slow down")),
     ("error", "503 slow down", 1, NOW + 10), {"retry"}, True, None),
    ("credentials refused", FRESH, PassOutcome(error=AuthError("bad key")),
     ("error", "bad key", 1, NOW + 10), {"retry"}, True, None),
    ("sign-in gone", FRESH, PassOutcome(error=ReauthRequired("refresh token revoked")),
     ("error", "refresh token revoked", 1, NOW + 10), {"retry"}, True, "refresh token revoked"),
    ("sign-in gone under a guard", FRESH,
     PassOutcome(error=_wrapped(GuardError("cannot list"), ReauthRequired("revoked"))),
     ("error", "cannot list", 1, NOW + 10), {"retry"}, True, "cannot list"),
    ("a bug is named", FRESH, PassOutcome(error=KeyError("x")),
     ("error", "KeyError: 'x'", 1, NOW + 10), {"retry"}, False, None),
    ("bad config", FRESH, PassOutcome(error=UsageError("no task named 't'")),
     ("error", "no task named 't'", 1, NOW + 10), {"retry"}, False, None),
    ("another process syncs it", FRESH, PassOutcome(error=LockedError("busy")),
     ("idle", None, 0, NOW + LOCKED_RETRY), {"locked"}, False, None),
    ("stopped on purpose", FAILING, PassOutcome(cancelled=True, cancel_reason="schedule"),
     ("idle", None, 2, NOW - 1), {"cancelled"}, False, None),
    ("stopped by a failure", FRESH, PassOutcome(cancelled=True, cancel_reason="stop", error=ProviderError("x")),
     ("error", "x", 1, NOW + 10), {"cancelled", "retry"}, True, None),
]


@pytest.mark.parametrize(("name", "before", "outcome", "after", "marks", "check", "signin"), PASS_TABLE,
                         ids=[row[0] for row in PASS_TABLE])
def test_after_pass(name, before, outcome, after, marks, check, signin):
    result = after_pass(before, outcome, NOW, POLICY)
    run = result.run
    assert (run.state, run.error, run.failures, run.retry_at) == after
    assert result.marks == marks
    assert result.check_connection is check
    assert result.signin_needed == signin


def test_a_refusal_is_news_once_and_counted_after():
    guard = PassOutcome(error=GuardError("local folder missing"))
    first = after_pass(FRESH, guard, NOW, POLICY)
    assert not first.repeated and first.run.refusal == Refusal("local folder missing", "guard", NOW, 1, NOW)
    again = after_pass(first.run, guard, NOW + 5, POLICY)
    assert again.repeated and again.run.refusal == Refusal("local folder missing", "guard", NOW, 2, NOW + 5)
    other = after_pass(again.run, PassOutcome(error=GuardError("local folder empty")), NOW + 9, POLICY)
    assert not other.repeated and other.run.refusal.message == "local folder empty"


def test_the_service_failing_first_is_a_connection_refusal():
    result = after_pass(FRESH, PassOutcome(error=ConnectionFailed("unreachable")), NOW, POLICY)
    assert result.run.refusal.kind == "connection"


def test_a_pass_that_runs_through_ends_the_refusal_and_says_so_for_a_guard():
    done = after_pass(GUARDED, PassOutcome(), NOW, POLICY)
    assert done.run.refusal is None and done.notes == ("the safety guard no longer refuses: syncing resumed",)
    conn = replace(GUARDED, refusal=Refusal("unreachable", "connection", 1.0, 1, 1.0))
    assert after_pass(conn, PassOutcome(), NOW, POLICY).notes == ()


ITEM = ItemRetry(failures=2, due=NOW + 50, message="denied")

# items before, what the pass failed, n_failed, items after
ITEM_TABLE = [
    ("new failure", {}, {"a": "denied"}, 1, {"a": ItemRetry(1, NOW + 10, "denied")}),
    ("due and failed again: doubled", {"a": replace(ITEM, due=NOW)}, {"a": "denied"}, 1,
     {"a": ItemRetry(3, NOW + 40, "denied")}),
    ("tried early, failed: schedule stands", {"a": ITEM}, {"a": "still denied"}, 1,
     {"a": ItemRetry(2, NOW + 50, "still denied")}),
    ("synced: forgotten", {"a": ITEM}, {}, 0, {}),
    ("unnamed failures", {}, {}, 2, {"": ItemRetry(1, NOW + 10, "2 item(s) failed")}),
]


@pytest.mark.parametrize(("name", "items", "failed", "n", "expected"), ITEM_TABLE, ids=[r[0] for r in ITEM_TABLE])
def test_items_after_a_pass(name, items, failed, n, expected):
    before = TaskRunState(items=items)
    assert dict(after_pass(before, PassOutcome(failed=failed, n_failed=n), NOW, POLICY).run.items) == expected


def test_last_pass_record():
    out = PassOutcome(cancelled=True, cancel_reason="pause", summary={"uploaded": 2}, duration=1.23456,
                      reasons=("poll",), result_returned=True, exit_code=0)
    result = after_pass(FRESH, out, NOW, POLICY)
    assert result.last_pass == {
        "finished": NOW, "duration": 1.235, "reasons": ["poll"], "summary": {"uploaded": 2}, "failed": 0,
        "exit_code": 0, "error": None, "cancelled": "pause", "stopped": "paused",
    }
    assert not result.ok and result.stopped == "paused"
    raised = after_pass(FRESH, PassOutcome(error=GuardError("g")), NOW, POLICY)
    assert raised.last_pass["exit_code"] == 2 and raised.last_pass["error"] == "g"


# -- connections ---------------------------------------------------------------------------------------------

DOWN = ConnState(ready=True, needs_check=True, error="boom", failures=2, retry_at=NOW - 1)

# before, error, feed_only, changed, (ready, error, signin, failures, retry_at), mark, cancel, lines
CHECK_TABLE = [
    ("first check", ConnState(), None, False, True, (True, None, False, 0, 0.0), "check", False, ()),
    ("feed says nothing changed", ConnState(ready=True, needs_check=False), None, True, False,
     (True, None, False, 0, 0.0), None, False, ()),
    ("recovered", DOWN, None, False, True, (True, None, False, 0, NOW - 1), "check", False,
     (("info", "connection 'c' works again"),)),
    ("unreachable: backoff doubles", DOWN, TransientError("timeout"), False, True,
     (True, "timeout", False, 3, NOW + 40), None, True, (("error", "connection 'c': timeout"),)),
    ("credentials refused", ConnState(), AuthError("bad key"), False, True,
     (False, "credentials refused: bad key", False, 1, NOW + 10), None, True,
     (("error", "connection 'c': credentials refused: bad key"),)),
    ("sign-in gone: no retry", ConnState(), ReauthRequired("revoked"), False, True,
     (False, "sign-in needed (revoked); run `skysync connection login c`", True, 1, NEVER), None, True,
     (("error", "connection 'c': sign-in needed (revoked); run `skysync connection login c`"),)),
]


@pytest.mark.parametrize(("name", "before", "error", "feed_only", "changed", "after", "mark", "cancel", "lines"),
                         CHECK_TABLE, ids=[r[0] for r in CHECK_TABLE])
def test_after_check(name, before, error, feed_only, changed, after, mark, cancel, lines):
    result = after_check(before, "c", error, changed, feed_only, NOW, POLICY)
    c = result.conn
    assert (c.ready, c.error, c.signin_needed, c.failures, c.retry_at) == after
    assert result.mark == mark and result.cancel_tasks is cancel and result.lines == lines


def test_signin_lost_is_news_once():
    first, news = signin_lost(ConnState(ready=True, needs_check=False), "c", "revoked")
    assert news and first.signin_needed and not first.ready and first.retry_at == NEVER
    again, news = signin_lost(first, "c", "revoked")
    assert not news and again == first
