"""Names on a service that takes "Report.txt" and "report.txt" for one name (`Capabilities.case_insensitive`).

Locally both can exist in one folder; the service can hold only one of them. The first in canonical order is
synced, the others are skipped with a reason (and, being skipped, nothing at their paths is changed or deleted
on either side). A remote name that differs from a local one only by case (renamed by case on the service, or
stored under another case by it) is matched to that local name, so it is neither deleted and downloaded again
nor made a second local file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from engine.localfs import LocalEntry, LocalTree, Skipped
from engine.providers.base import RemoteEntry

TWIN_REASON = (
    "the cloud service does not tell names apart by case, and {kept} is in the same folder: only that one is synced "
    "(rename one of them to sync both)"
)
REMOTE_TWIN_REASON = "the cloud holds more than one name that differs from this one only by case; none is synced"
_CACHE = 256  # local folders whose names are kept while the remote stream is matched


class CaseMatch:
    def __init__(self, tree: LocalTree) -> None:
        self.tree = tree
        self._names: dict[str, dict[str, str]] = {}

    def local(self, scan: Iterator[LocalEntry], on_skip: Callable[[Skipped], None]) -> Iterator[LocalEntry]:
        """The local walk, with every later case-twin of a name reported as skipped."""
        stack: list[tuple[str, dict[str, str]]] = []
        for entry in scan:
            parent, _, name = entry.path.rpartition("/")
            while stack and not (parent == stack[-1][0] or parent.startswith(stack[-1][0] + "/")) \
                    and stack[-1][0] != "":
                stack.pop()
            if not stack or stack[-1][0] != parent:
                stack.append((parent, {}))
            seen = stack[-1][1]
            kept = seen.setdefault(name.casefold(), name)
            if kept != name:
                on_skip(Skipped(entry.path, TWIN_REASON.format(kept=kept)))
            yield entry

    def remote(
        self, pairs: Iterator[tuple[str, RemoteEntry]], on_skip: Callable[[str, str], None]
    ) -> Iterator[tuple[str, RemoteEntry]]:
        """Remote (local path, entry) pairs, each renamed to the local name it matches by case where that name
        is not exactly the remote one."""
        moved: dict[str, str] = {}  # a remote folder path -> the local folder path it was matched to
        given: set[str] = set()  # local paths already paired (a second remote twin is skipped)
        for path, entry in pairs:
            parent, _, name = path.rpartition("/")
            parent = moved.get(parent, parent)
            local = self._kept(parent).get(name.casefold(), name)
            target = f"{parent}/{local}" if parent else local
            if target in given:
                on_skip(target, REMOTE_TWIN_REASON)
                continue
            given.add(target)
            if target != path and entry.is_dir:
                moved[path] = target
            yield target, entry

    def _kept(self, folder: str) -> dict[str, str]:
        """The local names of `folder` by case-folded name: the first of each in canonical order."""
        names = self._names.get(folder)
        if names is None:
            if len(self._names) >= _CACHE:
                self._names.clear()
            try:
                listed = sorted(os.listdir(self.tree.abspath(folder)))
            except OSError:
                listed = []
            names = {}
            for n in listed:
                names.setdefault(n.casefold(), n)
            self._names[folder] = names
        return names
