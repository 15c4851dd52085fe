"""A folder tree with tri-state check boxes for selective sync, loading children lazily in a thread worker.

The model is the task's list of excluded folders (the engine leaves an excluded folder and everything under it
alone on both sides). A folder is unchecked when it or an ancestor is excluded, partly checked when something
below it is excluded, and checked otherwise. Children are fetched by `lister(folder)` off the event loop and
added in chunks, behind a "loading…" placeholder (harlequin's database tree).

`FolderTree` is the one folder tree of the app: the local folder picker, the remote browser and selective sync
all use it, so they look and behave alike. Typing letters jumps to the matching folder (type-ahead), and
`reveal(path)` opens the tree down to a folder and puts the cursor on it (a picker starts where the task is).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.text import plain

CHUNK = 500
TYPEAHEAD_PAUSE = 1.0  # seconds between letters after which typing starts a new search
CHECKED, PARTIAL, UNCHECKED = "x", "-", " "


@dataclass(slots=True)
class Folder:
    path: str  # relative to the task's folder, "" for the root
    loaded: bool = False
    placeholder: bool = False


def folder_state(path: str, excluded: set[str]) -> str:
    if any(path == e or path.startswith(e + "/") for e in excluded if e):
        return UNCHECKED
    prefix = path + "/" if path else ""
    if any(e.startswith(prefix) and e != path for e in excluded):
        return PARTIAL
    return CHECKED


def toggle(path: str, excluded: set[str], siblings: Callable[[str], list[str] | None]) -> set[str]:
    """The excluded set after the user toggles `path`.

    Checking a folder inside an excluded one splits that exclusion into the folder's excluded siblings at each
    level (`siblings(parent)` gives the loaded children of a folder), so exactly that folder comes back.
    """
    out = set(excluded)
    if not path:  # the task's own folder: every child off, or (when all are off already) every child on
        children = set(siblings("") or [])
        return set() if children and children <= out else children
    state = folder_state(path, out)
    if state != UNCHECKED:
        prefix = path + "/"
        out = {e for e in out if not (e == path or e.startswith(prefix))}
        out.add(path)
        return out
    if path in out:
        out.discard(path)
        return out
    ancestor = next(e for e in sorted(out, key=len) if path.startswith(e + "/"))
    out.discard(ancestor)
    parts = path.split("/")
    depth = len(ancestor.split("/"))
    for level in range(depth, len(parts)):
        parent = "/".join(parts[:level])
        keep = parts[level]
        for name in siblings(parent) or []:
            if name != keep:
                out.add(f"{parent}/{name}" if parent else name)
    return out


def typeahead_match(names: list[str], typed: str) -> int | None:
    """The index of the first name starting with `typed` (case-insensitive), else the first containing it."""
    want = typed.casefold()
    for test in (lambda n: n.casefold().startswith(want), lambda n: want in n.casefold()):
        found = next((i for i, n in enumerate(names) if test(n)), None)
        if found is not None:
            return found
    return None


class FolderTree(Tree[Folder]):
    """A lazily loaded folder tree; `lister(folder)` returns the names of the folders inside `folder`.

    Labels show names escaped (`plain`), never as markup; a node is found by its `Folder.path`, not its label.
    """

    BINDINGS = [
        Binding("right", "open", "Open", show=False),
        Binding("left", "close", "Close", show=False),
    ]

    class Loaded(Message):
        """A folder's children arrived (tests wait for it)."""

        def __init__(self, path: str, count: int) -> None:
            super().__init__()
            self.path = path
            self.count = count

    class ListingFailed(Message):
        def __init__(self, path: str, error: str) -> None:
            super().__init__()
            self.path = path
            self.error = error

    def __init__(self, label: str, lister: Callable[[str], list[str]], *, id: str | None = None) -> None:
        super().__init__(plain(label), data=Folder(""), id=id)
        self.lister = lister
        self.auto_expand = False
        self.show_root = True
        self.guide_depth = 3
        self._typed = ""
        self._typed_at = 0.0
        self._typed_in: TreeNode[Folder] | None = None
        self._pending_jump: tuple[TreeNode[Folder], str] | None = None
        self._reveal: str | None = None

    def on_mount(self) -> None:
        self.root.expand()
        self._load(self.root)

    # -- lazy loading ----------------------------------------------------------------------------------------
    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Folder]) -> None:
        data = event.node.data
        if data is not None and not data.loaded and not data.placeholder:
            self._load(event.node)

    def _load(self, node: TreeNode[Folder]) -> None:
        assert node.data is not None
        node.data.loaded = True
        node.remove_children()
        node.add_leaf("loading…", data=Folder(node.data.path, loaded=True, placeholder=True))
        self._fetch(node, node.data.path)

    @work(thread=True, exit_on_error=False, group="check-tree")
    def _fetch(self, node: TreeNode[Folder], path: str) -> None:
        try:
            names = self.lister(path)
        except Exception as exc:  # one line on the placeholder; the tree stays usable
            self.app.call_from_thread(self._failed, node, path, str(exc) or exc.__class__.__name__)
            return
        self.app.call_from_thread(self._fill, node, path, names)

    def _failed(self, node: TreeNode[Folder], path: str, error: str) -> None:
        node.remove_children()
        node.add_leaf(plain(f"cannot list: {error}"), data=Folder(path, loaded=True, placeholder=True))
        self.post_message(self.ListingFailed(path, error))
        self._continue_reveal()

    def _fill(self, node: TreeNode[Folder], path: str, names: list[str], start: int = 0) -> None:
        if start == 0:
            node.remove_children()
        for name in names[start : start + CHUNK]:
            child_path = f"{path}/{name}" if path else name
            node.add(plain(name), data=Folder(child_path), allow_expand=True)
        if start + CHUNK < len(names):  # the rest on the next turn of the loop, so a huge folder never freezes
            self.call_later(self._fill, node, path, names, start + CHUNK)
            return
        if not names:
            node.allow_expand = False
        self.post_message(self.Loaded(path, len(names)))
        self._continue_reveal()
        if self._pending_jump is not None and self._pending_jump[0] is node:
            typed, self._pending_jump = self._pending_jump[1], None
            self.jump_to(typed, node)

    def loaded_children(self, path: str) -> list[str] | None:
        node = self._find(path)
        if node is None or node.data is None or not node.data.loaded:
            return None
        return [c.data.path.rsplit("/", 1)[-1] for c in node.children if c.data is not None and not c.data.placeholder]

    def _find(self, path: str) -> TreeNode[Folder] | None:
        node = self.root
        if not path:
            return node
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            wanted = "/".join(parts[:depth])
            node = next((c for c in node.children if c.data is not None and not c.data.placeholder
                         and c.data.path == wanted), None)
            if node is None:
                return None
        return node

    def reload_folder(self, path: str, *, then_select: str | None = None) -> None:
        """List `path` again (a folder was made in it); `then_select` puts the cursor on one of its children."""
        node = self._find(path)
        if node is not None:
            node.expand()
            self._load(node)
            if then_select is not None:
                self.reveal(then_select)

    # -- reveal: open the tree down to a folder ----------------------------------------------------------------
    def reveal(self, path: str) -> None:
        """Open every folder on the way to `path` (listing each as needed) and put the cursor on it; a part that
        does not exist leaves the cursor on the deepest folder that does."""
        self._reveal = path.strip("/")
        self._continue_reveal()

    def _continue_reveal(self) -> None:
        target = self._reveal
        if target is None:
            return
        parts = target.split("/") if target else []
        node = self.root
        for depth in range(1, len(parts) + 1):
            if node.data is None or not node.data.loaded or self._loading(node):
                if node.data is not None and not node.data.loaded:
                    node.expand()
                    self._load(node)
                return  # its listing arrives later and calls this again
            wanted = "/".join(parts[:depth])
            child = next((c for c in node.children if c.data is not None and not c.data.placeholder
                          and c.data.path == wanted), None)
            if child is None:
                break
            node.expand()
            node = child
        self._reveal = None
        self._put_cursor(node)

    @staticmethod
    def _loading(node: TreeNode[Folder]) -> bool:
        return any(c.data is not None and c.data.placeholder and str(c.label) == "loading…" for c in node.children)

    def _put_cursor(self, node: TreeNode[Folder]) -> None:
        _ = self.last_line  # lays the tree's lines out again, so the node knows its line
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)

    # -- type-ahead ----------------------------------------------------------------------------------------------
    def on_key(self, event: events.Key) -> None:
        """Letters and digits jump to the folder whose name starts with what was typed: among the children of an
        open folder under the cursor, else among the cursor's siblings (the same group until typing pauses)."""
        char = event.character
        if not char or not event.is_printable or char == " " or len(char) != 1:
            self._typed_in = None  # any other key (an arrow, opening a folder) ends the word being typed
            return
        event.stop()
        event.prevent_default()
        now = time.monotonic()
        if now - self._typed_at >= TYPEAHEAD_PAUSE or self._typed_in is None:
            self._typed, self._typed_in = "", self._group_parent()
        self._typed += char
        self._typed_at = now
        self.jump_to(self._typed, self._typed_in)

    def _group_parent(self) -> TreeNode[Folder]:
        node = self.cursor_node or self.root
        if node.is_expanded and (self._loading(node) or any(
                c.data is not None and not c.data.placeholder for c in node.children)):
            return node
        return node.parent if node.parent is not None else node

    def jump_to(self, typed: str, parent: TreeNode[Folder] | None = None) -> bool:
        """Put the cursor on the child of `parent` (default: the cursor's group) matching `typed`."""
        parent = parent or self._group_parent()
        if self._loading(parent):  # typed faster than the folder listed: jump when its names arrive
            self._pending_jump = (parent, typed)
            return False
        group = [c for c in parent.children if c.data is not None and not c.data.placeholder]
        names = [c.data.path.rsplit("/", 1)[-1] for c in group if c.data is not None]
        found = typeahead_match(names, typed)
        if found is None and len(typed) > 1:  # no name goes on like that: a new search from the last letter
            self._typed = typed = typed[-1]
            found = typeahead_match(names, typed)
        if found is None:
            self.app.bell()
            return False
        self._put_cursor(group[found])
        return True

    def action_open(self) -> None:
        if self.cursor_node is not None:
            self.cursor_node.expand()

    def action_close(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)


