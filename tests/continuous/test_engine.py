"""The Engine's scheduling decisions, driven by a fake pass and a fake clock (no real transfers here)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from engine.config import Home
from engine.errors import GuardError, LockedError
from engine.events import LogRecord, PassFinished
from engine.providers.base import AuthError, Capabilities, Change, HashKind, MtimeMode, TransientError
from engine.providers.local import LocalProvider
from engine.runtime import Engine
from engine.runtime import schedule as sched
from engine.runtime.retry import backoff

from .conftest import FakeClock, FakePass, make_home, wait_for

MON_0830 = datetime(2026, 11, 23, 8, 30)  # a Monday


def window(*hours: int) -> str:
    cells = ["0"] * 168
    for h in hours:
        cells[h] = "1"
    return "".join(cells)


@pytest.fixture
def engines():
    started: list[Engine] = []
    yield started
    for e in started:
        e.stop(3)


def start(engines, path, clock=None, fake=None, **kw) -> Engine:
    kw.setdefault("watch", False)
    kw.setdefault("control", False)
    e = Engine(path, clock=clock, pass_fn=fake, **kw)
    e.start()
    engines.append(e)
    return e


def test_backoff_doubles_up_to_the_cap():
    assert [backoff(n, 5, 60) for n in (1, 2, 3, 4, 5, 9)] == [5, 10, 20, 40, 60, 60]


def test_one_pass_per_task_at_start_and_buckets_are_per_connection(tmp_path, engines):
    setup = make_home(str(tmp_path), tasks={"a": "c", "b": "c", "x": "d"})
    fake = FakePass()
    e = start(engines, setup.path, fake=fake)
    assert fake.wait_count(3)
    assert e.wait_idle(10)
    assert sorted(c.task for c in fake.calls) == ["a", "b", "x"]
    by_task = {c.task: c.buckets for c in fake.calls}
    assert by_task["a"][0] is by_task["b"][0] and by_task["a"][1] is by_task["b"][1]  # shared per connection
    assert by_task["a"][0] is not by_task["x"][0]
    assert e.status()["tasks"]["a"]["state"] == "idle"
    assert e.status()["tasks"]["a"]["last_pass"]["summary"] == {"uploaded": 1}


def test_a_trigger_during_a_pass_runs_exactly_one_more_pass(tmp_path, engines):
    setup = make_home(str(tmp_path))
    fake = FakePass()
    fake.hold = True
    e = start(engines, setup.path, fake=fake)
    assert fake.wait_count(1)
    assert e.status()["tasks"]["t"]["state"] == "syncing"
    for _ in range(3):  # several changes while the pass runs...
        e.sync_now("t")
    fake.release.set()
    assert fake.wait_count(2)
    assert e.wait_idle(10)
    assert fake.count() == 2  # ...are all picked up by one following pass, and nothing more runs


def test_poll_timer_triggers_passes_at_the_polling_period(tmp_path, engines):
    setup = make_home(str(tmp_path), conns={"c": {"polling_period": 120}})
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    e = start(engines, setup.path, clock, fake)
    assert fake.wait_count(1) and e.wait_idle(10)
    clock.advance(100)
    assert not fake.wait_count(2, timeout=0.6)  # not yet due
    clock.advance(25)
    assert fake.wait_count(2)
    assert e.wait_idle(10)
    assert e.status()["tasks"]["t"]["last_pass"]["reasons"] == ["poll"]
    assert e.status()["connections"]["c"]["next_poll_in"] == pytest.approx(120, abs=1)


def test_no_pass_starts_outside_the_schedule_and_work_resumes_when_the_window_opens(tmp_path, engines):
    # Allowed: Monday 09:00-10:00 only.
    grid = window(9)
    setup = make_home(str(tmp_path), conns={"c": {"schedule": grid}})
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    fake.hold = True
    e = start(engines, setup.path, clock, fake)
    assert not fake.wait_count(1, timeout=0.8)
    e.sync_now()
    assert not fake.wait_count(1, timeout=0.5)  # even an explicit sync-now waits for the window
    st = e.status()
    assert st["tasks"]["t"]["state"] == "waiting-schedule"
    assert st["connections"]["c"]["next_allowed"] == "2026-11-23T09:00:00"

    clock.set(MON_0830.replace(hour=9))  # the window opens
    assert fake.wait_count(1)
    first = fake.calls[0]
    clock.set(MON_0830.replace(hour=10, minute=0, second=1))  # ...and closes while the pass runs
    assert wait_for(lambda: first.cancelled, 10), "the running pass was cancelled at the hour boundary"
    assert wait_for(lambda: e.status()["tasks"]["t"]["state"] == "waiting-schedule", 10)
    assert e.status()["tasks"]["t"]["last_pass"]["cancelled"] == "schedule"
    assert not fake.wait_count(2, timeout=0.6)  # the leftover work does not start outside the window

    fake.release.set()
    clock.set(MON_0830.replace(hour=9, minute=5) + timedelta(days=7))  # next Monday's window
    assert fake.wait_count(2)
    assert e.wait_idle(10)
    for call in fake.calls:  # no pass ever started outside allowed hours
        assert sched.allowed(grid, datetime.fromtimestamp(call.at))


def test_pause_cancels_the_running_pass_and_resume_runs_again(tmp_path, engines):
    setup = make_home(str(tmp_path), tasks={"a": "c", "b": "d"})
    fake = FakePass()
    fake.hold = True
    e = start(engines, setup.path, fake=fake)
    assert fake.wait_count(2)
    call_a = next(c for c in fake.calls if c.task == "a")
    e.pause_task("a")
    assert wait_for(lambda: call_a.cancelled, 10)
    assert wait_for(lambda: e.status()["tasks"]["a"]["state"] == "paused", 10)
    assert e.status()["tasks"]["b"]["state"] == "syncing"  # other tasks are not touched
    fake.release.set()
    e.sync_now("a")
    assert not fake.wait_count(2, task="a", timeout=0.5)
    e.resume_task("a")
    assert fake.wait_count(2, task="a")

    e.pause_connection("d")
    e.sync_now("b")
    assert not fake.wait_count(2, task="b", timeout=0.5)
    assert e.status()["connections"]["d"]["state"] == "paused"
    e.resume_connection("d")
    assert fake.wait_count(2, task="b")


def test_errors_back_off_exponentially_then_recover(tmp_path, engines):
    setup = make_home(str(tmp_path))
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    fake.raises = [TransientError("the service said 503"), TransientError("the service said 503")]
    e = start(engines, setup.path, clock, fake, backoff_base=10, backoff_max=100)
    assert fake.wait_count(1)
    assert wait_for(lambda: e.status()["tasks"]["t"]["state"] == "error", 10)
    st = e.status()["tasks"]["t"]
    assert st["error"] == "the service said 503" and st["retry_in"] == pytest.approx(10, abs=0.5)
    clock.advance(11)
    assert fake.wait_count(2)
    assert wait_for(lambda: e.status()["tasks"]["t"]["retry_in"] == pytest.approx(20, abs=0.5), 10)
    clock.advance(15)
    assert not fake.wait_count(3, timeout=0.5)  # the second wait is twice as long
    clock.advance(6)
    assert fake.wait_count(3)
    assert wait_for(lambda: e.status()["tasks"]["t"]["state"] == "idle", 10)
    assert e.status()["tasks"]["t"]["error"] is None


def test_failed_items_are_retried_with_backoff(tmp_path, engines):
    setup = make_home(str(tmp_path))
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    fake.failed_items = [2]
    e = start(engines, setup.path, clock, fake, backoff_base=30)
    assert fake.wait_count(1) and wait_for(lambda: e.status()["tasks"]["t"]["retry_in"], 10)
    assert not fake.wait_count(2, timeout=0.4)
    clock.advance(31)
    assert fake.wait_count(2)


def test_a_guard_stops_the_task_until_forced(tmp_path, engines):
    setup = make_home(str(tmp_path))
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    fake.raises = [GuardError("40 of 50 files would be deleted; nothing was changed")]
    e = start(engines, setup.path, clock, fake, backoff_base=600)
    assert fake.wait_count(1)
    assert wait_for(lambda: e.status()["tasks"]["t"]["state"] == "error", 10)
    assert "nothing was changed" in e.status()["tasks"]["t"]["error"]
    e.sync_now("t", force=True)
    assert fake.wait_count(2)
    assert fake.calls[1].force and not fake.calls[0].force


def test_locked_task_is_retried_shortly_without_an_error(tmp_path, engines):
    setup = make_home(str(tmp_path))
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    fake.raises = [LockedError("task 't' is already being synced by another process")]
    e = start(engines, setup.path, clock, fake)
    assert fake.wait_count(1)
    assert wait_for(lambda: e.status()["tasks"]["t"]["pending"], 10)
    assert e.status()["tasks"]["t"]["state"] == "idle"
    clock.advance(6)
    assert fake.wait_count(2)


class _Provider(LocalProvider):
    broken: set[str] = set()

    def __init__(self, options, name: str) -> None:
        super().__init__(options)
        self.name = name

    def check(self) -> None:
        if self.name in self.broken:
            raise AuthError("the access key was refused")


def test_refused_credentials_mark_only_that_connection(tmp_path, engines):
    setup = make_home(str(tmp_path), tasks={"good": "ok", "bad": "nope"})
    _Provider.broken = {"nope"}

    def factory(home: Home, name: str):
        return _Provider(home.all_options(name), name)

    fake = FakePass()
    e = start(engines, setup.path, fake=fake, provider_factory=factory, backoff_base=60)
    assert fake.wait_count(1, task="good")
    assert wait_for(lambda: e.status()["connections"]["nope"]["state"] == "error", 10)
    st = e.status()
    assert st["connections"]["nope"]["error"] == "credentials refused: the access key was refused"
    assert st["connections"]["ok"]["state"] == "ok"
    assert st["tasks"]["bad"]["state"] == "error" and "credentials refused" in st["tasks"]["bad"]["error"]
    assert fake.count("bad") == 0
    e.sync_now("good")
    assert fake.wait_count(2, task="good")  # the healthy connection keeps going

    _Provider.broken = set()  # the user fixed the key
    e.reload()
    assert fake.wait_count(1, task="bad")
    assert wait_for(lambda: e.status()["connections"]["nope"]["state"] == "ok", 10)


def test_auth_error_during_a_pass_marks_the_connection(tmp_path, engines):
    setup = make_home(str(tmp_path))
    _Provider.broken = set()

    def factory(home: Home, name: str):
        return _Provider(home.all_options(name), name)

    fake = FakePass()
    e = start(engines, setup.path, fake=fake, provider_factory=factory, backoff_base=60)
    assert fake.wait_count(1) and e.wait_idle(10)
    _Provider.broken = {"c"}
    fake.raises = [AuthError("the token expired")]
    e.sync_now()
    assert fake.wait_count(2)
    assert wait_for(lambda: e.status()["connections"]["c"]["state"] == "error", 10)
    assert "credentials refused" in e.status()["connections"]["c"]["error"]


def test_events_fan_out_to_subscribers_and_a_broken_one_does_not_matter(tmp_path, engines):
    setup = make_home(str(tmp_path))
    fake = FakePass()
    seen_a: list = []
    seen_b: list = []
    e = Engine(setup.path, pass_fn=fake, watch=False, control=False)

    def broken(event) -> None:
        raise RuntimeError("subscriber bug")

    e.subscribe(broken)
    unsubscribe_a = e.subscribe(seen_a.append)
    e.subscribe(seen_b.append)
    e.start()
    engines.append(e)
    assert fake.wait_count(1) and e.wait_idle(10)
    assert wait_for(lambda: any(isinstance(ev, PassFinished) for ev in seen_a), 10)
    assert any(isinstance(ev, LogRecord) and "engine started" in ev.message for ev in seen_b)
    unsubscribe_a()
    n = len(seen_a)
    e.sync_now()
    assert fake.wait_count(2) and e.wait_idle(10)
    assert wait_for(lambda: sum(isinstance(ev, PassFinished) for ev in seen_b) >= 2, 10)
    assert len(seen_a) == n


def test_one_engine_per_home(tmp_path, engines):
    setup = make_home(str(tmp_path))
    first = start(engines, setup.path, fake=FakePass())
    second = Engine(setup.path, pass_fn=FakePass(), watch=False, control=False)
    with pytest.raises(LockedError, match=r"another skysync engine is already running for this home \(pid \d+\)"):
        second.start()
    first.stop(3)
    second.start()  # the lock is free again after a clean stop
    engines.append(second)


def test_reload_applies_limits_live_and_picks_up_new_tasks(tmp_path, engines):
    setup = make_home(str(tmp_path))
    fake = FakePass()
    e = start(engines, setup.path, fake=fake)
    assert fake.wait_count(1) and e.wait_idle(10)
    up, down = fake.calls[0].buckets
    assert up.rate == 0 and down.rate == 0
    home = Home(setup.path)
    conn = home.connection("c")
    conn.upload_limit, conn.download_limit = 512, 2048
    home.put_connection(conn, {})
    new_local = tmp_path / "local-new"
    new_local.mkdir()
    from engine.config import Task

    home.put_task(Task("new", "c", str(new_local), "/new"))
    home.save()
    e.reload()
    assert up.rate == 512 * 1024 and down.rate == 2048 * 1024  # the same buckets running transfers hold
    assert fake.wait_count(1, task="new")


def test_config_edits_are_picked_up_without_an_explicit_reload(tmp_path, engines):
    setup = make_home(str(tmp_path))
    fake = FakePass()
    e = start(engines, setup.path, fake=fake)
    assert fake.wait_count(1)
    home = Home(setup.path)
    conn = home.connection("c")
    conn.upload_limit = 100
    home.put_connection(conn, {})
    home.save()
    assert wait_for(lambda: fake.calls[0].buckets[0].rate == 100 * 1024, 5)
    assert e.status()["connections"]["c"]["upload_limit"] == 100


def test_auth_error_wrapped_by_the_pass_still_marks_the_connection(tmp_path, engines):
    """engine.sync turns a listing's ProviderError into a GuardError (raised `from None`, context kept)."""
    setup = make_home(str(tmp_path))
    _Provider.broken = set()

    def factory(home: Home, name: str):
        return _Provider(home.all_options(name), name)

    def wrapped() -> GuardError:
        try:
            raise AuthError("listing /t: the signature does not match")
        except AuthError as exc:
            try:
                raise GuardError(str(exc)) from None
            except GuardError as guard:
                return guard

    fake = FakePass()
    e = start(engines, setup.path, fake=fake, provider_factory=factory, backoff_base=60)
    assert fake.wait_count(1) and e.wait_idle(10)
    _Provider.broken = {"c"}
    fake.raises = [wrapped()]
    e.sync_now()
    assert wait_for(lambda: e.status()["connections"]["c"]["state"] == "error", 10)
    assert e.status()["tasks"]["t"]["state"] == "error"


