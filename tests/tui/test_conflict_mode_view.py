"""The connection's Settings tab says which conflict mode its passes use and why (engine.revisions), asked in a
thread worker: the answer may need the service (a bucket's versioning), and the app stays live meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine import revisions
from engine.config import Home
from engine.providers.local import LocalProvider
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app, with_connection
from tui.screens.main import MainScreen
from tui.widgets.conflict_mode import ConflictModeLine

pytestmark = pytest.mark.anyio


def line_text(app) -> str:  # type: ignore[no-untyped-def]
    lines = app.screen.query(ConflictModeLine)
    return text_of(lines.first()) if lines else ""


async def open_settings(pilot) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen), what="main screen")
    await pilot.press("3")
    await wait_for(pilot, lambda: "Conflicts:" in line_text(pilot.app), what="the conflict-mode line")


async def test_the_settings_tab_names_the_mode_and_the_providers_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    mode, why = revisions.for_connection(Home(str(home)), "cloud")
    assert mode == "copy"  # a local folder keeps no versions
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_settings(pilot)
        await wait_for(pilot, lambda: "checking" not in line_text(app), what="the answer")
        shown = " ".join(line_text(app).split())
        assert "conflict copy" in shown and " ".join(why.split())[:60] in shown


async def test_a_verified_revision_mode_is_shown_after_a_slow_check_that_does_not_freeze_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    asked, answer = threading.Event(), threading.Event()

    def keeps_revisions(_self: LocalProvider) -> str | None:
        asked.set()
        answer.wait(10)  # the service is slow to say
        return None

    monkeypatch.setattr(LocalProvider, "keeps_revisions", keeps_revisions)
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_settings(pilot)
        await wait_for(pilot, asked.is_set, what="the check to start")
        assert "checking" in line_text(app)
        await pilot.press("1")  # the app answers keys while the check waits
        await pilot.press("3")
        await wait_for(pilot, lambda: "Conflicts:" in line_text(app), what="the tab again")
        answer.set()
        await wait_for(pilot, lambda: "revision" in line_text(app), what="the answer")
        assert "saved as one revision" in line_text(app) and "keeps earlier versions" in line_text(app)


async def test_a_connection_set_to_copy_says_so_and_a_failed_check_is_not_a_guess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    h = with_connection(home, tmp_path / "cloud")
    conn = h.connection("cloud")
    conn.conflict_mode = "copy"
    h.put_connection(conn, {})
    h.save()
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_settings(pilot)
        await wait_for(pilot, lambda: "checking" not in line_text(app), what="the answer")
        assert "conflict_mode is copy" in line_text(app)

    def unreachable(_home: Home, _name: str) -> tuple[str, str]:
        raise RuntimeError("the service did not answer\nsecond line")

    monkeypatch.setattr(revisions, "for_connection", unreachable)
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_settings(pilot)
        await wait_for(pilot, lambda: "checking" not in line_text(app), what="the answer")
        assert "not checked" in line_text(app) and "did not answer" in line_text(app)
        assert "second line" not in line_text(app) and "revision" not in line_text(app)
