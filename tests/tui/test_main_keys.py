"""Main-screen keys at 80x24 (issue 20 items 3 and 14): digits switch tabs and never type into a form; the
Schedule tab cannot be edited with no connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app, with_connection
from tui.screens.main import MainScreen
from tui.screens.settings import SettingsScreen
from tui.widgets.fields import Field
from tui.widgets.schedule_grid import ScheduleGrid

pytestmark = pytest.mark.anyio


async def test_digits_switch_tabs_without_typing_into_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        tabs = app.screen.query_one("#tabs", TabbedContent)
        await pilot.press("3")
        await wait_for(pilot, lambda: tabs.active == "settings", what="settings tab")
        polling = app.screen.query_one("#polling", Field).value
        await pilot.press("4")
        await wait_for(pilot, lambda: tabs.active == "schedule", what="schedule tab")
        assert app.screen.query_one("#polling", Field).value == polling
        await pilot.press("3", "1")
        await wait_for(pilot, lambda: tabs.active == "overview", what="overview tab")
        assert app.screen.query_one("#polling", Field).value == polling


async def test_schedule_is_not_editable_without_a_connection(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("4")
        grid = app.screen.query_one("#schedule-grid", ScheduleGrid)
        before = grid.value
        await pilot.press("space", "a", "ctrl+s")
        await pilot.pause()
        assert grid.disabled and grid.value == before
        assert "No connection" in text_of(app.screen.query_one("#schedule-status"))


async def test_one_name_per_settings(tmp_path: Path) -> None:
    """The app-wide settings and a connection's Settings tab were both called "Settings"."""
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="app settings")
        assert text_of(app.screen.query_one(".dialog-title")).startswith("App settings")
