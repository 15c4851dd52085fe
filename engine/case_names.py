"""Names on a service that takes "Report.txt" and "report.txt" for one name (`Capabilities.case_insensitive`).

Locally both can exist in one folder; the service can hold only one of them. The first in canonical order is
synced, the others are skipped with a reason (and, being skipped, nothing at their paths is changed or deleted
on either side). A remote name that differs from a local one only by case (renamed by case on the service, or
stored under another case by it) is matched to that local name, so it is neither deleted and downloaded again
nor made a second local file.

Case-only renames. Each such match is noted (`CaseMatch.diffs`): the same file or folder on both sides, spelled
differently. The state records every path as last synced, so `case_renames` (pure) tells which side changed the
spelling since: the one that no longer has the recorded spelling. The new spelling is then applied on the other
side (`apply_case_renames`: a local rename that never replaces anything, or a move on the service) and the state
rows follow, so the pass plans again with one spelling everywhere and nothing is transferred. When neither side
has the recorded spelling (both renamed, or a first pass), one spelling is kept (the local one, or the cloud's
for a download-only task) and the other side follows, with a log line. A one-way task never renames anything on
its source side. Names with local case twins are left alone (the twins rule above decides those).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.localfs import LocalEntry, LocalTree, Skipped
from engine.providers.base import Provider, ProviderError, RemoteEntry, join
from engine.state import StateDB, StateRow

TWIN_REASON = (
    "the cloud service does not tell names apart by case, and {kept} is in the same folder: only that one is synced "
    "(rename one of them to sync both)"
)
REMOTE_TWIN_REASON = "the cloud holds more than one name that differs from this one only by case; none is synced"
_CACHE = 256  # local folders whose names are kept while the remote stream is matched


@dataclass(frozen=True)
class CaseDiff:
    """One entry spelled differently on the two sides: `local` is its local path, `remote` the entry's path in
    the remote folder; only the last name differs by case (a difference higher up is a diff of its own)."""

    local: str
    remote: str
    is_dir: bool
    entry: RemoteEntry

    @property
    def remote_name(self) -> str:
        return self.remote.rpartition("/")[2]

    @property
    def local_respelled(self) -> str:
        """The local path with the last name spelled as in the cloud."""
        parent = self.local.rpartition("/")[0]
        return f"{parent}/{self.remote_name}" if parent else self.remote_name

    @property
    def remote_respelled(self) -> str:
        """The remote path with the last name spelled as here."""
        parent, name = self.remote.rpartition("/")[0], self.local.rpartition("/")[2]
        return f"{parent}/{name}" if parent else name


@dataclass(frozen=True)
class CaseRename:
    """Give the entry the spelling of the other side: on `side` ("local" or "remote"), `old` becomes `new`
    (paths of that side), and the state rows at `state_old` (and below) move to `state_new`."""

    side: str
    old: str
    new: str
    state_old: str | None
    state_new: str
    is_dir: bool
    entry: RemoteEntry
    why: str


class CaseMatch:
    def __init__(self, tree: LocalTree) -> None:
        self.tree = tree
        self._names: dict[str, tuple[dict[str, str], set[str]]] = {}
        self.diffs: list[CaseDiff] = []

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
            kept, twins = self._kept(parent)
            local = kept.get(name.casefold(), name)
            target = f"{parent}/{local}" if parent else local
            if target in given:
                on_skip(target, REMOTE_TWIN_REASON)
                continue
            given.add(target)
            if local != name and name.casefold() not in twins and entry.path.rpartition("/")[2] == name:
                self.diffs.append(CaseDiff(target, entry.path, entry.is_dir, entry))
            if target != path and entry.is_dir:
                moved[path] = target
            yield target, entry

    def _kept(self, folder: str) -> tuple[dict[str, str], set[str]]:
        """The local names of `folder` by case-folded name (the first of each in canonical order), and the
        case-folded names that more than one local name has."""
        found = self._names.get(folder)
        if found is None:
            if len(self._names) >= _CACHE:
                self._names.clear()
            try:
                listed = sorted(os.listdir(self.tree.abspath(folder)))
            except OSError:
                listed = []
            names: dict[str, str] = {}
            twins: set[str] = set()
            for n in listed:
                if names.setdefault(n.casefold(), n) != n:
                    twins.add(n.casefold())
            found = self._names[folder] = (names, twins)
        return found


def case_renames(diffs: list[CaseDiff], in_state: Callable[[str], bool], direction: str) -> list[CaseRename]:
    """Which side follows the other's spelling, for each diff (see the module's docstring); deepest first, so
    each rename changes only the last name of a path that is still as listed."""
    out: list[CaseRename] = []
    for d in diffs:
        here, there = d.local, d.local_respelled
        if in_state(here) and not in_state(there):
            if direction == "upload":
                continue  # renamed in the cloud: an upload-only task never changes local files for the cloud
            out.append(CaseRename("local", here, there, here, there, d.is_dir, d.entry, "renamed by case in the cloud"))
        elif in_state(there) and not in_state(here):
            if direction == "download":
                continue  # renamed here: a download-only task never changes the cloud
            out.append(CaseRename("remote", d.remote, d.remote_respelled, there, here, d.is_dir, d.entry,
                                  "renamed by case here"))  # fmt: skip
        elif direction == "download":
            out.append(CaseRename("local", here, there, None, there, d.is_dir, d.entry,
                                  f"spelled {d.remote_name} in the cloud and differently here; the cloud's kept"))
        else:
            out.append(CaseRename("remote", d.remote, d.remote_respelled, None, here, d.is_dir, d.entry,
                                  f"spelled {d.remote_name} in the cloud and differently here; this one kept"))
    return sorted(out, key=lambda r: r.old.count("/"), reverse=True)


def apply_case_renames(
    renames: list[CaseRename], tree: LocalTree, provider: Provider, remote_root: str, db: StateDB, task_id: int,
    log: Callable[[str, str, str], None],
) -> int:
    """Carry out `renames` in their order; the state rows follow each one that was done. Returns how many were
    done. One that cannot be done (a name in the way, the service refusing) is logged and left: the pass then
    goes on with the names matched by case, as if no rename had been seen, and nothing is lost either way.
    `log(kind, path, message)`."""
    done = 0
    for r in renames:
        try:
            if r.side == "local":
                _rename_local(tree, r)
            else:
                if not provider.capabilities.server_side_move:
                    raise ProviderError(f"{provider.kind} cannot rename on the service")
                listed = None if r.is_dir else r.entry
                provider.move(join(remote_root, r.old), join(remote_root, r.new), listed)
        except (OSError, ProviderError) as exc:
            log("error", r.new, f"not renamed from {r.old} ({r.why}): {getattr(exc, 'strerror', None) or exc}")
            continue
        if r.state_old is not None:
            renamed_here = tree.checked_path(r.new) if r.side == "local" and not r.is_dir else None
            _move_state(db, task_id, r.state_old, r.state_new, renamed_here)
        done += 1
        log("moved-local" if r.side == "local" else "moved-remote", r.new, f"from {r.old} ({r.why})")
    return done


def _rename_local(tree: LocalTree, r: CaseRename) -> None:
    """`r.old` to `r.new` on the local disk, never replacing what is at `r.new` (a file made there since the
    scan), never through a symbolic link; on a disk that ignores case the rename only changes the spelling."""
    src, dst = tree.checked_path(r.old), tree.checked_path(r.new)
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode) != r.is_dir:
        raise OSError(errno.EEXIST, "it is not what was listed any more")
    try:
        other = os.lstat(dst)
    except FileNotFoundError:
        other = None
    if other is not None and not os.path.samestat(st, other):
        raise OSError(errno.EEXIST, f"{r.new} is in the way")
    if other is not None or r.is_dir:
        os.rename(src, dst)  # the same entry (a disk that ignores case), or a folder: nothing is replaced
        return
    os.link(src, dst)  # fails if a file appeared at dst since the check: never replaced
    os.unlink(src)


def _move_state(db: StateDB, task_id: int, old: str, new: str, renamed_here: str | None = None) -> None:
    """The state rows at `old` and below, moved to `new` (new rows first: a pass killed between the two steps
    finds the old paths gone from both sides and forgets them).

    `renamed_here`: the local file this pass just renamed. The rename moved its ctime, and a ctime that moved is
    read as a possible rewrite in place when the cloud changed the file too; so the row takes the new ctime,
    if the file is still the one the row describes (same inode, size and mtime)."""
    prefix = old + "/"
    moved: list[StateRow] = []
    for row in db.rows(task_id):
        if row.path == old or row.path.startswith(prefix):
            rname = row.rname
            if rname is not None and (rname == old or rname.startswith(prefix)):
                rname = new + rname[len(old):]
            row = row._replace(path=new + row.path[len(old):], rname=rname)
            if renamed_here is not None and row.path == new:
                row = _with_ctime_of(renamed_here, row)
            moved.append(row)
    if not moved:
        return
    db.put_many(task_id, moved)
    for row in moved:
        db.delete(task_id, old + row.path[len(new):])


def _with_ctime_of(path: str, row: StateRow) -> StateRow:
    try:
        st = os.lstat(path)
    except OSError:
        return row
    if (st.st_ino, st.st_size, st.st_mtime_ns) != (row.lino, row.lsize, row.lmtime):
        return row  # not the file the row describes (changed since): left for the plan to see
    return row._replace(lctime=st.st_ctime_ns)
