"""Every flow of the issue driven through the keyboard with Pilot, asserting on what was saved and shown."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import DataTable, Label, OptionList, RadioSet, Static

from engine.config import Connection, Home, Task
from tests.tui.helpers import FakeEngine, text_of, wait_for, write_tree
from tui.app import SkysyncApp
from tui.screens.connection_wizard import AdvancedStep, ConnectionForm, ProviderStep
from tui.screens.dialogs import ConfirmScreen, QuitScreen
from tui.screens.filters import FileFilterScreen
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.main import MainScreen
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.screens.settings import SettingsScreen
from tui.screens.task_wizard import TaskForm
from tui.widgets.check_tree import CheckTree, FolderTree
from tui.widgets.fields import Field
from tui.widgets.schedule_grid import ScheduleGrid

pytestmark = pytest.mark.anyio


@pytest.fixture
def home_dir(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def make_app(home: Path, engine: FakeEngine | None = None, *, start_engine: bool = True) -> SkysyncApp:
    fake = engine or FakeEngine({"connections": {}, "tasks": {}})
    return SkysyncApp(str(home), engine_factory=lambda _p: fake, start_engine=start_engine, steady=True,
                      hostname="test", poll_interval=60)


def with_connection(home: Path, cloud: Path, *, task: Task | None = None) -> Home:
    cloud.mkdir(exist_ok=True)
    h = Home(str(home))
    h.put_connection(Connection("cloud", "local", {"root": str(cloud)}), {})
    if task is not None:
        h.put_task(task)
    h.save()
    return Home(str(home))


async def type_into(pilot, selector: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Focus a field and fill it; the last character is typed as a key press, the rest set at once (speed)."""
    field = pilot.app.screen.query_one(selector, Field)
    field.focus()
    await pilot.pause()  # focusing selects the old text; replace it after that
    field.value = text[:-1]
    field.cursor_position = len(field.value)
    await pilot.press(text[-1] if text[-1] != "/" else "slash")


async def finish_task_wizard(pilot) -> None:  # type: ignore[no-untyped-def]
    """From the wizard's folders step: Next through the filter, then Start on the review once it is computed."""
    from textual.widgets import Button

    from tui.screens.first_pass import FirstPassReview

    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, FileFilterScreen), what="filter step")
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, FirstPassReview)
                   and not pilot.app.screen.query_one("#start", Button).disabled, what="review computed")
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen), what="wizard done")


async def test_create_local_connection_through_the_wizard(home_dir: Path, tmp_path: Path) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProviderStep), what="provider step")
        kinds = [o.id for o in app.screen.query_one(OptionList).options]
        assert kinds[0] == "local" and "s3" in kinds  # every registered kind is offered
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectionForm), what="form")
        await type_into(pilot, "#name", "mycloud")
        await type_into(pilot, "#opt-root", str(cloud / "missing"))
        await pilot.press("ctrl+n")  # Next runs the connection test first: the folder does not exist
        status = app.screen.query_one("#form-status", Label)
        await wait_for(pilot, lambda: "failed" in text_of(status), what="failed test")
        assert "does not exist" in text_of(status)
        await type_into(pilot, "#opt-root", str(cloud))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, AdvancedStep), what="advanced step")
        await type_into(pilot, "#polling", "90000")  # above 86,400: refused
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, AdvancedStep)
        assert "86,400" in text_of(app.screen.query_one("#form-status", Label))
        await type_into(pilot, "#polling", "3600")
        await type_into(pilot, "#upload-limit", "250")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="back on main")
        conn = Home(str(home_dir)).connection("mycloud")
        assert (conn.provider, conn.options["root"], conn.polling_period, conn.upload_limit) == (
            "local", str(cloud), 3600, 250)

        # the same credential again is refused with the engine's message, before any test runs
        await pilot.press("n", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectionForm), what="form again")
        await type_into(pilot, "#name", "again")
        await type_into(pilot, "#opt-root", str(cloud))
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, ConnectionForm)
        assert "already uses this credential" in text_of(app.screen.query_one("#form-status", Label))
        await pilot.press("escape")
        assert not Home(str(home_dir)).has_connection("again")


