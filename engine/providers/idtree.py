"""Folder path -> id, for the drives that address items by id (Google Drive, Box, OneDrive).

Such a service names a folder by its id, so a path is resolved from the root one name at a time and the ids found
are kept: a listing fills the cache, and whatever moves or removes a folder drops what it may have made wrong.
Making a folder holds one lock across the walk up to the parents, so two threads that need one new folder make it
once. Each service says through callbacks how it finds a folder's child by name and how it makes a folder; its
own rules (Drive's duplicate names, Box's and OneDrive's names without case, a name another client takes in the
meantime) stay in its module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.providers.base import ProviderError


@dataclass(frozen=True, slots=True)
class Child:
    """The item a folder holds under one name, as far as the path resolution needs it."""

    id: str
    is_dir: bool


# (parent id, name, what) -> the item listed under that name, or None. `what` begins any error's message.
FindChild = Callable[[str, str, str], Child | None]
# (parent id, the new folder's path, what) -> the id of the folder made there (or, where the service refuses a
# taken name, of the folder that already holds it; a file there is the callback's ProviderError).
MakeFolder = Callable[[str, str, str], str]


def _same(path: str) -> str:
    return path


class FolderIds:
    """The ids of one connection's folders by path. `fold` makes the cache key of a path (`str.casefold` where
    the service compares names without case). Without `find` (a service that refuses a taken name itself and
    reads items by path, so it only ever needs ids to make folders in), a missing folder is made at once and
    `make` answers with the folder that holds the name: one request less for every folder made."""

    def __init__(self, root: Callable[[], str], find: FindChild | None, make: MakeFolder, *,
                 fold: Callable[[str], str] = _same) -> None:
        self._root = root
        self._find = find
        self._make = make
        self._key = fold
        self._ids: dict[str, str] = {}
        self._lock = threading.RLock()  # held across the walk up to the parents

    def lookup(self, path: str) -> str | None:
        """The id of folder `path`, or None when nothing or a file is there."""
        if self._find is None:
            raise TypeError("this service's folders are looked up by path, not through FolderIds")
        path = path.strip("/")
        known = self._known(path)
        if known is not None:
            return known
        parent_path, _, name = path.rpartition("/")
        parent = self.lookup(parent_path)
        if parent is None:
            return None
        found = self._find(parent, name, f"looking up /{path}")
        if found is None or not found.is_dir:
            return None
        self._ids[self._key(path)] = found.id
        return found.id

    def ensure(self, path: str) -> str:
        """The id of folder `path`, made with its missing parents; ProviderError when a file holds a name."""
        path = path.strip("/")
        known = self._known(path)
        if known is not None:
            return known
        with self._lock:  # two threads must not both make one folder
            known = self._known(path)  # made by the thread that held the lock before
            if known is not None:
                return known
            parent_path, _, name = path.rpartition("/")
            parent = self.ensure(parent_path)
            what = f"creating folder /{path}"
            found = self._find(parent, name, what) if self._find is not None else None
            if found is not None and not found.is_dir:
                raise ProviderError(f"{what}: a file holds that name")
            folder_id = found.id if found is not None else self._make(parent, path, what)
            self._ids[self._key(path)] = folder_id
            return folder_id

    def _known(self, path: str) -> str | None:
        """The root's id, or the cached id of a folder; None: `path` is to be resolved."""
        return self._ids.get(self._key(path)) if path else self._root()

    def remember(self, path: str, folder_id: str) -> None:
        """A folder a listing saw at `path`."""
        self._ids[self._key(path.strip("/"))] = folder_id

    def forget(self, below: str | None = None) -> None:
        """Drop folder `below` and everything under it (all, without `below`): it was moved or removed, or
        someone else may have moved folders."""
        if below is None:
            self._ids.clear()
            return
        top = self._key(below.strip("/"))
        for key in [k for k in list(self._ids) if k == top or k.startswith(top + "/")]:
            self._ids.pop(key, None)