class CheckTree(FolderTree):
    """The selective-sync tree: space checks or unchecks the folder under the cursor."""

    BINDINGS = [
        Binding("space", "toggle_check", "Check/uncheck", id="selective.toggle"),
        Binding("enter", "toggle_node", "Open/close", show=False),
    ]

    def __init__(
        self,
        label: str,
        lister: Callable[[str], list[str]],
        excluded: list[str] | tuple[str, ...] = (),
        *,
        id: str | None = None,
    ) -> None:
        # set before Tree.__init__, which already renders the root label
        self.excluded: set[str] = {e.strip("/") for e in excluded if e.strip("/")}
        super().__init__(label, lister, id=id)

    def action_toggle_check(self) -> None:
        node = self.cursor_node
        if node is None or node.data is None or node.data.placeholder:
            return
        self.excluded = toggle(node.data.path, self.excluded, self.loaded_children)
        self._invalidate()  # Tree caches rendered lines; the check boxes of many nodes just changed

    def render_label(self, node: TreeNode[Folder], base_style: Style, style: Style) -> Text:
        label = super().render_label(node, base_style, style)
        if node.data is None or node.data.placeholder:
            label.stylize("dim italic")
            return label
        mark = folder_state(node.data.path, self.excluded)
        colour = {CHECKED: "green", PARTIAL: "yellow", UNCHECKED: "grey50"}[mark]
        return Text.assemble((f"[{mark}] ", colour), label)
