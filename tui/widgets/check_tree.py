"""A folder tree with tri-state check boxes for selective sync, loading children lazily in a thread worker.

The model is the task's list of excluded folders (the engine leaves an excluded folder and everything under it
alone on both sides). A folder is unchecked when it or an ancestor is excluded, partly checked when something
below it is excluded, and checked otherwise. Children are fetched by `lister(folder)` off the event loop and
added in chunks, behind a "loading…" placeholder (harlequin's database tree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.text import plain

CHUNK = 500
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

    def reload_folder(self, path: str) -> None:
        node = self._find(path)
        if node is not None:
            node.expand()
            self._load(node)

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
