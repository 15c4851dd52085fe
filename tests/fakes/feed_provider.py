"""An in-process, id-based storage service with a change feed, for engine tests only.

What it is: a tree of nodes kept in memory, each with a stable id (kept across renames and moves) and a parent
id, like Google Drive, Dropbox or OneDrive. Every change appends the node's id to a journal; `changes()` reads the
journal after a cursor and reports each changed id once, with its state *now* (an upsert, or a deletion when the
node is gone or left the folder), the way those services do. It can be told to report changes with paths
(Dropbox, OneDrive) or only parent ids and names (Google Drive), to allow two entries with one name in a folder
(`duplicate_names`) and to treat names case-insensitively (`case_insensitive`: a write to "a.TXT" lands on an
existing "A.txt", whose name is kept). `expire()` makes every cursor handed out so far unknown (`CursorExpired`).
The helpers `put`, `remove`, `rename` and `add_duplicate` play another client writing to the cloud; `calls`
counts requests so tests can tell a full listing from a feed read.

What it does not cover: no network, no paging, no HTTP errors, throttling or retries, no quotas, no trash or
versions, no shared drives or shortcuts, no partial uploads; conditional writes are checked under one lock
(as a server would). It is no stand-in for a real provider's contract tests.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from engine.providers.base import (
    Capabilities,
    Change,
    Conditional,
    ContainerNotFound,
    CursorExpired,
    Expect,
    FolderNotEmpty,
    HashKind,
    MtimeMode,
    NotFound,
    Provider,
    ProviderError,
    RemoteEntry,
    order_key,
)

DUPLICATE_REASON = "another entry of the same name is in this folder (the service allows it); not synced"
ROOT_ID = "root"


@dataclass
class Node:
    id: str
    parent: str | None
    name: str
    is_dir: bool
    data: bytes = b""
    mtime: float = 0.0
    rev: int = 0
    children: list[str] = field(default_factory=list)


class FeedProvider(Provider):
    kind = "local"  # the path rules of the `local` kind (the policy needs a known kind; this fake has no rules)
    title = "feed fake"

    def __init__(self, *, paths_in_feed: bool = False, duplicate_names: bool = False,
                 case_insensitive: bool = False) -> None:
        super().__init__({})
        self.capabilities = Capabilities(
            hash_kind=HashKind.MD5, mtime_mode=MtimeMode.NATIVE, canonical_order=False, server_side_move=True,
            network=False, conditional_writes=Conditional.SERVER, conditional_deletes=Conditional.SERVER,
            ids=True, duplicate_names=duplicate_names, case_insensitive=case_insensitive, changes=True,
        )
        self.paths_in_feed = paths_in_feed
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.nodes: dict[str, Node] = {ROOT_ID: Node(ROOT_ID, None, "", True)}
        self.journal: list[str] = []  # ids in the order they changed; a cursor is a position in it
        self.epoch = 0  # expire() starts a new one: every cursor of an earlier epoch is unknown
        self.calls: Counter[str] = Counter()
        self.fail_changes_after: int | None = None  # raise inside the feed after this many changes

    # -- the tree ----------------------------------------------------------------------------------------------
    def _same(self, a: str, b: str) -> bool:
        return a.casefold() == b.casefold() if self.capabilities.case_insensitive else a == b

    def _child(self, parent: Node, name: str) -> Node | None:
        found = [self.nodes[c] for c in parent.children if self._same(self.nodes[c].name, name)]
        return found[0] if found else None

    def _find(self, path: str) -> Node | None:
        node = self.nodes[ROOT_ID]
        for part in [p for p in path.strip("/").split("/") if p]:
            if not node.is_dir:
                return None
            child = self._child(node, part)
            if child is None:
                return None
            node = child
        return node

    def _path(self, node: Node) -> str:
        parts: list[str] = []
        while node.parent is not None:
            parts.append(node.name)
            node = self.nodes[node.parent]
        return "/".join(reversed(parts))

    def _touch(self, node: Node) -> None:
        self.journal.append(node.id)

    def _new(self, parent: Node, name: str, is_dir: bool) -> Node:
        node = Node(f"id{next(self._ids)}", parent.id, name, is_dir)
        self.nodes[node.id] = node
        parent.children.append(node.id)
        self._touch(node)
        return node

    def _folder(self, path: str) -> Node:
        node = self.nodes[ROOT_ID]
        for part in [p for p in path.strip("/").split("/") if p]:
            child = self._child(node, part)
            if child is None:
                child = self._new(node, part, True)
            elif not child.is_dir:
                raise ProviderError(f"{path}: a file is in the way")
            node = child
        return node

    def _drop(self, node: Node) -> None:
        for c in list(node.children):
            self._drop(self.nodes[c])
        self.nodes[node.parent or ROOT_ID].children.remove(node.id)
        del self.nodes[node.id]
        self._touch(node)

    def _entry(self, node: Node, rel: str) -> RemoteEntry:
        if node.is_dir:
            return RemoteEntry(rel, True, id=node.id, parent_id=node.parent)
        return RemoteEntry(rel, False, len(node.data), node.mtime, hashlib.md5(node.data).hexdigest(),
                           str(node.rev), node.id, node.parent)

    # -- what another client does ----------------------------------------------------------------------------
    def put(self, path: str, data: bytes, mtime: float = 1_700_000_000.0) -> str:
        with self._lock:
            parent_path, _, name = path.strip("/").rpartition("/")
            parent = self._folder(parent_path)
            node = self._child(parent, name) or self._new(parent, name, False)
            node.data, node.mtime, node.rev = data, mtime, node.rev + 1
            self._touch(node)
            return node.id

    def add_duplicate(self, path: str, data: bytes, mtime: float = 1_700_000_000.0) -> str:
        """A second file of the same name beside `path` (the service allows it)."""
        with self._lock:
            parent_path, _, name = path.strip("/").rpartition("/")
            node = self._new(self._folder(parent_path), name, False)
            node.data, node.mtime, node.rev = data, mtime, 1
            self._touch(node)
            return node.id

    def remove(self, path: str) -> None:
        with self._lock:
            node = self._find(path)
            if node is not None:
                self._drop(node)

    def rename(self, src: str, dst: str) -> None:
        """Rename or move `src` (a file or a whole folder) to `dst`: the id stays."""
        with self._lock:
            node = self._find(src)
            if node is None:
                raise NotFound(src)
            parent_path, _, name = dst.strip("/").rpartition("/")
            parent = self._folder(parent_path)
            self.nodes[node.parent or ROOT_ID].children.remove(node.id)
            parent.children.append(node.id)
            node.parent, node.name = parent.id, name
            self._touch(node)

    def expire(self) -> None:
        self.epoch += 1

    def tree(self) -> dict[str, bytes | None]:
        with self._lock:
            return {self._path(n): (None if n.is_dir else n.data) for n in self.nodes.values() if n.parent}

    # -- the contract ----------------------------------------------------------------------------------------
    def check(self) -> None:
        self.calls["check"] += 1

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self.list_reporting(folder, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        self.calls["list"] += 1
        with self._lock:
            top = self._find(folder)
            if top is None or not top.is_dir:
                raise ContainerNotFound(f"/{folder} does not exist")
            out: list[RemoteEntry] = []

            def walk(node: Node, prefix: str) -> None:
                kids = sorted((self.nodes[c] for c in node.children), key=lambda n: (n.name, n.id))
                for i, kid in enumerate(kids):
                    rel = f"{prefix}{kid.name}"
                    if i and kids[i - 1].name == kid.name:
                        on_skip(rel, DUPLICATE_REASON)  # the first one is listed, the others are not
                        continue
                    out.append(self._entry(kid, rel))
                    if kid.is_dir:
                        walk(kid, rel + "/")

            walk(top, "")
        return iter(sorted(out, key=lambda e: order_key(e.path)))

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        self.calls["download"] += 1
        with self._lock:
            node = self._find(path)
            if node is None or node.is_dir:
                raise NotFound(f"{path}: not found")
            out.write(node.data)
            return self._entry(node, path)

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
               ) -> RemoteEntry:
        self.calls["upload"] += 1
        data = src.read()
        with self._lock:
            node = self._find(path)
            current = None if node is None or node.is_dir else self._entry(node, path)
            if expect is not None and not expect.met_by(current):
                raise expect.failed(f"writing /{path}")
            if node is not None and node.is_dir:
                raise ProviderError(f"{path}: a folder is in the way")
            self.put(path, data, mtime)
            node = self._find(path)
            assert node is not None
            return self._entry(node, self._path(node))  # the name the service keeps (case-insensitive)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        self.calls["delete"] += 1
        with self._lock:
            node = self._find(path)
            if node is None:
                return
            if expect is not None and not expect.met_by(None if node.is_dir else self._entry(node, path)):
                raise expect.failed(f"deleting /{path}")
            self._drop(node)

    def mkdir(self, path: str) -> RemoteEntry:
        self.calls["mkdir"] += 1
        with self._lock:
            node = self._folder(path)
            return self._entry(node, self._path(node))

    def rmdir(self, path: str) -> None:
        self.calls["rmdir"] += 1
        with self._lock:
            node = self._find(path)
            if node is None:
                return
            if node.children:
                raise FolderNotEmpty(f"/{path} is not empty")
            self._drop(node)

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        self.calls["move"] += 1
        with self._lock:
            node = self._find(src)
            if node is None:
                raise NotFound(f"{src}: not found")
            if self._find(dst) is not None:
                raise ProviderError(f"{dst}: already exists")
            self.rename(src, dst)
            return self._entry(node, dst)

    def folder_id(self, folder: str) -> str | None:
        node = self._find(folder)
        return node.id if node is not None else None

    def changes_start(self, folder: str) -> str:
        self.calls["changes_start"] += 1
        with self._lock:
            if self._find(folder) is None:
                raise ContainerNotFound(f"/{folder} does not exist")
            return f"{self.epoch}:{len(self.journal)}"

    def changes(self, folder: str, cursor: str) -> tuple[Iterator[Change], str]:
        self.calls["changes"] += 1
        with self._lock:
            epoch, _, position = cursor.partition(":")
            at = int(position)
            if int(epoch) != self.epoch or at > len(self.journal):
                raise CursorExpired("the cursor is no longer known")
            ids = list(dict.fromkeys(reversed(self.journal[at:])))[::-1]  # each id once, at its last change
            top = self._find(folder)
            items = [self._change(i, top) for i in ids]
            new = f"{self.epoch}:{len(self.journal)}"
        limit = self.fail_changes_after

        def feed() -> Iterator[Change]:
            for n, item in enumerate(items):
                if limit is not None and n >= limit:
                    raise ProviderError("the connection dropped while reading the changes")
                yield item

        return feed(), new

    def _change(self, rid: str, top: Node | None) -> Change:
        node = self.nodes.get(rid)
        if node is None or top is None:
            return Change(rid, None)
        walk, inside = node, False
        while walk.parent is not None:  # still below the feed's folder?
            walk = self.nodes[walk.parent]
            if walk.id == top.id:
                inside = True
                break
        if not inside:
            return Change(rid, None) if node.id != top.id else Change(rid, self._entry(node, ""), node.parent,
                                                                       node.name)
        rel = self._path(node)[len(self._path(top)) :].lstrip("/")
        entry = self._entry(node, rel)
        return Change(rid, entry, node.parent, node.name, rel if self.paths_in_feed else None)
