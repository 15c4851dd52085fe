"""Local change detection for one task folder: watchfiles events, debounced, plus two safety nets.

1. A folder that appears is walked now and again a moment later: inotify watches a new folder only after it
   exists, so files created right inside it can come without an event (GUIDE §3). A difference means
   "changed".
2. A periodic full rescan compares a cheap signature of the whole tree (paths, sizes, mtimes) with the
   previous one, for whatever the kernel dropped (queue overflow, network file systems, a watcher restart).
3. Running out of inotify watches (fs.inotify.max_user_watches) is silent in watchfiles: with
   ignore_permission_denied it stops adding watches without an error, and folders made later get none either
   way (checked with watchfiles 1.3 under a limit of 10). So after arming and after every batch of new folders
   the watcher asks the kernel itself whether one more watch fits (`watch_room`). When none does, it says so
   once through `on_limit`, rescans the whole tree every EXHAUSTED_RESCAN seconds instead of every ten minutes
   (never spending more than a tenth of the time rescanning), and keeps looking for room; when there is room
   again it re-arms, so every folder gets its watch, and says that too.

The watcher only says *that* something changed; the sync pass itself scans and decides what to do, so a
spurious notification costs one no-op pass and a missed one is caught by the rescan.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable

import watchfiles

from engine.localfs import LocalTree, is_temp_name

ChangeCallback = Callable[[str, list[str]], None]  # (reason, relative paths) reason: local|new-folder|rescan
ErrorCallback = Callable[[str], None]
LimitCallback = Callable[[bool, "int | None", float], None]  # (exhausted?, the kernel's limit, rescan period)
RoomProbe = Callable[[str], "bool | None"]

DEBOUNCE_MS = 400  # the longest a burst of events is grouped before we hear of it
STEP_MS = 50  # quiet time that ends a burst: a single save is reported ~50 ms after it lands
NEW_FOLDER_RECHECK = 1.0
RESCAN_INTERVAL = 600.0
RETRY_MISSING_ROOT = 5.0
EXHAUSTED_RESCAN = 30.0  # the full-rescan period of a tree with folders that have no watch
EXHAUSTED_RECHECK = 60.0  # how often a watcher short of watches looks whether some are free again
RESCAN_SHARE = 10  # ...but a rescan never runs more often than every RESCAN_SHARE times its own duration
# A batch that deletes is held until deletions stop for this long (at most DELETION_HOLD_MAX): an `rm -rf` of a
# large tree lasts longer than one batch, and a pass started in the middle of it would see a part of the
# deletion, small enough to pass the mass-delete guard, then the next part, and so on.
DELETION_QUIET = 1.0
DELETION_HOLD_MAX = 30.0
RUST_TIMEOUT_MS = 1000  # watchfiles hands control back this often, so the watcher can look at its limits
INOTIFY_LIMIT_PATH = "/proc/sys/fs/inotify/max_user_watches"
NAMESPACE_LIMIT_PATH = "/proc/sys/user/max_inotify_watches"  # a user namespace's own limit (containers)

_IN_CLOEXEC = 0o2000000
_IN_NONBLOCK = 0o4000
_IN_DELETE_SELF = 0x400


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def watch_room(path: str) -> bool | None:
    """Does one more inotify watch fit right now? False when the kernel refuses with ENOSPC (the user's
    max_user_watches is reached), True when it fits, None when this cannot be told (no inotify, no such path,
    no instance to spare). The probe watch is removed again at once, with its own inotify instance."""
    libc = _LIBC
    if libc is None or not hasattr(libc, "inotify_init1"):
        return None
    fd = libc.inotify_init1(_IN_CLOEXEC | _IN_NONBLOCK)
    if fd < 0:
        return None
    try:
        wd = libc.inotify_add_watch(fd, os.fsencode(path), _IN_DELETE_SELF)
        if wd >= 0:
            return True
        return False if ctypes.get_errno() == errno.ENOSPC else None
    finally:
        os.close(fd)


def read_watch_limit(paths: tuple[str, ...] = (INOTIFY_LIMIT_PATH, NAMESPACE_LIMIT_PATH)) -> int | None:
    """The watch limit that applies to us: fs.inotify.max_user_watches, or a container's own smaller one."""
    found = []
    for path in paths:
        try:
            with open(path, encoding="ascii") as f:
                found.append(int(f.read().strip()))
        except (OSError, ValueError):
            continue
    return min(found, default=None)


def limit_advice(limit: int | None) -> str:
    """How to raise the limit, now and for good (the same words as `skysync doctor`)."""
    from engine.doctor import SYSCTL_FILE, _suggested_limit

    target = _suggested_limit(limit or 0)
    return (
        f"raise it with: sudo sysctl fs.inotify.max_user_watches={target}, and keep it after a reboot with the "
        f"line fs.inotify.max_user_watches={target} in {SYSCTL_FILE}"
    )


