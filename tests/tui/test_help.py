"""Help at 80x24 (issue 20 item 14): Down and End scroll the list with the key column in sight, and a table's own
movement keys do not pad it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.containers import VerticalScroll

from engine.config import Task
from tests.tui.helpers import text_of, wait_for, write_tree
from tests.tui.test_flows import make_app, with_connection
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


async def test_help_scrolls_and_lists_only_our_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_tree(tmp_path / "local", {"a.txt": b"a"})
    with_connection(home, tmp_path / "cloud", task=Task("t", "cloud", str(tmp_path / "local"), "/"))
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("2")  # the task table has focus: its pageup/ctrl+home are not news
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        listing = text_of(app.screen.query_one("#help-list"))
        assert "Sync now" in listing
        assert "pgup" not in listing.lower() and "Page up" not in listing and "Cursor up" not in listing
        scroll = app.screen.query_one("#help-keys", VerticalScroll)
        assert scroll.max_scroll_y > 0, "the list fits: nothing to test at this size"
        await pilot.press("down")
        await pilot.pause()
        assert scroll.scroll_y > 0
        await pilot.press("end")
        await wait_for(pilot, lambda: scroll.scroll_y == scroll.max_scroll_y, what="the end")
        assert scroll.max_scroll_x == 0  # nothing to scroll sideways: the key column stays in sight


async def test_help_names_what_a_key_does_where_it_is_pressed(tmp_path: Path) -> None:
    """On the schedule grid d toggles a day; help said it opens the dry run (the screen's meaning)."""
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("4", "f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        listing = text_of(app.screen.query_one("#help-list"))
        lines = [line.split(None, 1) for line in listing.splitlines() if line.strip()]
        meanings = {parts[1] for parts in lines if len(parts) == 2 and parts[0] == "d"}
        assert meanings == {"Day"}, meanings


def test_a_long_description_goes_on_under_its_own_column() -> None:
    from tui.screens.help import key_list

    text = key_list([("s", "Sync now: the selected task (Tasks tab) or the whole connection"), ("^q", "Quit")], [], 40)
    lines = text.plain.splitlines()
    assert lines[0].startswith("s   Sync now") and all(len(line) <= 40 for line in lines)
    assert lines[1].startswith("    ") and lines[1].strip()  # the rest of the description, under it
    assert lines[-1] == "^q  Quit"
