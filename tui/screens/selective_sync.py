"""Selective sync: check or uncheck folders of the task; unchecked folders become the task's excluded folders."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from engine.config import Home, Task
from engine.providers.base import Provider
from tui import bridge
from tui.widgets.check_tree import CheckTree
from tui.widgets.fields import button


class SelectiveSyncScreen(ModalScreen[list[str] | None]):
    """Returns the sorted excluded folders; `r` switches between the local and the remote folder tree."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="selective.cancel"),
        Binding("ctrl+s", "save", "Save", id="selective.save"),
        Binding("r", "switch_source", "Local/remote", id="selective.source"),
    ]

    def __init__(self, home_path: str, task: Task, *, step: str = "") -> None:
        super().__init__()
        self.home_path = home_path
        self.draft = task
        self.step = step
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
            yield Label(f"Selective sync · '{self.draft.name}' {self.step}".rstrip(), classes="dialog-title")
            yield Label("", id="source", classes="hint")
            yield self._tree(self.draft.exclude_folders)
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                yield button("Save", id="save", variant="primary")
            yield Label("Space check/uncheck  →/Enter open  r local/remote  Ctrl+S save", classes="hint")

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
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        self.dismiss(sorted(self.query_one("#tree", CheckTree).excluded))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_unmount(self) -> None:
        if self._provider is not None:
            self._provider.close()


def bridge_join(base: str, folder: str) -> str:
    return "/".join(p for p in (base.strip("/"), folder.strip("/")) if p)
