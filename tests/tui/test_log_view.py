"""The live log at 80x24 (issue 20 item 5): every row shows its message (a skip's reason, an info line's words)
in sight, not only after opening the row."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from engine.events import LogRecord
from tests.tui.helpers import T0, wait_for
from tests.tui.test_flows import make_app, with_connection
from tui.screens.log import LogScreen
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


async def test_log_rows_show_their_message(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    app.records.extend([
        LogRecord(T0, "t", "info", "", "pass started: 3 changes seen"),
        LogRecord(T0 + 1, "t", "skipped", "a/Thumbs.db", "a general rule: the name thumbs.db is never synced"),
    ])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="the log")
        table = app.screen.query_one("#log-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="two rows")
        # what the table draws in its 80 columns, header and the two rows
        screen_text = "\n".join("".join(seg.text for seg in table.render_line(y)) for y in range(3))
        assert "pass started: 3 changes" in screen_text
        assert "a/Thumbs.db  a general rule" in screen_text
