"""SQLite state: the last synced state of every path of every task, the history log, skipped paths, passes.

Written once per completed action (WAL, synchronous=NORMAL: a killed process loses nothing it committed), so
an interrupted pass resumes where it stopped. Entries are keyed by the canonical order key so a task's state
streams out in the same order as the listings it is merged with.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

from engine.events import LogRecord
from engine.names import shown
from engine.providers.base import order_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    task INTEGER NOT NULL,
    key BLOB NOT NULL,
    path TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    lsize INTEGER, lmtime INTEGER,
    rsize INTEGER, rrev TEXT, rmtime REAL, rhash TEXT,
    rname TEXT,
    lino INTEGER, lctime INTEGER,
    PRIMARY KEY (task, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS skipped (
    task INTEGER NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (task, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL,
    path TEXT NOT NULL, message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pairings (
    task INTEGER PRIMARY KEY, identity TEXT NOT NULL, device TEXT
);
CREATE TABLE IF NOT EXISTS passes (
    task TEXT PRIMARY KEY, started REAL, finished REAL, ok INTEGER, summary TEXT, error TEXT
);
"""

# Columns added after the first release, with their types: an older database gains them (NULL = unknown) when
# it is opened. Each is added by an ALTER TABLE that either happens entirely or not at all.
_ADDED_COLUMNS = (("entries", "lino", "INTEGER"), ("entries", "lctime", "INTEGER"))