async def test_create_task_with_direction_and_an_excluded_folder(home_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    write_tree(local, {"keep/a.txt": b"a", "skip/b.txt": b"b", "zeta/c.txt": b"c"})
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
        await type_into(pilot, "#name", "docs")
        await type_into(pilot, "#local", str(local))
        await type_into(pilot, "#remote", "/docs")
        app.screen.query_one("#direction", RadioSet).focus()
        await pilot.press("down", "enter")  # "Upload local changes only"
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="selective sync step")
        tree = app.screen.query_one(CheckTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 3, what="local folders listed")
        assert [str(c.label) for c in tree.root.children] == ["keep", "skip", "zeta"]
        await pilot.press("down", "down", "space")  # the cursor starts on the root
        assert tree.excluded == {"skip"}
        await finish_task_wizard(pilot)
        await wait_for(pilot, lambda: Home(str(home_dir)).has_task("docs"), what="task saved")
    task = Home(str(home_dir)).task("docs")
    assert (task.direction, task.remote, task.exclude_folders) == ("upload", "/docs", ["skip"])
    assert task.local == str(local.resolve())


async def test_sync_now_shows_files_arriving_and_log_lines(home_dir: Path, tmp_path: Path) -> None:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    write_tree(local, {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    with_connection(home_dir, cloud, task=Task("t1", "cloud", str(local), "/", direction="upload"))
    app = make_app(home_dir, start_engine=False)  # passes on demand through engine.sync
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: (cloud / "sub" / "b.txt").exists(), what="files in the cloud")
        assert (cloud / "a.txt").read_bytes() == b"alpha"
        await wait_for(pilot, lambda: any(r.kind == "uploaded" for r in app.records), what="log records")
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="log screen")
        table = app.screen.query_one("#log-table", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 2, what="log rows")
        paths = {table.get_row_at(i)[3] for i in range(table.row_count)}
        assert {"a.txt", "sub/b.txt"} <= paths
        await type_into(pilot, "#log-search", "sub/")
        await wait_for(pilot, lambda: table.row_count == 1, what="search filter")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main again")
        await wait_for(pilot, lambda: "last pass" in text_of(app.screen.query_one("#overview-status", Static)),
                       what="last pass shown")

        # unlinking keeps the files and forgets the task's sync state, as `skysync task remove` does
        db = sqlite3.connect(Home(str(home_dir)).setting("database-path"))
        assert db.execute("SELECT COUNT(*) FROM tasks WHERE name = 't1'").fetchone()[0] == 1
        await pilot.press("2", "u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: not Home(str(home_dir)).has_task("t1"), what="unlinked")
        assert db.execute("SELECT COUNT(*) FROM tasks WHERE name = 't1'").fetchone()[0] == 0
        db.close()
    assert (cloud / "a.txt").exists() and (local / "a.txt").exists()


async def test_real_engine_syncs_and_stops_cleanly_on_quit(home_dir: Path, tmp_path: Path) -> None:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    write_tree(local, {"x.bin": b"x" * 1000})
    with_connection(home_dir, cloud, task=Task("t1", "cloud", str(local), "/"))
    app = SkysyncApp(str(home_dir), steady=True, hostname="test", poll_interval=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host.running, what="engine started")
        await pilot.press("s")
        await wait_for(pilot, lambda: (cloud / "x.bin").exists(), timeout=20, what="file synced by the engine")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="stop or keep syncing?")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.host.running, what="engine stopped")
    assert not [p for p in cloud.rglob("*") if p.name != "x.bin"]  # no temporary file left behind


async def test_edit_filters_with_live_preview(home_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    write_tree(local, {"a.tmp": b"1", "b.TMP": b"2", "c.txt": b"3", "big.iso": b"4" * 5000, "Thumbs.db": b"5"})
    with_connection(home_dir, tmp_path / "cloud", task=Task("t1", "cloud", str(local), "/"))
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "f")
        await wait_for(pilot, lambda: isinstance(app.screen, FileFilterScreen), what="filter screen")
        screen = app.screen
        await type_into(pilot, "#exts", "tmp")
        await type_into(pilot, "#names", "thumbs*")
        await type_into(pilot, "#max-size", "4K")
        # Wait for the preview of the whole "4K": the one of the half-typed "4" excludes the same two files.
        await wait_for(pilot, lambda: screen.last_preview is not None and screen.last_preview.by_rule == {
            ".tmp": 1, "thumbs*": 0, "> 4,096 bytes": 1}, what="case-sensitive preview")
        assert screen.last_preview is not None and screen.last_preview.excluded == 2
        screen.query_one("#case").focus()
        await pilot.press("space")  # case-insensitive: b.TMP and Thumbs.db now match too
        await wait_for(pilot, lambda: screen.last_preview is not None and screen.last_preview.excluded == 4,
                       what="case-insensitive preview")
        assert "4 of 5" in text_of(screen.query_one("#preview", Static))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="saved")
    task = Home(str(home_dir)).task("t1")
    assert (task.exclude_exts, task.exclude_names, task.max_size, task.case_insensitive) == (
        ["tmp"], ["thumbs*"], 4096, True)


