"""The Overview tells the truth (issue 20 item 9): a connection whose task syncs says "syncing", not "up to date",
and a follow-up pass with nothing to do does not hide what the pass before it changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Task
from tests.tui.helpers import T0, FakeEngine, text_of, wait_for, write_tree
from tests.tui.test_flows import make_app, with_connection
from tui.screens.main import MainScreen
from tui.widgets.connection_list import ConnectionList

pytestmark = pytest.mark.anyio


async def test_connection_syncs_with_its_task_and_the_last_changes_stay(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_tree(tmp_path / "local", {"a.txt": b"a"})
    with_connection(home, tmp_path / "cloud", task=Task("t", "cloud", str(tmp_path / "local"), "/"))
    status = {"connections": {"cloud": {"state": "ok"}},
              "tasks": {"t": {"state": "syncing", "last_pass": {"finished": T0, "ok": True,
                                                                 "summary": {"downloaded": 11}}}}}
    fake = FakeEngine(status)
    app = make_app(home, fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and app.status is status, what="status")
        await pilot.pause()
        listing = app.screen.query_one("#connections", ConnectionList)
        assert "syncing" in str(listing.get_option_at_index(0).prompt)
        overview = app.screen.query_one("#overview-status")
        assert "State: syncing" in text_of(overview)
        fake._status = {"connections": {"cloud": {"state": "ok"}},
                        "tasks": {"t": {"state": "idle", "last_pass": {"finished": T0 + 60, "ok": True,
                                                                        "summary": {}}}}}
        app.poll_status()
        await wait_for(pilot, lambda: "nothing to do" in text_of(overview), what="the follow-up pass")
        assert "last changes 01-01 00:00: 11 downloaded" in text_of(overview)
        assert "up to date" in str(listing.get_option_at_index(0).prompt)
