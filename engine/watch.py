"""Local change detection for one task folder: watchfiles events, debounced, plus two safety nets.

1. A folder that appears is walked now and again a moment later: inotify watches a new folder only after it
   exists, so files created right inside it can come without an event (GUIDE §3). A difference means
   "changed".
2. A periodic full rescan compares a cheap signature of the whole tree (paths, sizes, mtimes) with the
   previous one, for whatever the kernel dropped (queue overflow, network file systems, a watcher restart).

The watcher only says *that* something changed; the sync pass itself scans and decides what to do, so a
spurious notification costs one no-op pass and a missed one is caught by the rescan.
"""

from __future__ import annotations

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

DEBOUNCE_MS = 400  # the longest a burst of events is grouped before we hear of it
STEP_MS = 50  # quiet time that ends a burst: a single save is reported ~50 ms after it lands
NEW_FOLDER_RECHECK = 1.0
RESCAN_INTERVAL = 600.0
RETRY_MISSING_ROOT = 5.0


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
                for changes in watchfiles.watch(
                    self.root,
                    watch_filter=_relevant,
                    debounce=self._debounce_ms,
                    step=self._step_ms,
                    stop_event=self._stop,
                    rust_timeout=1000,
                    yield_on_timeout=False,
                    raise_interrupt=False,
                    force_polling=self._force_polling,
                    ignore_permission_denied=True,
                ):
                    self._handle(changes)
            except Exception as exc:  # the folder vanished, inotify limits...: report, wait, start over
                if self._stop.is_set():
                    return
                self._error(f"watching {self.root} failed: {exc}; retrying")
                self._stop.wait(RETRY_MISSING_ROOT)

    def _handle(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        paths = sorted({self._rel(p) for _, p in changes})
        new_dirs = [p for c, p in changes if c == watchfiles.Change.added and os.path.isdir(p)]
        self._emit("local", paths)
        if new_dirs:
            due = time.monotonic() + self._recheck
            with self._cond:
                for d in new_dirs:
                    heapq.heappush(self._timers, (due, next(self._seq), d, tree_signature(d)))
                self._cond.notify_all()

    def _timer_loop(self) -> None:
        # The first signature is taken here, not in start(): a large tree must not delay the engine's start.
        self._signature = tree_signature(self.root)
        next_rescan = time.monotonic() + self._rescan_interval
        while not self._stop.is_set():
            now = time.monotonic()
            due_folders: list[tuple[str, str]] = []
            with self._cond:
                while self._timers and self._timers[0][0] <= now:
                    _, _, folder, sig = heapq.heappop(self._timers)
                    due_folders.append((folder, sig))
                wake = min([next_rescan] + [t[0] for t in self._timers[:1]])
                if not due_folders and now < next_rescan:
                    self._cond.wait(min(wake - now, 1.0))
                    continue
            changed = [self._rel(f) for f, sig in due_folders if tree_signature(f) != sig]
            if changed:
                self._emit("new-folder", changed)
            if now >= next_rescan:
                next_rescan = now + self._rescan_interval
                try:
                    self.rescan_now()
                except OSError as exc:
                    self._error(f"rescan of {self.root} failed: {exc}")
