"""`skysync settings set database-path PATH`: move the state database, with its history, to PATH.

The state database holds every task's sync state, the history log, pass summaries, skip records and change
feed cursors (engine/state.py): one SQLite file. Starting an empty one elsewhere would forget all of it, and
the next pass of every task would be a first pass. So the setting moves the file:

1. refused while anything could write it: a running engine (its lock, engine/runtime/lock.py) or a pass of any
   task (the task locks, engine.sync.TaskLock), all held until the move is over;
2. refused when the target lies inside a task's local folder (it would sync itself), already holds a file, or
   its folder cannot be written;
3. copied with SQLite's backup API (a consistent snapshot, the write-ahead log included) to a temporary name
   beside the target, made durable, then checked: `PRAGMA integrity_check` and the row count of every table
   equal to the original's;
4. renamed into place, the config saved to point at it, and only then the old file (with its -wal, -shm and
   .lock companions) removed. A failure before the config is saved leaves the old database in use and removes
   the copy; one after it leaves the old file behind, said in one line, never the other way round.

PATH may name a folder that exists (the database goes in it as `state.db`) or the database file itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Protocol

from engine.config import Home
from engine.errors import UsageError
from engine.names import shown

DB_NAME = "state.db"
COMPANIONS = ("-wal", "-shm", ".lock")  # SQLite's write-ahead log and shared memory; StateDB's opening lock


class EngineLockLike(Protocol):
    """The running engine's lock (engine.runtime.lock.EngineLock, handed in by the CLI, which may import the
    runtime): acquire() raises LockedError while an engine runs."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...


def target_path(home: Home, value: str) -> str:
    """The database file a typed value names: an existing folder gets `state.db` inside it; "" is the home's."""
    text = value.strip()
    if not text:
        return os.path.join(home.path, DB_NAME)
    path = os.path.expanduser(text)
    if os.path.isabs(path) and os.path.isdir(path):
        return os.path.join(path, DB_NAME)
    return path


@contextlib.contextmanager
def _nothing_running(home: Home, engine: EngineLockLike) -> Iterator[None]:
    """Hold the engine's lock and every task's lock (non-blocking: a holder means a pass may be writing)."""
    from engine.errors import LockedError
    from engine.sync import TaskLock

    try:
        engine.acquire()
    except LockedError:
        raise LockedError("the engine is running for this home (skysync run or the app): stop it, then move the "
                          "database") from None
    try:
        with contextlib.ExitStack() as stack:
            for task in home.tasks():
                try:
                    stack.enter_context(TaskLock(home, task.name))
                except LockedError:
                    raise LockedError(f"task '{task.name}' is syncing: move the database once its pass is "
                                      "over") from None
            yield
    finally:
        engine.release()


def _check_writable(folder: str) -> None:
    """Create `folder` if needed and write a file in it: the only test that holds for root and read-only mounts."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".skysync-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise UsageError(f"cannot move the state database to {shown(folder)}: the folder cannot be written "
                         f"({reason})") from None


def table_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Rows per table: what the copy must hold exactly as the original does."""
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: int(db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]) for name in names}


def _copy_verified(source: str, tmp: str) -> None:
    """Back `source` up into the new file `tmp` and check the copy; UsageError (one line) when it differs."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.commit()
            expected = table_counts(src)
            problems = [r[0] for r in dst.execute("PRAGMA integrity_check")]
            copied = table_counts(dst)
        finally:
            dst.close()
    finally:
        src.close()
    if problems != ["ok"]:
        raise UsageError(f"the copy of the state database at {shown(tmp)} failed its integrity check "
                         f"({problems[0]}); the database was not moved")
    if copied != expected:
        raise UsageError("the copy of the state database does not hold the same rows as the original; the "
                         "database was not moved")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_database(home: Home, value: str, engine_lock: EngineLockLike) -> tuple[str, str | None]:
    """Point `database-path` at `value`, moving the database there; the home is saved. Returns (the new path,
    a one-line note when the old file could not be removed afterwards)."""
    old = home.setting("database-path")
    new = target_path(home, value)
    home.set_setting("database-path", new)  # the setting's own rules: absolute, outside every task's folder
    if os.path.realpath(new) == os.path.realpath(old):
        return new, None
    if not os.path.exists(old):  # nothing synced yet: nothing to carry over (the first pass makes the file)
        home.save()
        return new, None
    if os.path.lexists(new):
        raise UsageError(f"{shown(new)} already exists; choose another path, or remove it first (the database "
                         "is never written over a file)")
    folder = os.path.dirname(new)
    _check_writable(folder)
    with _nothing_running(home, engine_lock):
        fd, tmp = tempfile.mkstemp(prefix=".skysync-tmp-", suffix=".db", dir=folder)
        os.close(fd)
        try:
            try:
                _copy_verified(old, tmp)
            except sqlite3.Error as exc:
                raise UsageError(f"the state database could not be copied to {shown(folder)} "
                                 f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); it was not "
                                 "moved") from None
            os.chmod(tmp, 0o600)
            os.rename(tmp, new)
            tmp = ""
            _fsync_dir(folder)
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        try:
            home.save()
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(new)  # the config still names the old database, which is untouched
            raise
        return new, _remove_old(old)


def _remove_old(old: str) -> str | None:
    failed = []
    for path in [old, *(old + c for c in COMPANIONS)]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{shown(path)} ({(exc.strerror or type(exc).__name__).lower()})")
    if failed:
        return "the old database could not be removed: " + ", ".join(failed) + "; it is no longer used"
    return None
