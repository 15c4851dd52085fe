"""Selective sync: check or uncheck folders of the task; unchecked folders become the task's excluded folders.

Alone (a task's `o`), Ctrl+S saves. As the new-task wizard's folders step, Ctrl+N goes on and Ctrl+B goes back.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from engine.config import Home, Task
from engine.providers.base import Provider
from tui import bridge
from tui.screens.wizard import BACK, discard_confirmed
from tui.widgets.check_tree import CheckTree
from tui.widgets.fields import button


class SelectiveSyncScreen(ModalScreen[list[str] | str | None]):
    """Returns the sorted excluded folders (BACK: the wizard's step before); Ctrl+R switches between the local
    and the remote folder tree (letters are the tree's type-ahead)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="selective.cancel"),
        Binding("ctrl+s", "save", "Save", id="selective.save"),
        Binding("ctrl+n", "next", "Next", id="selective.next"),
        Binding("ctrl+b", "back", "Back", id="selective.back"),
        Binding("ctrl+r", "switch_source", "Local/remote", id="selective.source"),
    ]

    def __init__(self, home_path: str, task: Task, *, step: str = "", wizard: bool = False) -> None:
        super().__init__()
        self.home_path = home_path
        self.draft = task
        self.step = step
        self.wizard = wizard
        self.source = "remote" if task.direction == "download" else "local"
        self._provider: Provider | None = None
        self._index: bridge.FolderIndex | None = None

    def _list(self, folder: str) -> list[str]:
        # Runs in the tree's worker thread.
        if self.source == "local":
            return bridge.local_child_folders(self.draft.local, folder)
        if self._index is None:
            self._provider = bridge.connection_provider(Home(self.home_path), self.draft.connection)
            self._index = bridge.FolderIndex(self._provider)
        return self._index.children(bridge_join(self.draft.remote_folder, folder))

    def _tree(self, excluded: list[str] | set[str]) -> CheckTree:
        label = self.draft.local if self.source == "local" else f"{self.draft.connection}:{self.draft.remote}"
        return CheckTree(label, self._list, sorted(excluded), id="tree")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            title = (f"New sync task '{self.draft.name}' · {self.step} folders" if self.wizard
                     else f"Selective sync · '{self.draft.name}'")
            yield Label(title, classes="dialog-title")
            yield Label("", id="source", classes="hint")
            yield self._tree(self.draft.exclude_folders)
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                if self.wizard:
                    yield button("Back", id="back")
                    yield button("Next", id="save", variant="primary")
                else:
                    yield button("Save", id="save", variant="primary")
            keys = "Ctrl+N next  Ctrl+B back" if self.wizard else "Ctrl+S save"
            yield Label(f"Space check/uncheck  →/Enter open  Ctrl+R local/remote  {keys}", classes="hint")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The wizard goes on with Ctrl+N and back with Ctrl+B; alone, Ctrl+S saves. Neither does the other's job.
        if action in ("next", "back"):
            return self.wizard
        if action == "save":
            return not self.wizard
        return True

    def on_mount(self) -> None:
        self._show_source()
        self.query_one("#tree", CheckTree).focus()

    def _show_source(self) -> None:
        where = "local folder" if self.source == "local" else "remote folder"
        self.query_one("#source", Label).update(f"Showing the {where}. Unchecked folders are not synced.")

    async def action_switch_source(self) -> None:
        tree = self.query_one("#tree", CheckTree)
        excluded = tree.excluded
        self.source = "remote" if self.source == "local" else "local"
        await tree.remove()
        new = self._tree(excluded)
        await self.query_one(Vertical).mount(new, after=self.query_one("#source"))
        new.focus()
        self._show_source()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"save": self.action_save, "back": self.action_back}.get(str(event.button.id), self.action_cancel)()

    def action_save(self) -> None:
        self.dismiss(sorted(self.query_one("#tree", CheckTree).excluded))

    def action_next(self) -> None:
        self.action_save()

    def action_back(self) -> None:
        self.dismiss(BACK)

    @work(exclusive=True, group="discard")
    async def action_cancel(self) -> None:
        # In the wizard the steps before hold typed work; alone, only the check boxes changed here.
        changed = self.wizard or set(self.query_one("#tree", CheckTree).excluded) != set(self.draft.exclude_folders)
        what = "the new task" if self.wizard else "the folder changes"
        if changed and not await discard_confirmed(self.app, what):
            return
        self.dismiss(None)

    def on_unmount(self) -> None:
        if self._provider is not None:
            self._provider.close()


def bridge_join(base: str, folder: str) -> str:
    return "/".join(p for p in (base.strip("/"), folder.strip("/")) if p)
