"""The pass's log writer thread: a failed write (the state disk full) is told once, by the pass, never as a
thread's traceback, and no record is lost while the write can be retried."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from engine.config import Home
from engine.events import LogRecord
from engine.providers.local import LocalProvider
from engine.state import StateDB

from .conftest import write


class SlowProvider(LocalProvider):
    """Each upload takes a while: the pass outlasts a few of the log writer's half-second rounds."""

    def upload(self, path, src, size, mtime, *, expect=None):
        time.sleep(0.4)
        return super().upload(path, src, size, mtime, expect=expect)


def test_a_failed_log_write_in_the_writer_thread_is_no_traceback_and_loses_nothing(env, monkeypatch):
    failures = []
    real_log = StateDB.log

    def log(self, records, cap):
        if threading.current_thread().name == "skysync-log" and records:
            failures.append(len(records))
            raise sqlite3.OperationalError("database or disk is full")
        return real_log(self, records, cap)

    uncaught = []
    monkeypatch.setattr(StateDB, "log", log)
    monkeypatch.setattr(threading, "excepthook", uncaught.append)
    for i in range(4):
        write(env.local / f"f{i}.txt", str(i))
    result = env.sync(provider=SlowProvider({"root": str(env.cloud)}))
    assert failures, "the writer thread tried to write while the pass ran"
    assert uncaught == []
    assert result.exit_code == 0
    db = StateDB(Home(env.home.path).setting("database-path"))
    uploaded = sorted(r.path for r in db.read_log("t", 50) if r.kind == "uploaded")
    assert uploaded == [f"f{i}.txt" for i in range(4)]  # written by the pass's own last flush
    assert sorted(os.listdir(env.cloud)) == uploaded


def test_a_failed_log_write_leaves_no_transaction_open(tmp_path):
    db = StateDB(str(tmp_path / "state.db"))
    bad = LogRecord(time=[1], task="t", kind="info", path="a", message="")  # a value SQLite cannot bind
    try:
        db.log([bad], 100)
    except sqlite3.Error:
        pass
    db.log([LogRecord(1.0, "t", "info", "b", "")], 100)  # the shared connection takes the next write
    assert [r.path for r in db.read_log("t")] == ["b"]
