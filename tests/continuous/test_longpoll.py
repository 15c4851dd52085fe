"""The long poll in a running engine, against the Dropbox fake: a remote change arrives within seconds although
the polling period is an hour, a wait with nothing new lists nothing, pause/stop end the loop, and a failing
long poll backs off and recovers. The pure parts (when a long poll runs, how long it pauses) as tables."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from engine.cli import main as cli
from engine.events import Event, LogRecord
from engine.providers.base import ChangeWait, NetworkError, TransientError
from engine.runtime import Engine
from engine.runtime.poll import LONGPOLL_ERROR_MAX, pause_after, should_wait
from engine.runtime.retry import Backoff
from tests.fakes.dropbox_server import DropboxFake
from tests.providers.servers import dropbox as server

from .conftest import wait_for

HOLD = 0.4  # how long the fake holds a wait: what bounds stopping a loop in these tests


@dataclass
class Setup:
    home: str
    local: str
    fake: DropboxFake
    account: str

    def put(self, path: str, data: bytes) -> None:
        self.fake.put(self.account, f"/Sync/{path}", data)

    def listings(self) -> int:
        return self.fake.calls["files/list_folder"] + self.fake.calls["files/list_folder/continue"]


def waiters() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "longpoll:d" and t.is_alive()]


@pytest.fixture
def setup(short_base: str, monkeypatch: pytest.MonkeyPatch) -> Setup:
    fake = server.fake()
    monkeypatch.setattr(fake, "longpoll_hold", HOLD)
    account, access, refresh = fake.new_account(server.APP_KEY)
    fake.put(account, "/Sync/first.txt", b"there before the engine")
    options = server.options_for(fake, account, access, refresh)
    home, local = os.path.join(short_base, "home"), os.path.join(short_base, "local")
    os.makedirs(local)
    args = [a for key in ("app_key", "api_url", "content_url", "notify_url", "token_url", "token")
            for a in ("--option", f"{key}={options[key]}")]  # fmt: skip
    assert cli(["--home", home, "connection", "add", "d", "--provider", "dropbox", *args,
                "--option", "polling_period=3600"]) == 0  # fmt: skip
    assert cli(["--home", home, "task", "add", "t", "--connection", "d", "--local", local, "--remote", "/Sync",
                "--direction", "bidirectional"]) == 0  # fmt: skip
    return Setup(home, local, fake, account)


@pytest.fixture
def engine(setup: Setup) -> Iterator[Engine]:
    e = Engine(setup.home, watch=False, control=False, backoff_base=0.2, backoff_max=2.0)
    e.start()
    yield e
    e.stop(5)


def started(setup: Setup, engine: Engine) -> None:
    """The first pass is done, a long poll is waiting, and the pass its first cursor asked for is done."""
    began = time.monotonic()
    assert wait_for(lambda: os.path.exists(os.path.join(setup.local, "first.txt")), 10)
    assert wait_for(waiters, 5)
    assert wait_for(lambda: any(t > began for t in setup.fake.longpolls), 5)
    assert engine.wait_idle(10)


def test_a_remote_change_arrives_within_seconds_with_an_hour_between_polls(setup: Setup, engine: Engine) -> None:
    started(setup, engine)
    assert engine.status()["connections"]["d"]["next_poll_in"] > 3000
    setup.put("from-elsewhere.txt", b"another device wrote this")
    began = time.monotonic()
    target = os.path.join(setup.local, "from-elsewhere.txt")
    assert wait_for(lambda: os.path.exists(target), 3.0), "the change did not arrive within 3 s"
    assert time.monotonic() - began < 3.0
    with open(target, "rb") as f:
        assert f.read() == b"another device wrote this"


def test_waits_with_nothing_new_list_nothing(setup: Setup, engine: Engine) -> None:
    started(setup, engine)
    listings, waits = setup.listings(), len(setup.fake.longpolls)
    passes = engine.status()["tasks"]["t"]["passes"]
    assert wait_for(lambda: len(setup.fake.longpolls) >= waits + 3, 5)  # three waits came back empty
    assert setup.listings() == listings
    assert engine.status()["tasks"]["t"]["passes"] == passes


def test_pause_and_stop_end_the_loop_and_resume_starts_it_again(setup: Setup, engine: Engine) -> None:
    started(setup, engine)
    engine.pause_connection("d")
    assert wait_for(lambda: not waiters(), HOLD + 2)
    waits = len(setup.fake.longpolls)
    setup.put("while-paused.txt", b"p")
    time.sleep(HOLD * 2)  # long enough for a loop that did not stop to wait again
    assert len(setup.fake.longpolls) == waits
    assert not os.path.exists(os.path.join(setup.local, "while-paused.txt"))
    engine.resume_connection("d")
    assert wait_for(lambda: os.path.exists(os.path.join(setup.local, "while-paused.txt")), 5)
    assert wait_for(waiters, 5)
    engine.stop(5)
    assert wait_for(lambda: not waiters(), HOLD + 2), "the long poll outlived the engine"


def test_a_failing_long_poll_backs_off_and_recovers(setup: Setup, engine: Engine) -> None:
    lines: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, LogRecord):
            lines.append(event.message)

    engine.subscribe(on_event)
    started(setup, engine)
    setup.fake.throttle(3, retry_after=1)  # the next three requests (the loop's) are refused with 429
    assert wait_for(lambda: any("waiting for remote changes failed" in line for line in lines), HOLD + 3)
    refused = len(setup.fake.longpolls)
    setup.put("after-the-errors.txt", b"e")
    assert wait_for(lambda: os.path.exists(os.path.join(setup.local, "after-the-errors.txt")), 8)
    assert sum("waiting for remote changes failed" in line for line in lines) == 1  # once per streak
    assert len(setup.fake.longpolls) > refused
    assert engine.status()["connections"]["d"]["error"] is None  # the connection itself is fine


def test_the_backoff_the_service_asks_for_is_kept(
    setup: Setup, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(setup, engine)
    monkeypatch.setattr(setup.fake, "longpoll_backoff", 1)
    first = len(setup.fake.longpolls)
    assert wait_for(lambda: len(setup.fake.longpolls) >= first + 3, 6)
    times = setup.fake.longpolls[first:]
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]  # waits begun after a backoff answer
    assert gaps and min(gaps) >= HOLD + 0.9, gaps


# -- the pure parts --------------------------------------------------------------------------------------------

BASE = dict(capable=True, ready=True, error=False, paused=False, allowed=True, stopping=False, active_tasks=1)


@pytest.mark.parametrize(
    ("change", "runs"),
    [
        ({}, True),
        ({"capable": False}, False),  # the service cannot wait: the timer's polls only
        ({"ready": False}, False),  # not checked yet (or reopened)
        ({"error": True}, False),  # failing or sign-in needed: the checks deal with it
        ({"paused": True}, False),  # a paused connection talks to no one
        ({"allowed": False}, False),  # outside the schedule
        ({"stopping": True}, False),
        ({"active_tasks": 0}, False),  # every task paused: nothing would use what it finds
    ],
)
def test_when_a_long_poll_runs(change: dict[str, object], runs: bool) -> None:
    assert should_wait(**{**BASE, **change}) is runs  # type: ignore[arg-type]


def test_how_long_a_long_poll_pauses() -> None:
    policy = Backoff(5.0, 900.0)
    assert pause_after(ChangeWait(True), 0, policy) == 0
    assert pause_after(ChangeWait(False, 60.0), 0, policy) == 60  # Dropbox's backoff
    assert pause_after(NetworkError("down"), 1, policy) == 5
    assert pause_after(NetworkError("down"), 3, policy) == 20
    assert pause_after(TransientError("slow down", retry_after=42), 1, policy) == 42  # Retry-After, if longer
    assert pause_after(NetworkError("down"), 30, policy) == LONGPOLL_ERROR_MAX  # the polls cover the rest

