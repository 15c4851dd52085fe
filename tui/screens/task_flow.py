"""The new-task wizard: settings → folders (selective sync) → file filter → review → the first pass.

Nothing syncs before the user has seen the review and confirmed it (a new task used to start syncing as soon
as it was saved, before a filter could exist). How the task exists meanwhile: it is saved *paused* just before
the review, whose dry run reads it exactly as a pass will; Start unpauses it and asks for a pass; Back and
Cancel remove it again (no pass ran, so there is no sync state to lose). Should the app die during the review,
the task stays paused: still nothing syncs until the user resumes it. Back on any step keeps what was typed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from engine.config import Home, Task
from engine.errors import SkysyncError
from tui import bridge
from tui.screens.filters import FileFilterScreen
from tui.screens.first_pass import FirstPassReview
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.screens.task_wizard import TaskForm
from tui.screens.wizard import BACK

STEPS = 4


def step_label(n: int) -> str:
    return f"{n}/{STEPS}"


async def new_task(main: Any, connection: str) -> None:
    """Run the wizard from the main screen `main` (its app, notifications and tabs); returns when it ends."""
    app = main.app
    home_path: str = main.home_path
    task: Task | None = None
    password: str | None = None
    step = 1
    while True:
        if step == 1:
            form = TaskForm(home_path, connection, draft=task, step=step_label(1), password=password or "")
            got = await app.push_screen_wait(form)
            if got is None:
                return
            task, password, step = got, form.password or None, 2
        elif step == 2 and task is not None:
            folders = await app.push_screen_wait(
                SelectiveSyncScreen(home_path, task, step=step_label(2), wizard=True))
            if folders is None:
                return
            if folders == BACK:
                step = 1
                continue
            task, step = replace(task, exclude_folders=list(folders)), 3
        elif step == 3 and task is not None:
            filtered = await app.push_screen_wait(FileFilterScreen(task, step=step_label(3), wizard=True))
            if filtered is None:
                return
            if filtered == BACK:
                step = 2
                continue
            task, step = filtered, 4
        elif task is not None:
            try:
                # Saved paused: the review's dry run needs the task, and no engine may start it meanwhile. An
                # encrypted task's first key is made here (RSA, a password hash): off the event loop.
                await asyncio.to_thread(bridge.add_task, Home(home_path), replace(task, paused=True), password)
            except SkysyncError as exc:
                main._failed(exc)
                step = 1
                continue
            choice = await app.push_screen_wait(FirstPassReview(home_path, task.name, step_label(4)))
            if choice is True:
                await asyncio.to_thread(bridge.set_paused, Home(home_path), task.name, False)
                main._changed(f"Task '{task.name}' created; its first pass is starting.")
                app.sync_now([task.name])
                main.action_show_tab("tasks")
                return
            # Back or cancel: the task goes again (it never synced, so nothing but its configuration is lost).
            await asyncio.to_thread(bridge.remove_task, Home(home_path), task.name)
            if choice == BACK:
                step = 3
                continue
            main._changed(f"New task '{task.name}' cancelled; nothing was synced.")
            return
