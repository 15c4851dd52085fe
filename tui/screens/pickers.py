"""Folder pickers: a local directory tree, and a browser of the live remote that can create folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Label, Tree
from textual.worker import Worker, WorkerState

from engine.config import Home
from engine.providers.base import Provider
from tui import bridge
from tui.screens.dialogs import PromptScreen
from tui.text import plain
from tui.widgets.check_tree import Folder, FolderTree
from tui.widgets.fields import Field


class FolderOnlyTree(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if p.is_dir() and not p.name.startswith(".")]


class LocalFolderPicker(ModalScreen[str | None]):
    """Type a path, or walk the tree; Enter in the path field (or Ctrl+S) chooses it."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("ctrl+s", "choose", "Choose", id="picker.choose"),
    ]

    def __init__(self, start: str = "") -> None:
        super().__init__()
        self.start = os.path.expanduser(start) if start and os.path.isdir(os.path.expanduser(start)) else ""

    def compose(self) -> ComposeResult:
        root = self.start or os.path.expanduser("~")
        with Vertical(classes="dialog tall"):
            yield Label("Choose the local folder", classes="dialog-title")
            yield Field(root, id="path")
            yield FolderOnlyTree(root, id="tree")
            yield Label("", id="picker-status", classes="status")
            yield Label("↑↓ move  →/Enter open  Backspace: parent  Ctrl+S choose  Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#tree", FolderOnlyTree).focus()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        if data is not None and hasattr(data, "path"):
            self.query_one("#path", Field).value = str(data.path)

    def key_backspace(self) -> None:
        tree = self.query_one("#tree", FolderOnlyTree)
        if tree.has_focus:
            parent = Path(str(tree.path)).parent
            tree.path = parent
            self.query_one("#path", Field).value = str(parent)

    def on_input_submitted(self, event: Field.Submitted) -> None:
        path = os.path.expanduser(event.value.strip())
        if os.path.isdir(path):
            self.dismiss(os.path.abspath(path))
        else:
            self.query_one("#picker-status", Label).update(plain(f"{path} is not a folder"))

    def action_choose(self) -> None:
        self.on_input_submitted(Field.Submitted(self.query_one("#path", Field), self.query_one("#path", Field).value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class RemoteFolderBrowser(ModalScreen[str | None]):
    """The connection's live folder tree (listed in thread workers); `n` creates a folder under the cursor."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="browser.cancel"),
        Binding("ctrl+s", "choose", "Choose", id="browser.choose"),
        Binding("n", "new_folder", "New folder", id="browser.new"),
    ]

    def __init__(self, home_path: str, connection: str, start: str = "/") -> None:
        super().__init__()
        self.home_path = home_path
        self.connection = connection
        self.start = start
        self._provider: Provider | None = None
        self._index: bridge.FolderIndex | None = None

    def _open(self) -> bridge.FolderIndex:
        # Runs in a worker thread: opening the provider (SDK import, auth) happens there too.
        if self._index is None:
            self._provider = bridge.connection_provider(Home(self.home_path), self.connection)
            self._index = bridge.FolderIndex(self._provider)
        return self._index

    def _lister(self, folder: str) -> list[str]:
        return self._open().children(folder)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            yield Label(f"Choose the remote folder on '{self.connection}'", classes="dialog-title")
            yield Field(self.start or "/", id="path")
            yield FolderTree("/", self._lister, id="tree")
            yield Label("", id="picker-status", classes="status")
            yield Label("↑↓ move  →/Enter open  n new folder  Ctrl+S choose  Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#tree", FolderTree).focus()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        if isinstance(data, Folder) and not data.placeholder:
            self.query_one("#path", Field).value = "/" + data.path

    def on_folder_tree_listing_failed(self, event: FolderTree.ListingFailed) -> None:
        self.query_one("#picker-status", Label).update(plain(f"Cannot list /{event.path}: {event.error}"))

    def current(self) -> str:
        node = self.query_one("#tree", FolderTree).cursor_node
        if node is None or not isinstance(node.data, Folder):
            return ""
        return node.data.path

    def action_new_folder(self) -> None:
        parent = self.current()

        def made(name: str | None) -> None:
            if name:
                self._mkdir(parent, name.strip("/"))

        self.app.push_screen(PromptScreen(f"New folder in /{parent}", "folder name"), made)

    @work(thread=True, exclusive=True, exit_on_error=False, group="remote-mkdir")
    def _mkdir(self, parent: str, name: str) -> str:
        index = self._open()
        path = f"{parent}/{name}" if parent else name
        index.provider.mkdir(path)
        index.forget(parent)
        return parent

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "remote-mkdir":
            return
        if event.state == WorkerState.ERROR:
            self.query_one("#picker-status", Label).update(plain(f"Cannot create the folder: {event.worker.error}"))
        elif event.state == WorkerState.SUCCESS:
            self.query_one("#tree", FolderTree).reload_folder(str(event.worker.result))

    def on_input_submitted(self, event: Field.Submitted) -> None:
        self.dismiss("/" + event.value.strip().strip("/"))

    def action_choose(self) -> None:
        path = self.query_one("#path", Field).value
        self.dismiss("/" + path.strip().strip("/"))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_unmount(self) -> None:
        if self._provider is not None:
            self._provider.close()
