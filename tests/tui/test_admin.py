"""Admin mode in the app: the 'All users' screen appears only for root talking to a system engine, and lists
every user's connections ordered by user account or by cloud type (o switches)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from engine.config import Connection, Home
from engine.runtime.control import SystemControlServer
from engine.runtime.engine import Engine
from engine.runtime.system import SystemGate
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app
from tui.app import SkysyncApp
from tui.screens.admin import AdminScreen, ordered
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio

ROWS = [
    {"name": "photos", "provider": "webdav", "owner": 65534, "user": "nobody", "tasks": ["pics"]},
    {"name": "mail", "provider": "webdav", "owner": 1, "user": "daemon", "tasks": []},
    {"name": "backup", "provider": "local", "owner": 65534, "user": "nobody", "tasks": ["b1", "b2"]},
    {"name": "alpha", "provider": "local", "owner": 0, "user": "root", "tasks": []},
]
BY_USER = ["mail", "backup", "photos", "alpha"]
BY_CLOUD_TYPE = ["backup", "alpha", "mail", "photos"]


def table_rows(screen: AdminScreen) -> list[tuple[str, str, str, str]]:
    table = screen.query_one(DataTable)
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]  # type: ignore[misc]


def test_order_by_user_or_cloud_type() -> None:
    assert [r["name"] for r in ordered(ROWS, "user")] == BY_USER
    assert [r["name"] for r in ordered(ROWS, "cloud-type")] == BY_CLOUD_TYPE


async def test_admin_screen_toggles_its_order(tmp_path: Path) -> None:
    app = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        screen = AdminScreen(str(tmp_path / "home"), "user", fetch=lambda: ROWS)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.is_mounted and screen.query_one(DataTable).row_count == 4, what="rows")
        assert [r[:3] for r in table_rows(screen)] == [
            ("daemon", "mail", "webdav"), ("nobody", "backup", "local"), ("nobody", "photos", "webdav"),
            ("root", "alpha", "local")]
        assert table_rows(screen)[1][3] == "b1, b2" and table_rows(screen)[0][3] == "(no task)"
        assert "ordered by user account" in text_of(screen.query_one("#admin-title"))
        await pilot.press("o")
        assert [r[1] for r in table_rows(screen)] == BY_CLOUD_TYPE
        assert "ordered by cloud type" in text_of(screen.query_one("#admin-title"))
        await pilot.press("o")
        assert [r[1] for r in table_rows(screen)] == BY_USER
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="back on the main screen")


async def test_admin_screen_says_why_it_has_no_list(tmp_path: Path) -> None:
    def refuse() -> list[dict[str, Any]]:
        from engine.errors import UsageError

        raise UsageError("the engine of this home (skysync run) stopped answering")

    app = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AdminScreen(str(tmp_path / "home"), fetch=refuse)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.error is not None, what="the error")
        assert "stopped answering" in text_of(screen.query_one("#admin-title"))


async def test_no_admin_key_without_a_system_engine(tmp_path: Path) -> None:
    app = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("A")
        await pilot.pause()
        assert not app.admin and not isinstance(app.screen, AdminScreen)
        assert not any("All users" in c.title for c in app.get_system_commands(app.screen))


@pytest.fixture
def system_home(tmp_path: Path) -> Iterator[str]:
    """A system engine (root) serving connections of three users; the app then opens the same home."""
    if os.geteuid() != 0:
        pytest.skip("a system engine runs as root")
    home = Home(str(tmp_path / "home"))
    for row in ROWS:
        folder = tmp_path / row["name"]
        folder.mkdir()
        options = {"root": str(folder)} if row["provider"] == "local" else {"url": "http://127.0.0.1:9/dav"}
        home.put_connection(Connection(row["name"], row["provider"], options, owner=row["owner"]), {})
    home.save()
    engine = Engine(home.path, watch=False, control=False)
    engine.start()
    server = SystemControlServer(home.path, SystemGate(engine, home.path).handle)
    server.start()
    try:
        yield home.path
    finally:
        server.stop()
        engine.stop(5.0)


async def test_root_on_a_system_engine_lists_every_users_connections(system_home: str) -> None:
    app = SkysyncApp(system_home, steady=True, hostname="test", poll_interval=60)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.admin, what="the system engine answering as admin")
            assert app.host.remote  # the system engine holds the home: the app drives it, runs none itself
            assert any("All users" in c.title for c in app.get_system_commands(app.screen))
            await pilot.press("A")
            await wait_for(pilot, lambda: isinstance(app.screen, AdminScreen), what="the admin screen")
            screen = app.screen
            assert isinstance(screen, AdminScreen)
            await wait_for(pilot, lambda: screen.query_one(DataTable).row_count == 4, what="every connection")
            assert [(r[0], r[1]) for r in table_rows(screen)] == [
                ("daemon", "mail"), ("nobody", "backup"), ("nobody", "photos"), ("root", "alpha")]
            await pilot.press("o")
            assert [(r[1], r[2]) for r in table_rows(screen)] == [
                ("backup", "local"), ("alpha", "local"), ("mail", "webdav"), ("photos", "webdav")]
    finally:
        app.host.stop()