async def test_schedule_cells_toggled_from_the_keyboard_are_saved(home_dir: Path, tmp_path: Path) -> None:
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        grid = app.screen.query_one(ScheduleGrid)
        assert grid.has_focus
        await pilot.press("space")  # Monday 00:00 off
        await pilot.press("down", "right", "shift+right", "shift+right", "shift+down", "space")  # Tue+Wed 1-3h off
        await pilot.press("down", "down", "d")  # Friday: the whole day off
        await pilot.press("h")  # hour 3 across the week: some cells are off, so all turn on
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: Home(str(home_dir)).connection("cloud").schedule != "1" * 168, what="saved")
    expected = ["1"] * 168
    expected[0] = "0"
    for day in (1, 2):
        for hour in (1, 2, 3):
            expected[day * 24 + hour] = "0"
    for hour in range(24):
        expected[4 * 24 + hour] = "0"
    for day in range(7):
        expected[day * 24 + 3] = "1"
    assert Home(str(home_dir)).connection("cloud").schedule == "".join(expected)


async def test_settings_refuse_bad_values(home_dir: Path, tmp_path: Path) -> None:
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        for bad in ("4", "100001", "lots"):
            await type_into(pilot, "#log-max-records", bad)
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, SettingsScreen)
            assert "Maximum log records" in text_of(app.screen.query_one("#form-status", Label))
        await type_into(pilot, "#log-max-records", "500")
        await type_into(pilot, "#database-path", "relative/state.db")  # the engine's own rule refuses it
        await pilot.press("ctrl+s")
        assert "absolute path" in text_of(app.screen.query_one("#form-status", Label))
        assert Home(str(home_dir)).setting("log-max-records") == 10_000  # nothing saved so far
        await type_into(pilot, "#database-path", str(tmp_path / "db" / "state.db"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="saved")
    home = Home(str(home_dir))
    assert home.setting("log-max-records") == 500
    assert home.setting("database-path") == str(tmp_path / "db" / "state.db")


async def test_unlink_task_confirms_that_files_stay(home_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    write_tree(local, {"a.txt": b"a"})
    with_connection(home_dir, tmp_path / "cloud", task=Task("t1", "cloud", str(local), "/"))
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        assert "Files stay on both sides" in text_of(app.screen.query_one(".dialog-body", Static))
        await pilot.press("n")  # cancelled: nothing changes
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main")
        assert Home(str(home_dir)).has_task("t1")
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: not Home(str(home_dir)).has_task("t1"), what="unlinked")
    assert (local / "a.txt").exists()


async def test_pause_resume_remove_connection_help_and_quit(home_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    with_connection(home_dir, tmp_path / "cloud", task=Task("t1", "cloud", str(local), "/"))
    fake = FakeEngine({"connections": {}, "tasks": {}})
    app = make_app(home_dir, fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "p")
        await wait_for(pilot, lambda: ("pause_task", ("t1",)) in fake.calls, what="engine paused the task")
        assert Home(str(home_dir)).task("t1").paused
        await pilot.press("p")
        await wait_for(pilot, lambda: ("resume_task", ("t1",)) in fake.calls, what="resumed")
        assert not Home(str(home_dir)).task("t1").paused
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        listing = text_of(app.screen.query_one("#help-list", Static))
        assert all(a in listing for a in ("New connection (wizard)", "Unlink task", "Dry-run preview", "File filter"))
        await pilot.press("escape", "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="remove confirmation")
        assert "No file is deleted" in text_of(app.screen.query_one(".dialog-body", Static))
        await pilot.press("y")
        await wait_for(pilot, lambda: not Home(str(home_dir)).has_connection("cloud"), what="removed")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: ("stop", ()) in fake.calls, what="engine stopped on quit")


async def test_encrypted_task_asks_for_a_password_then_edit_keeps_encryption(home_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    write_tree(local, {"secret.txt": b"s"})
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
        form = app.screen
        assert not form.query_one("#password", Field).display
        await type_into(pilot, "#name", "vault")
        await type_into(pilot, "#local", str(local))
        form.query_one("#encrypt").focus()
        await pilot.press("space")
        assert form.query_one("#password", Field).display
        await pilot.press("ctrl+n")
        assert "password is required" in text_of(form.query_one("#form-status", Label))
        await type_into(pilot, "#password", "correct horse")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="selective sync step")
        await finish_task_wizard(pilot)
        await wait_for(pilot, lambda: Home(str(home_dir)).has_task("vault"), what="task saved")
        assert Home(str(home_dir)).task("vault").encrypt
        assert "encryption_private_key" in Home(str(home_dir)).secrets("cloud")

        await pilot.press("2", "e")  # edit: direction changes, encryption stays and cannot be switched off
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="edit form")
        assert app.screen.query_one("#encrypt").disabled
        app.screen.query_one("#direction", RadioSet).focus()
        await pilot.press("down", "down")  # download only: arrows choose
        await pilot.press("ctrl+s")  # editing saves with Ctrl+S, as everywhere else
        await wait_for(pilot, lambda: Home(str(home_dir)).task("vault").direction == "download", what="edited")
    task = Home(str(home_dir)).task("vault")
    assert task.encrypt and task.direction == "download"


async def test_with_skysync_run_on_the_home_the_app_drives_that_engine(home_dir: Path, tmp_path: Path) -> None:
    from engine.runtime import Engine

    local, cloud = tmp_path / "local", tmp_path / "cloud"
    write_tree(local, {"a.txt": b"a", "big.bin": b"x" * (2 << 20)})
    home = with_connection(home_dir, cloud, task=Task("t1", "cloud", str(local), "/", direction="upload",
                                                      paused=True))
    conn = home.connection("cloud")
    conn.upload_limit = 512  # KiB/s: the big file takes ~4 s, long enough to be seen in flight
    home.put_connection(conn, {})
    home.save()
    daemon = Engine(str(home_dir), watch=False)  # as `skysync run` would, with its control socket
    daemon.start()
    try:
        app = SkysyncApp(str(home_dir), steady=True, hostname="test", poll_interval=0.3)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.host.remote, what="connected to the running engine")
            assert not app.host.running  # this process runs no engine of its own
            await wait_for(pilot, lambda: app.status.get("tasks", {}).get("t1", {}).get("state") == "paused",
                           what="the daemon's status")
            await pilot.press("2", "p")  # resume, through the control socket
            await wait_for(pilot, lambda: not Home(str(home_dir)).task("t1").paused, what="resumed in config")
            await pilot.press("s")
            await wait_for(pilot, lambda: ("t1", "big.bin") in app.transfers, timeout=20,
                           what="the daemon's transfer in flight, from its status")
            await wait_for(pilot, lambda: (cloud / "big.bin").exists(), timeout=20, what="the daemon synced")
            assert (cloud / "a.txt").exists()
            await wait_for(pilot, lambda: any(r.path == "a.txt" for r in app.records), what="its log lines")
            await wait_for(pilot, lambda: not app.transfers, what="the finished transfer leaves the table")
    finally:
        daemon.stop()


