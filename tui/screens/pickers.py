"""Folder pickers: the local folder and the connection's live remote, one screen and one tree widget for both.

A path entry on top completes with Tab (a unique match fills in, several fill their common start and are named
below); the tree under it jumps to a folder as its name is typed (type-ahead). A picker opens on the folder the
task already names (or the last one chosen), not at the top: /srv/data/photos is a few keys away.
"""

from __future__ import annotations

import os

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Tree
from textual.worker import Worker, WorkerState

from engine.config import Home
from engine.providers.base import Provider
from tui import bridge
from tui.screens.dialogs import PromptScreen
from tui.text import plain
from tui.widgets.check_tree import Folder, FolderTree
from tui.widgets.fields import Field


def split_typed(text: str) -> tuple[str, str]:
    """'/srv/da' -> ('srv', 'da'); '/srv/' -> ('srv', ''): the folder to list and the start of a name in it."""
    text = "/" + text.strip().lstrip("/")
    parent, _, partial = text.rpartition("/")
    return parent.strip("/"), partial


def complete(typed: str, names: list[str]) -> tuple[str, list[str]]:
    """What Tab makes of `typed` given the folders `names` of its parent: the completed path (a unique match
    ends with '/'), and the matches (several: the caller names them)."""
    parent, partial = split_typed(typed)
    matches = [n for n in names if n.casefold().startswith(partial.casefold())]
    base = "/" + (parent + "/" if parent else "")
    if len(matches) == 1:
        return base + matches[0] + "/", matches
    if not matches:
        return typed, matches
    common = _common_start([m.casefold() for m in matches])
    longest = matches[0][: len(common)] if len(common) > len(partial) else partial
    return base + longest, matches


def _common_start(names: list[str]) -> str:
    first, last = min(names), max(names)
    n = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:n]


def start_folder(wanted: str, last: str, home: str) -> str:
    """Where the local picker opens: the folder typed in the form (or its nearest existing parent), else the
    last folder chosen in this app, else the home folder."""
    for candidate in (wanted, last):
        path = os.path.abspath(os.path.expanduser(candidate)) if candidate.strip() else ""
        while path and not os.path.isdir(path):
            up = os.path.dirname(path)
            path = "" if up == path else up
        if path and path != "/":
            return path
    return home


class PathField(Field):
    """The picker's path entry: Tab completes the folder name being typed, Down goes to the tree."""

    BINDINGS = [
        Binding("tab", "screen.complete", "Complete", id="picker.complete", show=False),
        Binding("down", "screen.to_tree", "Tree", show=False),
    ]


class FolderPicker(ModalScreen[str | None]):
    """A path entry over a folder tree rooted at '/'; Ctrl+S (or Enter in the entry) chooses."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("ctrl+s", "choose", "Choose", id="picker.choose"),
    ]
    HINT = "Type a name to jump  →/Enter open  ← close  Tab: path entry  Ctrl+S choose  Esc cancel"

    def __init__(self, title: str, start: str) -> None:
        super().__init__()
        self.title_text = title
        self.start = "/" + start.strip().strip("/")

    def lister(self, folder: str) -> list[str]:
        """The folder names inside `folder` ('' is the root); blocks: called from worker threads."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            yield Label(self.title_text, classes="dialog-title")
            yield PathField(self.start, id="path")
            yield FolderTree("/", self.lister, id="tree")
            yield Label("", id="picker-status", classes="status")
            yield Label(self.HINT, classes="hint")

    def on_mount(self) -> None:
        tree = self.query_one("#tree", FolderTree)
        tree.reveal(self.start)
        tree.focus()

    @property
    def tree(self) -> FolderTree:
        return self.query_one("#tree", FolderTree)

    def say(self, text: str, error: bool = False) -> None:
        status = self.query_one("#picker-status", Label)
        status.update(plain(text))
        status.set_classes("status error" if error else "status")

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        # Only while the tree has focus: a highlight the path entry caused must not rewrite what is typed.
        if self.tree.has_focus and isinstance(data, Folder) and not data.placeholder:
            self.query_one("#path", Field).value = "/" + data.path

    def on_descendant_focus(self, _event: object) -> None:
        node = self.tree.cursor_node
        if self.tree.has_focus and node is not None and isinstance(node.data, Folder) and not node.data.placeholder:
            self.query_one("#path", Field).value = "/" + node.data.path

    def on_folder_tree_listing_failed(self, event: FolderTree.ListingFailed) -> None:
        self.say(f"Cannot list /{event.path}: {event.error}", error=True)

    # -- the path entry ------------------------------------------------------------------------------------------
    def action_to_tree(self) -> None:
        self.tree.focus()

    def action_complete(self) -> None:
        field = self.query_one("#path", Field)
        self._complete(field.value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="picker-complete")
    def _complete(self, typed: str) -> tuple[str, str, list[str]]:
        parent, _partial = split_typed(typed)
        completed, matches = complete(typed, self.lister(parent))
        return typed, completed, matches

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "picker-complete":
            if event.state == WorkerState.ERROR:
                self.say(f"Cannot list that folder: {event.worker.error}", error=True)
            elif event.state == WorkerState.SUCCESS and event.worker.result is not None:
                self._completed(*event.worker.result)
        elif event.worker.group == "remote-mkdir":
            self.mkdir_done(event)

    def _completed(self, typed: str, completed: str, matches: list[str]) -> None:
        field = self.query_one("#path", Field)
        if field.value != typed:
            return  # typed on meanwhile: this completion is stale
        if completed == typed:
            if not matches:
                self.say(f"No folder starting with '{split_typed(typed)[1]}' there.", error=True)
            elif len(matches) > 1:
                self.say("Matches: " + ", ".join(matches[:12]) + (" …" if len(matches) > 12 else ""))
            else:
                self.tree.focus()  # nothing left to complete: Tab moves on, as everywhere else
            return
        field.value = completed
        field.cursor_position = len(completed)
        self.say("Matches: " + ", ".join(matches[:12]) if len(matches) > 1 else "")
        self.tree.reveal(completed.rstrip("/") if len(matches) == 1 else split_typed(completed)[0])

    def on_input_submitted(self, event: Field.Submitted) -> None:
        self.choose(event.value)

    def action_choose(self) -> None:
        self.choose(self.query_one("#path", Field).value)

    def choose(self, value: str) -> None:
        self.dismiss("/" + value.strip().strip("/"))

    def mkdir_done(self, event: Worker.StateChanged) -> None:
        """Only the remote browser makes folders."""

    def action_cancel(self) -> None:
        self.dismiss(None)