class _FeedProvider(LocalProvider):
    """A local provider with a change feed whose answers the test controls."""

    capabilities = Capabilities(HashKind.MD5, MtimeMode.NATIVE, canonical_order=True, changes=True)
    version = 0
    asked = 0

    def changes_start(self, folder: str) -> str:
        return str(type(self).version)

    def changes(self, folder: str, cursor: str):
        type(self).asked += 1
        now = type(self).version
        return iter([Change(str(v), None) for v in range(int(cursor), now)]), str(now)


def test_change_feed_polls_pass_only_when_the_feed_reports_changes(tmp_path, engines):
    setup = make_home(str(tmp_path), conns={"c": {"polling_period": 60}})
    clock = FakeClock(MON_0830)
    fake = FakePass(clock)
    factory = lambda home, name: _FeedProvider(home.all_options(name))  # noqa: E731
    e = start(engines, setup.path, clock, fake, provider_factory=factory)
    assert fake.wait_count(1) and e.wait_idle(10)
    assert e.status()["connections"]["c"]["change_feed"] is True
    clock.advance(61)
    assert wait_for(lambda: _FeedProvider.asked == 1, 10)
    assert not fake.wait_count(2, timeout=0.5)  # nothing changed: the poll cost no pass
    _FeedProvider.version += 1
    clock.advance(61)
    assert fake.wait_count(2)
    assert e.wait_idle(10)
    assert e.status()["tasks"]["t"]["last_pass"]["reasons"] == ["poll"]