async def test_transfers_stream_into_the_overview_with_rates(home_dir: Path, tmp_path: Path) -> None:
    import threading

    from engine.events import PassFinished, TransferProgress

    local = tmp_path / "local"
    local.mkdir()
    with_connection(home_dir, tmp_path / "cloud", task=Task("t1", "cloud", str(local), "/"))
    app = make_app(home_dir)
    now = [100.0]
    app.clock = lambda: now[0]
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#transfers", DataTable)

        def engine_thread(*events: object) -> None:  # events arrive on engine threads, never the UI's
            t = threading.Thread(target=lambda: [app._on_engine_event(e) for e in events])  # type: ignore[arg-type]
            t.start()
            t.join()

        engine_thread(TransferProgress("t1", "big.iso", "up", 0, 4 << 20))
        now[0] = 102.0
        engine_thread(TransferProgress("t1", "big.iso", "up", 2 << 20, 4 << 20))
        await wait_for(pilot, lambda: table.row_count == 1 and "50%" in str(table.get_row_at(0)[0]),
                       what="progress row")
        assert table.get_row_at(0)[2] == "↑ big.iso" and table.get_row_at(0)[1] == "1.0 MiB/s"
        engine_thread(PassFinished("t1", {"uploaded": 1}, True))
        await wait_for(pilot, lambda: "no transfer" in str(table.get_row_at(0)[2]), what="transfers cleared")