_ENTRY_COLUMNS = "path, is_dir, lsize, lmtime, rsize, rrev, rmtime, rhash, rname, lino, lctime"
_PUT_ENTRY = (
    f"INSERT OR REPLACE INTO entries (task, key, {_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class StateRow(NamedTuple):
    path: str
    is_dir: bool
    lsize: int | None
    lmtime: int | None
    rsize: int | None
    rrev: str | None
    rmtime: float | None
    rhash: str | None
    rname: str | None  # the remote path when it differs from `path` (tail-character rename)
    # The local file's inode number and ctime when it was recorded (None: unknown, e.g. a row written before
    # they were recorded; such a row is compared by size and mtime only).
    lino: int | None = None
    lctime: int | None = None

    def local_signature(self) -> tuple[object, ...]:
        return (True,) if self.is_dir else (False, self.lsize, self.lmtime)

    def remote_signature(self) -> tuple[object, ...]:
        return (True,) if self.is_dir else (False, self.rsize, self.rrev if self.rrev is not None else self.rmtime)


def _key(path: str) -> bytes:
    return order_key(path).encode("utf-8", "surrogateescape")


def _entry_values(task: int, r: StateRow) -> tuple[object, ...]:
    return (task, _key(r.path), r.path, int(r.is_dir), r.lsize, r.lmtime, r.rsize, r.rrev, r.rmtime, r.rhash,
            r.rname, r.lino, r.lctime)


@contextlib.contextmanager
def _opening(path: str) -> Iterator[None]:
    """One process at a time sets the journal mode, creates and migrates: SQLite answers "database is locked"
    at once (without waiting its busy timeout) to a second connection switching to WAL or altering a table
    at the same moment, e.g. the running engine and a CLI command started together after an upgrade."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class StateDB:
    """One connection per StateDB; safe to share between threads (writes are serialised by a lock)."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.RLock()
        with self._lock, _opening(path):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Add the columns an older database lacks. Another process may be doing the same at this moment:
        a column it added first is simply there."""
        for table, column, kind in _ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column in have:
                continue
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- tasks ---------------------------------------------------------------------------------------------
    def task_id(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()
            if row:
                return int(row[0])
            cur = self._db.execute("INSERT INTO tasks (name) VALUES (?)", (name,))
            return int(cur.lastrowid or 0)

    def forget_task(self, name: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()
            if not row:
                return
            self._db.execute("BEGIN")
            for table in ("entries", "skipped", "pairings"):
                self._db.execute(f"DELETE FROM {table} WHERE task = ?", (row[0],))
            self._db.execute("DELETE FROM tasks WHERE id = ?", (row[0],))
            self._db.execute("DELETE FROM passes WHERE task = ?", (name,))
            self._db.execute("COMMIT")

    # -- the pairing a task's state belongs to ---------------------------------------------------------------
    def pairing(self, task: int) -> str | None:
        row = self._db.execute("SELECT identity FROM pairings WHERE task = ?", (task,)).fetchone()
        return str(row[0]) if row else None

    def set_pairing(self, task: int, identity: str, device: str | None, forget: bool) -> None:
        """Remember which local and remote folder the task's state is about; with `forget`, the state of the
        earlier pairing goes in the same transaction, so no pass can ever read it against the new folders."""
        with self._lock:
            self._db.execute("BEGIN")
            if forget:
                for table in ("entries", "skipped"):
                    self._db.execute(f"DELETE FROM {table} WHERE task = ?", (task,))
            self._db.execute(
                "INSERT INTO pairings (task, identity, device) VALUES (?, ?, ?) "
                "ON CONFLICT(task) DO UPDATE SET identity = excluded.identity, device = excluded.device",
                (task, identity, device),
            )
            self._db.execute("COMMIT")

    def pairing_device(self, task_name: str) -> str | None:
        """The device (`major:minor`) the task's local folder was on at its last pass, if recorded."""
        row = self._db.execute(
            "SELECT p.device FROM pairings p JOIN tasks t ON t.id = p.task WHERE t.name = ?", (task_name,)
        ).fetchone()
        return str(row[0]) if row and row[0] else None

    # -- entries -------------------------------------------------------------------------------------------
    def rows(self, task: int) -> Iterator[StateRow]:
        """All entries of a task in canonical order, streamed (a separate cursor, no list in memory)."""
        cur = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE task = ? ORDER BY key", (task,))
        return map(StateRow._make, cur)

    def counts(self, task: int) -> tuple[int, int]:
        """(files, folders) tracked for a task."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(is_dir = 0), 0), COALESCE(SUM(is_dir = 1), 0) FROM entries WHERE task = ?",
            (task,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def get(self, task: int, path: str) -> StateRow | None:
        r = self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE task = ? AND key = ?", (task, _key(path))
        ).fetchone()
        return StateRow._make(r) if r else None

    def put(self, task: int, row: StateRow) -> None:
        with self._lock:
            self._db.execute(_PUT_ENTRY, _entry_values(task, row))

    def put_many(self, task: int, rows: list[StateRow]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(_PUT_ENTRY, [_entry_values(task, r) for r in rows])
            self._db.execute("COMMIT")

    def delete(self, task: int, path: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries WHERE task = ? AND key = ?", (task, _key(path)))

    # -- skipped paths (so a skip is logged once, not on every poll) ----------------------------------------
    def skipped(self, task: int) -> dict[str, str]:
        return dict(self._db.execute("SELECT path, reason FROM skipped WHERE task = ?", (task,)).fetchall())

    def replace_skipped(self, task: int, skipped: dict[str, str]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM skipped WHERE task = ?", (task,))
            self._db.executemany(
                "INSERT INTO skipped (task, path, reason) VALUES (?, ?, ?)",
                [(task, shown(p), shown(r)) for p, r in skipped.items()],
            )
            self._db.execute("COMMIT")

    # -- history log -------------------------------------------------------------------------------------
    def log(self, records: list[LogRecord], cap: int) -> None:
        if not records:
            return
        with self._lock:
            self._db.execute("BEGIN")
            cur = self._db.executemany(
                "INSERT INTO log (time, task, kind, path, message) VALUES (?, ?, ?, ?, ?)",
                [(r.time, r.task, r.kind, shown(r.path), shown(r.message)) for r in records],
            )
            del cur
            last = self._db.execute("SELECT MAX(id) FROM log").fetchone()[0] or 0
            self._db.execute("DELETE FROM log WHERE id <= ?", (last - cap,))
            self._db.execute("COMMIT")

    def read_log(self, task: str | None = None, limit: int = 50, kinds: tuple[str, ...] = ()) -> list[LogRecord]:
        sql = "SELECT time, task, kind, path, message FROM log"
        where, args = [], []
        if task:
            where.append("task = ?")
            args.append(task)
        if kinds:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            args.extend(kinds)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        rows = self._db.execute(sql, args).fetchall()
        return [LogRecord(*r) for r in reversed(rows)]

    def log_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM log").fetchone()[0])

    # -- passes (for status) -----------------------------------------------------------------------------
    def pass_started(self, task: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO passes (task, started) VALUES (?, ?) ON CONFLICT(task) DO UPDATE SET started = ?",
                (task, time.time(), time.time()),
            )

    def pass_finished(self, task: str, ok: bool, summary: dict[str, int], error: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE passes SET finished = ?, ok = ?, summary = ?, error = ? WHERE task = ?",
                (time.time(), int(ok), json.dumps(summary), error, task),
            )

    def last_pass(self, task: str) -> dict | None:
        r = self._db.execute(
            "SELECT started, finished, ok, summary, error FROM passes WHERE task = ?", (task,)
        ).fetchone()
        if not r:
            return None
        return {
            "started": r[0],
            "finished": r[1],
            "ok": None if r[2] is None else bool(r[2]),
            "summary": json.loads(r[3]) if r[3] else {},
            "error": r[4],
        }
