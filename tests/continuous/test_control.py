"""The control socket: private to its user, answers status and commands, and says None when no engine runs."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from engine.runtime import Engine, control

from .conftest import FakePass, make_home, wait_for


@pytest.fixture
def running(short_base):
    setup = make_home(short_base)
    fake = FakePass()
    e = Engine(setup.path, pass_fn=fake, watch=False)
    e.start()
    yield setup, fake, e
    e.stop(3)


def test_no_engine_means_none(short_base):
    setup = make_home(short_base)
    assert control.query(setup.path, {"cmd": "status"}) is None
    # A socket file left by a crashed engine: nobody listens, still None.
    path = control.socket_path(setup.path)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert control.query(setup.path, {"cmd": "status"}) is None


def test_socket_is_private_and_answers_status(running):
    setup, _, _ = running
    path = control.socket_path(setup.path)
    assert os.path.dirname(path) == os.path.join(setup.path, ".run")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    answer = control.query(setup.path, {"cmd": "status"})
    assert answer and answer["ok"]
    assert answer["engine"]["pid"] == os.getpid()
    assert set(answer["tasks"]) == {"t"} and set(answer["connections"]) == {"c"}
    assert control.query(setup.path, {"op": "status"})["tasks"]["t"]["connection"] == "c"


def test_commands_reach_the_engine(running):
    setup, fake, e = running
    assert fake.wait_count(1) and e.wait_idle(10)
    assert control.query(setup.path, {"cmd": "sync-now", "task": "t"}) == {"ok": True}
    assert fake.wait_count(2)
    assert control.query(setup.path, {"cmd": "pause", "task": "t"}) == {"ok": True}
    assert e.status()["tasks"]["t"]["state"] == "paused"
    assert control.query(setup.path, {"cmd": "resume", "task": "t"}) == {"ok": True}
    assert control.query(setup.path, {"cmd": "pause", "connection": "c"}) == {"ok": True}
    assert e.status()["connections"]["c"]["state"] == "paused"
    assert control.query(setup.path, {"cmd": "resume", "connection": "c"}) == {"ok": True}
    assert control.query(setup.path, {"cmd": "reload"}) == {"ok": True}


def test_bad_requests_get_one_line_errors(running):
    setup, _, _ = running
    assert control.query(setup.path, {"cmd": "explode"}) == {"ok": False, "error": "unknown command 'explode'"}
    assert control.query(setup.path, {"cmd": "pause"})["error"] == "pause needs exactly one of task or connection"
    assert control.query(setup.path, {"cmd": "sync-now", "task": "nope"}) == {
        "ok": False,
        "error": "no task named 'nope'",
    }
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(control.socket_path(setup.path))
    raw.sendall(b"not json\n")
    reply = raw.recv(4096)
    raw.close()
    assert b'"ok": false' in reply and b"bad request" in reply


def test_a_deep_home_gets_its_socket_in_a_private_temp_folder(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    setup = make_home(str(deep))
    path = control.socket_path(setup.path)
    assert not path.startswith(setup.path) and len(path.encode()) <= control.MAX_SUN_PATH
    e = Engine(setup.path, pass_fn=FakePass(), watch=False)
    e.start()
    try:
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(path))).st_mode) == 0o700
        answer = wait_for(lambda: control.query(setup.path, {"cmd": "ping"}), 10)
        assert answer == {"ok": True, "pid": os.getpid()}
    finally:
        e.stop(3)
    assert not os.path.exists(path)  # removed on a clean stop
    assert control.query(setup.path, {"cmd": "ping"}) is None