async def test_a_huge_folder_loads_in_chunks(tmp_path: Path) -> None:
    from textual.app import App, ComposeResult

    names = [f"d{i:05}" for i in range(1_234)]
    loaded: list[int] = []

    class TreeApp(App[None]):
        def compose(self) -> ComposeResult:
            yield CheckTree("root", lambda folder: names if folder == "" else [], ["d00001"])

        def on_folder_tree_loaded(self, message: CheckTree.Loaded) -> None:
            loaded.append(message.count)

    app = TreeApp()
    async with app.run_test() as pilot:
        tree = app.query_one(CheckTree)
        await wait_for(pilot, lambda: loaded == [1_234], what="all children")
        assert len(tree.root.children) == 1_234
        assert tree.loaded_children("")[:2] == ["d00000", "d00001"]


async def test_bucket_rules_are_checked_before_any_connection_test(home_dir: Path) -> None:
    from tui.screens.connection_wizard import ConnectionDraft

    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = ConnectionForm(str(home_dir), ConnectionDraft("s3", "shop", {
            "bucket": "My_Bucket", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cret"}))
        app.push_screen(form)
        await wait_for(pilot, lambda: app.screen is form and bool(form.query("#opt-bucket")), what="form")
        assert form.query_one("#opt-secret_access_key", Field).password  # secrets are masked
        await pilot.press("ctrl+n")
        status = text_of(form.query_one("#form-status", Label))
        assert "invalid" in status and "My_Bucket" in status
        assert app.screen is form and not Home(str(home_dir)).has_connection("shop")


async def test_the_log_view_stays_bounded_and_filters_by_kind(home_dir: Path) -> None:
    from engine.events import LogRecord
    from tui.screens.log import VIEW_MAX

    app = make_app(home_dir)
    app.records.extend(LogRecord(float(i), "t1", "uploaded" if i % 2 else "error", f"f{i}") for i in range(12_000))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="log")
        table = app.screen.query_one("#log-table", DataTable)
        assert table.row_count == VIEW_MAX and table.get_row_at(VIEW_MAX - 1)[3] == "f11999"
        from textual.widgets import Select

        app.screen.query_one("#log-kind", Select).value = "error"
        await wait_for(pilot, lambda: table.row_count == VIEW_MAX and table.get_row_at(0)[3] == "f2000",
                       what="errors only")


async def test_a_failed_pass_is_reported_once_and_marks_the_task(home_dir: Path, tmp_path: Path) -> None:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    write_tree(local, {"a.txt": b"a"})
    with_connection(home_dir, cloud, task=Task("t1", "cloud", str(local), "/"))
    import shutil

    shutil.rmtree(local)  # the task's folder is gone (an unmounted disk?): the pass stops before changing anything
    app = make_app(home_dir, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.status.get("tasks", {}).get("t1", {}).get("state") == "error",
                       what="task in error")
        stopped = [n for n in app._notifications if n.title == "Pass stopped"]
        assert len(stopped) == 1 and "is missing" in stopped[0].message
        assert "is missing" in text_of(app.screen.query_one("#overview-status", Static))


async def test_connection_settings_tab_saves_polling_and_traffic_limits(home_dir: Path, tmp_path: Path) -> None:
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: bool(app.screen.query("#polling")), what="settings form")
        await type_into(pilot, "#polling", "86401")
        await pilot.press("ctrl+s")
        assert "86,400" in text_of(app.screen.query_one("#conn-settings-status", Label))
        await type_into(pilot, "#polling", "86400")
        await type_into(pilot, "#download-limit", "1024")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: Home(str(home_dir)).connection("cloud").download_limit == 1024, what="saved")
        assert Home(str(home_dir)).connection("cloud").polling_period == 86_400
        await pilot.press("escape")
        assert app.screen.query_one("#connections").has_focus


