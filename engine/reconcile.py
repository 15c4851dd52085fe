"""The decision: (last synced state, local listing, remote listing, task settings) -> a plan. Pure.

Three sorted streams are merged by the canonical order key, so memory holds the plan (what changes), never
the tree. Each path is classified per side against the last synced state, then one table per sync direction
says what to do. Folder deletions wait until the folder's subtree has been seen: a folder is only removed on a
side where nothing inside it survives (a changed file, a skipped file, an excluded folder).

Renames are found last, among the planned actions (see `_pair_moves`): a file gone from one side and the same
file new at another path of that side becomes one move, replayed on the other side, instead of a delete there
and a copy of its data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from engine.localfs import LocalEntry
from engine.policy import PathPolicy, Verdict
from engine.policy.filters import OWN_REASON
from engine.providers.base import RemoteEntry, order_key
from engine.state import StateRow

# Action kinds.
UPLOAD = "upload"  # local -> remote (a folder: create it remotely)
DOWNLOAD = "download"  # remote -> local (a folder: create it locally)
DELETE_LOCAL = "delete-local"
DELETE_REMOTE = "delete-remote"
COMPARE = "compare"  # present on both sides, both new or both changed: equal content is no conflict
RECORD = "record"  # nothing to transfer; remember the current state of both sides
FORGET = "forget"  # gone from both sides (or deliberately untracked): drop the state row
SKIP = "skip"  # a rule keeps this path out of the sync; nothing happens on either side
MOVE_REMOTE = "move-remote"  # renamed locally: rename it on the remote (`path` is the new name, `moved_from` the old)
MOVE_LOCAL = "move-local"  # renamed remotely: rename the local file

# The summary key counting the deletions the mass-delete guard held back (see `Plan.hold`).
HELD_DELETIONS = "held-deletions"

# What COMPARE becomes when the two sides differ, per direction.
CONFLICT = "conflict"  # two-way: the local version keeps the name, the remote one becomes a conflict copy
KEEP_REMOTE_COPY = "keep-remote-copy"  # upload-only: local wins, the remote version is kept as a remote copy
KEEP_LOCAL_COPY = "keep-local-copy"  # download-only: remote wins, the local version is kept as a local copy

DIRECTIONS = ("bidirectional", "upload", "download")

# Side status against the last synced state:
#   S same, C changed, D deleted (state but no entry); A added (entry, no state), N none (neither).
_TABLES: dict[str, dict[tuple[str, str], str | None]] = {
    "bidirectional": {
        ("S", "S"): None, ("S", "C"): DOWNLOAD, ("S", "D"): DELETE_LOCAL,
        ("C", "S"): UPLOAD, ("C", "C"): COMPARE, ("C", "D"): UPLOAD,
        ("D", "S"): DELETE_REMOTE, ("D", "C"): DOWNLOAD, ("D", "D"): FORGET,
        ("A", "N"): UPLOAD, ("N", "A"): DOWNLOAD, ("A", "A"): COMPARE,
    },
    # Only local changes travel; the remote side is never used to change local files. A remote file that
    # went missing is restored from the local copy; a remote change on its own is left alone.
    "upload": {
        ("S", "S"): None, ("S", "C"): RECORD, ("S", "D"): UPLOAD,
        ("C", "S"): UPLOAD, ("C", "C"): COMPARE, ("C", "D"): UPLOAD,
        ("D", "S"): DELETE_REMOTE, ("D", "C"): FORGET, ("D", "D"): FORGET,
        ("A", "N"): UPLOAD, ("N", "A"): None, ("A", "A"): COMPARE,
    },
    # The mirror image: only remote changes travel; local edits are kept but never uploaded.
    "download": {
        ("S", "S"): None, ("S", "C"): DOWNLOAD, ("S", "D"): DELETE_LOCAL,
        ("C", "S"): RECORD, ("C", "C"): COMPARE, ("C", "D"): FORGET,
        ("D", "S"): DOWNLOAD, ("D", "C"): DOWNLOAD, ("D", "D"): FORGET,
        ("A", "N"): None, ("N", "A"): DOWNLOAD, ("A", "A"): COMPARE,
    },
}

ON_DIFFER = {"bidirectional": CONFLICT, "upload": KEEP_REMOTE_COPY, "download": KEEP_LOCAL_COPY}


def decide(direction: str, local_status: str, remote_status: str, no_delete: bool = False) -> str | None:
    """The table lookup, exposed for the table-driven tests."""
    kind = _TABLES[direction][(local_status, remote_status)]
    if no_delete and direction != "bidirectional" and kind in (DELETE_LOCAL, DELETE_REMOTE):
        return FORGET
    return kind


@dataclass(slots=True)
class Action:
    kind: str
    path: str  # the local, task-relative path
    local: LocalEntry | None
    remote: RemoteEntry | None  # its .path is the real remote path (may differ from `path`)
    state: StateRow | None
    remote_path: str  # where this path lives (or will live) on the remote, task-relative
    on_differ: str = CONFLICT
    reason: str = ""
    # A move: the old path, and where it lives on the remote. `state` is then the old path's state row; `local`
    # (MOVE_REMOTE) is the file at the new path and `remote` the old remote entry, or (MOVE_LOCAL) `local` is
    # the old local file and `remote` the entry at the new remote path.
    moved_from: str = ""
    moved_from_remote: str = ""

    @property
    def is_dir(self) -> bool:
        entry = self.local or self.remote
        if entry is not None:
            return entry.is_dir
        return bool(self.state and self.state.is_dir)


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason, this pass
    tracked_files: int = 0  # files in the last synced state
    local_files: int = 0
    remote_files: int = 0
    # Unchanged paths whose state row lacks what is recorded now (the inode and ctime of a row written before
    # they were): re-recorded as they are, with no transfer and no log line.
    refresh: list[Action] = field(default_factory=list)
    # Deletions the mass-delete guard held back: not run this pass, their state kept, so they are planned again.
    held: list[Action] = field(default_factory=list)
    held_files: int = 0
    held_message: str = ""

    def count(self, kind: str, files_only: bool = False) -> int:
        return sum(1 for a in self.actions if a.kind == kind and not (files_only and a.is_dir))

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.actions:
            out[a.kind] = out.get(a.kind, 0) + 1
        if self.skipped:
            out[SKIP] = len(self.skipped)
        if self.held_files:
            out[HELD_DELETIONS] = self.held_files
        return out

    def hold(self, kinds: tuple[str, ...], message: str) -> None:
        """Leave out every deletion of `kinds` (files and folders), and every file that would take the place of a
        folder on that side (it would delete the folder): the rest of the plan runs without them."""
        replacing = {DELETE_REMOTE: UPLOAD, DELETE_LOCAL: DOWNLOAD}
        keep: list[Action] = []
        for a in self.actions:
            if a.kind in kinds or any(a.kind == replacing[k] and replaces_folder(a) for k in kinds):
                self.held.append(a)
                if a.kind in kinds and not a.is_dir:
                    self.held_files += 1
            else:
                keep.append(a)
        self.actions = keep
        self.held_message = message


@dataclass(slots=True)
class _Frame:
    path: str
    local_after: bool
    remote_after: bool
    pending_delete: Action | None  # a folder delete that waits for its subtree
    need_local: bool = False
    need_remote: bool = False
    prefix: str = ""  # path + "/": what every path of its subtree starts with (tested once per path)

    def __post_init__(self) -> None:
        self.prefix = self.path + "/"


class OrderViolation(Exception):
    """A listing was not in canonical order; the caller sorts it and plans again."""


def plan(
    state: Iterable[StateRow],
    local: Iterable[LocalEntry],
    remote: Iterable[tuple[str, RemoteEntry]],
    direction: str,
    policy: PathPolicy,
    no_delete: bool = False,
    verify: Callable[[LocalEntry, RemoteEntry, StateRow], bool] | None = None,
    frozen: Callable[[str], bool] | None = None,
    cheap_compare: Callable[[RemoteEntry], bool] | None = None,
    same_as_synced: Callable[[LocalEntry, StateRow], bool] | None = None,
) -> Plan:
    """Merge the three streams and decide every path.

    `remote` yields (local path, entry) pairs: the engine maps remote names to local ones before planning.
    `verify(local, remote, state)` (the consistency check) returns False when hashes reveal a change that
    size and mtime did not; such a path is treated as changed on both sides, so nothing is lost.
    `frozen(path)` is true for paths one of the walks did not look at this time: they are left alone.
    `cheap_compare(remote)` is true when the executor can tell whether a local file holds the same content as
    `remote` without downloading it (a hash, or a service that keeps mtimes exactly); see `_local_status`.
    `same_as_synced(local, state)` is true when the local file provably holds the content last synced (its hash
    equals the one the state recorded for the service's copy); false when that is unknown.
    """
    table = direction
    if table not in _TABLES:
        raise ValueError(f"unknown direction {direction!r}")
    out = Plan()
    frames: list[_Frame] = []
    skipped_dir: str | None = None  # a folder a rule keeps out: its whole subtree is left alone, quietly

    def close_frames(path: str | None) -> None:
        while frames and (path is None or not path.startswith(frames[-1].prefix)):
            f = frames.pop()
            d = f.pending_delete
            if d is not None:
                if d.kind == DELETE_LOCAL and f.need_local:
                    d = None
                    f.local_after = True
                elif d.kind == DELETE_REMOTE and f.need_remote:
                    d = None
                    f.remote_after = True
                elif table == "bidirectional" and (
                    (d.kind == UPLOAD and f.need_remote) or (d.kind == DOWNLOAD and f.need_local)
                ):
                    # A file replaced the folder on one side while something inside it changed on the other:
                    # the folder and what changed in it stay, the file is kept as a conflict copy.
                    d.kind = COMPARE
                    f.local_after = f.remote_after = True
                if d is not None:
                    out.actions.append(d)
            if frames:
                parent = frames[-1]
                parent.need_local |= f.local_after or f.need_local
                parent.need_remote |= f.remote_after or f.need_remote

    # The three streams are merged by order key; each must ascend strictly, or the merge would be wrong.
    si, li, ri = iter(state), iter(local), iter(remote)
    srow_next: StateRow | None = next(si, None)
    lent_next: LocalEntry | None = next(li, None)
    rpair_next: tuple[str, RemoteEntry] | None = next(ri, None)
    skey = order_key(srow_next.path) if srow_next is not None else None
    lkey = order_key(lent_next.path) if lent_next is not None else None
    rkey = order_key(rpair_next[0]) if rpair_next is not None else None
    while skey is not None or lkey is not None or rkey is not None:
        # The smallest head key (None means that stream is exhausted); spelled out: this runs once per path.
        key = skey
        if lkey is not None and (key is None or lkey < key):
            key = lkey
        if rkey is not None and (key is None or rkey < key):
            key = rkey
        srow: StateRow | None = None
        lent: LocalEntry | None = None
        rent: RemoteEntry | None = None
        rpath = ""
        # Each stream's next key (order_key inlined: this runs three times per path), checked to ascend.
        if skey == key:
            srow = srow_next
            srow_next = next(si, None)
            if srow_next is None:
                skey = None
            else:
                skey = srow_next.path.replace("/", "\x00")
                if skey <= key:
                    raise OrderViolation(srow_next.path)
        if lkey == key:
            lent = lent_next
            lent_next = next(li, None)
            if lent_next is None:
                lkey = None
            else:
                lkey = lent_next.path.replace("/", "\x00")
                if lkey <= key:
                    raise OrderViolation(lent_next.path)
        if rkey == key:
            assert rpair_next is not None
            rpath, rent = rpair_next
            rpair_next = next(ri, None)
            if rpair_next is None:
                rkey = None
            else:
                rkey = rpair_next[0].replace("/", "\x00")
                if rkey <= key:
                    raise OrderViolation(rpair_next[0])

        if srow is not None and not srow.is_dir:
            out.tracked_files += 1
        if lent is not None and not lent.is_dir:
            out.local_files += 1
        if rent is not None and not rent.is_dir:
            out.remote_files += 1

        path = srow.path if srow is not None else lent.path if lent is not None else rpath
        if skipped_dir is not None:
            if path.startswith(skipped_dir + "/"):
                _note(frames, lent is not None or srow is not None, rent is not None)
                _uncount(out, lent, rent)
                continue
            skipped_dir = None
        if frames and not path.startswith(frames[-1].prefix):
            close_frames(path)
        if frozen is not None and frozen(path):
            # Not looked at on this pass (unreadable, a link, a mount...): whatever the listings say, nothing
            # here is touched or forgotten, and the folders around it stay.
            _note(frames, lent is not None or srow is not None, rent is not None)
            continue

        # The common case, first and cheap: nothing changed on either side.
        if srow is not None and lent is not None and rent is not None and _unchanged(srow, lent, rent, verify):
            if frames:
                top = frames[-1]
                top.need_local = top.need_remote = True
            if lent.is_dir:
                frames.append(_Frame(path, True, True, None))
            elif srow.lino is None and lent.ino is not None:
                out.refresh.append(Action(RECORD, path, lent, rent, srow, rent.path))
            continue

        lstat = _local_status(srow, lent)
        rstat = _status(srow, rent, local_side=False)
        metadata_only = lstat == "M"
        if metadata_only:
            # Only the ctime moved: chmod, chown, a hard link, an extended attribute, a rename away and back. That
            # alone is no reason to transfer anything, and it counts as unchanged; but the same ctime change is
            # all an in-place rewrite that kept size and mtime leaves behind. So when nothing else would look at
            # this file (the remote side is unchanged too), its content is compared where that needs no
            # download (equal content is recorded, not transferred; different content follows the direction's
            # rule for two differing versions, which keeps both). Where only a download could tell, the new
            # ctime is just recorded: a full download after every `chmod -R` or hard-link backup costs more
            # than the rare rewrite it would catch.
            lstat = "S"
            if rstat in ("C", "D") and not (same_as_synced is not None and same_as_synced(lent, srow)):  # type: ignore[arg-type]
                # The other side moved too: trusting "metadata only" here would delete or overwrite a file that
                # may have been rewritten in place (same size, same mtime). Unless its hash proves the content
                # is the synced one, it is treated as the edit it may be: kept, and the direction's rule for two
                # versions applies (a conflict keeps both).
                lstat = "C"
            compare = rstat == "S" and direction != "download" and cheap_compare is not None
            if compare and rent is not None and cheap_compare(rent):  # type: ignore[misc]
                lstat = rstat = "C"
        elif srow is not None and lent is not None and rent is not None and lstat == rstat == "S":
            lstat = rstat = "C"  # only `verify` can get here: the hashes disagree
        kind = decide(direction, lstat, rstat, no_delete)
        if metadata_only and kind is None:
            kind = RECORD  # remember the new ctime
        remote_path = rent.path if rent is not None else (srow.rname if srow and srow.rname else path)
        action = Action(kind or "", path, lent, rent, srow, remote_path, ON_DIFFER[direction])
        if kind == COMPARE and table != "bidirectional" and lent is not None and rent is not None and (
            lent.is_dir != rent.is_dir
        ):
            # A file on one side where the other has a folder: the two-way answer moves the file aside under a
            # conflict name on both sides, which would change the side a one-way task only reads.
            out.skipped[path] = _one_way_clash(direction, lent.is_dir)
            action.kind = SKIP
            kind = None
            skipped_dir = path

        verdict = _policy_verdict(policy, action) if kind not in (None, RECORD, FORGET) else None
        if verdict is not None and verdict.action == "skip":
            out.skipped[path] = verdict.reason
            _uncount(out, lent, rent)
            action.kind = SKIP
            kind = None
            if action.is_dir:
                skipped_dir = path
        elif verdict is not None and verdict.action == "rename" and rent is None and verdict.remote_name:
            action.remote_path = verdict.remote_name
            action.reason = verdict.reason

        is_dir = action.is_dir
        local_after = lent is not None
        remote_after = rent is not None
        if kind in (UPLOAD, COMPARE):
            remote_after = True
        if kind in (DOWNLOAD, COMPARE):
            local_after = True
        if kind == RECORD:
            local_after = remote_after = True

        pending = None
        if kind == DELETE_LOCAL:
            local_after = False
            if is_dir:
                pending = action
        elif kind == DELETE_REMOTE:
            remote_after = False
            if is_dir:
                pending = action
        elif replaces_folder(action):
            pending = action  # the folder on the other side goes only if nothing inside it must stay

        if kind is not None and pending is None:
            out.actions.append(action)
        _note(frames, local_after, remote_after)
        dir_here = (lent is not None and lent.is_dir) or (rent is not None and rent.is_dir) or (
            srow is not None and srow.is_dir and lent is None and rent is None
        )
        if dir_here:
            if policy.is_excluded_folder(path):
                continue
            frames.append(_Frame(path, local_after, remote_after, pending))
        elif pending is not None:
            out.actions.append(pending)
    close_frames(None)
    _pair_moves(out)
    return out


def _uncount(out: Plan, lent: LocalEntry | None, rent: RemoteEntry | None) -> None:
    """A file a rule keeps out (`.DS_Store`, `@eaDir/...`, an excluded extension) is not a synced file: a side
    holding only such files counts as empty for the empty-side guard (what a NAS indexer or a Mac leaves in a
    bare mount point must not let a pass delete everything on the other side)."""
    if lent is not None and not lent.is_dir:
        out.local_files -= 1
    if rent is not None and not rent.is_dir:
        out.remote_files -= 1


def _one_way_clash(direction: str, local_is_dir: bool) -> str:
    here, there = ("a folder", "a file") if local_is_dir else ("a file", "a folder")
    source = "cloud" if direction == "download" else "local"
    return (f"{here} here and {there} in the cloud have this name; a {direction}-only task never changes the "
            f"{source} side, which settling it would: rename one of them")


def _pair_moves(p: Plan) -> None:
    """Turn a delete and a copy that are one rename into one move, in place.

    Renamed locally: a file gone from its old path (its remote copy unchanged: the plan deletes it remotely) and
    a new local file, not in the state, with the inode, size and mtime the state recorded for the old path (the
    plan uploads it). Renamed remotely: a remote file gone from its old path (its local copy unchanged) and a
    new remote file with the content hash and size the state recorded for it; a revision alone is not enough
    (on some services it is a counter or an id, not a digest of the content). Either way only when exactly one
    old path and one new path share that identity: two new files with the content of one deleted file (or many
    empty files) stay a delete and copies. A folder renamed with its files becomes one move per file; the old
    folder is removed, the new one made, as for any other folder.
    """
    local_old: dict[tuple[object, ...], list[int]] = {}
    local_new: dict[tuple[object, ...], list[int]] = {}
    remote_old: dict[tuple[object, ...], list[int]] = {}
    remote_new: dict[tuple[object, ...], list[int]] = {}
    for i, a in enumerate(p.actions):
        s, lent, rent = a.state, a.local, a.remote
        if a.kind == DELETE_REMOTE and s is not None and not s.is_dir and s.lino is not None and rent is not None:
            local_old.setdefault((s.lino, s.lsize, s.lmtime), []).append(i)
        elif a.kind == DELETE_LOCAL and s is not None and not s.is_dir and s.rhash and lent is not None:
            remote_old.setdefault((s.rsize, s.rhash.lower()), []).append(i)
        elif a.kind == UPLOAD and s is None and rent is None and lent is not None and not lent.is_dir and lent.ino:
            local_new.setdefault((lent.ino, lent.size, lent.mtime_ns), []).append(i)
        elif a.kind == DOWNLOAD and s is None and lent is None and rent is not None and not rent.is_dir and rent.hash:
            remote_new.setdefault((rent.size, rent.hash.lower()), []).append(i)
    if not ((local_old and local_new) or (remote_old and remote_new)):
        return
    moved: set[int] = set()
    for olds, news, kind in ((local_old, local_new, MOVE_REMOTE), (remote_old, remote_new, MOVE_LOCAL)):
        for key, old_at in olds.items():
            new_at = news.get(key)
            if len(old_at) != 1 or new_at is None or len(new_at) != 1:
                continue
            old, new = p.actions[old_at[0]], p.actions[new_at[0]]
            new.kind = kind
            new.moved_from, new.moved_from_remote = old.path, old.remote_path
            new.state = old.state
            if kind == MOVE_REMOTE:
                new.remote = old.remote
            else:
                new.local = old.local
            new.reason = f"from {old.path}" + (f"; {new.reason}" if new.reason else "")
            moved.add(old_at[0])
    if moved:
        p.actions = [a for i, a in enumerate(p.actions) if i not in moved]


def replaces_folder(a: Action) -> bool:
    """A file that is to take the place of a folder on the other side."""
    if a.kind == UPLOAD:
        return a.local is not None and not a.local.is_dir and a.remote is not None and a.remote.is_dir
    if a.kind == DOWNLOAD:
        return a.remote is not None and not a.remote.is_dir and a.local is not None and a.local.is_dir
    return False


def _unchanged(
    srow: StateRow,
    lent: LocalEntry,
    rent: RemoteEntry,
    verify: Callable[[LocalEntry, RemoteEntry, StateRow], bool] | None,
) -> bool:
    """Both sides still match the last synced state (the signatures, compared field by field)."""
    if srow.is_dir:
        return lent.is_dir and rent.is_dir
    if lent.is_dir or rent.is_dir or lent.size != srow.lsize or lent.mtime_ns != srow.lmtime:
        return False
    if lent.ctime_ns != srow.lctime and lent.ctime_ns is not None and srow.lctime is not None:
        return False  # `_local_status` tells a replacement from a metadata change
    if rent.size != srow.rsize:
        return False
    if rent.revision is not None:
        if rent.revision != srow.rrev:
            return False
    elif srow.rrev is not None or rent.mtime != srow.rmtime:
        return False
    return verify is None or verify(lent, rent, srow)


def _local_status(srow: StateRow | None, lent: LocalEntry | None) -> str:
    """The local side against the last synced state: S, C, D, A, N as `_status`, or M (metadata only): the same
    file (inode), size and mtime, and only the ctime moved.

    A file of the same size and mtime under another inode number is another file (a swap, a replacement within
    one clock tick): changed. Unless its ctime is the recorded one: a replacing file always has a new ctime
    (made, or renamed into place, after the state was written), so then only the numbering changed (some FUSE
    and network file systems number files anew after a remount) and the file is the same. Unknown (NULL)
    inodes and ctimes are not compared.
    """
    if srow is None:
        return "A" if lent is not None else "N"
    if lent is None:
        return "D"
    if srow.is_dir or lent.is_dir:
        return "S" if srow.is_dir and lent.is_dir else "C"
    if lent.size != srow.lsize or lent.mtime_ns != srow.lmtime:
        return "C"
    if srow.lctime is None or lent.ctime_ns is None or lent.ctime_ns == srow.lctime:
        return "S"
    if srow.lino is not None and lent.ino is not None and lent.ino != srow.lino:
        return "C"
    return "M"


def _note(frames: list[_Frame], local_after: bool, remote_after: bool) -> None:
    if frames:
        frames[-1].need_local |= local_after
        frames[-1].need_remote |= remote_after


def _status(srow: StateRow | None, entry: LocalEntry | RemoteEntry | None, local_side: bool) -> str:
    if srow is None:
        return "A" if entry is not None else "N"
    if entry is None:
        return "D"
    sig = srow.local_signature() if local_side else srow.remote_signature()
    return "S" if entry.signature() == sig else "C"


def _policy_verdict(policy: PathPolicy, action: Action) -> Verdict:
    if policy.is_excluded_folder(action.path):
        return Verdict("skip", OWN_REASON if policy.is_own_file(action.path) else "excluded by selective sync")
    entry = action.local if action.kind in (UPLOAD, COMPARE, DELETE_REMOTE) and action.local else None
    entry = entry or action.remote or action.local
    size = entry.size if entry is not None and not entry.is_dir else None
    mtime = None
    if isinstance(entry, LocalEntry) and not entry.is_dir:
        mtime = entry.mtime_ns / 1e9
    return policy.check(action.path, action.is_dir, size, mtime=mtime)
