"""Incremental passes: plan only the paths a watcher named, with their parents, exactly as a full pass would.

A running engine hears of local changes path by path (engine.runtime.watch). A pass triggered only by such
events looks at those paths and everything below them (the *roots* of its scope) and at their parent folders
(the *ancestors*): the state rows of the roots' subtrees (one range read each), one `lstat` per root and a walk
of the roots that are folders, and, for the remote side, one listing of each root's parent folder (a prefix
listing on object stores; the remote index on services with a change feed). The three streams go through the
same `reconcile.plan` as a full pass.

Why the plan is the full pass's plan for those paths: the reconcile decides a path from its own three entries,
except for three things that look further, and each is either inside the scope or sends the pass back to a
full one (`FullPassNeeded`):
- a folder's deletion waits for its subtree: a root's whole subtree is in the streams; an ancestor must be an
  unchanged folder on all three sides (an action on one means it changed: full pass);
- a rename pairs a deletion with a new path elsewhere: a scoped plan with any path gone from a side (deletions,
  restores, forgets) falls back to a full pass (the other half may be outside the scope, and the deletion
  guards need the whole tree); a new file or a move whose identity (inode, size and mtime; or size and hash)
  the state knows at a path outside the scope falls back too. So renames are never half-planned: both halves
  in the scope (watchfiles reports both) are paired as a full pass pairs them, anything else is a full pass;
- the guards count the whole tree, but they only ever hold back deletions, which a scoped plan never has.

A scoped pass never deletes anything: what it did not look at, it cannot touch. Full passes stay the safety net:
at start, after a watcher rescan (overflow, missing watches), after any trigger that is not a watcher's named
paths (polls, feeds, retries, reloads, a cancelled pass), and whenever anything above says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.localfs import LocalEntry, LocalTree, Skipped, is_temp_name
from engine.providers.base import RemoteEntry, order_key
from engine.reconcile import DOWNLOAD, MOVE_LOCAL, MOVE_REMOTE, UPLOAD, Plan
from engine.state import StateDB, StateRow

# More named paths than this and one look per path costs more than a walk: a full pass.
SCOPE_LIMIT = 2000


class FullPassNeeded(Exception):
    """The scoped pass cannot promise the full pass's plan: the caller runs a full pass (the reason says why)."""


@dataclass(frozen=True)
class Scope:
    """The roots (each with its whole subtree) and their ancestors, as task-relative paths."""

    roots: tuple[str, ...]
    ancestors: frozenset[str]
    root_set: frozenset[str]

    @classmethod
    def of(cls, paths: Iterable[str], excluded: Callable[[str], bool] = lambda p: False) -> Scope:
        """From the paths a watcher or a feed named. A root inside another root is covered by it; one inside an
        excluded folder is dropped (a full pass never looks there either); the task's folder itself means
        everything. No paths: nothing to look at (a feed that reported changes outside the task's folder)."""
        named = set()
        for raw in paths:
            path = raw.strip("/")
            if not path or path == ".":
                raise FullPassNeeded("the task's folder itself changed")
            if ".." in path.split("/"):
                raise FullPassNeeded(f"an unexpected path {path!r}")
            named.add(path)
        if len(named) > SCOPE_LIMIT:
            raise FullPassNeeded(f"{len(named)} paths changed")
        roots: list[str] = []
        for path in sorted(named, key=order_key):  # a folder sorts directly before its subtree
            if roots and path.startswith(roots[-1] + "/"):
                continue
            if any(excluded(a) for a in _ancestors(path)):
                continue
            roots.append(path)
        ancestors = frozenset(a for r in roots for a in _ancestors(r))
        return cls(tuple(roots), ancestors, frozenset(roots))

    def covers(self, path: str) -> bool:
        """Inside the scope: a root or below one (ancestors are only looked at, not planned)."""
        cut = len(path)
        while cut > 0:
            if path[:cut] in self.root_set:
                return True
            cut = path.rfind("/", 0, cut)
        return False

    def folders_to_list(self) -> list[str]:
        """The remote folders whose listings hold every root: each root's parent ("" is the task's folder), and
        none inside another (its listing holds that one's)."""
        out: list[str] = []
        for folder in sorted({r.rpartition("/")[0] for r in self.roots}, key=order_key):
            if out and (not out[-1] or folder.startswith(out[-1] + "/")):
                continue
            out.append(folder)
        return out


def _ancestors(path: str) -> list[str]:
    out = []
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        out.append(path)
        cut = path.rfind("/")
    return out


def by_path(items: Iterable, path: Callable[[object], str]) -> list:
    return sorted(items, key=lambda item: order_key(path(item)))


