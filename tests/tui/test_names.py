"""Names from disks and services reach the screen escaped: a newline, an escape sequence, an undecodable byte or
Textual markup in a file name neither breaks the layout, nor raises, nor is interpreted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable

from engine.config import Connection, Home, Task
from engine.events import LogRecord
from engine.names import shown
from tests.tui.helpers import FakeEngine, text_of, wait_for, write_tree
from tui.app import SkysyncApp
from tui.screens.dialogs import DetailScreen
from tui.screens.dry_run import DryRunScreen
from tui.screens.log import LogScreen
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.widgets.check_tree import CheckTree

pytestmark = pytest.mark.anyio

T0 = 1_767_225_600.0
ODD = [
    "bad\udcff.txt",  # a Latin-1 byte that is not UTF-8, as os.listdir hands it over (surrogateescape)
    "two\nlines.txt",
    "[red]x[/red].txt",
    "[/b]unbalanced.txt",
    "esc\x1b[31mred.txt",
]


def screen_lines(app: SkysyncApp) -> list[str]:
    """The screen as the terminal would receive it, one string a row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def assert_printable(lines: list[str]) -> None:
    for line in lines:
        line.encode("utf-8")  # no lone surrogate: a terminal write would raise
        assert line.isprintable(), repr(line)


def shown_cell(value: object) -> str:
    """What a DataTable shows for a cell (it reads a str as markup)."""
    return value.plain if isinstance(value, Text) else Text.from_markup(str(value)).plain


def make_home(tmp_path: Path) -> Home:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    # A local name cannot hold "/", so the markup in these is what a folder name can carry.
    write_tree(local, {"[red]x/a.txt": b"a", "[bold]y/b.txt": b"b", "plain/c.txt": b"c"})
    (local / "two\nlines.txt").write_bytes(b"2")
    cloud.mkdir()
    home = Home(str(tmp_path / "home"))
    home.put_connection(Connection("cloud", "local", {"root": str(cloud)}), {})
    home.put_task(Task("t", "cloud", str(local), "/"))
    home.save()
    return home


def make_app(home: Home) -> SkysyncApp:
    status = {"connections": {"cloud": {"state": "ok", "error": None}},
              "tasks": {"t": {"state": "error", "last_pass": {"finished": T0, "ok": False, "summary": {},
                                                              "error": "reading /x\n[b]forged[/b]: failed"}}}}
    return SkysyncApp(home.path, engine_factory=lambda _p: FakeEngine(status), steady=True, hostname="test",
                      poll_interval=3600)


async def test_odd_names_in_log_records_overview_and_transfers(tmp_path: Path) -> None:
    app = make_app(make_home(tmp_path))
    records = [LogRecord(T0 + i, "t", "error", name, f"reading {name}: failed") for i, name in enumerate(ODD)]
    async with app.run_test(size=(110, 36)) as pilot:
        for record in records:  # as the engine delivers them, through its event callback
            app._on_engine_event(record)
        app.transfers[("t", "[red]up[/red]\nload.bin")] = {"direction": "up", "started": T0, "done": 1,
                                                           "total": 4, "rate": 1.0}
        await wait_for(pilot, lambda: len(app.records) == len(ODD), what="records")
        app.refresh_main()
        await pilot.pause()

        overview = text_of(app.screen.query_one("#overview-status"))
        for name in ODD[-3:]:  # the three newest problems
            assert f"t: {shown(name)}" in overview
        assert "reading /x\\x0a[b]forged[/b]: failed" in overview  # the task's error, markup and all
        transfers = app.screen.query_one("#transfers", DataTable)
        assert shown_cell(transfers.get_row_at(0)[2]) == "↑ [red]up[/red]\\x0aload.bin"
        assert_printable(screen_lines(app))

        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="log screen")
        table = app.screen.query_one("#log-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == len(ODD), what="log rows")
        # the path, then the record's message after two spaces
        assert [shown_cell(table.get_row_at(i)[3]).split("  ", 1)[0] for i in range(len(ODD))] == [
            "bad\\xff.txt", "two\\x0alines.txt", "[red]x[/red].txt", "[/b]unbalanced.txt", "esc\\x1b[31mred.txt",
        ]
        lines = screen_lines(app)
        assert_printable(lines)
        assert any("[red]x[/red].txt" in line for line in lines)

        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
        body = "\n".join(screen_lines(app))
        assert "Path:    bad\\xff.txt" in body and "reading bad\\xff.txt: failed" in body
        assert_printable(screen_lines(app))
        await pilot.press("escape")

        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="back to the log")
        await pilot.press("slash")
        app.screen.query_one("#log-search").value = "\\x0a"  # searching for what the table shows
        await wait_for(pilot, lambda: table.row_count == 1, what="search by the escaped name")
        assert shown_cell(table.get_row_at(0)[3]).startswith("two\\x0alines.txt  ")


async def test_odd_names_in_the_dry_run_preview_and_the_folder_tree(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    app = make_app(home)
    async with app.run_test(size=(110, 36)) as pilot:
        app.push_screen(DryRunScreen("t"))
        await wait_for(pilot, lambda: isinstance(app.screen, DryRunScreen) and any(
            "Would do" in text_of(s) for s in app.screen.query("#summary")), timeout=30, what="dry run")
        plan = app.screen.query_one("#plan", DataTable)
        paths = [shown_cell(plan.get_row_at(i)[1]) for i in range(plan.row_count)]
        for expected in ("[red]x/a.txt", "[bold]y/b.txt", "two\\x0alines.txt"):
            assert any(p.startswith(expected) for p in paths), paths
        assert_printable(screen_lines(app))
        await pilot.press("escape")

        app.push_screen(SelectiveSyncScreen(home.path, home.task("t")))
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen)
                       and bool(app.screen.query(CheckTree)), what="selective sync")
        tree = app.screen.query_one(CheckTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 3, what="folders listed")
        assert [c.label.plain for c in tree.root.children] == ["[bold]y", "[red]x", "plain"]
        await pilot.press("down", "down", "space")  # the cursor starts on the root
        assert tree.excluded == {"[red]x"}  # the real name, not its label
        assert tree.loaded_children("") == ["[bold]y", "[red]x", "plain"]
        assert_printable(screen_lines(app))


async def test_an_undecodable_folder_name_in_the_tree(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    os.mkdir(os.path.join(os.fsencode(home.task("t").local), b"caf\xe9"))
    app = make_app(home)
    async with app.run_test(size=(110, 36)) as pilot:
        app.push_screen(SelectiveSyncScreen(home.path, home.task("t")))
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen)
                       and bool(app.screen.query(CheckTree)), what="selective sync")
        tree = app.screen.query_one(CheckTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 4, what="folders listed")
        assert "caf\\xe9" in [c.label.plain for c in tree.root.children]
        assert_printable(screen_lines(app))
