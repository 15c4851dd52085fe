"""Blocking work stays off the event loop (issue 20, cheap over SSH): while unlinking a task waits on the state
database, the app still takes keys."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TabbedContent

from engine.config import Task
from tests.tui.helpers import wait_for, write_tree
from tests.tui.test_flows import make_app, with_connection
from tui import bridge
from tui.screens.dialogs import ConfirmScreen
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


async def test_unlink_waits_in_a_thread(tmp_path: Path, monkeypatch: Any) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_tree(tmp_path / "local", {"a.txt": b"a"})
    with_connection(home, tmp_path / "cloud", task=Task("t", "cloud", str(tmp_path / "local"), "/"))
    release, waiting, done = threading.Event(), threading.Event(), threading.Event()
    real = bridge.remove_task

    def slow_remove(h: Any, name: str) -> None:
        waiting.set()
        release.wait(15)  # a database held by another process; bounded, so a blocked loop fails, never hangs
        done.set()
        real(h, name)

    monkeypatch.setattr(bridge, "remove_task", slow_remove)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("2", "u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="unlink?")
        await pilot.press("y")
        await wait_for(pilot, waiting.is_set, what="the unlink under way")
        await pilot.press("1")  # the loop is free: the key is handled while the unlink still waits
        tabs = app.screen.query_one("#tabs", TabbedContent)
        await wait_for(pilot, lambda: tabs.active == "overview", timeout=10, what="a key handled meanwhile")
        assert not done.is_set(), "the key waited for the unlink: it ran on the event loop"
        release.set()
        await wait_for(pilot, lambda: not app.config_home().tasks(), what="unlinked")
