"""Quitting (issue 20 item 4): while the app's own engine syncs, quitting asks whether syncing stops, goes on in a
detached `skysync run`, or goes on in the systemd user service; the header says which engine syncs."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config import Task
from engine.runtime.client import EngineClient
from tests.tui.helpers import FakeEngine, wait_for, write_tree
from tests.tui.test_flows import make_app, with_connection
from tui import background
from tui.app import SkysyncApp
from tui.screens.dialogs import QuitScreen
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


def home_with_task(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    local = tmp_path / "local"
    write_tree(local, {"a.txt": b"a"})
    with_connection(home, tmp_path / "cloud", task=Task("t", "cloud", str(local), "/"))
    return home


def fake_systemctl(tmp_path: Path, monkeypatch: Any) -> Path:
    """A systemctl that answers and records its arguments (this box's systemd is not ours to change)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    script = bin_dir / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return calls


async def test_quit_asks_and_stop_stops_the_engine(tmp_path: Path, monkeypatch: Any) -> None:
    fake_systemctl(tmp_path, monkeypatch)
    fake = FakeEngine({"connections": {}, "tasks": {}})
    app = make_app(home_with_task(tmp_path), fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="the app's engine")
        assert "engine in this app" in app.sub_title
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the question")
        await pilot.press("escape")  # stay: nothing stopped
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="back in the app")
        assert ("stop", ()) not in fake.calls and app.is_running
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the question again")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="the app gone")
    assert ("stop", ()) in fake.calls


async def test_quit_without_tasks_does_not_ask(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="the app's engine")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, what="the app gone")


async def test_keep_syncing_starts_skysync_run_detached(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no systemctl: the service choice says why in one line
    home = home_with_task(tmp_path)
    app = make_app(home)
    pid = 0
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.host.running, what="the app's engine")
            await pilot.press("ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the question")
            quit_screen = app.screen
            await wait_for(pilot, lambda: "no systemctl" in str(quit_screen.query_one("#service-hint").content),
                           what="why there is no user service")
            await pilot.press("i")  # refused: no systemd here
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("b")
            await wait_for(pilot, lambda: not app.is_running, timeout=20, what="the app gone")
        message = str(app.exit_message)
        assert "in the background" in message
        pid = int(message.split("pid ")[1].split(")")[0])
        assert EngineClient(str(home)).running()
        # the next app talks to it, and its header says so
        again = SkysyncApp(str(home), steady=True, hostname="test", poll_interval=60)
        async with again.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: "background engine" in again.sub_title, what="the header")
            await pilot.press("ctrl+q")  # the background engine carries on: no question
            await wait_for(pilot, lambda: not again.is_running, what="the app gone")
        assert EngineClient(str(home)).running()
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while EngineClient(str(home), timeout=1.0).running() and time.monotonic() < deadline:
                time.sleep(0.1)


async def test_install_the_user_service(tmp_path: Path, monkeypatch: Any) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(background, "wait_until_running", lambda *_a, **_k: True)  # the fake starts nothing
    home = home_with_task(tmp_path)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="the app's engine")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the question")
        await pilot.press("i")
        await wait_for(pilot, lambda: not app.is_running, what="the app gone")
    unit = (tmp_path / "config" / "systemd" / "user" / "skysync.service").read_text()
    assert f"--home {home} run" in unit and "ExecStart=%h/.local/bin" not in unit
    assert "WantedBy=default.target" in unit
    assert calls.read_text().splitlines()[-2:] == ["--user daemon-reload", "--user enable --now skysync.service"]
    assert "user service" in str(app.exit_message)


async def test_a_different_unit_is_never_overwritten(tmp_path: Path, monkeypatch: Any) -> None:
    fake_systemctl(tmp_path, monkeypatch)
    unit = tmp_path / "config" / "systemd" / "user" / "skysync.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/something-else\n")
    home = home_with_task(tmp_path)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="the app's engine")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the question")
        await pilot.press("i")
        await wait_for(pilot, lambda: any("already exists" in str(n.message) for n in app._notifications),
                       what="the refusal")
        await wait_for(pilot, lambda: app.host.running, what="the engine back in the app")
        assert app.is_running
    assert unit.read_text() == "[Service]\nExecStart=/usr/bin/something-else\n"


async def test_the_question_shows_at_once_while_systemd_is_slow_to_answer(tmp_path: Path, monkeypatch: Any) -> None:
    """`systemctl --user` can hang for the bus's timeout: Ctrl+Q must not wait for it, only the service choice."""
    answer = threading.Event()

    def slow_systemd() -> str | None:
        answer.wait(20)
        return None

    monkeypatch.setattr(background, "systemd_problem", slow_systemd)
    app = make_app(home_with_task(tmp_path), FakeEngine({"connections": {}, "tasks": {}}))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="the app's engine")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), timeout=2, what="the question, at once")
        screen = app.screen
        assert "Asking systemd" in str(screen.query_one("#service-hint").content)
        await pilot.press("i")  # not yet known: refused, the question stays
        await pilot.pause()
        assert app.screen is screen and any("Still asking systemd" in str(n.message) for n in app._notifications)
        answer.set()
        await wait_for(pilot, lambda: not screen.query_one("#service").disabled, what="the service choice offered")
        assert not screen.query_one("#service-hint").display
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="back in the app")
