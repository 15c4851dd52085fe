"""One sync pass of one task: guards, listings, reconcile, execute, log.

This is the I/O shell around the pure reconcile: it opens the provider, streams the three listings, checks
the safety guards against the plan before anything changes, then hands the plan to the executor.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from engine import ownfiles
from engine.case_names import CaseMatch, apply_case_renames, case_renames
from engine.config import Home, Task
from engine.connect import cloud_overlap, open_provider, provider_kind
from engine.errors import ConnectionFailed, GuardError, LockedError, UsageError
from engine.events import Event, LogRecord, PassFinished, PassStarted
from engine.executor import Executor
from engine.feeds import RemoteSource, feed_capable, unique_names
from engine.hashing import same_hash
from engine.incremental import (
    FullPassNeeded,
    Scope,
    blocked_by_skips,
    check_plan,
    local_entries,
    remote_pairs,
    state_rows,
)
from engine.localfs import FileSystem, LocalEntry, LocalTree, Skipped, device_of
from engine.names import shown
from engine.pacer import pacer_of
from engine.policy import PathPolicy
from engine.prefetch import prefetch
from engine.prewalk import PreWalk
from engine.providers.base import (
    ContainerNotFound,
    HashKind,
    MtimeMode,
    NotFound,
    Provider,
    ProviderError,
    RemoteEntry,
    join,
    order_key,
)
from engine.reconcile import DELETE_LOCAL, DELETE_REMOTE, DOWNLOAD, HELD_DELETIONS, OrderViolation, Plan, plan
from engine.runtime.throttle import TokenBucket
from engine.settled import Watch
from engine.state import FeedKey, StateDB, StateRow

LISTING_ATTEMPTS = 3
UNSAFE_REASON = "unsafe remote name (it could write outside the local folder)"
UNLISTED_REASON = "a remote folder whose name the service does not list (spec note 25); left as it is"
CLASH_REASON = (
    "the cloud holds both a file and a folder under this name; neither is synced until one of them is renamed "
    "in the cloud (nothing is changed on either side meanwhile)"
)


class BlindSpots:
    """Paths the engine did not look at this pass; each covers its whole subtree.

    Checked for every path of a pass, so the test walks the path's own ancestors (a few set lookups) rather
    than every blind spot.
    """

    def __init__(self) -> None:
        self._paths: set[str] = set()

    def add(self, path: str) -> None:
        self._paths.add(path)

    def clear(self) -> None:
        self._paths.clear()

    def covers(self, path: str) -> bool:
        if not self._paths:
            return False
        if path in self._paths:
            return True
        cut = path.rfind("/")
        while cut > 0:
            path = path[:cut]
            if path in self._paths:
                return True
            cut = path.rfind("/")
        return False


@dataclass
class PassResult:
    task: str
    summary: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    error: str | None = None
    planned: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, path, detail) for dry runs
    stopped: bool = False  # cancelled before it finished (a signal, the schedule, a pause): the rest is left
    # An incremental pass (engine.incremental): how many paths it looked at; None for a full pass, with
    # `full_because` saying why a pass asked to be incremental was not.
    scoped: int | None = None
    full_because: str = ""
    looked_at: tuple[str, ...] = ()  # the roots of an incremental pass's scope (each with its subtree)
    settled: bool = False  # ended by the no-change fast path (engine.settled): nothing moved since a quiet pass

    @property
    def held_deletions(self) -> int:
        """Deletions the mass-delete guard held back (the rest of the pass ran); `sync --force` allows them."""
        return int(self.summary.get(HELD_DELETIONS, 0))

    @property
    def exit_code(self) -> int:
        """2: the pass did nothing (bad configuration, a guard that stops it); 1: it ran, but some items failed
        or deletions were held back by the mass-delete guard (both still need the user); 0: all done."""
        if self.error:
            return 2
        return 1 if self.failed or self.held_deletions else 0

    def as_dict(self) -> dict:
        return {
            "task": self.task,
            "summary": self.summary,
            "failed": self.failed,
            "error": self.error,
            "exit_code": self.exit_code,
            "held_deletions": self.held_deletions,
            **({"stopped": True} if self.stopped else {}),
            **({"planned": [{"action": k, "path": p, "detail": d} for k, p, d in self.planned]}
               if self.planned else {}),
        }


def safe_remote_path(path: str) -> bool:
    """True when a remote path can only ever name something inside the local folder."""
    if not path or path[0] == "/" or path[-1] == "/" or "\\" in path or "\x00" in path or "//" in path:
        return False
    if "/." not in "/" + path:
        return True  # no part starts with a dot, so none is "." or ".."
    return all(part not in (".", "..") for part in path.split("/"))


class TaskLock:
    """An exclusive lock per task (flock: released by the kernel even after kill -9)."""

    def __init__(self, home: Home, task: str) -> None:
        folder = os.path.join(home.path, "locks")
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, f"{task}.lock")
        self.task = task
        self._fd: int | None = None

    def __enter__(self) -> TaskLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(f"task '{self.task}' is already being synced by another process") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _database_path(home: Home) -> str:
    """The state database, read again from the config when it is not where `home` (loaded before this pass
    waited for its task's lock) says: `settings set database-path` may have moved it meanwhile, and opening the
    old path would start an empty database there."""
    path = home.setting("database-path")
    if not os.path.exists(path) and os.path.exists(home.config_path):
        path = Home(home.path).setting("database-path")
    return path


def run_pass(
    home: Home,
    task_name: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    buckets: tuple[TokenBucket | None, TokenBucket | None] | None = None,
    provider: Provider | None = None,
    fs: FileSystem | None = None,
    hostname: str | None = None,
    clock: Callable[[], float] = time.time,
    scope: Iterable[str] | None = None,
    early: PreWalk | None = None,
    empty_ok: bool = False,
) -> PassResult:
    """One pass of `task_name`. Guards raise GuardError/LockedError before anything changes.

    `force` passes the mass-delete guard, never the empty-folder one: a side that shows no file at all while
    the state says it held some is a disk that is not there, and no flag a cron line carries may take it for
    "everything was deleted". `empty_ok` passes it (the model tests' stand-in for a user who deletes the other
    side's files too); no command sets it.

    `buckets` (upload, download) are the connection's shared traffic limits; a long-running engine passes its
    own so all passes of a connection share them, a one-off pass makes them from the connection's settings.
    `scope`: the local paths a watcher named since the last pass; the pass then looks at those and their
    folders only (engine.incremental), or runs as a full pass where that could plan differently.
    `early`: the digest walks `skysync sync` started before loading the engine (engine.prewalk); this pass takes
    them over, or stops them.
    """
    task = home.task(task_name)
    overlap = cloud_overlap(home, task)  # the config may have been edited by hand, or the connection re-pointed
    if overlap is not None:
        raise UsageError(overlap)
    if fs is None:  # a system engine writes an owned connection's files as its owner (engine.owners)
        from engine.owners import filesystem_for

        fs = filesystem_for(home, task)
    if buckets is None:
        conn = home.connection(task.connection)
        buckets = (
            TokenBucket(conn.upload_limit * 1024) if conn.upload_limit else None,
            TokenBucket(conn.download_limit * 1024) if conn.download_limit else None,
        )
    lock = contextlib.nullcontext() if dry_run else TaskLock(home, task_name)
    with lock:
        own_provider = provider is None
        prov = provider or open_provider(home, task.connection, task)
        try:
            db = StateDB(_database_path(home))
        except BaseException:
            if own_provider:
                prov.close()
            raise
        try:
            return _run(home, task, db, prov, dry_run, force, on_event, cancel, buckets, fs, hostname, clock,
                        None if scope is None or dry_run or force else list(scope), early, empty_ok)
        finally:
            if own_provider:
                prov.close()
            db.close()


def _run(
    home: Home,
    task: Task,
    db: StateDB,
    provider: Provider,
    dry_run: bool,
    force: bool,
    on_event: Callable[[Event], None] | None,
    cancel: threading.Event | None,
    buckets: tuple[TokenBucket | None, TokenBucket | None],
    fs: FileSystem | None,
    hostname: str | None,
    clock: Callable[[], float],
    scope_paths: list[str] | None = None,
    early: PreWalk | None = None,
    empty_ok: bool = False,
) -> PassResult:
    result = PassResult(task.name)
    log_cap = int(home.setting("log-max-records"))
    records: list[LogRecord] = []
    records_lock = threading.Lock()

    def emit(event: Event) -> None:
        if isinstance(event, LogRecord):
            with records_lock:
                records.append(event)
        if on_event is not None:
            on_event(event)

    def flush_log() -> None:
        with records_lock:
            batch = records[:]
            records.clear()
        if not dry_run:
            try:
                db.log(batch, log_cap)
            except sqlite3.Error:
                with records_lock:  # kept, in order, for the next flush: a failed write loses no record
                    records[:0] = batch
                raise

    emit(PassStarted(task.name, dry_run))
    if not dry_run:
        db.pass_started(task.name)
    try:
        guard = (int(home.setting("mass-delete-percent")), int(home.setting("mass-delete-min-files")))
        pairing = Pairing.of(home, task)
        watch = None
        if scope_paths is None and not force and not dry_run:
            excluded = _policy_for(task, provider, pairing.own).is_excluded_folder
            watch = Watch.begin(home, task, db, provider, fs, excluded, clock(), early)
            if watch is not None and watch.unmoved and db.pairing(watch.task_id) == pairing.identity:
                return _settled_pass(task, db, watch.task_id, result, emit)
        conflict_names: set[str] = set()
        scope: Scope | None = None
        for attempt in range(LISTING_ATTEMPTS):
            try:
                if scope_paths is not None:
                    try:
                        the_plan, tree, temps, task_id, scope = _prepare_scoped(
                            task, db, provider, fs, pairing, conflict_names, scope_paths, clock)
                        result.scoped = len(scope.roots)
                        result.looked_at = scope.roots
                        break
                    except FullPassNeeded as exc:
                        result.full_because = str(exc)
                        scope_paths = None
                        conflict_names.clear()
                the_plan, tree, temps, task_id = _prepare(task, db, provider, fs, force, dry_run, guard, pairing,
                                                          conflict_names, clock, emit, empty_ok)
                break
            except ProviderError as exc:
                # A listing that broke off (a busy service, a dropped connection) is read again from the start;
                # nothing has been changed yet, and every step before the plan can be repeated.
                if not exc.retryable or attempt == LISTING_ATTEMPTS - 1 or (cancel and cancel.is_set()):
                    raise
                conflict_names.clear()
                # The connection's pacer: the service's Retry-After is obeyed, and the other passes and checks
                # of this account hold off too.
                pacer = pacer_of(provider)
                try:
                    pacer.wait(cancel.is_set if cancel else None, not_before=pacer.failed(exc))
                except InterruptedError:
                    raise exc from None
    except (GuardError, UsageError, ProviderError) as exc:
        result.error = str(exc)
        record = LogRecord(clock(), task.name, "error", "", result.error)
        if dry_run or _repeats_last_error(db, task.name, result.error):
            # The same refusal again (a running engine re-checks a guard at each backoff): the history has it.
            if on_event is not None:
                on_event(record)
        else:
            emit(record)
        flush_log()
        if not dry_run:
            db.pass_finished(task.name, False, {}, result.error)
        emit(PassFinished(task.name, {}, False, result.error))
        if isinstance(exc, ProviderError):
            raise ConnectionFailed(str(exc), cause=exc) from None
        raise

    if dry_run:
        result.summary = the_plan.summary()
        result.planned = [(a.kind, a.path, a.reason or ("as " + a.remote_path if a.remote_path != a.path else ""))
                          for a in the_plan.actions]
        result.planned += [("skip", shown(p), r) for p, r in sorted(the_plan.skipped.items())]
        emit(PassFinished(task.name, result.summary, True))
        return result

    if pairing.is_new:
        why = "a folder is on another disk than at the last pass, so " if pairing.moved_disk else ""
        emit(LogRecord(clock(), task.name, "info", "", f"new pairing: {pairing.describe()}; {why}the task's "
                       "earlier sync state was forgotten, and this pass compares both sides and deletes nothing"))
    for tmp in temps:  # left behind by a killed pass: only names of skysync's own format (localfs.is_temp_name)
        with contextlib.suppress(OSError):
            tree.fs.unlink(tree.abspath(tmp))  # through the tree's file system: confined for a system engine
            # Every removal has a record, as every other deletion has: the log tells what left the disk.
            emit(LogRecord(clock(), task.name, "info", shown(tmp), "removed a temporary file that an interrupted "
                           "pass left behind"))
    if scope is None:  # a scoped pass leaves the service's leftovers to the next full pass
        with contextlib.suppress(ProviderError):
            if removed := provider.clean_interrupted(task.remote_folder):
                emit(LogRecord(clock(), task.name, "info", "", f"removed {removed} leftover(s) of interrupted "
                               "uploads in the cloud"))
    _log_skips(db, task_id, task.name, the_plan, clock, emit, scope)

    executor = Executor(
        task=task.name,
        task_id=task_id,
        db=db,
        provider=provider,
        tree=tree,
        remote_root=task.remote_folder,
        hostname=hostname or computer_name(home),
        concurrency=int(home.setting("concurrency")),
        emit=emit,
        buckets=buckets,
        cancel=cancel,
        clock=clock,
        taken_names=conflict_names,
        conflict_mode=home.connection(task.connection).conflict_mode,
        name_chars=_policy_for(task, provider).file_name_chars,  # conflict copies are cut to fit it
    )
    flusher_stop = threading.Event()

    def flusher() -> None:
        # A failed write (the state disk full) is the pass's to tell, in one line: raised here, threading's
        # excepthook would print a traceback besides. The records stay queued; the flush after the run, on the
        # pass's own thread, writes them or raises the error there.
        while not flusher_stop.wait(0.5):
            try:
                flush_log()
            except sqlite3.Error:
                return

    t = threading.Thread(target=flusher, name="skysync-log", daemon=True)
    t.start()
    try:
        outcome = executor.run(the_plan)
    finally:
        flusher_stop.set()
        t.join()
        flush_log()
    result.summary = dict(outcome.done)
    if the_plan.skipped:
        result.summary["skipped"] = len(the_plan.skipped)
    result.failed = outcome.failed
    if result.failed:
        result.summary["failed"] = result.failed
    result.stopped = cancel is not None and cancel.is_set()
    if watch is not None and scope is None:
        watch.finish(the_plan, temps, pairing.is_new, result.failed, result.stopped, clock())
    ok = result.failed == 0 and not result.stopped
    if not result.stopped:
        db.pass_finished(task.name, ok, result.summary, None)
    # A stopped pass is not recorded as finished: `status` then tells it as interrupted (the next pass completes
    # it), never as ok. The engine fills in why it stopped the pass.
    emit(PassFinished(task.name, result.summary, ok, stopped="stopped" if result.stopped else None))
    return result


def _settled_pass(
    task: Task, db: StateDB, task_id: int, result: PassResult, emit: Callable[[Event], None]
) -> PassResult:
    """The end of a pass whose trees have not moved since the last pass that planned nothing (engine.settled):
    the same outcome that pass had, without planning it again."""
    skipped = len(db.skipped(task_id))
    result.summary = {"skipped": skipped} if skipped else {}
    result.settled = True
    db.pass_finished(task.name, True, result.summary, None)
    emit(PassFinished(task.name, result.summary, True))
    return result


def _prepare(
    task: Task,
    db: StateDB,
    provider: Provider,
    fs: FileSystem | None,
    force: bool,
    dry_run: bool,
    guard: tuple[int, int],
    pairing: Pairing,
    conflict_names: set[str],
    clock: Callable[[], float] = time.time,
    emit: Callable[[Event], None] | None = None,
    empty_ok: bool = False,
) -> tuple[Plan, LocalTree, list[str], int]:
    tree = LocalTree(task.local, fs)
    if not tree.exists():
        raise _missing_local(task)
    task_id = db.task_id(task.name)
    cloud_folder = _cloud_folder_here(provider, task)
    if db.pairing(task_id) in (None, pairing.identity):  # a new pairing's first pass deletes nothing anyway
        _guard_other_disk(task, db, task_id, tree.root, cloud_folder)  # before the pairing records the devices
    pairing.settle(db, task_id, tree, dry_run, cloud_folder)
    tracked_files, tracked_dirs = (0, 0) if pairing.is_new else db.counts(task_id)
    home_policy = _policy_for(task, provider, pairing.own)
    remote_root = task.remote_folder

    skipped: dict[str, str] = {}
    temps: list[str] = []
    # What the engine did not look at on either side (a symlink, a mount, an undecodable name, an unreadable
    # folder, a remote name it refuses): that path and everything below it is left exactly as it is this pass.
    blind = BlindSpots()

    def on_skip(s: Skipped) -> None:
        skipped[s.path] = s.reason
        blind.add(s.path)

    def on_error(path: str, exc: OSError) -> None:
        if not path:
            raise GuardError(f"the local folder {task.local} cannot be read: {exc.strerror or exc}")
        skipped[path] = f"cannot be read: {exc.strerror or exc}"
        blind.add(path)

    def on_remote_skip(path: str, reason: str) -> None:
        skipped[path] = reason
        blind.add(path)

    # Where the service has a change feed, the remote side comes from the task's remote index brought up to date
    # by it (engine.feeds); a dry run lists, and saves nothing.
    source = None
    if feed_capable(provider) and not dry_run:
        source = RemoteSource(db, task_id, FeedKey(remote_root, pairing.identity), provider, full=force, clock=clock)
    try:
        first = _first_remote(provider, remote_root, on_remote_skip, source)
    except ContainerNotFound:
        if tracked_files or tracked_dirs:
            raise GuardError(
                f"the remote folder /{remote_root} is missing although files were synced to it; nothing was changed"
            ) from None
        if remote_root and not dry_run:
            provider.mkdir(remote_root)
        first = None

    # A service that takes "A.txt" and "a.txt" for one name (Dropbox, OneDrive, Box): see engine.case_names.
    case_match = CaseMatch(tree) if provider.capabilities.case_insensitive else None

    def local_stream() -> Iterator[LocalEntry]:
        # Walked in this thread: a stat walk is mostly Python work, and a second thread contending for the GIL
        # made the no-change pass of a local provider twice as slow (measured: 0.67 s against 0.35 s, 10k files).
        scan = tree.scan(on_skip=on_skip, on_temp=temps.append, on_error=on_error,
                         prune=home_policy.is_excluded_folder)
        return scan if case_match is None else case_match.local(scan, on_skip)

    def remote_stream(sort: bool) -> Iterator[tuple[str, RemoteEntry]]:
        entries = _remote_pairs(provider, remote_root, first, home_policy, on_remote_skip, conflict_names)
        if case_match is not None:
            entries = case_match.remote(entries, on_remote_skip)
        if sort:
            entries = iter(sorted(entries, key=lambda pair: order_key(pair[0])))
        elif provider.capabilities.network and not (source is not None and source.from_feed):
            # (The index is read from the state database, on this thread's connection: nothing to wait for.)
            entries = prefetch(entries)  # the next page is fetched while the local side is walked
        return _file_folder_clashes(entries, on_remote_skip)

    verify = None
    if task.consistency_check and _hashes_tell(provider):
        verify = _consistency_verifier(tree, provider, remote_root)

    def state_stream() -> Iterator[StateRow]:
        if pairing.is_new:  # a dry run of a new pairing: the old state is not read, nor yet forgotten
            return iter(())
        rows = db.rows(task_id)
        if not home_policy.exclude_folders:
            return rows
        return (row for row in rows if not _under_excluded(home_policy, row.path))

    sort_remote = not provider.capabilities.canonical_order
    case_pass = case_match is not None and not dry_run  # case-only renames: applied once, then planned again
    while True:
        try:
            the_plan = plan(
                state_stream(), local_stream(), remote_stream(sort_remote), task.direction, home_policy,
                no_delete=task.no_delete, verify=verify, frozen=blind.covers,
                cheap_compare=_cheap_compare(provider), same_as_synced=_synced_content_check(tree, provider),
            )
            if not case_pass or case_match is None:
                break
            case_pass = False
            renames = case_renames([d for d in case_match.diffs if not blind.covers(d.local)],
                                   lambda path: db.get(task_id, path) is not None, task.direction)  # fmt: skip
            if not renames or not apply_case_renames(
                renames, tree, provider, remote_root, db, task_id,
                lambda kind, path, text: emit and emit(LogRecord(clock(), task.name, kind, path, text)),
            ):  # fmt: skip
                break
            # Both sides now spell those names alike: plan again from fresh listings (the feed reports the moves).
            case_match = CaseMatch(tree)
            if source is not None:
                source = RemoteSource(db, task_id, source.key, provider, full=force, clock=clock)
            skipped.clear()
            temps.clear()
            blind.clear()
            conflict_names.clear()
            first = _first_remote(provider, remote_root, on_remote_skip, source)
        except OrderViolation:
            if sort_remote:
                raise
            sort_remote = True
            # Start over; what the first listing reported (even while it was peeked at) is reported again.
            skipped.clear()
            temps.clear()
            blind.clear()
            conflict_names.clear()
            first = _first_remote(provider, remote_root, on_remote_skip, source)
    if source is not None:
        source.settle()  # the plan read the whole remote stream: a rebuilt index is saved with its cursor
    the_plan.skipped = {**skipped, **the_plan.skipped}
    _drop_hollow_folders(the_plan)

    if not empty_ok:
        _guard_empty(task, the_plan)  # stops the pass, --force or not
    if not force:
        _guard_mass_delete(the_plan, *guard, task=task.name)  # holds the deletions back; the rest goes on
    return the_plan, tree, temps, task_id


def _cloud_folder_here(provider: Provider, task: Task) -> str | None:
    """The folder of this machine playing the cloud (a `local` connection's), else None."""
    options = getattr(provider, "options", None)
    return None if options is None else type(provider).folder_here(options, task.remote_folder)


def _guard_other_disk(task: Task, db: StateDB, task_id: int, local_root: str, cloud_folder: str | None) -> None:
    """An empty folder on another file system than at the last pass is a disk that is not mounted (the empty
    mount point shows through), whatever `--force` says: a cron line with --force, there to pass the
    mass-delete guard, must not empty the other side while the disk is out. Either side: the task's folder,
    and the folder playing the cloud of a `local` connection (a USB disk)."""
    recorded = db.pairing_devices(task_id)
    for folder, was, what in ((local_root, recorded[0], f"the local folder {task.local}"),
                              (cloud_folder, recorded[1], f"the cloud folder {cloud_folder}")):
        if folder is None or was is None or device_of(folder) in (None, was):
            continue
        try:
            with os.scandir(folder) as entries:
                if next(entries, None) is not None:
                    continue
        except OSError:
            continue  # unreadable or missing: stops the pass further on, with its own message
        if not db.counts(task_id)[0]:
            return  # nothing tracked that a pass could delete
        raise GuardError(
            f"{what} is empty and on another disk than at the last pass (not mounted?); nothing was changed, "
            "--force or not. Mount the disk again; to fill a new, empty disk from the other side, remove the "
            "task and add it again (a new task's first pass deletes nothing)"
        )


def _missing_local(task: Task) -> GuardError:
    return GuardError(f"the local folder {task.local} is missing (unmounted disk?); nothing was changed")


def _prepare_scoped(
    task: Task,
    db: StateDB,
    provider: Provider,
    fs: FileSystem | None,
    pairing: Pairing,
    conflict_names: set[str],
    paths: list[str],
    clock: Callable[[], float],
) -> tuple[Plan, LocalTree, list[str], int, Scope]:
    """`_prepare` for the paths a watcher named and their folders (engine.incremental): the same plan a full
    pass makes for them, or FullPassNeeded. It never deletes (a plan that would is a full pass, with its
    guards), so the guards have nothing to hold here."""
    if provider.capabilities.case_insensitive:
        raise FullPassNeeded("a case-insensitive service (names are matched across the whole tree)")
    tree = LocalTree(task.local, fs)
    if not tree.exists():
        raise _missing_local(task)
    task_id = db.task_id(task.name)
    if db.pairing(task_id) != pairing.identity:
        raise FullPassNeeded("a new pairing")
    policy = _policy_for(task, provider, pairing.own)
    remote_root = task.remote_folder
    if feed_capable(provider):
        source = RemoteSource(db, task_id, FeedKey(remote_root, pairing.identity), provider, full=False,
                              clock=clock)
        source.open(lambda path, reason: None)  # brings the index up to date; the index is read per folder below
        if not source.from_feed:
            raise FullPassNeeded(f"the change feed needs a full listing ({source.reason})")
        # What the feed brought is looked at too (a remote path, under its local name).
        paths = [*paths, *(policy.local_name(p) for p in source.touched)]
    scope = Scope.of(paths, policy.is_excluded_folder)
    blocked = blocked_by_skips(scope, db.skipped(task_id))
    if blocked is not None:
        raise FullPassNeeded(f"{shown(blocked)} was skipped")
    skipped: dict[str, str] = {}
    temps: list[str] = []
    blind = BlindSpots()

    def on_skip(s: Skipped) -> None:
        skipped[s.path] = s.reason
        blind.add(s.path)

    def on_error(path: str, exc: OSError) -> None:
        skipped[path] = f"cannot be read: {exc.strerror or exc}"
        blind.add(path)

    def on_remote_skip(path: str, reason: str) -> None:
        # A listing of a root's folder also reports its other entries: only the scope's are this pass's.
        if scope.covers(path):
            skipped[path] = reason
            blind.add(path)
        elif path in scope.ancestors:
            raise FullPassNeeded(f"the remote folder {path} is skipped")

    canonical = provider.capabilities.canonical_order

    def pairs_of(entries: Iterable[RemoteEntry]) -> list[tuple[str, RemoteEntry]]:
        found = list(_remote_pairs(provider, remote_root, entries, policy, on_remote_skip, conflict_names))
        return found if canonical else sorted(found, key=lambda pair: order_key(pair[0]))

    if feed_capable(provider):
        index_skips = db.index_skips(task_id)

        def listing(folder: str) -> list[tuple[str, RemoteEntry]]:
            for path, reason in index_skips.items():
                if not folder or path == folder or path.startswith(folder + "/"):
                    on_remote_skip(path, reason)
            return pairs_of(unique_names(db.index_below(task_id, folder), on_remote_skip))
    else:
        def listing(folder: str) -> list[tuple[str, RemoteEntry]]:
            def skip(path: str, reason: str) -> None:
                on_remote_skip(f"{folder}/{path}" if folder else path, reason)

            try:
                entries = list(provider.list_reporting(join(remote_root, folder), skip))
            except (ContainerNotFound, NotFound):
                raise FullPassNeeded(f"the remote folder /{join(remote_root, folder)} is missing") from None
            if folder:
                entries = [e._replace(path=f"{folder}/{e.path}") for e in entries]
            return pairs_of(entries)

    state = state_rows(db, task_id, scope, lambda row: not _under_excluded(policy, row.path))
    local = local_entries(tree, scope, on_skip=on_skip, on_temp=temps.append, on_error=on_error,
                          prune=policy.is_excluded_folder)
    remote = list(_file_folder_clashes(iter(remote_pairs(scope, listing)), on_remote_skip))
    verify = None
    if task.consistency_check and _hashes_tell(provider):
        verify = _consistency_verifier(tree, provider, remote_root)
    the_plan = plan(state, local, remote, task.direction, policy, no_delete=task.no_delete, verify=verify,
                    frozen=blind.covers, cheap_compare=_cheap_compare(provider),
                    same_as_synced=_synced_content_check(tree, provider))
    the_plan.skipped = {**skipped, **the_plan.skipped}
    _drop_hollow_folders(the_plan)
    check_plan(the_plan, scope, db, task_id)
    return the_plan, tree, temps, task_id, scope


@dataclass
class Pairing:
    """Which local folder a task pairs with which remote folder of which account and bucket.

    The state of a pass is about one pairing only: read against other folders, its rows would make every file
    of the new folder that is missing on one side look deleted. Stored as a digest (the location string
    holds account ids).
    """

    identity: str
    local: str
    remote: str
    is_new: bool = False
    moved_disk: bool = False  # new because a folder is on another disk than at the last pass
    # The task-relative paths of skysync's own files (home, database) inside the paired folders: never synced.
    own: tuple[str, ...] = ()

    @classmethod
    def of(cls, home: Home, task: Task) -> Pairing:
        conn = home.connection(task.connection)
        location = provider_kind(conn.provider).location(home.all_options(conn.name))
        # The folder as configured and the folder it leads to today. A link at the configured path that now
        # leads elsewhere may be the same files moved to a bigger disk, or another folder altogether; nothing
        # tells them apart, so it is a new pairing: a first pass copies differences and deletes nothing (the
        # worst it can do is bring back what was deleted since the last pass; the other way loses files).
        local = os.path.normpath(os.path.abspath(os.path.expanduser(task.local)))
        real = os.path.realpath(local)
        parts: tuple[str, ...] = (location, task.remote_folder, local, real)
        if task.convert_google_docs and task.direction == "download":
            # Exported documents are entries of the listing only with the option on: turning it off must not
            # read as their deletion in the cloud (that would delete the local copies), nor on as a first
            # sight of files the state never saw. Either way it is another pairing: nothing is deleted. (Added
            # only when on, so existing pairings keep their identity.)
            parts += ("convert-google-docs",)
        digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape"))
        return cls(digest.hexdigest(), local if real == local else f"{local} (at {real})",
                   f"{conn.name}:/{task.remote_folder}", own=_own_paths(home, task))

    def describe(self) -> str:
        return f"{self.local} <-> {self.remote}"

    def settle(
        self, db: StateDB, task_id: int, tree: LocalTree, dry_run: bool, cloud_folder: str | None = None
    ) -> None:
        """Compare with the pairing the state belongs to; a different one starts over as a first pass."""
        stored = db.pairing(task_id)
        # A state written before pairings were recorded is taken to be this pairing's (nothing else to go by).
        self.is_new = stored is not None and stored != self.identity
        device = device_of(tree.root)
        rdevice = None if cloud_folder is None else _device_nearest(cloud_folder)
        if stored is not None and not self.is_new and _moved_disk(db.pairing_devices(task_id), (device, rdevice)):
            # The folder is on another disk than at the last pass: a disk unmounted (its bare mount point, with
            # a file left in it, shows through) or the files moved to a new disk. Only the first is dangerous,
            # and nothing tells them apart: read against the old state, every file not on this disk would look
            # deleted and be deleted on the other side. A first pass instead copies differences, deletes nothing.
            self.is_new = True
            self.moved_disk = True
        if not dry_run:
            db.set_pairing(task_id, self.identity, device, forget=self.is_new, rdevice=rdevice)


def _device_nearest(folder: str) -> str | None:
    """The device of `folder`, or of its nearest folder that exists: a cloud folder a first pass is about to make
    is on its parent's disk, and that disk must be known from the first pass on (else an unmounted cloud disk
    would go unnoticed at the second)."""
    while True:
        device = device_of(folder)
        parent = os.path.dirname(folder)
        if device is not None or parent == folder:
            return device
        folder = parent


def _moved_disk(recorded: tuple[str | None, str | None], now: tuple[str | None, str | None]) -> bool:
    """Whether either folder is on another device than the one recorded (unknown on either hand: not moved)."""
    return any(was is not None and here is not None and was != here for was, here in zip(recorded, now, strict=True))


def _own_paths(home: Home, task: Task) -> tuple[str, ...]:
    """Where skysync's own files lie in the task's folders (task-relative), to be left alone on both sides: a
    home or database that got there (a --home given later, a hand edit) is never copied into the user's folders,
    secrets.toml least of all. A folder that is one of them stops the pass."""
    files = ownfiles.own_files(home.path, _database_path(home))
    out: list[str] = []
    for where, folder in ownfiles.task_folders(home, task):
        for what, rel in ownfiles.inside(files, folder):
            if rel == ".":
                raise GuardError(f"the {where} of task '{task.name}' ({shown(folder)}) is {what}; nothing was "
                                 "changed: choose another folder")
            out.append(rel)
    return tuple(dict.fromkeys(out))


def computer_name(home: Home) -> str:
    """The host name with a short id of this computer, as conflict copies carry it: two computers that share
    a host name (cloned systems, "raspberrypi") never make the same conflict copy name in the same second.
    The id is made once per home and kept in it."""
    host = socket.gethostname().split(".")[0] or "host"
    path = os.path.join(home.path, "computer-id")
    try:
        with open(path, encoding="ascii") as f:
            cid = f.read().strip()
    except (OSError, UnicodeDecodeError):
        cid = ""
    if not (len(cid) == 6 and all(c in "0123456789abcdef" for c in cid)):
        cid = secrets.token_hex(3)
        with contextlib.suppress(OSError):
            os.makedirs(home.path, exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="ascii") as f:
                f.write(cid + "\n")
            os.replace(tmp, path)
    return f"{host}-{cid}"


def _repeats_last_error(db: StateDB, task: str, message: str) -> bool:
    last = db.read_log(task, 1)
    return bool(last) and last[0].kind == "error" and not last[0].path and last[0].message == shown(message)


def _drop_hollow_folders(p: Plan) -> None:
    """A remote folder new to this side is made locally only if something in it is synced, or if it is empty
    in the cloud too. One whose every entry is skipped (a key too long or unsafe for this disk) would leave
    empty folders no one asked for, down to the depth of the key, that a user then removes in vain."""
    new_dirs = [a for a in p.actions if a.kind == DOWNLOAD and a.local is None and a.state is None
                and a.remote is not None and a.remote.is_dir]
    if not new_dirs or not p.skipped:
        return
    has_skipped = _ancestors_of(p.skipped)
    holding = _ancestors_of(a.path for a in p.actions if not (a.kind == DOWNLOAD and a.is_dir))
    hollow: set[str] = set()
    for a in sorted(new_dirs, key=lambda a: a.path.count("/"), reverse=True):  # deepest first
        if a.path in holding or a.path not in has_skipped:
            holding.update(_ancestors_of((a.path,)))  # a folder that is made holds its parents
        else:
            hollow.add(a.path)
    if hollow:
        p.actions = [a for a in p.actions if a.path not in hollow or a.kind != DOWNLOAD]


def _ancestors_of(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        cut = path.rfind("/")
        while cut > 0:
            path = path[:cut]
            if path in out:
                break
            out.add(path)
            cut = path.rfind("/")
    return out


def _policy_for(task: Task, provider: Provider, own: tuple[str, ...] = ()) -> PathPolicy:
    return PathPolicy(
        provider.kind,
        provider.options,
        remote_root=task.remote_folder,
        exclude_folders=tuple(task.exclude_folders),
        exclude_names=tuple(task.exclude_names),
        exclude_exts=tuple(task.exclude_exts),
        max_size=task.max_size,
        case_insensitive=task.case_insensitive,
        max_object_size=provider.capabilities.max_file_size,  # skipped with a reason, never failed at its end
        own_files=own,
    )


def _under_excluded(policy: PathPolicy, path: str) -> bool:
    """Strictly inside an excluded folder (the folder's own row stays, so nothing around it is deleted)."""
    if not policy.exclude_folders:
        return False
    parent = path.rpartition("/")[0]
    return bool(parent) and policy.is_excluded_folder(parent)


class _Peeked:
    """A listing whose first entry has been read already (to see whether the folder exists at all)."""

    def __init__(self, it: Iterator[RemoteEntry]) -> None:
        self.it = it
        self.head = next(it, None)

    def __iter__(self) -> Iterator[RemoteEntry]:
        if self.head is not None:
            yield self.head
        yield from self.it


def _first_remote(
    provider: Provider, root: str, on_skip: Callable[[str, str], None], source: RemoteSource | None = None
) -> _Peeked:
    if source is not None:
        return _Peeked(iter(source.open(on_skip)))
    return _Peeked(iter(provider.list_reporting(root, on_skip)))


def _remote_pairs(
    provider: Provider,
    root: str,
    listing: Iterable[RemoteEntry] | None,
    policy: PathPolicy,
    on_skip: Callable[[str, str], None],
    conflict_names: set[str],
) -> Iterator[tuple[str, RemoteEntry]]:
    if listing is None:
        return
    unlisted: str | None = None  # a remote folder the spec says is not listed (note 25), with its subtree
    for entry in listing:
        if unlisted is not None and entry.path.startswith(unlisted + "/"):
            continue
        unlisted = None
        if entry.is_dir and policy.remote_folder_unlisted(entry.path.rpartition("/")[2]):
            unlisted = entry.path
            on_skip(entry.path, UNLISTED_REASON)
            continue
        if not safe_remote_path(entry.path):
            on_skip(entry.path, UNSAFE_REASON)
            continue
        local = policy.local_name(entry.path)
        if local != entry.path and not safe_remote_path(local):
            on_skip(entry.path, UNSAFE_REASON)
            continue
        if _under_excluded(policy, local):
            continue
        if "_Conflict_" in local:
            conflict_names.add(local)
        yield local, entry


def _file_folder_clashes(
    pairs: Iterator[tuple[str, RemoteEntry]], on_skip: Callable[[str, str], None]
) -> Iterator[tuple[str, RemoteEntry]]:
    """Drop a name the cloud holds both as a file and as a folder (`X` and `X/child`, legal in S3 and its
    relatives), with everything below it, and report it once; the rest of the listing goes on.

    The pairs arrive in canonical order, so a folder's content directly follows the folder, and a file and a
    folder of the same name are neighbours.
    """
    held: tuple[str, RemoteEntry] | None = None
    clash: str | None = None
    for pair in pairs:
        path = pair[0]
        if clash is not None:
            if path == clash or path.startswith(clash + "/"):
                continue
            clash = None
        if held is not None:
            held_path, held_entry = held
            if path == held_path or (not held_entry.is_dir and path.startswith(held_path + "/")):
                clash = held_path
                held = None
                on_skip(held_path, CLASH_REASON)
                continue
            yield held
        held = pair
    if held is not None:
        yield held


def _synced_content_check(tree: LocalTree, provider: Provider) -> Callable[[LocalEntry, StateRow], bool] | None:
    """Whether a local file whose ctime alone moved still holds the content last synced: its hash, in the
    service's kind, against the one the state recorded for the service's copy. Only where that record can be
    trusted; a file that cannot be read counts as changed (kept, never deleted on a guess)."""
    if not _hashes_tell(provider):
        return None
    kind = provider.capabilities.hash_kind

    def same(local: LocalEntry, state: StateRow) -> bool:
        if not state.rhash:
            return False
        try:
            return same_hash(kind, tree.file_hash(local.path, kind), state.rhash)
        except OSError:
            return False

    return same


def _consistency_verifier(tree: LocalTree, provider: Provider, root: str):
    """The consistency check (compare hashes too): whether a local file and the remote one hold the same bytes,
    in the hash kind the service reports (hex or base64: `same_hash` knows which may be lowercased)."""
    kind = provider.capabilities.hash_kind

    def verify(local: LocalEntry, remote: RemoteEntry, state: StateRow) -> bool:
        rhash = remote.hash
        if not rhash and state.rhash and remote.signature() == state.remote_signature():
            rhash = state.rhash  # the version the hash was recorded for (while it was sent): no second read
        if not rhash and not provider.capabilities.hash_in_listing:
            rhash = provider.file_hash(join(root, remote.path))
        if not rhash:
            return True
        return same_hash(kind, tree.file_hash(local.path, kind), rhash)

    return verify


def _guard_empty(task: Task, p: Plan) -> None:
    # Only a plan that would delete on the other side is dangerous; forgetting state is not.
    if p.tracked_files and not p.local_files and p.count(DELETE_REMOTE):
        raise GuardError(
            f"the local folder {task.local} is empty (of files it syncs) but {p.tracked_files} synced files were in "
            "it (unmounted disk?); nothing was changed, --force or not. If you really deleted everything, delete the "
            "synced files in the cloud too"
        )
    if p.tracked_files and not p.remote_files and p.count(DELETE_LOCAL):
        raise GuardError(
            f"the remote folder {task.remote} is empty (of files it syncs) but {p.tracked_files} synced files were in "
            "it; nothing was changed, --force or not. If everything was really deleted there, delete the local files "
            "too"
        )


def _guard_mass_delete(p: Plan, percent: int, min_files: int, task: str) -> None:
    """A pass whose deletions, on one side or on both together, would take more than `percent` % of the synced
    files keeps every deletion back (files and folders, both sides: deleting more on one side must not leave the
    other less protected); uploads, downloads and moves still run. The held paths keep their state, so every pass
    plans them again until `sync --force` lets them through, or the files come back. Moves are not deletions: a
    renamed folder holds nothing back."""
    if p.tracked_files < max(min_files, 1):
        return
    counts = {DELETE_REMOTE: p.count(DELETE_REMOTE, files_only=True),
              DELETE_LOCAL: p.count(DELETE_LOCAL, files_only=True)}
    held = counts[DELETE_REMOTE] + counts[DELETE_LOCAL]
    if held * 100 <= p.tracked_files * percent:
        return
    kinds = tuple(kind for kind, n in counts.items() if n)
    sides = [f"{n} on the {'remote' if kind == DELETE_REMOTE else 'local'} side" for kind, n in counts.items() if n]
    what = sides[0] if len(sides) == 1 else f"{' and '.join(sides)}, together"
    p.hold(kinds, (
        f"{held} deletions held back: this pass would delete {held} of {p.tracked_files} files ({what}; more than "
        f"{percent} %); they are left as they are and the rest of the pass goes on. Check, then allow them once "
        f"with: skysync sync --force {task}"
    ))


def _hashes_tell(provider: Provider) -> bool:
    """Whether the service's listed hash can tell two versions apart: it has one, and one it gets right (a hash
    Baidu gets wrong would make every pass transfer the file again; `Capabilities.hash_unreliable`)."""
    caps = provider.capabilities
    return caps.hash_kind != HashKind.NONE and not caps.hash_unreliable


def _cheap_compare(provider: Provider) -> Callable[[RemoteEntry], bool]:
    """Whether the executor tells equal content from this listed entry without downloading it (a hash, listed or
    asked for, or an mtime the service keeps exactly): the reconcile then checks a file whose ctime alone moved."""
    caps = provider.capabilities
    hashes = _hashes_tell(provider)
    native = caps.mtime_mode == MtimeMode.NATIVE

    def cheap(remote: RemoteEntry) -> bool:
        return native or (hashes and (remote.hash is not None or not caps.hash_in_listing))

    return cheap


def _log_skips(
    db: StateDB, task_id: int, task: str, p: Plan, clock: Callable[[], float], emit: Callable[[Event], None],
    scope: Scope | None = None,
) -> None:
    """One log record per skipped path when it is first skipped (or for a new reason), not on every poll. A
    scoped pass replaces only what it looked at: the skips outside its scope stand."""
    before = db.skipped(task_id)
    now = {shown(path): reason for path, reason in p.skipped.items()}  # as stored: a name may not be UTF-8
    if scope is not None:
        now = {**{path: reason for path, reason in before.items() if not scope.covers(path)}, **now}
    for path, reason in sorted(now.items()):
        if before.get(path) != reason:
            emit(LogRecord(clock(), task, "skipped", path, reason))
    if before != now:
        db.replace_skipped(task_id, now)
