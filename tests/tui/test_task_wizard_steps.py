"""The new-task wizard's steps (issue 20 items 2 and 7): settings → folders → file filter → review, nothing synced
before the user confirms, Back keeping what was typed, Esc asking first; the edit form's keys and radio marks."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, RadioSet, Static

from engine.config import Home, Task
from engine.events import Event, PassStarted
from engine.reconcile import DELETE_LOCAL, DOWNLOAD, SKIP, UPLOAD
from tests.tui.helpers import FakeEngine, text_of, wait_for, write_tree
from tests.tui.test_flows import make_app, type_into, with_connection
from tui import bridge
from tui.app import SkysyncApp
from tui.screens.dialogs import ConfirmScreen
from tui.screens.filters import FileFilterScreen
from tui.screens.first_pass import FirstPassReview, describe, first_pass
from tui.screens.main import MainScreen
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.screens.task_wizard import MarkedRadioButton, TaskForm
from tui.widgets.check_tree import CheckTree
from tui.widgets.fields import Field

pytestmark = pytest.mark.anyio


@pytest.fixture
def home_dir(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def sample(tmp_path: Path) -> tuple[Path, Path]:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    write_tree(local, {"a.txt": b"a", "big.iso": b"i" * 5000, "skip/b.txt": b"b", "keep/c.txt": b"c",
                       "both.txt": b"local version"})
    write_tree(cloud, {"docs/remote.txt": b"r", "docs/both.txt": b"the cloud's version"})
    return local, cloud


async def settings_step(pilot, local: Path, name: str = "docs") -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
    await type_into(pilot, "#name", name)
    await type_into(pilot, "#local", str(local))
    await type_into(pilot, "#remote", "/docs")
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="folders step")


async def folders_and_filter(pilot) -> None:  # type: ignore[no-untyped-def]
    """Uncheck 'skip' in the folders step, exclude the extension iso in the filter step, reach the review."""
    app = pilot.app
    tree = app.screen.query_one(CheckTree)
    await wait_for(pilot, lambda: [str(c.label) for c in tree.root.children] == ["keep", "skip"], what="folders")
    await pilot.press("down", "down", "space")
    assert tree.excluded == {"skip"}
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, FileFilterScreen), what="filter step")
    await type_into(pilot, "#exts", "iso")
    preview = app.screen.query_one("#preview", Static)
    await wait_for(pilot, lambda: "1 of 4 local files excluded" in text_of(preview), what="live preview")
    await pilot.press("ctrl+n")
    # The screen first, then its content: on a loaded machine the screen is current before it has composed.
    await wait_for(pilot, lambda: isinstance(app.screen, FirstPassReview) and bool(app.screen.query("#review")),
                   what="review step")


def review_done(pilot) -> bool:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    return isinstance(screen, FirstPassReview) and not screen.query_one("#start", Button).disabled


async def test_nothing_syncs_before_the_review_is_confirmed(home_dir: Path, tmp_path: Path) -> None:
    """A real engine runs in the app: the new task reaches it paused, no pass starts while the review is shown,
    and Start makes the first pass, which honours the folders and filter chosen in the wizard."""
    local, cloud = sample(tmp_path)
    with_connection(home_dir, cloud)
    app = SkysyncApp(str(home_dir), steady=True, hostname="test", poll_interval=60)
    passes: list[Event] = []
    app.host.subscribe(lambda e: passes.append(e) if isinstance(e, PassStarted) else None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="engine started")
        await settings_step(pilot, local)
        await folders_and_filter(pilot)
        review = app.screen
        await wait_for(pilot, lambda: review_done(pilot), what="dry run done")
        assert isinstance(review, FirstPassReview) and review.result is not None
        counts = review.result.counts
        # a.txt, keep/ and keep/c.txt go up; both.txt is on both sides and is compared (then kept twice)
        assert (counts["uploads"], counts["downloads"], counts["deletions"]) == (3, 1, 0)
        assert counts["on both sides, compared (a conflict if they differ)"] == 1
        reasons = dict(review.result.skips)
        assert review.result.skipped == 2 and any("iso" in r for r in reasons), reasons
        words = text_of(review.query_one("#review", Static))
        assert "3  uploads" in words and "1  downloads" in words and "0  deletions" in words

        # Meanwhile the engine knows the task, holds it paused, and has run nothing.
        assert Home(str(home_dir)).task("docs").paused
        app.config_changed()
        await wait_for(pilot, lambda: app.host.status()["tasks"].get("docs", {}).get("state") == "paused",
                       what="the engine holds the new task paused")
        assert not passes and not (cloud / "docs" / "a.txt").exists() and not (local / "remote.txt").exists()

        await pilot.press("ctrl+s")  # Start syncing
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="back on main")
        await wait_for(pilot, lambda: (cloud / "docs" / "a.txt").exists() and (local / "remote.txt").exists(),
                       timeout=20, what="the first pass, after the confirmation")
        assert [e.task for e in passes][:1] == ["docs"]
        assert not Home(str(home_dir)).task("docs").paused
        await wait_for(pilot, lambda: app.host.status()["tasks"]["docs"]["state"] != "syncing", timeout=20,
                       what="pass finished")
    assert not (cloud / "docs" / "big.iso").exists() and not (cloud / "docs" / "skip").exists()
    task = Home(str(home_dir)).task("docs")
    assert (task.exclude_folders, task.exclude_exts) == (["skip"], ["iso"])


async def test_back_keeps_what_was_typed_and_cancel_removes_the_task(home_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    local, cloud = sample(tmp_path)
    with_connection(home_dir, cloud)
    fake = FakeEngine({"connections": {}, "tasks": {}})
    app = make_app(home_dir, fake)
    gate = threading.Event()  # holds the dry run, so the "computing" state can be looked at
    real_pass = bridge.run_pass

    def held_pass(*args: Any, **kwargs: Any) -> Any:
        gate.wait(10)
        return real_pass(*args, **kwargs)

    monkeypatch.setattr(bridge, "run_pass", held_pass)
    async with app.run_test(size=(80, 24)) as pilot:
        await settings_step(pilot, local)
        await folders_and_filter(pilot)
        review = app.screen
        assert "Computing" in text_of(review.query_one("#review", Static))
        await pilot.press("ctrl+s")  # nothing to confirm before the plan is known
        assert app.screen is review and review.query_one("#start", Button).disabled
        gate.set()
        await wait_for(pilot, lambda: review_done(pilot), what="dry run done")
        assert Home(str(home_dir)).has_task("docs")
        await pilot.press("ctrl+b")  # back to the filter: the saved-paused task goes again
        await wait_for(pilot, lambda: isinstance(app.screen, FileFilterScreen), what="filter step again")
        assert not Home(str(home_dir)).has_task("docs")
        assert app.screen.query_one("#exts", Field).value == "iso"
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="folders step again")
        assert app.screen.query_one(CheckTree).excluded == {"skip"}
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="settings again")
        form = app.screen
        assert (form.query_one("#name", Field).value, form.query_one("#remote", Field).value) == ("docs", "/docs")
        await pilot.press("escape")  # half-filled: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is form, what="kept")
        assert form.query_one("#local", Field).value == str(local)

        await pilot.press("ctrl+n")  # on to the review again, then cancel there
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="folders step")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, FileFilterScreen), what="filter step")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: review_done(pilot), what="review again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="wizard gone")
        assert not Home(str(home_dir)).has_task("docs")
    assert not [c for c in fake.calls if c[0] == "sync_now"]  # never asked to sync
    assert not (cloud / "docs" / "a.txt").exists()


async def test_escape_on_an_untouched_wizard_leaves_at_once(home_dir: Path, tmp_path: Path) -> None:
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="left without a question")


async def test_edit_task_saves_with_ctrl_s_only_and_arrows_choose_a_marked_direction(home_dir: Path,
                                                                                      tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    with_connection(home_dir, tmp_path / "cloud", task=Task("t1", "cloud", str(local), "/"))
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "e")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="edit form")
        form = app.screen
        marks = {str(b.id): b.render().plain[:3] for b in form.query(MarkedRadioButton)}
        assert marks == {"dir-bidirectional": "(•)", "dir-upload": "( )", "dir-download": "( )"}
        form.query_one("#direction", RadioSet).focus()
        await pilot.press("down")  # the arrow chooses: no Enter needed
        assert form.query_one("#direction", RadioSet).pressed_button.id == "dir-upload"
        assert form.query_one("#dir-upload", MarkedRadioButton).render().plain.startswith("(•)")
        await pilot.press("ctrl+n")  # not a save: there is no next step when editing
        await pilot.pause()
        assert app.screen is form and Home(str(home_dir)).task("t1").direction == "bidirectional"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: Home(str(home_dir)).task("t1").direction == "upload", what="saved")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="form closed")


def test_first_pass_counts_groups_and_skip_reasons() -> None:
    planned = [(UPLOAD, "a", ""), (UPLOAD, "b", ""), (DOWNLOAD, "c", ""), (DELETE_LOCAL, "d", ""),
               ("conflict", "e", ""), ("keep-remote-copy", "f", ""), ("compare", "g", ""),
               (SKIP, "x.iso", "excluded extension .iso"), (SKIP, "y.iso", "excluded extension .iso"),
               (SKIP, "Thumbs.db", "a general rule")]
    result = first_pass(planned, {"held-deletions": 4})
    assert result.counts == {"uploads": 2, "downloads": 1, "conflicts (both versions kept)": 2, "deletions": 1,
                             "moves": 0, "on both sides, compared (a conflict if they differ)": 1}
    assert result.skips == [("excluded extension .iso", 2), ("a general rule", 1)] and result.skipped == 3
    words = describe(result).plain
    assert "4  deletions held back" in words and "2  excluded extension .iso" in words


async def test_back_to_the_settings_keeps_the_encryption_password(home_dir: Path, tmp_path: Path) -> None:
    """Coming back to the first step must not leave an encrypted task's password field empty (the user would
    have to type it again, or would meet 'an encryption password is required' without knowing why)."""
    local, cloud = sample(tmp_path)
    with_connection(home_dir, cloud)
    app = make_app(home_dir, FakeEngine({"connections": {}, "tasks": {}}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
        await type_into(pilot, "#name", "vault")
        await type_into(pilot, "#local", str(local))
        app.screen.query_one("#encrypt").focus()
        await pilot.press("space")
        await type_into(pilot, "#password", "correct horse")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="folders step")
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="settings again")
        form = app.screen
        assert form.query_one("#password", Field).display
        assert form.query_one("#password", Field).value == "correct horse"
        await pilot.press("ctrl+n")  # accepted as it stands
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="folders step again")
