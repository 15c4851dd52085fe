"""Every key a screen advertises (its BINDINGS), pressed on every screen, the sign-in screens included: none may
raise. A fresh copy of each screen takes each key, so one key's dismissal never hides another key's crash; an
exception inside the app fails the test when `run_test` ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding
from textual.screen import Screen

from engine.config import Task
from tests.tui.helpers import wait_for, write_tree
from tests.tui.test_flows import make_app, with_connection
from tests.tui.test_snapshots import CODE_FLOW, DEVICE_FLOW, DEVICE_SPEC, SPEC
from tui.screens.admin import AdminScreen
from tui.screens.connection_wizard import AdvancedStep, ConnectionDraft, ConnectionForm, ProviderStep
from tui.screens.dialogs import ConfirmScreen, DetailScreen, PromptScreen, QuitScreen
from tui.screens.dry_run import DryRunScreen
from tui.screens.filters import FileFilterScreen
from tui.screens.first_pass import FirstPassReview
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.main import MainScreen
from tui.screens.pickers import LocalFolderPicker, RemoteFolderBrowser
from tui.screens.rclone_import import RcloneImportScreen
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.screens.settings import SettingsScreen
from tui.screens.signin import DriveStep, SignInScreen
from tui.screens.task_wizard import TaskForm

pytestmark = pytest.mark.anyio


def keys_of(screen_class: type[Screen]) -> list[str]:
    keys: list[str] = []
    for binding in screen_class.BINDINGS:
        if isinstance(binding, Binding):
            keys += [k.strip() for k in binding.key.split(",")]
    return keys


def screens(home: str, task: Task, local: str) -> dict[str, Callable[[], Screen]]:
    return {
        "provider": ProviderStep,
        "form-local": lambda: ConnectionForm(home, ConnectionDraft("local")),
        "form-gdrive": lambda: ConnectionForm(home, ConnectionDraft("gdrive", "g", {"client_id": "c"})),
        "advanced-gdrive": lambda: AdvancedStep(ConnectionDraft("gdrive", "g")),
        "signin-code": lambda: SignInScreen("t", lambda signin: signin(SPEC), flow=CODE_FLOW, can_go_back=True),
        "signin-device": lambda: SignInScreen("t", lambda signin: signin(DEVICE_SPEC), flow=DEVICE_FLOW),
        "signin-token": lambda: SignInScreen("t", lambda _signin: "read", signs_in=False),
        "drive": lambda: DriveStep("t", lambda: [("d1", "Team")], lambda drive_id: drive_id),
        "confirm": lambda: ConfirmScreen("t", "body"),
        "prompt": lambda: PromptScreen("t"),
        "detail": lambda: DetailScreen("t", "body"),
        "quit": lambda: QuitScreen(1, "systemd is not available here (no systemctl)"),
        "help": lambda: HelpScreen([("n", "New")]),
        "log": lambda: LogScreen([task.name]),
        "settings": lambda: SettingsScreen(home),
        "task-form": lambda: TaskForm(home, "cloud"),
        "task-form-edit": lambda: TaskForm(home, "cloud", task),
        "wizard-folders": lambda: SelectiveSyncScreen(home, task, step="2/4", wizard=True),
        "wizard-filter": lambda: FileFilterScreen(task, step="3/4", wizard=True),
        "wizard-review": lambda: FirstPassReview(home, task.name),
        "local-picker": lambda: LocalFolderPicker(local),
        "remote-browser": lambda: RemoteFolderBrowser(home, "cloud"),
        "selective-sync": lambda: SelectiveSyncScreen(home, task),
        "filters": lambda: FileFilterScreen(task),
        "dry-run": lambda: DryRunScreen(task.name),
        "rclone-import": lambda: RcloneImportScreen(home, str(Path(home) / "no-rclone.conf")),
        "admin": lambda: AdminScreen(home, fetch=lambda: [
            {"name": "cloud", "provider": "local", "owner": 0, "user": "root", "tasks": [task.name]}]),
    }


async def back_to_main(pilot: Any) -> None:
    app = pilot.app
    for _ in range(6):
        if isinstance(app.screen, MainScreen):
            return
        if len(app.screen_stack) > 1:
            await app.pop_screen()
        await pilot.pause()
    assert isinstance(app.screen, MainScreen), app.screen_stack


SCREENS = ["main", "provider", "form-local", "form-gdrive", "advanced-gdrive", "signin-code", "signin-device",
           "signin-token", "drive", "confirm", "prompt", "detail", "quit", "help", "log", "settings", "task-form",
           "task-form-edit", "wizard-folders", "wizard-filter", "wizard-review",
           "local-picker", "remote-browser", "selective-sync", "filters", "dry-run", "admin",
           "rclone-import"]


@pytest.mark.parametrize("name", SCREENS)
async def test_every_advertised_key(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    local = tmp_path / "local"
    write_tree(local, {"a/b.txt": b"b"})
    task = Task("t", "cloud", str(local), "/")
    with_connection(home, tmp_path / "cloud", task=task)
    app = make_app(home)
    pressed = 0
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        if name == "main":
            for key in keys_of(MainScreen):
                await pilot.press(key)
                await pilot.pause()
                for _ in range(3):  # a flow's modal: leave it the way a user would
                    if isinstance(app.screen, MainScreen):
                        break
                    await pilot.press("escape")
                    await pilot.pause()
                await back_to_main(pilot)
                pressed += 1
        else:
            make = screens(str(home), task, str(local))[name]
            for key in keys_of(type(make())):
                app.push_screen(make())
                await pilot.pause()
                await pilot.press(key)
                await pilot.pause()
                assert app.is_running, f"{name}: {key}"
                await back_to_main(pilot)
                pressed += 1
    assert pressed == len(keys_of(MainScreen if name == "main" else type(make())))


def test_the_list_covers_every_screen() -> None:
    assert set(SCREENS) == {"main", *screens("/nowhere", Task("t", "c", "/", "/"), "/")}