def _is_limit_error(exc: BaseException) -> bool:
    # watchfiles says "OS file watch limit reached" (notify's MaxFilesWatch) when it reports it at all.
    return getattr(exc, "errno", None) == errno.ENOSPC or "watch limit" in str(exc).lower()


def tree_signature(root: str) -> str:
    """A digest of every path, size and mtime below `root` (our temporary files left out)."""
    digest = hashlib.blake2b(digest_size=16)
    tree = LocalTree(root)
    if not tree.exists():
        return "missing"
    try:
        for e in tree.scan():
            line = f"{e.path}\0{int(e.is_dir)}\0{e.size}\0{e.mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
    except OSError:  # the folder went away while we walked it
        return "missing"
    return digest.hexdigest()


def _relevant(change: watchfiles.Change, path: str) -> bool:
    # Only our own temp files are ignored here; what may sync is the policy's business, not the watcher's.
    return not is_temp_name(os.path.basename(path))


class LocalWatcher:
    """Watches `root` in background threads and calls `on_change(reason, paths)` from them."""

    def __init__(
        self,
        root: str,
        on_change: ChangeCallback,
        *,
        on_error: ErrorCallback | None = None,
        on_limit: LimitCallback | None = None,
        probe: RoomProbe | None = None,
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int = STEP_MS,
        new_folder_recheck: float = NEW_FOLDER_RECHECK,
        rescan_interval: float = RESCAN_INTERVAL,
        use_events: bool = True,
        force_polling: bool | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        self._on_change = on_change
        self._on_error = on_error
        self._on_limit = on_limit
        self._probe = probe or (lambda path: watch_room(path))  # looked up when called: tests replace it
        self._debounce_ms = debounce_ms
        self._step_ms = step_ms
        self._recheck = new_folder_recheck
        self._rescan_interval = rescan_interval
        self._use_events = use_events
        self._force_polling = force_polling
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._timers: list[tuple[float, int, str, str]] = []  # (due, seq, rel folder, its signature then)
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._signature = ""
        self.ready = threading.Event()  # set once the event watcher is armed (tests wait on it)
        self.exhausted = False  # some folders may have no inotify watch: the tree is rescanned often
        self._rescan_cost = 0.0  # seconds the last full rescan took
        self._rescan_now_due = False
        self._held: list[str] = []  # paths of batches held while deletions go on
        self._held_since = 0.0
        self._last_deletion = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        targets = [self._timer_loop]
        if self._use_events:
            targets.append(self._event_loop)
        else:
            self.ready.set()
        for target in targets:
            t = threading.Thread(target=target, name=f"watch:{self.root}", daemon=True)
            t.start()
            self._threads.append(t)

    def request_stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 3.0) -> None:
        self.request_stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def rescan_now(self) -> bool:
        """Compare the tree with the last signature; report a change if it differs. Returns whether it did."""
        sig = tree_signature(self.root)
        if sig == self._signature:
            return False
        self._signature = sig
        self._emit("rescan", [])
        return True

    # -- internals -------------------------------------------------------------------------------------------
    def _emit(self, reason: str, paths: list[str]) -> None:
        try:
            self._on_change(reason, paths)
        except Exception as exc:  # a subscriber bug must not kill the watcher
            self._error(f"change callback failed: {exc}")

    def _error(self, message: str) -> None:
        if self._on_error:
            self._on_error(message)

    def _rel(self, path: str) -> str:
        rel = os.path.relpath(path, self.root)
        return "" if rel == "." else rel.replace(os.sep, "/")

    def _event_loop(self) -> None:
        reported_missing = False
        while not self._stop.is_set():
            if not os.path.isdir(self.root):
                if not reported_missing:  # once, not every few seconds: the log must stay readable
                    self._error(f"local folder {self.root} does not exist; watching for it")
                    reported_missing = True
                self.ready.set()
                self._stop.wait(RETRY_MISSING_ROOT)
                continue
            if reported_missing:
                reported_missing = False
                self._emit("local", [])  # the folder (re)appeared: worth a pass
            try:
                self.ready.set()
                rearm = self._watch_once()
            except Exception as exc:  # the folder vanished, inotify limits...: report, wait, start over
                if self._stop.is_set():
                    return
                if _is_limit_error(exc):  # not even the top folder could be watched: rescans only
                    self._set_exhausted(True)
                    self._stop.wait(EXHAUSTED_RECHECK)
                    continue
                self._error(f"watching {self.root} failed: {exc}; retrying")
                self._stop.wait(RETRY_MISSING_ROOT)
                continue
            if rearm:
                self._rescan_soon()  # what changed while no watch was armed is found by a rescan

    def _watch_once(self) -> bool:
        """Arm watchfiles and hand its batches on until stopped; True when it should be armed again (watches
        are free again after a shortage, so the folders that had none get theirs)."""
        after_arming = True  # the first hand-back comes after every folder got (or did not get) its watch
        check_room = True
        next_recheck = 0.0
        changes_iter = watchfiles.watch(
            self.root,
            watch_filter=_relevant,
            debounce=self._debounce_ms,
            step=self._step_ms,
            stop_event=self._stop,
            rust_timeout=RUST_TIMEOUT_MS,
            yield_on_timeout=True,  # an empty batch every second: time to look at the limit
            raise_interrupt=False,
            force_polling=self._force_polling,
            ignore_permission_denied=True,
        )
        try:
            for changes in changes_iter:
                if changes and self._handle(changes):
                    check_room = True  # new folders: did they all get a watch?
                self._release_held(time.monotonic())
                if self._force_polling:
                    continue
                now = time.monotonic()
                if check_room:
                    check_room = False
                    room = self._probe(self.root)
                    if room is False:
                        self._set_exhausted(True)
                        next_recheck = now + EXHAUSTED_RECHECK
                    elif room and after_arming:
                        self._set_exhausted(False)  # armed with room to spare: every folder has its watch
                    after_arming = False
                elif self.exhausted and now >= next_recheck:
                    next_recheck = now + EXHAUSTED_RECHECK
                    if self._probe(self.root):
                        return True
        finally:
            changes_iter.close()  # releases this arming's watches
        return False

    def _release_held(self, now: float) -> None:
        """Report the held batches once deletions have stopped (or have gone on for too long)."""
        if self._held and (now - self._last_deletion >= DELETION_QUIET or now - self._held_since >= DELETION_HOLD_MAX):
            paths, self._held = sorted(set(self._held)), []
            self._emit("local", paths)

    def _set_exhausted(self, exhausted: bool) -> None:
        if exhausted == self.exhausted:
            return
        self.exhausted = exhausted
        if exhausted:
            self._rescan_soon()  # changes in folders that got no watch may be waiting already
        with self._cond:
            self._cond.notify_all()
        if self._on_limit is not None:
            try:
                self._on_limit(exhausted, read_watch_limit(), self.rescan_period())
            except Exception as exc:  # a subscriber bug must not kill the watcher
                self._error(f"limit callback failed: {exc}")

    def rescan_period(self) -> float:
        """Seconds between full rescans: the safety net's period, or much shorter while watches are short."""
        if not self.exhausted:
            return self._rescan_interval
        return min(self._rescan_interval, max(EXHAUSTED_RESCAN, RESCAN_SHARE * self._rescan_cost))

    def _rescan_soon(self) -> None:
        with self._cond:
            self._rescan_now_due = True
            self._cond.notify_all()

    def _handle(self, changes: set[tuple[watchfiles.Change, str]]) -> bool:
        """Report a batch; True when it holds new folders."""
        paths = sorted({self._rel(p) for _, p in changes})
        new_dirs = [p for c, p in changes if c == watchfiles.Change.added and os.path.isdir(p)]
        deletes = any(c == watchfiles.Change.deleted for c, _ in changes)
        if deletes or self._held:
            now = time.monotonic()
            if not self._held:
                self._held_since = now
            if deletes:
                self._last_deletion = now
            self._held.extend(paths)
        else:
            self._emit("local", paths)
        if new_dirs:
            due = time.monotonic() + self._recheck
            with self._cond:
                for d in new_dirs:
                    heapq.heappush(self._timers, (due, next(self._seq), d, tree_signature(d)))
                self._cond.notify_all()
        return bool(new_dirs)

    def _timer_loop(self) -> None:
        # The first signature is taken here, not in start(): a large tree must not delay the engine's start.
        self._signature = tree_signature(self.root)
        last_rescan = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            due_folders: list[tuple[str, str]] = []
            with self._cond:
                next_rescan = now if self._rescan_now_due else last_rescan + self.rescan_period()
                while self._timers and self._timers[0][0] <= now:
                    _, _, folder, sig = heapq.heappop(self._timers)
                    due_folders.append((folder, sig))
                wake = min([next_rescan] + [t[0] for t in self._timers[:1]])
                if not due_folders and now < next_rescan:
                    self._cond.wait(min(wake - now, 1.0))
                    continue
                if now >= next_rescan:
                    self._rescan_now_due = False
            changed = [self._rel(f) for f, sig in due_folders if tree_signature(f) != sig]
            if changed:
                self._emit("new-folder", changed)
            if now >= next_rescan:
                started = time.monotonic()
                try:
                    self.rescan_now()
                except OSError as exc:
                    self._error(f"rescan of {self.root} failed: {exc}")
                last_rescan = time.monotonic()
                self._rescan_cost = last_rescan - started
