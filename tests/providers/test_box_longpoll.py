"""Box's long poll in a running engine, against the Box fake: with an hour between polls, a file another device
puts in Box arrives here within seconds, and waits that end with nothing new list nothing."""

from __future__ import annotations

import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.cli import main as cli
from engine.runtime import Engine
from tests.fakes.box_server import BoxFake

HOLD = 0.4  # how long the fake's real-time server holds a wait: what bounds stopping the loop here


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def listed(fake: BoxFake) -> int:
    """Folder listings and feed reads so far."""
    return sum(n for route, n in fake.calls.items() if route.endswith("/items") or route == "GET events")


@pytest.fixture
def fake() -> Iterator[BoxFake]:
    box = BoxFake().start()
    box.longpoll_hold = HOLD
    box.put("Sync/first.txt", b"there before the engine")
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def engine(tmp_path: pathlib.Path, fake: BoxFake) -> Iterator[tuple[Engine, str]]:
    home, local = str(tmp_path / "home"), str(tmp_path / "local")
    os.makedirs(local)
    options = fake.options()
    args = [a for key in ("client_id", "client_secret", "api_url", "upload_url", "token_url", "token")
            for a in ("--option", f"{key}={options[key]}")]  # fmt: skip
    assert cli(["--home", home, "connection", "add", "b", "--provider", "box", *args,
                "--option", "polling_period=3600"]) == 0  # fmt: skip
    assert cli(["--home", home, "task", "add", "t", "--connection", "b", "--local", local, "--remote", "/Sync",
                "--direction", "bidirectional"]) == 0  # fmt: skip
    e = Engine(home, watch=False, control=False, backoff_base=0.2, backoff_max=2.0)
    e.start()
    try:
        yield e, local
    finally:
        e.stop(5)


def test_a_change_in_box_arrives_within_seconds_and_empty_waits_list_nothing(fake, engine) -> None:
    e, local = engine
    assert wait_for(lambda: os.path.exists(os.path.join(local, "first.txt")), 15)
    assert wait_for(lambda: [t for t in threading.enumerate() if t.name == "longpoll:b" and t.is_alive()], 5)
    assert e.wait_idle(10)
    assert e.status()["connections"]["b"]["next_poll_in"] > 3000

    listings, waits = listed(fake), fake.calls["GET realtime"]
    assert wait_for(lambda: fake.calls["GET realtime"] >= waits + 3, 10)  # three waits came back empty
    assert listed(fake) == listings

    fake.put("Sync/from-elsewhere.txt", b"another device wrote this")
    began = time.monotonic()
    target = os.path.join(local, "from-elsewhere.txt")
    assert wait_for(lambda: os.path.exists(target), 5.0), "the change did not arrive within 5 s"
    assert time.monotonic() - began < 5.0
    with open(target, "rb") as f:
        assert f.read() == b"another device wrote this"