def state_rows(db: StateDB, task_id: int, scope: Scope, keep: Callable[[StateRow], bool]) -> list[StateRow]:
    """The state of the roots' subtrees and of the ancestors, in canonical order. Every ancestor must be a
    synced folder under its own name on the remote; otherwise the full pass decides."""
    rows: list[StateRow] = []
    for a in scope.ancestors:
        row = db.get(task_id, a)
        if row is None or not row.is_dir or row.rname:
            raise FullPassNeeded(f"the folder {a} is not a synced folder")
        rows.append(row)
    for root in scope.roots:
        row = db.get(task_id, root)
        if row is not None:
            rows.append(row)
        rows.extend(db.rows_below(task_id, root))
    return by_path((r for r in rows if keep(r)), lambda r: r.path)


def local_entries(
    tree: LocalTree,
    scope: Scope,
    *,
    on_skip: Callable[[Skipped], None],
    on_temp: Callable[[str], None],
    on_error: Callable[[str, OSError], None],
    prune: Callable[[str], bool],
) -> list[LocalEntry]:
    """The roots as the walk reports them (one lstat each; the subtree of a folder walked), and the ancestors,
    which must be plain folders the walk enters."""
    devices = tree.devices()
    out: list[LocalEntry] = []
    for a in scope.ancestors:
        entry = tree.look(a, devices)
        if entry is None or not entry.is_dir:
            raise FullPassNeeded(f"the local folder {a} is gone or not a plain folder")
        out.append(entry)
    for root in scope.roots:
        if is_temp_name(root.rpartition("/")[2]):
            tree.look(root, devices, on_temp=on_temp)
            continue
        entry = tree.look(root, devices, on_skip=on_skip, on_temp=on_temp, on_error=on_error)
        if entry is None:
            continue
        out.append(entry)
        if entry.is_dir and not prune(root):
            out.extend(tree.scan(on_skip=on_skip, on_temp=on_temp, on_error=on_error, prune=prune, below=root,
                                 devices=devices))
    return by_path(out, lambda e: e.path)


def remote_pairs(
    scope: Scope,
    listing: Callable[[str], list[tuple[str, RemoteEntry]]],
) -> list[tuple[str, RemoteEntry]]:
    """(local path, entry) of the roots' subtrees from one listing of each root's parent folder, and the
    ancestors as the folders those listings show exist. `listing(folder)` gives that folder's whole subtree as
    the full pass would pair it (names mapped, refused names reported); an empty one below the task's folder
    cannot tell the folder exists, so the full pass looks."""
    out: list[tuple[str, RemoteEntry]] = [(a, RemoteEntry(a, True)) for a in scope.ancestors]
    for folder in scope.folders_to_list():
        pairs = listing(folder)
        if folder and not pairs:
            raise FullPassNeeded(f"the remote folder {folder} is empty or gone")
        out.extend(p for p in pairs if scope.covers(p[0]))
    return by_path(out, lambda p: p[0])


def check_plan(p: Plan, scope: Scope, db: StateDB, task_id: int) -> None:
    """Raise FullPassNeeded where the scoped plan could differ from the full pass's (see the module's docstring)."""
    for a in p.actions + p.refresh:
        if not scope.covers(a.path) or (a.moved_from and not scope.covers(a.moved_from)):
            raise FullPassNeeded(f"the folder {a.path} changed")
        if a.state is not None and (a.local is None or a.remote is None):
            raise FullPassNeeded(f"{a.path} is gone from one side")
        local_new = a.kind == UPLOAD and a.state is None and a.remote is None
        if (local_new or a.kind == MOVE_REMOTE) and a.local is not None and not a.local.is_dir and a.local.ino:
            twins = db.paths_with_local_identity(task_id, a.local.ino, a.local.size, a.local.mtime_ns)
            if any(not scope.covers(t) for t in twins):
                raise FullPassNeeded(f"{a.path} may be a rename of a file outside the scope")
        remote_new = a.kind == DOWNLOAD and a.state is None and a.local is None
        rent = a.remote
        if (remote_new or a.kind == MOVE_LOCAL) and rent is not None and not rent.is_dir and rent.hash:
            twins = db.paths_with_remote_content(task_id, rent.size, rent.hash)
            if any(not scope.covers(t) for t in twins):
                raise FullPassNeeded(f"{a.path} may be a remote rename of a file outside the scope")
    for path in p.skipped:
        if not scope.covers(path):
            raise FullPassNeeded(f"the folder {path} is skipped")


def blocked_by_skips(scope: Scope, recorded: Iterable[str]) -> str | None:
    """A path the last passes skipped (a link, a name clash, an unreadable folder...) that is a root or one of
    their folders: the full pass looks again (the reason may be gone, or still hold for the whole subtree). A
    skipped path below a root is looked at again by the scoped pass itself."""
    for skipped in recorded:
        if skipped in scope.root_set or skipped in scope.ancestors:
            return skipped
    return None
