"""The folder pickers (issue 20 item 13): one tree widget for the local folder and the remote, a path entry that
completes with Tab, type-ahead in the tree, a local picker that opens at the task's folder (or the last one
chosen), and a remote browser that selects the folder it just created. A deep folder is a few keys away."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import Task
from tests.tui.helpers import wait_for, write_tree
from tests.tui.test_flows import make_app, type_into, with_connection
from tui.screens.main import MainScreen
from tui.screens.pickers import LocalFolderPicker, RemoteFolderBrowser, complete, split_typed, start_folder
from tui.screens.task_wizard import TaskForm
from tui.widgets.check_tree import FolderTree, typeahead_match
from tui.widgets.fields import Field

pytestmark = pytest.mark.anyio

DEEP = {"srv/backup/": b"", "srv/data/music/": b"", "srv/data/photos/2024/": b"", "srv/data/pictures/": b"",
        "srv/docs/": b"", "scratch/": b"", "etc/": b""}


def cursor_path(screen: Any) -> str | None:
    trees = screen.query(FolderTree)
    if not trees:
        return None
    node = trees.first().cursor_node
    return None if node is None or node.data is None or node.data.placeholder else "/" + node.data.path


async def open_picker(pilot: Any, picker: Any, at: str) -> None:
    pilot.app.push_screen(picker)
    await wait_for(pilot, lambda: pilot.app.screen is picker and cursor_path(picker) == at, what=f"opened at {at}")


@contextlib.asynccontextmanager
async def local_picker_at(tmp_path: Path, base: Path, chosen: list[str | None]) -> AsyncIterator[tuple[Any, Any]]:
    """The app with the DEEP tree under `base` and a local picker opened there; what it returns goes to `chosen`."""
    write_tree(base, DEEP)
    with_connection(tmp_path / "home", tmp_path / "cloud")
    app = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        picker = LocalFolderPicker(str(base))
        app.push_screen(picker, chosen.append)
        await wait_for(pilot, lambda: app.screen is picker and cursor_path(picker) == str(base), what="at base")
        yield pilot, picker


async def test_typeahead_reaches_a_deep_folder_in_a_few_keys(tmp_path: Path) -> None:
    base = tmp_path / "base"
    chosen: list[str | None] = []
    async with local_picker_at(tmp_path, base, chosen) as (pilot, picker):
        tree = picker.tree
        keys = ["right", "s", "r", "right", "d", "right", "p", "h", "ctrl+s"]
        for key in keys:  # one at a time, as a user who sees each folder open before typing into it
            await pilot.press(key)
            await wait_for(pilot, lambda: tree.cursor_node is not None and not tree._loading(tree.cursor_node),
                           what="listed")
        await wait_for(pilot, lambda: bool(chosen), what="chosen")
    assert chosen == [str(base / "srv" / "data" / "photos")]
    assert len(keys) <= 10  # it took about 25 keys from the home folder


async def test_the_path_entry_completes_with_tab(tmp_path: Path) -> None:
    base = tmp_path / "base"
    chosen: list[str | None] = []
    async with local_picker_at(tmp_path, base, chosen) as (pilot, picker):
        field = picker.query_one("#path", Field)
        await pilot.press("shift+tab")  # from the tree up to the path entry
        assert field.has_focus and field.value == str(base)
        await pilot.press("end", "slash", "s", "tab")  # two folders start with s: their common start, both named
        await wait_for(pilot, lambda: field.value == f"{base}/s", what="ambiguous: no change")
        await wait_for(pilot, lambda: "scratch, srv" in str(picker.query_one("#picker-status").content),
                       what="matches named")
        await pilot.press("r", "tab")
        await wait_for(pilot, lambda: field.value == f"{base}/srv/", what="srv completed")
        await pilot.press("d", "tab")  # data and docs: nothing longer in common than 'd'
        await wait_for(pilot, lambda: "data, docs" in str(picker.query_one("#picker-status").content),
                       what="data and docs named")
        await pilot.press("a", "tab", "p", "h", "tab")
        await wait_for(pilot, lambda: field.value == f"{base}/srv/data/photos/", what="photos completed")
        await wait_for(pilot, lambda: cursor_path(picker) == f"{base}/srv/data/photos", what="tree follows")
        assert field.has_focus  # the tree followed without taking the entry's text or focus
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(chosen), what="chosen")
    assert chosen == [str(base / "srv" / "data" / "photos")]


async def test_local_picker_opens_at_the_task_folder_or_the_last_one_chosen(tmp_path: Path) -> None:
    base = tmp_path / "base"
    write_tree(base, DEEP)
    with_connection(tmp_path / "home", tmp_path / "cloud")
    app = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
        form = app.screen
        await type_into(pilot, "#local", str(base / "srv" / "docs"))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LocalFolderPicker)
                       and cursor_path(app.screen) == str(base / "srv" / "docs"), what="at the typed folder")
        await pilot.press("up", "ctrl+s")  # srv/data, the folder above docs
        await wait_for(pilot, lambda: app.screen is form, what="back on the form")
        assert form.query_one("#local", Field).value == str(base / "srv" / "data")
        form.query_one("#local", Field).value = ""
        await pilot.press("ctrl+l")  # nothing typed: the last folder chosen, not the home folder
        await wait_for(pilot, lambda: isinstance(app.screen, LocalFolderPicker)
                       and cursor_path(app.screen) == str(base / "srv" / "data"), what="at the last folder")


async def test_remote_browser_selects_the_folder_it_created(tmp_path: Path) -> None:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    local.mkdir()
    write_tree(cloud, {"data/r1/x.txt": b"x", "data/r2/": b"", "music/": b""})
    with_connection(tmp_path / "home", cloud, task=Task("t1", "cloud", str(local), "/data"))
    app = make_app(tmp_path / "home")
    chosen: list[str | None] = []
    async with app.run_test(size=(80, 24)) as pilot:
        browser = RemoteFolderBrowser(str(tmp_path / "home"), "cloud", "/data")
        app.push_screen(browser, chosen.append)
        await wait_for(pilot, lambda: app.screen is browser and cursor_path(browser) == "/data", what="at /data")
        await pilot.press("f7")
        await wait_for(pilot, lambda: bool(app.screen.query("#prompt")), what="prompt")
        await type_into(pilot, "#prompt", "new")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (cloud / "data" / "new").is_dir(), what="folder created")
        await wait_for(pilot, lambda: app.screen is browser and cursor_path(browser) == "/data/new",
                       what="the new folder selected")
        assert browser.query_one("#path", Field).value == "/data/new"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(chosen), what="chosen")
        assert chosen == ["/data/new"]

        browser = RemoteFolderBrowser(str(tmp_path / "home"), "cloud", "/")
        app.push_screen(browser, chosen.append)
        await wait_for(pilot, lambda: app.screen is browser and browser.is_mounted and cursor_path(browser) == "/"
                       and len(browser.tree.root.children) == 2, what="remote root listed")
        await pilot.press("m")  # type-ahead works on the remote tree too
        assert cursor_path(browser) == "/music"
        await pilot.press("shift+tab", "ctrl+u", "slash", "d", "tab")
        await wait_for(pilot, lambda: browser.query_one("#path", Field).value == "/data/", what="remote completion")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")


def test_completion_typeahead_and_the_start_folder_are_plain_decisions(tmp_path: Path) -> None:
    assert split_typed("/srv/da") == ("srv", "da") and split_typed("/srv/") == ("srv", "")
    assert complete("/srv/da", ["backup", "data", "docs"]) == ("/srv/data/", ["data"])
    assert complete("/srv/d", ["data", "docs"]) == ("/srv/d", ["data", "docs"])
    assert complete("/p", ["Photos", "photos-old"]) == ("/Photos", ["Photos", "photos-old"])  # case-insensitive
    assert complete("/x", ["a"]) == ("/x", [])
    assert typeahead_match(["music", "photos", "pictures"], "pi") == 2
    assert typeahead_match(["music", "photos"], "oto") == 1  # no name starts so: one containing it
    assert typeahead_match(["music"], "z") is None
    (tmp_path / "a" / "b").mkdir(parents=True)
    home = os.path.expanduser("~")
    assert start_folder(str(tmp_path / "a" / "b" / "gone"), "", home) == str(tmp_path / "a" / "b")
    assert start_folder("", str(tmp_path / "a"), home) == str(tmp_path / "a")
    assert start_folder("", "", home) == home