async def test_remote_browser_creates_a_folder_and_selective_sync_shows_either_side(home_dir: Path,
                                                                                   tmp_path: Path) -> None:
    from tui.screens.pickers import RemoteFolderBrowser

    local, cloud = tmp_path / "local", tmp_path / "cloud"
    write_tree(local, {"l1/a.txt": b"a"})
    write_tree(cloud, {"data/r1/x.txt": b"x", "data/r2/": b""})
    with_connection(home_dir, cloud, task=Task("t1", "cloud", str(local), "/data"))
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        browser = RemoteFolderBrowser(str(home_dir), "cloud")
        app.push_screen(browser)
        await wait_for(pilot, lambda: bool(browser.query(FolderTree)) and len(
            browser.query_one(FolderTree).root.children) == 1, what="remote root listed")
        await pilot.press("f7")
        await wait_for(pilot, lambda: bool(app.screen.query("#prompt")), what="prompt")
        await type_into(pilot, "#prompt", "new-folder")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (cloud / "new-folder").is_dir(), what="folder created")
        tree = browser.query_one(FolderTree)
        await wait_for(pilot, lambda: [str(c.label) for c in tree.root.children] == ["data", "new-folder"],
                       what="tree reloaded")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main")

        await pilot.press("2", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, SelectiveSyncScreen), what="selective sync")
        side = app.screen
        await wait_for(pilot, lambda: [str(c.label) for c in side.query_one(CheckTree).root.children] == ["l1"],
                       what="local folders")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: [str(c.label) for c in side.query_one(CheckTree).root.children] == [
            "r1", "r2"], what="remote folders")
        await pilot.press("down", "down", "space", "ctrl+s")
        await wait_for(pilot, lambda: Home(str(home_dir)).task("t1").exclude_folders == ["r2"], what="saved")


async def test_the_google_docs_option_is_offered_on_drive_for_download_only(home_dir: Path, tmp_path: Path) -> None:
    h = Home(str(home_dir))
    h.put_connection(Connection("drive", "gdrive", {"client_id": "id", "account_id": "acct"}), {})
    h.save()
    with_connection(home_dir, tmp_path / "cloud")
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = TaskForm(str(home_dir), "drive")
        app.push_screen(form)
        await wait_for(pilot, lambda: app.screen is form and bool(form.query("#convert-docs")), what="task form")
        convert = form.query_one("#convert-docs")
        assert convert.display and convert.disabled  # two-way: exported documents could never go back
        form.query_one("#direction", RadioSet).focus()
        await pilot.press("down", "down", "enter")  # "Download remote changes only"
        await wait_for(pilot, lambda: not convert.disabled, what="offered for download only")
        convert.focus()
        await pilot.press("space")
        assert form.collect().convert_google_docs
        form.query_one("#direction", RadioSet).focus()
        await pilot.press("up", "up", "enter")  # back to two-way: the option goes
        await wait_for(pilot, lambda: convert.disabled, what="withdrawn")
        assert not form.collect().convert_google_docs
        await pilot.press("escape")
        other = TaskForm(str(home_dir), "cloud")
        app.push_screen(other)
        await wait_for(pilot, lambda: app.screen is other and bool(other.query("#convert-docs")), what="local form")
        assert not other.query_one("#convert-docs").display  # not a Google Drive: not offered


async def test_a_drive_form_says_how_to_get_the_credentials(home_dir: Path) -> None:
    from tui.screens.connection_wizard import ConnectionDraft

    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = ConnectionForm(str(home_dir), ConnectionDraft(kind="dropbox"))
        app.push_screen(form)
        await wait_for(pilot, lambda: bool(form.query("#setup-note")), what="the Dropbox form")
        note = str(form.query_one("#setup-note", Static).render())
        assert "App folder" in note and "Full Dropbox" in note
        await pilot.press("escape")
        plain_form = ConnectionForm(str(home_dir), ConnectionDraft(kind="local"))
        app.push_screen(plain_form)
        await wait_for(pilot, lambda: bool(plain_form.query("#name")), what="the local form")
        assert not plain_form.query("#setup-note")  # nothing to explain: no empty line either
