"""The one status model: its JSON form round-trips, and each state word is decided in one place."""

from __future__ import annotations

import pytest

from engine.runtime.status import (
    SIGNIN_NEEDED,
    EngineStatus,
    HomeReport,
    TaskReport,
    TaskStatus,
    connection_state,
    connection_state_on_demand,
    report_state,
    task_state,
)

ENGINE_JSON = {
    "engine": {"pid": 42, "home": "/h", "started": 1.5},
    "connections": {
        "c": {"state": "ok", "error": None, "provider": "local", "polling_period": 60, "upload_limit": 0,
              "download_limit": 0, "schedule": "always", "next_allowed": None, "next_poll_in": 12.5,
              "retry_in": None, "change_feed": False},
        "d": {"state": SIGNIN_NEEDED, "error": "sign-in needed (x); run `skysync connection login d`",
              "provider": "gdrive", "polling_period": 60, "upload_limit": 5, "download_limit": 0,
              "schedule": "weekdays", "next_allowed": None, "next_poll_in": 0.0, "retry_in": None,
              "change_feed": True},
    },
    "tasks": {
        "t": {"state": "idle", "connection": "c", "error": "1 item(s) failed", "pending": False, "retry_in": 4.0,
              "passes": 3, "last_pass": {"finished": 9.0, "summary": {"uploaded": 1}, "stopped": None},
              "transfers": [{"path": "a", "direction": "up", "done": 1, "total": 9}],
              "failing": [{"path": "b", "failures": 2, "retry_in": 4.0, "error": "denied"},
                          {"path": None, "failures": 1, "retry_in": 9.0, "error": "1 item(s) failed"}],
              "failing_count": 2,
              "refused": {"message": "m", "kind": "guard", "since": 1.0, "checks": 2, "last_check": 3.0},
              "watch": {"mode": "rescan", "since": 2.0, "limit": 8192, "rescan_every": 30.0}},
        "u": {"state": "paused", "connection": "d", "error": None, "pending": True, "retry_in": None, "passes": 0,
              "last_pass": None, "transfers": [], "failing": [], "failing_count": 0, "refused": None,
              "watch": {"mode": "events"}},
    },
}


def test_engine_json_round_trips_exactly():
    model = EngineStatus.from_json({"ok": True, **ENGINE_JSON})
    assert model.to_json() == ENGINE_JSON
    assert model.signin_needed() == ["d"]
    assert model.tasks["t"].failing[1].path is None and model.tasks["t"].watch.limit == 8192


@pytest.mark.parametrize(("kw", "state"), [
    ({"error": True, "signin_needed": True, "paused": True, "allowed": False, "ready": False}, SIGNIN_NEEDED),
    ({"error": True, "signin_needed": False, "paused": True, "allowed": False, "ready": True}, "error"),
    ({"error": False, "signin_needed": False, "paused": True, "allowed": False, "ready": True}, "paused"),
    ({"error": False, "signin_needed": False, "paused": False, "allowed": False, "ready": True}, "waiting-schedule"),
    ({"error": False, "signin_needed": False, "paused": False, "allowed": True, "ready": False}, "connecting"),
    ({"error": False, "signin_needed": False, "paused": False, "allowed": True, "ready": True}, "ok"),
])
def test_connection_state(kw, state):
    assert connection_state(**kw) == state


@pytest.mark.parametrize(("kw", "state"), [
    ({"syncing": True, "paused": True, "allowed": False, "failed": True}, "syncing"),
    ({"syncing": False, "paused": True, "allowed": False, "failed": True}, "paused"),
    ({"syncing": False, "paused": False, "allowed": False, "failed": True}, "waiting-schedule"),
    ({"syncing": False, "paused": False, "allowed": True, "failed": True}, "error"),
    ({"syncing": False, "paused": False, "allowed": True, "failed": False}, "idle"),
])
def test_task_state(kw, state):
    assert task_state(**kw) == state


@pytest.mark.parametrize(("states", "shown"), [
    ([], "no tasks"), (["idle", "error"], "error"), (["syncing", "idle"], "syncing"),
    (["paused", "paused"], "paused"), (["paused", "idle"], "up to date"),
])
def test_connection_on_demand(states, shown):
    assert connection_state_on_demand(states) == shown


DONE = {"started": 1.0, "finished": 2.0, "ok": True}
# paused, last pass in the database, live state, task lock held -> (state, error, failed)
REPORT_TABLE = [
    (False, DONE, TaskStatus("syncing"), False, ("syncing", None, None)),
    (False, DONE, None, True, ("syncing", None, None)),
    (True, DONE, None, False, ("paused", None, None)),
    (False, DONE, TaskStatus("paused"), False, ("paused", None, None)),
    (False, DONE, TaskStatus("error", error="connection 'c': sign-in needed"), False,
     ("error", "connection 'c': sign-in needed", None)),
    (False, None, None, False, ("never", None, None)),
    (False, {"started": 5.0, "finished": 2.0}, None, False, ("interrupted", None, None)),
    (False, {**DONE, "error": "guard"}, None, False, ("error", "guard", None)),
    (False, {**DONE, "ok": False, "summary": {"failed": 3}}, None, False, ("failed", None, 3)),
    (False, DONE, TaskStatus("idle"), False, ("ok", None, None)),
]


@pytest.mark.parametrize(("paused", "last", "live", "locked", "expected"), REPORT_TABLE)
def test_report_state(paused, last, live, locked, expected):
    assert report_state(paused, last, live, locked) == expected


def test_status_json_shape_is_kept():
    """`skysync status --json` is a contract: optional keys appear only when they say something."""
    live = EngineStatus.from_json(ENGINE_JSON)
    plain = TaskReport("c", "upload", False, 3, 1, DONE, 0, "ok")
    failed = TaskReport("c", "upload", False, 3, 1, DONE, 2, "failed", failed=1, live=live.tasks["t"])
    data = HomeReport(live, {"p": plain, "f": failed}).to_json()
    assert data["engine_running"] is True
    assert data["tasks"]["p"] == {"connection": "c", "direction": "upload", "paused": False, "tracked_files": 3,
                                  "tracked_folders": 1, "last_pass": DONE, "held_deletions": 0, "state": "ok"}
    assert data["tasks"]["f"]["failed"] == 1 and data["tasks"]["f"]["live"] == ENGINE_JSON["tasks"]["t"]
    assert HomeReport(None, {}).to_json() == {"engine_running": False, "tasks": {}}
