"""The running engine's incremental passes: a saved file is synced by a pass that looks at it alone; the start,
a poll and a change without names are full passes; a deletion the watcher names runs as a full pass."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from engine.config import Connection, Home, Task
from engine.runtime import Engine
from engine.runtime.passes import pass_scope
from engine.sync import PassResult, run_pass


class Recorder:
    """The real pass, with each call's scope and result kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str] | None, PassResult]] = []
        self.cond = threading.Condition()

    def __call__(self, *args: Any, **kwargs: Any) -> PassResult:
        result = run_pass(*args, hostname="h", **kwargs)
        with self.cond:
            self.calls.append((kwargs.get("scope"), result))
            self.cond.notify_all()
        return result

    def wait_for(self, predicate, timeout: float = 20.0) -> tuple[list[str] | None, PassResult]:
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(*c) for c in self.calls), timeout), self.calls
            return next(c for c in self.calls if predicate(*c))


@pytest.fixture
def engine_on(tmp_path):
    started: list[Engine] = []

    def start(direction: str = "bidirectional") -> tuple[Engine, Recorder, str, str]:
        local, cloud = str(tmp_path / "local"), str(tmp_path / "cloud")
        os.makedirs(os.path.join(local, "docs", "deep"))
        os.makedirs(cloud)
        for i in range(30):
            with open(os.path.join(local, "docs", "deep", f"f{i}.txt"), "w") as f:
                f.write(f"file {i}")
        home = Home(str(tmp_path / "home"))
        home.put_connection(Connection("c", "local", {"root": cloud}, polling_period=3600), {})
        home.put_task(Task("t", "c", local, "/", direction=direction))
        home.save()
        recorder = Recorder()
        engine = Engine(home.path, pass_fn=recorder, control=False)
        engine.start()
        started.append(engine)
        recorder.wait_for(lambda scope, result: True)
        assert engine.wait_idle(30)
        watcher = engine._core.tasks["t"].watcher
        assert watcher is not None and watcher.ready.wait(10)
        return engine, recorder, local, cloud

    yield start
    for e in started:
        e.stop(5)


def test_a_saved_file_is_synced_by_a_pass_that_looks_at_it_alone(engine_on):
    engine, recorder, local, cloud = engine_on()
    first_scope, first = recorder.calls[0]
    assert first_scope is None and first.scoped is None  # the start is a full pass
    with open(os.path.join(local, "docs", "deep", "f3.txt"), "w") as f:
        f.write("saved again")
    scope, result = recorder.wait_for(lambda s, r: s is not None)
    assert "docs/deep/f3.txt" in scope and result.scoped and result.summary.get("uploaded") == 1
    assert engine.wait_idle(10)
    with open(os.path.join(cloud, "docs", "deep", "f3.txt")) as f:
        assert f.read() == "saved again"


def test_a_deletion_named_by_the_watcher_runs_a_full_pass(engine_on):
    engine, recorder, local, cloud = engine_on()
    os.unlink(os.path.join(local, "docs", "deep", "f4.txt"))
    _, result = recorder.wait_for(lambda s, r: s is not None)
    assert result.scoped is None and result.full_because
    assert engine.wait_idle(10)
    assert not os.path.exists(os.path.join(cloud, "docs", "deep", "f4.txt"))


def test_only_named_changes_make_a_scoped_pass():
    assert pass_scope({"local"}, {"b", "a"}, False) == ["a", "b"]
    assert pass_scope({"local", "new-folder"}, {"a"}, False) == ["a"]
    for reasons in ({"start"}, {"local", "poll"}, {"local", "retry"}, {"local-all"}, {"rescan"}, set()):
        assert pass_scope(reasons, {"a"}, False) is None
    assert pass_scope({"local"}, set(), False) is None
    assert pass_scope({"local"}, {"a"}, True) is None
    # A change feed's poll or long poll: the pass adds what the feed names; without a feed (or when the hourly
    # full pass is owed) a poll is a full pass.
    assert pass_scope({"poll"}, set(), False, feed=True) == []
    assert pass_scope({"remote-change", "local"}, {"a"}, False, feed=True) == ["a"]
    assert pass_scope({"poll"}, set(), False, feed=False) is None
    assert pass_scope({"poll", "check"}, set(), False, feed=True) is None