class LocalFolderPicker(FolderPicker):
    """The computer's folders from '/', opened at the task's folder (or the last one chosen)."""

    def __init__(self, start: str = "", *, last: str = "") -> None:
        super().__init__("Choose the local folder", start_folder(start, last, os.path.expanduser("~")))

    def lister(self, folder: str) -> list[str]:
        return bridge.local_child_folders("/", folder)

    def choose(self, value: str) -> None:
        path = os.path.abspath(os.path.expanduser(value.strip() or "/"))
        if not os.path.isdir(path):
            self.say(f"{path} is not a folder", error=True)
            return
        self.dismiss(path)


class RemoteFolderBrowser(FolderPicker):
    """The connection's live folder tree (listed in thread workers); F7 creates a folder under the cursor and
    selects it."""

    BINDINGS = [
        *FolderPicker.BINDINGS,
        Binding("f7", "new_folder", "New folder", id="browser.new"),
    ]
    HINT = "Type a name to jump  →/Enter open  F7 new folder  Tab: path  Ctrl+S choose  Esc cancel"

    def __init__(self, home_path: str, connection: str, start: str = "/") -> None:
        super().__init__(f"Choose the remote folder on '{connection}'", start or "/")
        self.home_path = home_path
        self.connection = connection
        self._provider: Provider | None = None
        self._index: bridge.FolderIndex | None = None

    def _open(self) -> bridge.FolderIndex:
        # Runs in a worker thread: opening the provider (SDK import, auth) happens there too.
        if self._index is None:
            self._provider = bridge.connection_provider(Home(self.home_path), self.connection)
            self._index = bridge.FolderIndex(self._provider)
        return self._index

    def lister(self, folder: str) -> list[str]:
        return self._open().children(folder)

    def current(self) -> str:
        node = self.tree.cursor_node
        if node is None or not isinstance(node.data, Folder) or node.data.placeholder:
            return ""
        return node.data.path

    def action_new_folder(self) -> None:
        parent = self.current()

        def made(name: str | None) -> None:
            if name and name.strip("/"):
                self._mkdir(parent, name.strip("/"))

        self.app.push_screen(PromptScreen(f"New folder in /{parent}", "folder name"), made)

    @work(thread=True, exclusive=True, exit_on_error=False, group="remote-mkdir")
    def _mkdir(self, parent: str, name: str) -> tuple[str, str]:
        index = self._open()
        path = f"{parent}/{name}" if parent else name
        index.provider.mkdir(path)
        index.forget(parent)
        return parent, path

    def mkdir_done(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.say(f"Cannot create the folder: {event.worker.error}", error=True)
        elif event.state == WorkerState.SUCCESS:
            parent, path = event.worker.result  # type: ignore[misc]
            # The new folder is the one wanted: select it (Ctrl+S then chooses it).
            self.tree.reload_folder(parent, then_select=path)
            self.query_one("#path", Field).value = "/" + path
            self.say(f"Created /{path}")

    def on_unmount(self) -> None:
        if self._provider is not None:
            self._provider.close()

