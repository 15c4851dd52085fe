"""A connection whose sign-in is gone (ReauthRequired) is "sign-in needed": its passes and checks stop, the other
connections carry on, and a new token file (what `skysync connection login` writes) brings it back."""

from __future__ import annotations

import json
import os
import time

import pytest

from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.providers.base import ReauthRequired
from engine.providers.local import LocalProvider
from engine.runtime import Engine
from engine.runtime.status import SIGNIN_NEEDED
from tests.continuous.conftest import FakePass, make_home, wait_for


class _Provider(LocalProvider):
    revoked: set[str] = set()
    checks: dict[str, int] = {}

    def __init__(self, options, name: str) -> None:
        super().__init__(options)
        self.name = name

    def check(self) -> None:
        _Provider.checks[self.name] = _Provider.checks.get(self.name, 0) + 1
        if self.name in self.revoked:
            raise ReauthRequired("the refresh token was revoked")


@pytest.fixture
def engine_for(tmp_path):
    started: list[Engine] = []

    def make(fake: FakePass) -> Engine:
        setup = make_home(str(tmp_path), tasks={"good": "ok", "mine": "drive"})

        def factory(home: Home, name: str):
            return _Provider(home.all_options(name), name)

        e = Engine(setup.path, pass_fn=fake, provider_factory=factory, watch=False, control=False,
                   backoff_base=0.05, backoff_max=0.1)
        e.start()
        started.append(e)
        return e

    _Provider.revoked, _Provider.checks = set(), {}
    yield make
    for e in started:
        e.stop(3)


def _login(home_path: str, connection: str) -> None:
    """What `connection login` leaves behind: a fresh token file."""
    store = TokenStore(home_path, connection)
    os.makedirs(store.folder, exist_ok=True)
    with open(store.path, "w", encoding="utf-8") as f:
        json.dump({"access_token": "new", "token_type": "Bearer", "refresh_token": "r2",
                   "expiry": "2099-01-01T00:00:00Z"}, f)


def test_a_revoked_sign_in_stops_only_that_connection_until_login(engine_for):
    _Provider.revoked = {"drive"}
    fake = FakePass()
    e = engine_for(fake)
    assert wait_for(lambda: e.status_model().connections["drive"].state == SIGNIN_NEEDED, 10)
    status = e.status_model()
    assert "skysync connection login drive" in status.connections["drive"].error
    assert status.connections["drive"].retry_in is None
    assert status.tasks["mine"].state == "error" and "sign-in needed" in status.tasks["mine"].error
    assert fake.wait_count(1, task="good")
    time.sleep(1.0)  # backoff is 0.05 s: a retrying connection would have been checked many times by now
    assert _Provider.checks["drive"] == 1 and fake.count("mine") == 0
    e.sync_now()  # asking again cannot sign in
    assert fake.wait_count(2, task="good")
    assert _Provider.checks["drive"] == 1 and fake.count("mine") == 0

    _Provider.revoked = set()
    _login(e.home_path, "drive")
    assert fake.wait_count(1, task="mine", timeout=10)
    assert e.status_model().connections["drive"].state == "ok"


def test_a_pass_that_finds_the_sign_in_gone_stops_the_connection(engine_for):
    fake = FakePass()
    e = engine_for(fake)
    # Both tasks' first passes must be over: the raise below goes to whichever pass comes next, and "good"'s
    # connection check may still be running when "mine" is already idle (a loaded CI machine showed it).
    assert fake.wait_count(1, task="mine") and fake.wait_count(1, task="good") and e.wait_idle(10)
    events = []
    e.subscribe(events.append)
    fake.raises = [ReauthRequired("the refresh token was revoked")]
    _Provider.revoked = {"drive"}
    e.sync_now("mine")
    assert wait_for(lambda: e.status_model().connections["drive"].state == SIGNIN_NEEDED, 10)
    time.sleep(0.5)
    assert fake.count("mine") == 2  # no retry storm
    lines = [r.message for r in events if getattr(r, "kind", "") == "error" and "sign-in needed" in r.message]
    assert len(lines) == 1  # said once

    _Provider.revoked = set()
    e.reload()  # a config or secrets change clears it too
    assert fake.wait_count(3, task="mine", timeout=10)
