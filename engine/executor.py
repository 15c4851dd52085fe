"""Runs a plan: a bounded thread pool, traffic control, temp-then-rename writes, per-item error isolation.

Phases, in this order, so names are free before they are reused: file deletions; folder deletions (deepest
first); folder creations and type changes (shallowest first); moves (renames replayed on the other side), then
the removal of the folders they emptied; then transfers in parallel. Every completed step writes its state row
at once, so a killed pass resumes without loss or duplicates.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from engine import revisions
from engine.events import Event, LogRecord, TransferProgress
from engine.groupcommit import GroupCommit
from engine.hashing import HashingReader, HashingWriter, hash_file, same_hash
from engine.localfs import LocalEntry, LocalTree, NotARegularFile, is_temp_name
from engine.pacer import Pacer, WaitTooLong, pacer_of
from engine.providers.base import (
    ContentUnavailable,
    Expect,
    FolderNotEmpty,
    HashKind,
    MtimeMode,
    NotFound,
    PreconditionFailed,
    Provider,
    ProviderError,
    RemoteEntry,
    join,
    sane_mtime,
)
from engine.reconcile import (
    COMPARE,
    CONFLICT,
    DELETE_LOCAL,
    DELETE_REMOTE,
    DOWNLOAD,
    FORGET,
    HELD_DELETIONS,
    KEEP_LOCAL_COPY,
    KEEP_REMOTE_COPY,
    MOVE_LOCAL,
    MOVE_REMOTE,
    RECORD,
    UPLOAD,
    Action,
    Plan,
    replaces_folder,
)
from engine.runtime.throttle import MeteredReader, MeteredWriter, TokenBucket
from engine.state import StateDB, StateRow

if TYPE_CHECKING:
    from concurrent.futures import Future

CHUNK = 1 << 20
RETRIES = 3
INLINE_BELOW = 1 << 20  # bytes: below this a transfer to a non-network provider runs in the calling thread


class Cancelled(Exception):
    pass


class ChangedDuringPass(Exception):
    """The local file changed after it was listed; the next pass will look at it again."""


class ChangedRemotely(ProviderError):
    """The remote file changed while it was read: worth another attempt, not a failure of the service."""

    retryable = True


class DamagedDownload(ProviderError):
    """The downloaded bytes do not have the hash the service gave for them: worth another attempt; after the
    last one the item fails (the temporary file never takes the name)."""

    retryable = True


class LocalFailure(Exception):
    """The local disk failed (full, unreadable), not the service; the message names the local path."""


def _local_failure(verb: str, path: str, exc: OSError) -> LocalFailure:
    return LocalFailure(f"{verb} {path}: {(exc.strerror or str(exc)).lower()}")


# The longest file name a local file system holds (ext4, XFS, btrfs, NTFS through its UTF-16 units: 255 of
# those are at least 255 bytes of UTF-8 in the ASCII case, and the policy skips names longer than this).
MAX_NAME_BYTES = 255
_STAMP = "%Y%m%d-%H%M%S"


def conflict_name(
    path: str, hostname: str, when: datetime, n: int = 1, *, max_bytes: int = MAX_NAME_BYTES,
    max_chars: int | None = None,
) -> str:
    """`<stem>_<hostname>_Conflict_<YYYYMMDD-HHMMSS><suffix>` in the same folder (design notes, section 1);
    `-<n>` after the time for the n-th name tried in one second (n > 1).

    The stem is cut (on a character boundary) so that the name fits `max_bytes` of UTF-8 and, where the
    service has one, its own limit of `max_chars` characters: a copy of a long name that the disk or the
    service cannot hold would fail the conflict on every pass, forever. Only a suffix too long to leave a
    single character of the stem is cut as well.
    """
    folder, _, name = path.rpartition("/")
    stem, suffix = _stem_suffix(name)
    tail = f"_{hostname}_Conflict_{when:{_STAMP}}" + (f"-{n}" if n > 1 else "")
    byte_room = max_bytes - _utf8_len(tail)
    char_room = (max_chars - len(tail)) if max_chars is not None else None
    if _utf8_len(stem + suffix) > byte_room or (char_room is not None and len(stem + suffix) > char_room):
        first = stem[:1]
        suffix = _prefix_within(suffix, byte_room - _utf8_len(first),
                                None if char_room is None else char_room - len(first))
        stem = _prefix_within(stem, byte_room - _utf8_len(suffix),
                              None if char_room is None else char_room - len(suffix))
    new = f"{stem}{tail}{suffix}"
    return f"{folder}/{new}" if folder else new


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _prefix_within(text: str, max_bytes: int, max_chars: int | None) -> str:
    """The longest start of `text` of at most `max_bytes` bytes of UTF-8 and `max_chars` characters, cut
    between characters (never inside one's UTF-8 sequence)."""
    if max_chars is not None:
        text = text[: max(0, max_chars)]
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    return data[: max(0, max_bytes)].decode("utf-8", "ignore")  # "ignore" drops a character cut in two


def _stem_suffix(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if dot > 0 else (name, "")


_COPY_TAIL = re.compile(r"_Conflict_(\d{8}-\d{6})(?:-(\d+))?")


def is_conflict_copy_of(name: str, original: str, *, max_bytes: int = MAX_NAME_BYTES,
                        max_chars: int | None = None) -> bool:
    """True when `name` is a conflict copy of `original` (same folder), made by any computer at any time.

    A copy whose stem `conflict_name` had to cut (with these limits) is recognised by making its name again
    from the host name, time and number it carries."""
    stem, suffix = _stem_suffix(original)
    if name.startswith(stem + "_") and "_Conflict_" in name[len(stem):] and name.endswith(suffix):
        return True
    matches = list(_COPY_TAIL.finditer(name))
    if not matches:
        return False
    match = matches[-1]  # the last one: a stem may hold "_Conflict_" itself
    try:
        when = datetime.strptime(match[1], _STAMP)
    except ValueError:
        return False
    n = int(match[2] or 1)
    head = name[: match.start()]
    for cut in range(1, len(head)):
        if head[cut] == "_" and stem.startswith(head[:cut]):
            again = conflict_name(original, head[cut + 1 :], when, n, max_bytes=max_bytes, max_chars=max_chars)
            if again == name:
                return True
    return False


@dataclass
class Outcome:
    done: dict[str, int] = field(default_factory=dict)
    failed: int = 0

    def add(self, kind: str) -> None:
        self.done[kind] = self.done.get(kind, 0) + 1


class Executor:
    def __init__(
        self,
        *,
        task: str,
        task_id: int,
        db: StateDB,
        provider: Provider,
        tree: LocalTree,
        remote_root: str,
        hostname: str,
        concurrency: int,
        emit: Callable[[Event], None],
        buckets: tuple[TokenBucket | None, TokenBucket | None] = (None, None),
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
        taken_names: set[str] | None = None,
        conflict_mode: str = revisions.COPY,
        name_chars: int | None = None,
    ) -> None:
        self.task = task
        self.task_id = task_id
        self.db = db
        self.provider = provider
        self.caps = provider.capabilities
        self.tree = tree
        self.remote_root = remote_root
        self.hostname = hostname
        self.concurrency = max(1, concurrency)
        self.emit = emit
        self.up_bucket, self.down_bucket = buckets
        self.cancel = cancel or threading.Event()
        self.clock = clock
        # The connection's pacer (shared with every other pass and check of the same account), unless a test
        # hands one with its own clock.
        self.pacer = pacer if pacer is not None else pacer_of(provider)
        # Conflict copy names already used in the cloud (from the listing) or given out in this pass.
        self.taken_names = taken_names if taken_names is not None else set()
        self.listed_names = frozenset(self.taken_names)
        self.changed_meanwhile: set[str] = set()
        self.outcome = Outcome()
        self._lock = threading.Lock()
        # The connection's conflict_mode setting; what it means for this bucket or account is asked of the
        # provider at the first conflict of the pass (one call, where a bucket setting has to be read).
        self.conflict_setting = conflict_mode
        # The service's own limit on a file name's length in characters (engine.policy), which conflict copy
        # names are cut to fit as well as the local disk's 255 bytes; None: the disk's limit alone.
        self.name_chars = name_chars
        self._conflict_mode: tuple[str, str] | None = None
        self._mode_lock = threading.Lock()
        # State rows of finished transfers wait until their data is durable on both sides (engine.groupcommit).
        self._commit: GroupCommit[StateRow] = GroupCommit(self._flush_both, self._write_rows)

    # -- driver ----------------------------------------------------------------------------------------------
    def run(self, plan: Plan) -> Outcome:
        actions = plan.actions
        state_only = [a for a in actions if a.kind in (RECORD, FORGET)]
        file_deletes = [a for a in actions if a.kind in (DELETE_LOCAL, DELETE_REMOTE) and not a.is_dir]
        dir_deletes = [a for a in actions if a.kind in (DELETE_LOCAL, DELETE_REMOTE) and a.is_dir]
        # A file replacing a folder on the other side: the folder goes once its content is gone.
        dir_deletes += [a for a in actions if a.kind in (UPLOAD, DOWNLOAD) and replaces_folder(a)]
        structure = [a for a in actions if a.kind in (UPLOAD, DOWNLOAD, COMPARE) and self._is_structural(a)]
        structural_ids = {id(a) for a in structure}
        transfers = [
            a for a in actions if a.kind in (UPLOAD, DOWNLOAD, COMPARE) and id(a) not in structural_ids
        ]
        moves = [a for a in actions if a.kind in (MOVE_REMOTE, MOVE_LOCAL)]
        # Moves run once the folders they go into exist (a new folder, a file replaced by a folder); a folder
        # that files are moved out of is removed after they went.
        moved_out: set[str] = set()
        for a in moves:
            folder = a.moved_from.rpartition("/")[0]
            while folder and folder not in moved_out:
                moved_out.add(folder)
                folder = folder.rpartition("/")[0]
        after_moves = [a for a in dir_deletes if a.path in moved_out]
        dir_deletes = [a for a in dir_deletes if a.path not in moved_out]

        if plan.held_files:
            with self._lock:
                self.outcome.done[HELD_DELETIONS] = plan.held_files
            # Said once, not on every poll while the same deletions wait (the pass summary always says it).
            last = (self.db.last_pass(self.task) or {}).get("summary") or {}
            if last.get(HELD_DELETIONS) != plan.held_files:
                self.emit(LogRecord(self.clock(), self.task, "held", "", plan.held_message))
        for a in state_only + plan.refresh:
            self._guarded(a, self._state_only)
        self.barrier()
        self._parallel(file_deletes, self._delete_file)
        blocked: set[int] = set()  # files whose folder on the other side could not be removed

        def remove_folders(folders: list[Action]) -> None:
            for a in sorted(folders, key=lambda a: a.path.count("/"), reverse=True):
                if not self.cancel.is_set() and not self._guarded(a, self._delete_dir) and a.kind in (UPLOAD, DOWNLOAD):
                    blocked.add(id(a))

        remove_folders(dir_deletes)
        # Shallowest first (a stable sort keeps the plan's order otherwise): a folder that a type conflict
        # restores is decided after its subtree, but must exist before anything is made inside it.
        for a in sorted(structure, key=lambda a: a.path.count("/")):
            if not self.cancel.is_set():
                self._guarded(a, self._structure)
        self._parallel(moves, self._move)
        remove_folders(after_moves)
        self._parallel([a for a in transfers if id(a) not in blocked], self._transfer)
        self.barrier()
        return self.outcome

    def _parallel(self, actions: list[Action], fn: Callable[[Action], None]) -> None:
        if not actions:
            return
        if not self.caps.network:
            # Small files of a local "cloud" go one after another in this thread; large ones still share the
            # pool (a traffic limit is split between them as it would be for a real service). Not in threads: a
            # small file's Python work holds the GIL between its system calls, and two threads handing it back
            # and forth cost more than they overlap (bench/README, "Sixth round": 50,000 files 16.4 s in two
            # threads against 10.8 s in one, on a file system that had not just deleted a tree).
            inline = [a for a in actions if _transfer_size(a) < INLINE_BELOW]
            actions = [a for a in actions if _transfer_size(a) >= INLINE_BELOW]
            for a in inline:
                if self.cancel.is_set():
                    return
                self._guarded(a, fn)
            if not actions:
                return
        if self.concurrency == 1 or len(actions) == 1:
            for a in actions:
                if self.cancel.is_set():
                    return
                self._guarded(a, fn)
            return
        # Imported here: concurrent.futures (with logging) is ~23 M instructions of every one-shot pass's
        # start-up, and a pass with nothing to transfer, or a local one of small files, never gets here.
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        # At most a few actions per worker are queued at a time: a pass of 100,000 uploads must not hold
        # 100,000 futures (memory) before the first one finishes.
        in_flight: set[Future[None]] = set()
        limit = self.concurrency * 4
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="skysync-xfer") as pool:
            try:
                for a in actions:
                    if self.cancel.is_set():
                        break
                    if len(in_flight) >= limit:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        for f in done:
                            f.result()
                    in_flight.add(pool.submit(self._guarded, a, fn))
                for f in in_flight:
                    f.result()
            except KeyboardInterrupt:  # Ctrl+C or SIGTERM (cli.Terminated), raised in this thread
                # The running transfers stop at their next chunk (their temporary files removed) and the queued
                # ones never start: the pool's exit waits for a few chunks, not for every transfer in flight.
                self.cancel.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    def _guarded(self, action: Action, fn: Callable[[Action], None]) -> bool:
        """Run one action with retries; one failing item never stops the pass. True when it was done.

        Actions that reach the service go through the connection's pacer: spacing, a hold a throttled call put
        on the whole connection, and the backoff (or the service's Retry-After) before each retry.
        """
        if self.cancel.is_set():
            return False
        paced = _reaches_service(action)
        not_before = 0.0
        for attempt in range(1, RETRIES + 1):
            try:
                if paced:
                    self.pacer.wait(self.cancel.is_set, not_before)
                fn(action)
                if paced:
                    self.pacer.succeeded()
                return True
            except (Cancelled, InterruptedError):
                return False
            except ChangedDuringPass as exc:
                self._unsettled(action.path)
                self._log("skipped", action.path, str(exc) or "changed during the pass; next pass will sync it")
                return False
            except PreconditionFailed as exc:
                # Another client wrote or deleted it in the cloud since the listing: nothing was changed, and no
                # state is written, so the next pass sees both versions and keeps both (conflict rules).
                self._unsettled(action.path)
                self._log("info", action.path, _CHANGED_MEANWHILE[str(exc).startswith("deleting")])
                return False
            except (NotFound, FileNotFoundError):
                self._unsettled(action.path)
                # Renamed or deleted (here or in the cloud) after the listing: gone, not failed; the next pass
                # sees where it went.
                self._log("skipped", action.path, "gone since it was listed (moved or deleted during the pass); "
                          "the next pass looks again")
                return False
            except LocalFailure as exc:
                if not self.cancel.is_set():
                    self._fail(action, str(exc))
                return False
            except ContentUnavailable as exc:
                # The service will not hand this content over (a document too large to export): a skip with
                # the service's reason, not a failure; nothing was changed, and the next pass asks again.
                self._unsettled(action.path)
                self._log("skipped", action.path, str(exc))
                return False
            except ProviderError as exc:
                if self.cancel.is_set():
                    return False  # whatever a stopped transfer raised, it is a cancellation, not a failure
                if exc.retryable:
                    try:
                        # A file still being rewritten, or one download damaged on the way, says nothing about
                        # the service: only this item waits.
                        item_only = isinstance(exc, (ChangedRemotely, DamagedDownload))
                        not_before = self.pacer.failed(exc, whole_connection=not item_only)
                    except WaitTooLong as too_long:
                        self._fail(action, str(too_long))
                        return False
                if isinstance(exc, ChangedRemotely) and attempt == RETRIES:
                    # Still being written in the cloud after every attempt: the next pass reads it when it settles.
                    self._unsettled(action.path)
                    self._log("skipped", action.path, "kept changing in the cloud while it was read; the next "
                              "pass reads it again")
                    return False
                if exc.retryable and attempt < RETRIES:
                    continue
                self._fail(action, str(exc))
                return False
            except OSError as exc:
                if not self.cancel.is_set():
                    self._fail(action, _os_message(exc))
                return False
            except Exception as exc:  # one item's surprise must never end the pass for all the others
                if not self.cancel.is_set():
                    self._fail(action, f"could not be synced ({type(exc).__name__}: {exc}); the rest of the pass "
                               "went on, and the next pass tries it again")
                return False
        return False

    def _unsettled(self, path: str) -> None:
        """Remember a path left as it was because it changed during the pass (its folder cannot go either)."""
        with self._lock:
            self.changed_meanwhile.add(path)

    def _changed_below(self, folder: str) -> bool:
        prefix = folder + "/"
        with self._lock:
            return any(p.startswith(prefix) for p in self.changed_meanwhile)

    def _fail(self, action: Action, message: str) -> None:
        with self._lock:
            self.outcome.failed += 1
        self._log("error", action.path, message)

    def _log(self, kind: str, path: str, message: str = "") -> None:
        if kind not in ("error", "skipped", "info"):
            with self._lock:
                self.outcome.add(kind)
        self.emit(LogRecord(self.clock(), self.task, kind, path, message))

    # -- helpers --------------------------------------------------------------------------------------------
    def _full(self, remote_path: str) -> str:
        return join(self.remote_root, remote_path)

    def _rel(self, entry: RemoteEntry) -> str:
        """A provider's returned entry path back to the task-relative remote path."""
        prefix = self.remote_root + "/" if self.remote_root else ""
        return entry.path[len(prefix) :] if prefix and entry.path.startswith(prefix) else entry.path

    def _is_structural(self, a: Action) -> bool:
        if a.kind == UPLOAD:
            return a.local is not None and a.local.is_dir
        if a.kind == DOWNLOAD:
            return a.remote is not None and a.remote.is_dir
        return bool((a.local and a.local.is_dir) or (a.remote and a.remote.is_dir))

    def _put(self, path: str, local: LocalEntry | None, remote: RemoteEntry | None, remote_path: str) -> None:
        """Record a path as synced; written at the next barrier, once its data is durable."""
        is_dir = bool((local and local.is_dir) or (remote and remote.is_dir))
        self._record(
            StateRow(
                path=path,
                is_dir=is_dir,
                lsize=None if is_dir or local is None else local.size,
                lmtime=None if is_dir or local is None else local.mtime_ns,
                rsize=None if is_dir or remote is None else remote.size,
                rrev=None if is_dir or remote is None else remote.revision,
                rmtime=None if is_dir or remote is None else remote.mtime,
                rhash=None if is_dir or remote is None else remote.hash,
                rname=remote_path if remote_path != path else None,
                lino=None if is_dir or local is None else local.ino,
                lctime=None if is_dir or local is None else local.ctime_ns,
                rid=None if remote is None else remote.id,  # the service's id, where it has ids
            )
        )

    def _record(self, row: StateRow) -> None:
        self._commit.add(row)

    def barrier(self) -> None:
        """Every state row recorded so far written, its data durable on both sides first."""
        self._commit.barrier()

    def _flush_both(self) -> None:
        self.tree.flush()
        self.provider.flush()

    def _write_rows(self, rows: list[StateRow]) -> None:
        self.db.put_many(self.task_id, rows)

    def _local_unchanged(self, a: Action) -> bool:
        now = self.tree.stat_entry(a.path)
        expected = a.local
        if a.kind == DOWNLOAD and replaces_folder(a):
            expected = None  # the folder phase removed the folder this file takes the place of
        if expected is None:
            return now is None
        if now is None or now.signature() != expected.signature():
            return False
        # A ctime that moved since the plan is a rewrite in place that restored size and mtime, or only a chmod:
        # either way not the file the plan decided about (one that proved its content by its hash, say).
        return now.ctime_ns is None or expected.ctime_ns is None or now.ctime_ns == expected.ctime_ns

    def _progress(self, path: str, direction: str, total: int) -> Callable[[int], None]:
        last = [0.0]  # when the last event went out; 0.0: none yet

        def report(done: int) -> None:
            done = min(done, total)  # encrypted or compressed transfers can count more than the listed size
            if done >= total:
                # The end matters only to a transfer that was shown running: a small file read at once sends
                # nothing (one event object and one call to every subscriber less per file; its log record
                # follows anyway).
                if last[0]:
                    self.emit(TransferProgress(self.task, path, direction, done, total))
                return
            t = time.monotonic()
            if t - last[0] >= 0.2:
                last[0] = t
                self.emit(TransferProgress(self.task, path, direction, done, total))

        return report

    # -- state-only -------------------------------------------------------------------------------------------
    def _state_only(self, a: Action) -> None:
        if a.kind == FORGET:
            self.db.delete(self.task_id, a.path)
            return
        if a.local is not None and a.remote is not None and a.local.is_dir == a.remote.is_dir:
            self._put(a.path, a.local, a.remote, a.remote_path)
            if a.on_differ == KEEP_LOCAL_COPY and _edited(a):
                # Download-only: said once (the edit is recorded now), so nobody believes it reached the cloud.
                self._log("info", a.path, "changed locally; a download-only task never sends local changes to "
                          "the cloud (an exported Google document is not converted back either)")

    # -- moves --------------------------------------------------------------------------------------------------
    def _move(self, a: Action) -> None:
        """A file renamed on one side is renamed the same way on the other: no data travels.

        MOVE_REMOTE (renamed locally): the service moves the file where it can (`server_side_move`); where it
        cannot, or refuses this one (the source changed since the listing, the name is taken, too large), the
        file is uploaded under its new name and then deleted under the old one, as if no move had been seen.
        MOVE_LOCAL (renamed in the cloud): a rename on the local disk. Either way the old path's state row goes
        once the move is done, and the new one is written at the next barrier: a pass killed in between finds
        the old path gone from both sides (forgotten) and the new one on both (compared, equal, recorded).
        """
        old = a.moved_from
        assert a.local is not None and a.remote is not None
        if a.kind == MOVE_LOCAL:
            now = self.tree.stat_entry(old)
            if now is None or now.signature() != a.local.signature():
                raise ChangedDuringPass(f"changed locally during the pass; not moved to {a.path}")
            if self.tree.stat_entry(a.path) is not None:
                raise ChangedDuringPass(f"{a.path} was made locally during the pass; {old} was not moved there")
            placed = self.tree.move_into_place(self.tree.checked_path(old), a.path)
            self._put(a.path, placed, a.remote, a.remote_path)
            self.db.delete(self.task_id, old)
            self._log("moved-local", a.path, f"from {old} (moved remotely)")
            return
        if not self._local_unchanged(a):
            raise ChangedDuringPass("changed locally during the pass; not moved")
        entry: RemoteEntry | None = None
        if self.caps.server_side_move and self._holds_moved_content(a):
            try:
                entry = self.provider.move(self._full(a.moved_from_remote), self._full(a.remote_path), a.remote)
            except ProviderError as exc:
                if exc.retryable:
                    raise
        if entry is not None:
            self._put(a.path, a.local, entry, a.remote_path)
            self.db.delete(self.task_id, old)
            self._log("moved-remote", a.path, f"from {old} (moved locally)")
            return
        # Upload first: if it fails, nothing was deleted and the next pass sees the same rename again.
        self._transfer(Action(UPLOAD, a.path, a.local, None, None, a.remote_path, a.on_differ, a.reason))
        self._delete_file(Action(DELETE_REMOTE, old, None, a.remote, a.state, a.moved_from_remote, a.on_differ))

    def _holds_moved_content(self, a: Action) -> bool:
        """Whether the file at the new path holds the content that is to be moved there, before a server-side move.

        Its inode, size and mtime are those of the file that went away, but a freed inode number is often given
        to the very next new file, and one written within the same clock tick with the same size would move
        the old content under the new name. Where the service gives a hash (in its listing, or on request),
        the local file is hashed and compared (a local read; no download). Where it gives none, the inode, size
        and mtime are trusted.
        """
        assert a.remote is not None
        if self.caps.hash_kind == HashKind.NONE or not self.caps.plain_sizes or self.caps.hash_unreliable:
            return True  # (an unreliable hash that differs proves nothing: the inode, size and mtime decide)
        rhash = a.remote.hash
        if rhash is None and not self.caps.hash_in_listing:
            rhash = self.provider.file_hash(self._full(a.moved_from_remote))
        return rhash is None or self._local_matches(a.path, rhash)

    # -- deletions ----------------------------------------------------------------------------------------------
    def _delete_file(self, a: Action) -> None:
        if a.kind == DELETE_LOCAL:
            if not self._local_unchanged(a):
                raise ChangedDuringPass("changed locally during the pass; not deleted")
            self.tree.delete_file(a.path)
            self.db.delete(self.task_id, a.path)
            self._log("deleted-local", a.path, "deleted remotely")
        else:
            self.provider.delete(self._full(a.remote_path), expect=Expect.entry(a.remote) if a.remote else None)
            self.db.delete(self.task_id, a.path)
            self._log("deleted-remote", a.path, "deleted locally")

    def _delete_dir(self, a: Action) -> None:
        if a.kind == DELETE_LOCAL or (a.kind == DOWNLOAD):
            if not self.tree.remove_dir(a.path):
                if a.kind == DOWNLOAD and a.on_differ == KEEP_LOCAL_COPY:
                    # Download-only: the remote's file wins the name; what the local folder still holds
                    # (local edits, skipped or excluded files) stays together under a conflict name.
                    copy = self._unique_conflict_name(a.path)
                    self.tree.move_into_place(self.tree.checked_path(a.path), copy)
                    self._log("conflict", a.path, f"a file took this folder's place remotely; the local folder, "
                              f"which still held files, is kept as {copy}")
                    return
                raise ChangedDuringPass("the local folder still holds files; not deleted")
            if a.kind == DELETE_LOCAL:
                self.db.delete(self.task_id, a.path)
                self._log("deleted-local", a.path, "folder deleted remotely")
        else:
            assert a.remote is not None or a.kind == DELETE_REMOTE
            try:
                self.provider.rmdir(self._full(a.remote_path))
            except ProviderError as exc:
                # Not empty any more: another client wrote into it since the listing (a deletion, or a two-way
                # local file taking its place); the next pass sees what they wrote.
                gained = isinstance(exc, FolderNotEmpty) and (
                    a.kind == DELETE_REMOTE or (a.kind == UPLOAD and a.on_differ != KEEP_REMOTE_COPY))
                if self._changed_below(a.path) or gained:
                    raise ChangedDuringPass("something in this folder changed during the pass, so it stays; "
                                            "the next pass looks again") from None
                if a.kind != UPLOAD or a.on_differ != KEEP_REMOTE_COPY or exc.retryable:
                    raise
                raise ProviderError(
                    f"{exc}: a local file is to take this folder's place, but files changed in the remote folder "
                    "are never deleted by an upload-only task; move or delete them there"
                ) from None
            if a.kind == DELETE_REMOTE:
                self.db.delete(self.task_id, a.path)
                self._log("deleted-remote", a.path, "folder deleted locally")

    # -- folders and type changes --------------------------------------------------------------------------
    def _structure(self, a: Action) -> None:
        if a.kind == UPLOAD:  # a local folder: make it remotely (replacing an unchanged remote file)
            if a.remote is not None and not a.remote.is_dir:
                self.provider.delete(self._full(a.remote_path), expect=Expect.entry(a.remote))
            entry = self.provider.mkdir(self._full(a.remote_path))
            self._put(a.path, a.local, entry, a.remote_path)
            self._log("mkdir-remote", a.path)
        elif a.kind == DOWNLOAD:  # a remote folder: make it locally (replacing an unchanged local file)
            if a.local is not None and not a.local.is_dir:
                if not self._local_unchanged(a):
                    raise ChangedDuringPass("changed locally during the pass; not replaced by a folder")
                self.tree.delete_file(a.path)
            self.tree.make_dir(a.path)
            self._put(a.path, LocalEntry(a.path, True, 0, 0), a.remote, a.remote_path)
            self._log("mkdir-local", a.path)
        else:
            self._type_conflict(a)

    def _type_conflict(self, a: Action) -> None:
        """A folder on one side and a file on the other, both new or both changed: the folder keeps the name,
        the file is kept as a conflict copy on both sides."""
        assert a.local is not None and a.remote is not None
        if a.local.is_dir and a.remote.is_dir:
            self._put(a.path, a.local, a.remote, a.remote_path)
            return
        if a.local.is_dir:  # the remote file moves aside
            tmp, _ = self._download_to_temp(a.remote_path, a.path, a.remote)
            copy = self._place_conflict_copy(a.path, tmp)
            self._upload_copy(copy, a)
            self.provider.delete(self._full(a.remote_path), expect=Expect.entry(a.remote))
            made = self.provider.mkdir(self._full(a.remote_path))
            self._put(a.path, a.local, made, a.remote_path)
        else:  # the local file moves aside
            if not self._local_unchanged(a):
                raise ChangedDuringPass("changed locally during the pass")
            copy = self._unique_conflict_name(a.path)
            self.tree.move_into_place(self.tree.abspath(a.path), copy)
            read_at, up = self._upload_file(copy, copy, Expect.absent())
            self._put(copy, read_at, up, copy)
            self.tree.make_dir(a.path)
            self._put(a.path, LocalEntry(a.path, True, 0, 0), a.remote, a.remote_path)
        self._log("conflict", a.path, f"a file and a folder had the same name; the file is kept as {copy}")

    # -- transfers -------------------------------------------------------------------------------------------
    def _transfer(self, a: Action) -> None:
        if a.kind == UPLOAD:
            assert a.local is not None
            read_at, entry = self._upload_file(a.path, a.remote_path, _seen(a.remote), a.local)
            self._put(a.path, read_at, entry, a.remote_path)
            self._log("uploaded", a.path, f"as {a.remote_path}" if a.remote_path != a.path else "")
        elif a.kind == DOWNLOAD:
            assert a.remote is not None
            self._download_into_place(a)
        else:
            self._compare(a)

    def _upload_file(
        self, path: str, remote_path: str, expect: Expect, planned: LocalEntry | None = None
    ) -> tuple[LocalEntry, RemoteEntry]:
        """Upload one local file; returns the local signature it was read at and the stored entry.

        `expect` is what the remote name must still hold (what the plan saw there), so a version another client
        wrote since the listing is never replaced: the provider raises PreconditionFailed instead.

        If the file changes while it is read, the signature from before the read goes into the state, so the
        next pass sees a change and uploads it again.

        The service's kind of hash is computed from the bytes as they are sent; where the service returns none,
        it goes into the state with the entry, so nothing has to read the file again to know it.

        `planned` is the file as the walk saw it: the file opened must be that one (its inode), or nothing is
        sent. Another file under its name (saved by replacing it, or read through a folder swapped for a link
        to somewhere else since the walk) is the next pass's to look at.
        """
        try:
            opened = self.tree.open_read(path)
        except NotARegularFile as exc:
            raise ChangedDuringPass(f"{exc.strerror} since the walk; it is left alone") from None
        with opened as f:
            st = self.tree.fs.fstat(f)
            if planned is not None and planned.ino is not None and st.st_ino != planned.ino:
                raise ChangedDuringPass("another file has this name since the walk (replaced, or its folder "
                                        "swapped for a link); nothing was sent, the next pass looks again")
            before = LocalEntry(path, False, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
            # A folder on this computer playing the cloud hashes its files on request as cheaply as here: there
            # the hash would only halve the copy's speed (measured: 200 MB in 0.2 s, 0.45 s while hashing).
            on_the_way = self._hashes_while_sending() and self.caps.network
            hashing = HashingReader(f, self.caps.hash_kind, st.st_size) if on_the_way else None
            reader = MeteredReader(
                hashing or f, self.up_bucket, self._progress(path, "up", st.st_size), self.cancel.is_set  # type: ignore[arg-type]
            )
            try:
                entry = self.provider.upload(
                    self._full(remote_path), reader, st.st_size, st.st_mtime_ns / 1e9,  # type: ignore[arg-type]
                    expect=expect,
                )
            except Exception:
                if reader.local_error is not None:
                    raise _local_failure("reading", self.tree.abspath(path), reader.local_error) from None
                raise
            finally:
                if hashing is not None:
                    hashing.close()
        if hashing is not None and entry.hash is None and not entry.is_dir:
            sent = hashing.text(entry.size)  # None unless exactly the stored bytes were read once, in order
            if sent is not None:
                entry = entry._replace(hash=sent)
        return before, entry

    def _hashes_while_sending(self) -> bool:
        """Whether an upload computes the service's hash on the way: only where one is useful (a kind of hash
        the service has, plaintext sizes, so the bytes sent are the bytes stored)."""
        return self.caps.hash_kind != HashKind.NONE and self.caps.plain_sizes

    def _download_to_temp(self, remote_path: str, local_path: str, listed: RemoteEntry) -> tuple[str, RemoteEntry]:
        target = self.tree.checked_path(local_path)
        tmp = ""
        writer: MeteredWriter | None = None
        # Only a hash the listing gave is checked (the service's answer to the download may carry a newer one),
        # and never one the service is known to get wrong: the download would be refused at every pass.
        check = listed.hash is not None and self._hashes_while_sending() and not self.caps.hash_unreliable
        hashing: HashingWriter | None = None
        try:
            tmp, opened = self.tree.open_temp(target)
            with opened as f:
                hashing = HashingWriter(f, self.caps.hash_kind, listed.size) if check else None
                writer = MeteredWriter(
                    hashing or f, self.down_bucket, self._progress(local_path, "down", listed.size),  # type: ignore[arg-type]
                    self.cancel.is_set,
                )
                entry = self.provider.download(self._full(remote_path), writer)  # type: ignore[arg-type]
            if self.caps.plain_sizes and writer.count != entry.size:
                # Rewritten in place while we read it (a torn copy); a later attempt reads it whole.
                raise ChangedRemotely(f"changed in the cloud during the download ({writer.count} of "
                                      f"{entry.size} bytes read); it is read again")
            if hashing is not None:
                self._check_downloaded(tmp, hashing.text(writer.count),
                                       entry.hash if entry.hash is not None else listed.hash)
            mtime = entry.mtime if entry.mtime is not None else listed.mtime
            if sane_mtime(mtime) is not None:
                self.tree.fs.utime(tmp, round(mtime * 1e9))
        except BaseException as exc:
            if tmp:
                with contextlib.suppress(OSError):
                    self.tree.fs.unlink(tmp)
            if hashing is not None:
                hashing.close()
            local_error = writer.local_error if writer is not None else None
            if local_error is None and isinstance(exc, OSError) and not isinstance(exc, InterruptedError):
                local_error = exc  # opening, closing (flushing) or dating the temporary file
            if isinstance(local_error, FileNotFoundError):
                raise ChangedDuringPass("its local folder was moved or deleted during the download; "
                                        "the next pass looks again") from None
            if local_error is not None:
                raise _local_failure("writing", target, local_error) from None
            raise
        # Keep the listed revision: it is what the next listing will report for this version.
        return tmp, RemoteEntry(listed.path, False, listed.size, listed.mtime, listed.hash, listed.revision,
                                listed.id, listed.parent_id)

    def _check_downloaded(self, tmp: str, received: str | None, expected: str | None) -> None:
        """A downloaded file whose content does not have the hash the service gave for it (with the download, or
        else in the listing) is torn or damaged: it never takes the name; a later attempt reads it again.

        `received` is the hash of the bytes as they were written; where they were not written in order (an SDK
        writing parts at offsets) the temporary file is read back instead.
        """
        if not expected:  # None: no hash given; "": the service says this content has none to check against
            return
        kind = self.caps.hash_kind
        if received is None:
            received = hash_file(tmp, kind)
        if not same_hash(kind, received, expected):
            raise DamagedDownload(f"the downloaded content does not match the service's {kind} hash ({received} "
                                  f"instead of {expected}): damaged or changed on the way, so it was not put in "
                                  "place")

    def _download_into_place(self, a: Action) -> None:
        assert a.remote is not None
        tmp, entry = self._download_to_temp(a.remote_path, a.path, a.remote)
        try:
            if not self._local_unchanged(a):
                # Someone wrote the local file while we downloaded: keep both, never overwrite their work.
                if a.on_differ == KEEP_LOCAL_COPY:  # download-only: the remote wins the name
                    if self.tree.stat_entry(a.path) is not None:
                        copy = self._unique_conflict_name(a.path)
                        self.tree.move_into_place(self.tree.abspath(a.path), copy)
                        self._log("conflict", a.path, f"changed locally during the download; the local "
                                  f"version is kept as {copy}")
                else:
                    copy = self._place_conflict_copy(a.path, tmp)
                    tmp = None
                    self._remember_seen(a.path, entry, a.remote_path)
                    self._log("conflict", a.path, f"changed locally during the download; the remote version is "
                              f"kept as {copy}")
                    return
            placed = self.tree.move_into_place(tmp, a.path)
        except BaseException:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    self.tree.fs.unlink(tmp)
            raise
        self._put(a.path, placed, entry, a.remote_path)
        self._log("downloaded", a.path)

    def _place_conflict_copy(self, path: str, tmp: str) -> str:
        """Move `tmp`, another version of `path`, beside it under a conflict name; the name is returned.

        A conflict copy of exactly this content may be there already: made by a pass that was killed before
        it recorded the conflict, or by a download that met a local edit. It is reused, so no sequence of
        edits, passes and kills makes two copies of one version.
        """
        existing = self._copy_with_content(path, tmp)
        if existing is not None:
            with contextlib.suppress(OSError):
                self.tree.fs.unlink(tmp)
            return existing
        copy = self._unique_conflict_name(path)
        self.tree.move_into_place(tmp, copy)
        return copy

    def _upload_copy(self, copy: str, a: Action) -> None:
        """Send a conflict copy (local file `copy`, holding the remote version `a.remote` of `a.path`) to the
        cloud under a name that must be free there, unless the copy was already in this pass's listing (a copy
        reused because an earlier pass made it: the cloud has it, and whatever it holds there is synced like
        any other file).

        Where the service copies files itself, the copy is made there from `a.remote_path` (no upload), then
        checked by size and hash against the version the plan saw: the source may have been rewritten since the
        listing, and a copy holding another version is left unrecorded, so the next pass compares it with the
        local copy and keeps both.
        """
        if copy in self.listed_names:
            return
        assert a.remote is not None
        copied = self._server_copy(a.remote_path, copy)
        if copied is None:
            read_at, up = self._upload_file(copy, copy, Expect.absent())
            self._put(copy, read_at, up, copy)
            return
        local = self.tree.stat_entry(copy)
        holds = self._copy_holds(copied, a.remote, copy)
        if holds is None:
            # The service gives no hash to tell: the local bytes replace the copy just made (only if it is still
            # the one made here), which costs the upload the copy was to save, but never records a guess.
            read_at, up = self._upload_file(copy, copy, Expect.entry(copied))
            self._put(copy, read_at, up, copy)
        elif holds and local is not None:
            self._put(copy, local, copied, copy)
        else:
            self._unsettled(copy)
            self._log("info", copy, "the cloud's version changed while its conflict copy was made; both copies "
                      "are kept, and the next pass compares them")

    def _server_copy(self, src: str, dst: str) -> RemoteEntry | None:
        """Copy `src` to the free name `dst` on the service; None where it cannot (no such feature, or a
        refusal other than the name being taken: the caller then sends the bytes itself)."""
        if not self.caps.server_side_copy:
            return None
        try:
            return self.provider.copy(self._full(src), self._full(dst), expect=Expect.absent())
        except NotImplementedError:
            return None
        except PreconditionFailed:
            raise
        except ProviderError as exc:
            if exc.retryable:
                raise
            return None

    def _copy_holds(self, copied: RemoteEntry, seen: RemoteEntry, local_copy: str) -> bool | None:
        """Whether a server-side copy holds the version `seen` (the local file `local_copy` has its bytes);
        None when the service gives nothing to tell by."""
        if self.caps.plain_sizes and copied.size != seen.size:
            return False
        kind = self.caps.hash_kind
        if kind == HashKind.NONE or not self.caps.plain_sizes:
            return None
        got = copied.hash
        if got is None and not self.caps.hash_in_listing:
            got = self.provider.file_hash(self._full(self._rel(copied)))
        if got is None:
            return None
        if seen.hash is not None and same_hash(kind, got, seen.hash):
            return True
        if self.caps.hash_unreliable:
            return True if self._local_matches(local_copy, got) else None  # a mismatch proves nothing
        if seen.hash is not None:
            return False
        return self._local_matches(local_copy, got)

    def _copy_with_content(self, path: str, tmp: str) -> str | None:
        folder, _, name = path.rpartition("/")
        size = os.stat(tmp).st_size
        try:
            siblings = self.tree.fs.scandir(self.tree.abspath(folder))
        except OSError:
            return None
        for sib in sorted(siblings, key=lambda e: e.name):
            if not is_conflict_copy_of(sib.name, name, max_chars=self.name_chars) or not sib.is_file(
                follow_symlinks=False
            ):
                continue
            with contextlib.suppress(OSError):
                if sib.stat(follow_symlinks=False).st_size == size and _same_file(tmp, sib.path):
                    return f"{folder}/{sib.name}" if folder else sib.name
        return None

    def _remember_seen(self, path: str, remote: RemoteEntry, remote_path: str) -> None:
        """Record the remote version as seen, with a local side that reads as changed: the next pass uploads
        the local version and never makes a second copy of the remote one. Written once the copy is durable."""
        self.tree.flush()
        self.db.put(
            self.task_id,
            StateRow(path, False, -1, -1, remote.size, remote.revision, remote.mtime, remote.hash,
                     remote_path if remote_path != path else None),
        )

    # -- equal content is no conflict -----------------------------------------------------------------------
    def _compare(self, a: Action) -> None:
        assert a.local is not None and a.remote is not None
        equal, tmp = self._same_content(a)
        try:
            if equal:
                self._put(a.path, a.local, a.remote, a.remote_path)
                self._log("record", a.path, "same content on both sides")
                return
            if a.on_differ == CONFLICT:
                self._conflict(a, tmp)
            elif a.on_differ == KEEP_REMOTE_COPY:
                self._keep_remote_copy(a, tmp)
            elif a.on_differ == KEEP_LOCAL_COPY:
                self._keep_local_copy(a)
            tmp = None
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    self.tree.fs.unlink(tmp)

    def _same_content(self, a: Action) -> tuple[bool, str | None]:
        """(equal?, temp file holding the remote content if it had to be downloaded to tell)."""
        local, remote = a.local, a.remote
        assert local is not None and remote is not None
        if self.caps.plain_sizes and local.size != remote.size:
            return False, None
        if self.caps.hash_kind != HashKind.NONE:
            rhash = remote.hash
            if rhash is None and not self.caps.hash_in_listing:
                rhash = self.provider.file_hash(self._full(a.remote_path))
            if rhash is not None and self._local_matches(a.path, rhash):
                return True, None
            if rhash is not None and not self.caps.hash_unreliable:
                return False, None
            # An unreliable hash that differs proves nothing: the mtime or the bytes tell.
        if (
            self.caps.mtime_mode == MtimeMode.NATIVE
            and remote.mtime is not None
            and abs(remote.mtime - local.mtime_ns / 1e9) < 1.0
        ):
            return True, None
        tmp, _ = self._download_to_temp(a.remote_path, a.path, remote)
        return _same_file(tmp, self.tree.abspath(a.path)), tmp

    def _local_matches(self, path: str, listed_hash: str) -> bool:
        """Whether the local file holds the content the service's hash (in its own kind and form) describes."""
        kind = self.caps.hash_kind
        return same_hash(kind, self.tree.file_hash(path, kind), listed_hash)

    def _unique_conflict_name(self, path: str) -> str:
        """A conflict copy name free on both sides: not on the local disk, not in the remote listing of this
        pass, and not given to another copy in this pass. (A remote copy made since the listing is caught by
        the conditional write that creates it.)"""
        when = datetime.fromtimestamp(self.clock())
        n = 1
        with self._lock:
            while True:
                name = conflict_name(path, self.hostname, when, n, max_chars=self.name_chars)
                if name not in self.taken_names and self.tree.stat_entry(name) is None:
                    break
                n += 1
            self.taken_names.add(name)
        return name

    def conflict_mode(self) -> tuple[str, str]:
        """(mode, reason) for this pass's conflicts: `revision` only where the cloud verifiably keeps versions."""
        with self._mode_lock:
            if self._conflict_mode is None:
                self._conflict_mode = revisions.resolve(self.provider, self.conflict_setting)
            return self._conflict_mode

    def _keep_as_revision(self, a: Action, tmp: str | None) -> None:
        """The local version is uploaded over the remote one, which the cloud keeps as the earlier revision
        (spec: "the remote changes will be saved as one revision"). The upload is conditional on the name still
        holding the version the plan saw, so a version written since the listing is never the one replaced
        unseen; the log names the revision kept. No copy is made on either side."""
        assert a.local is not None and a.remote is not None
        if tmp is not None:
            with contextlib.suppress(OSError):
                self.tree.fs.unlink(tmp)
        version, when = self.provider.replaced_version(self._full(a.remote_path), a.remote)
        read_at, entry = self._upload_file(a.path, a.remote_path, Expect.entry(a.remote), a.local)
        self._put(a.path, read_at, entry, a.remote_path)
        self._log("conflict", a.path, revisions.kept_message(version, when))

    def _conflict(self, a: Action, tmp: str | None) -> None:
        """Two-way: the local version keeps the name; the remote version is kept as a revision in the cloud
        where it keeps them, else as a conflict copy on both sides."""
        assert a.local is not None and a.remote is not None
        if self.conflict_mode()[0] == revisions.REVISION:
            self._keep_as_revision(a, tmp)
            return
        if tmp is None:
            tmp, _ = self._download_to_temp(a.remote_path, a.path, a.remote)
        copy = self._place_conflict_copy(a.path, tmp)
        # The remote version is now safe locally; remember it as seen, so a crash here cannot make a second copy.
        self._remember_seen(a.path, a.remote, a.remote_path)
        self._upload_copy(copy, a)
        read_at, entry = self._upload_file(a.path, a.remote_path, Expect.entry(a.remote), a.local)
        self._put(a.path, read_at, entry, a.remote_path)
        self._log("conflict", a.path, f"changed on both sides; the remote version is kept as {copy}")

    def _keep_remote_copy(self, a: Action, tmp: str | None) -> None:
        """Upload-only: local wins the name; the remote version is kept as a revision where the cloud keeps
        them, else beside it on the remote (copied there by the service where it can, else downloaded and sent
        back)."""
        assert a.local is not None and a.remote is not None
        if self.conflict_mode()[0] == revisions.REVISION:
            self._keep_as_revision(a, tmp)
            return
        copy = self._unique_conflict_name(a.path)
        try:
            if self._server_copy(a.remote_path, copy) is None:
                if tmp is None:
                    tmp, _ = self._download_to_temp(a.remote_path, a.path, a.remote)
                with open(tmp, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    self.provider.upload(self._full(copy), f, size, a.remote.mtime or self.clock(),  # type: ignore[arg-type]
                                         expect=Expect.absent())
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    self.tree.fs.unlink(tmp)
        self.provider.flush()  # the remote copy must outlive a power cut before we call the version seen
        self.db.put(
            self.task_id,
            StateRow(a.path, False, -1, -1, a.remote.size, a.remote.revision, a.remote.mtime, a.remote.hash,
                     a.remote_path if a.remote_path != a.path else None),
        )
        read_at, entry = self._upload_file(a.path, a.remote_path, Expect.entry(a.remote), a.local)
        self._put(a.path, read_at, entry, a.remote_path)
        self._log("conflict", a.path, f"changed on both sides; the remote version is kept remotely as {copy}")

    def _keep_local_copy(self, a: Action) -> None:
        """Download-only: the remote wins the name; the local version is kept beside it locally."""
        assert a.local is not None and a.remote is not None
        if not self._local_unchanged(a):
            raise ChangedDuringPass("changed locally during the pass")
        copy = self._unique_conflict_name(a.path)
        self.tree.move_into_place(self.tree.abspath(a.path), copy)
        self._download_into_place(Action(DOWNLOAD, a.path, None, a.remote, a.state, a.remote_path))
        self._log("conflict", a.path, f"changed on both sides; the local version is kept as {copy}")


_CHANGED_MEANWHILE = {
    False: "changed in the cloud during the pass, so it was not overwritten; both versions are kept (the next "
    "pass applies the conflict rules)",
    True: "changed in the cloud since it was listed, so it was not deleted; the next pass brings the new version",
}


def _seen(remote: RemoteEntry | None) -> Expect:
    """What a remote name must still hold: the file the plan saw there, or nothing (no entry, or a folder that
    an earlier phase removed to make room)."""
    return Expect.entry(remote) if remote is not None and not remote.is_dir else Expect.absent()


def _same_file(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(CHUNK), fb.read(CHUNK)
            if x != y:
                return False
            if not x:
                return True


def _edited(a: Action) -> bool:
    """A file whose content changed locally since the state (size or mtime; a ctime alone is not an edit)."""
    return (a.local is not None and a.state is not None and not a.local.is_dir
            and (a.local.size != a.state.lsize or a.local.mtime_ns != a.state.lmtime))

def _reaches_service(a: Action) -> bool:
    """Whether running `a` may call the service (local deletions, local renames and state rows never do)."""
    if a.kind in (DELETE_LOCAL, MOVE_LOCAL, RECORD, FORGET):
        return False
    return not (a.kind == DOWNLOAD and a.remote is not None and a.remote.is_dir)


def _transfer_size(a: Action) -> int:
    sizes = [e.size for e in (a.local, a.remote) if e is not None and not e.is_dir]
    return max(sizes, default=0)


def _os_message(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    name = os.path.basename(exc.filename) if isinstance(exc.filename, str) else ""
    return f"{text} ({name})" if name and not is_temp_name(name) else text

