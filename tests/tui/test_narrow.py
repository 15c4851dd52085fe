"""Nothing important cut off at 80x24 (issue 20 items 6 and 11): the task-list hints, the transfer rate beside a
long path, the quit key under the schedule grid, and the dry run's reasons (the highlighted row, in full, from
the first row on)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable

from tests.tui.helpers import SAMPLE_STATUS, sample_app, text_of, wait_for
from tui.screens.dry_run import DryRunScreen

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("tui-sample-folder")]


def _lines(app: Any) -> str:
    import re
    from html import unescape

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), unescape(m.group(3)).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items()))


async def ready(pilot: Any) -> None:
    await wait_for(pilot, lambda: pilot.app.status is SAMPLE_STATUS, what="first status")
    await pilot.pause()


async def test_main_screen_keeps_its_words_at_80x24() -> None:
    app = sample_app()
    app.transfers[("photos", "2025/a/very/long/folder/name/that/goes/on/and/on/city-at-night.jpg")] = {
        "direction": "up", "started": 0.0, "done": 1, "total": 4, "rate": 2048.0}
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        transfers = app.screen.query_one("#transfers", DataTable)
        await wait_for(pilot, lambda: transfers.row_count == 2, what="two transfers")
        # the rate sits before the path, so a long path cannot push it off the screen
        assert [c.label.plain for c in transfers.ordered_columns] == ["Progress", "Rate", "File"]
        assert transfers.get_row_at(0)[1] == "2.0 KiB/s"  # the long path's row: sorted first
        await pilot.press("2")
        await pilot.pause()
        assert "u unlink" in _lines(app)
        await pilot.press("4")
        await pilot.pause()
        assert "^q Quit" in _lines(app)


async def test_dry_run_describes_the_highlighted_row_in_full() -> None:
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen = DryRunScreen("photos")
        app.push_screen(screen)
        await wait_for(pilot, lambda: bool(screen.planned), what="the plan")
        detail = screen.query_one("#dry-detail")
        first = screen.planned[0]
        assert text_of(detail).startswith(f"{first[0]}: {first[1]}")  # from the start, before any key
        skip = next(i for i, p in enumerate(screen.planned) if p[0] == "skip" and "extension" in p[2])
        for _ in range(skip):
            await pilot.press("down")
        await pilot.pause()
        kind, path, reason = screen.planned[skip]
        assert text_of(detail) == f"{kind}: {path} — {reason}"
        assert reason in _lines(app).replace("\n", " ") or reason[:40] in _lines(app)


async def test_toasts_leave_dialog_buttons_visible() -> None:
    from textual.widgets._toast import Toast

    from tui.screens.connection_wizard import ConnectionDraft, ConnectionForm

    app = sample_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await ready(pilot)
        # a full-height dialog: its buttons sit at the bottom right, where toasts used to appear
        app.push_screen(ConnectionForm(app.home_path, ConnectionDraft("s3", "photos")))
        await wait_for(pilot, lambda: bool(app.screen.query("#next")), what="the form")
        app.notify("Connection 'nas-cloud' saved: a message long enough to take a few lines of the toast.")
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)), what="the toast")
        await pilot.pause()
        toast = app.screen.query(Toast).first().region
        for button in app.screen.query("Button"):
            assert not toast.overlaps(button.region), (toast, button.region)
