"""SQLite state: the last synced state of every path of every task, the history log, skipped paths, passes.

Written once per completed action (WAL, synchronous=NORMAL: a killed process loses nothing it committed), so
an interrupted pass resumes where it stopped. Entries are keyed by the canonical order key so a task's state
streams out in the same order as the listings it is merged with.

Also per task: the change-feed cursor of its remote folder and the remote index that cursor describes (see
`engine.feeds`). The schema carries a version (`PRAGMA user_version`) and ordered migrations (`MIGRATIONS`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from engine.errors import UsageError
from engine.events import LogRecord
from engine.names import shown
from engine.providers.base import RemoteEntry, order_key

# -- schema versions -------------------------------------------------------------------------------------------
# `PRAGMA user_version` says which migrations a database has had. Releases before versions kept it at 0, with
# the tables of MIGRATIONS[0] and, depending on their age, the columns of MIGRATIONS[1]: every step below is
# written so that it also holds on such a database (IF NOT EXISTS; a column only if it is missing). A step is
# never edited once released: a change to the schema is a new step at the end.

_V1_TABLES = """
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    task INTEGER NOT NULL,
    key BLOB NOT NULL,
    path TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    lsize INTEGER, lmtime INTEGER,
    rsize INTEGER, rrev TEXT, rmtime REAL, rhash TEXT,
    rname TEXT,
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

# The change feed of a task's remote folder: the cursor and the remote index it describes are written in one
# transaction, so the cursor is never ahead of (or behind) the index. `pairing` ties both to the pairing they
# were read for; `listed` is when the index was last rebuilt from a full listing (the safety net's clock).
_V3_FEEDS = """
CREATE TABLE IF NOT EXISTS feeds (
    task INTEGER NOT NULL, folder TEXT NOT NULL, pairing TEXT NOT NULL, cursor TEXT NOT NULL,
    listed REAL NOT NULL, PRIMARY KEY (task, folder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rindex (
    task INTEGER NOT NULL, id TEXT NOT NULL, parent_id TEXT, key BLOB NOT NULL, path TEXT NOT NULL,
    is_dir INTEGER NOT NULL, size INTEGER NOT NULL, mtime REAL, hash TEXT, revision TEXT,
    PRIMARY KEY (task, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rindex_by_key ON rindex (task, key);
CREATE TABLE IF NOT EXISTS rskips (
    task INTEGER NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (task, path)
) WITHOUT ROWID;
"""


def _add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _v1(db: sqlite3.Connection) -> None:
    for statement in _V1_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)


def _v2(db: sqlite3.Connection) -> None:
    # The local file's inode and ctime, added before schema versions (NULL: unknown, compared by size and mtime).
    _add_column(db, "entries", "lino", "INTEGER")
    _add_column(db, "entries", "lctime", "INTEGER")


def _v3(db: sqlite3.Connection) -> None:
    # Contract v2: the service's id of each synced entry, the change-feed cursors and the remote index.
    _add_column(db, "entries", "rid", "TEXT")
    for statement in _V3_FEEDS.split(";"):
        if statement.strip():
            db.execute(statement)


# The no-change fast path (engine.settled): the digests of both trees after a pass that planned nothing. Any
# write to what a plan reads from the state (the rows, the skip list, the pairing, the remote index) deletes the
# task's row in the same statement, so no writer, present or future, can leave a stale one behind.
_V4_SETTLED = [
    "CREATE TABLE IF NOT EXISTS settled (task INTEGER PRIMARY KEY, config TEXT NOT NULL, local TEXT NOT NULL,"
    " remote TEXT NOT NULL, made REAL NOT NULL)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS settled_{table}_{event.lower()} AFTER {event} ON {table} BEGIN"
        f" DELETE FROM settled WHERE task IN ({rows}); END"
        for table in ("entries", "skipped", "pairings", "rindex", "feeds")
        for event, rows in (("INSERT", "NEW.task"), ("UPDATE", "OLD.task, NEW.task"), ("DELETE", "OLD.task"))
    ),
]


def _v4(db: sqlite3.Connection) -> None:
    for statement in _V4_SETTLED:
        db.execute(statement)


def _v5(db: sqlite3.Connection) -> None:
    # The device the folder playing the cloud (a `local` connection) was on at the task's last pass.
    _add_column(db, "pairings", "rdevice", "TEXT")


# MIGRATIONS[i] takes a database from version i to i + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5)
SCHEMA_VERSION = len(MIGRATIONS)


_FEED_TABLES = ("feeds", "rindex", "rskips")
_INDEX_COLUMNS = "id, parent_id, path, is_dir, size, mtime, hash, revision"
_PUT_INDEX = f"INSERT OR REPLACE INTO rindex (task, key, {_INDEX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class StateTooNew(UsageError):
    """The database was written by a newer skysync: it is left as it is, never downgraded."""


_ENTRY_COLUMNS = "path, is_dir, lsize, lmtime, rsize, rrev, rmtime, rhash, rname, lino, lctime, rid"
_PUT_ENTRY = f"INSERT OR REPLACE INTO entries (task, key, {_ENTRY_COLUMNS}) VALUES ({', '.join('?' * 14)})"


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
    rid: str | None = None  # the service's id of the remote entry (`Capabilities.ids`), None where it has none

    def local_signature(self) -> tuple[object, ...]:
        return (True,) if self.is_dir else (False, self.lsize, self.lmtime)

    def remote_signature(self) -> tuple[object, ...]:
        return (True,) if self.is_dir else (False, self.rsize, self.rrev if self.rrev is not None else self.rmtime)


def _key(path: str) -> bytes:
    return order_key(path).encode("utf-8", "surrogateescape")


def _subtree_keys(path: str) -> tuple[bytes, bytes]:
    """The key range of everything strictly inside folder `path`: each such key is the folder's key, then the
    separator "\x00" (sorting below every character of a name), then more."""
    key = _key(path)
    return key + b"\x00", key + b"\x01"


def _entry_values(task: int, r: StateRow) -> tuple[object, ...]:
    return (task, _key(r.path), r.path, int(r.is_dir), r.lsize, r.lmtime, r.rsize, r.rrev, r.rmtime, r.rhash,
            r.rname, r.lino, r.lctime, r.rid)


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
            try:
                self._migrate()
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                self._db.close()
                raise

    def _migrate(self) -> None:
        """Bring the database to SCHEMA_VERSION: every missing step, in order, in one transaction (all of them
        or none), under `_opening`'s lock, so two processes never migrate at once. A database from a newer
        release is refused before anything is written to it."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateTooNew(
                f"the state database {self.path} was written by a newer skysync (schema {version}; this one knows "
                f"up to {SCHEMA_VERSION}): it was left unchanged; upgrade skysync to use it"
            )
        if version == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for step in MIGRATIONS[version:]:
                step(self._db)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- tasks ---------------------------------------------------------------------------------------------
    def task_id(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()
            if row:
                return int(row[0])
            # A new id is above every id any row still carries: a removed task's pass that was still running
            # wrote its rows after `forget_task` (under its old id), and a task added again under the same name
            # must never read them as its own (SQLite would give the freed highest id again).
            # Another process (a `status` beside a `sync`) may add the same name between the two statements.
            self._db.execute(
                "INSERT OR IGNORE INTO tasks (id, name) VALUES (1 + MAX((SELECT IFNULL(MAX(id), 0) FROM tasks), "
                "(SELECT IFNULL(MAX(task), 0) FROM entries), (SELECT IFNULL(MAX(task), 0) FROM pairings)), ?)",
                (name,),
            )
            return int(self._db.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()[0])

    def forget_task(self, name: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()
            if not row:
                return
            self._db.execute("BEGIN")
            for table in ("entries", "skipped", "pairings", "settled", *_FEED_TABLES):
                self._db.execute(f"DELETE FROM {table} WHERE task = ?", (row[0],))
            self._db.execute("DELETE FROM tasks WHERE id = ?", (row[0],))
            self._db.execute("DELETE FROM passes WHERE task = ?", (name,))
            self._db.execute("COMMIT")

    # -- the pairing a task's state belongs to ---------------------------------------------------------------
    def pairing(self, task: int) -> str | None:
        row = self._db.execute("SELECT identity FROM pairings WHERE task = ?", (task,)).fetchone()
        return str(row[0]) if row else None

    def set_pairing(
        self, task: int, identity: str, device: str | None, forget: bool, rdevice: str | None = None
    ) -> None:
        """Remember which local and remote folder the task's state is about, and the devices of the local
        folder and (for a `local` connection) of the folder playing the cloud; with `forget`, the state of the
        earlier pairing goes in the same transaction, so no pass can ever read it against the new folders."""
        with self._lock:
            self._db.execute("BEGIN")
            if forget:  # the change-feed cursor and remote index were read for the old pairing too
                for table in ("entries", "skipped", *_FEED_TABLES):
                    self._db.execute(f"DELETE FROM {table} WHERE task = ?", (task,))
            self._db.execute(
                "INSERT INTO pairings (task, identity, device, rdevice) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(task) DO UPDATE SET identity = excluded.identity, device = excluded.device, "
                "rdevice = excluded.rdevice",
                (task, identity, device, rdevice),
            )
            self._db.execute("COMMIT")

    def pairing_device(self, task_name: str) -> str | None:
        """The device (`major:minor`) the task's local folder was on at its last pass, if recorded."""
        row = self._db.execute(
            "SELECT p.device FROM pairings p JOIN tasks t ON t.id = p.task WHERE t.name = ?", (task_name,)
        ).fetchone()
        return str(row[0]) if row and row[0] else None

    def pairing_devices(self, task: int) -> tuple[str | None, str | None]:
        """(local folder's device, cloud folder's device) at the task's last pass; None where not recorded."""
        row = self._db.execute("SELECT device, rdevice FROM pairings WHERE task = ?", (task,)).fetchone()
        return (row[0] or None, row[1] or None) if row else (None, None)

    # -- entries -------------------------------------------------------------------------------------------
    def rows(self, task: int) -> Iterator[StateRow]:
        """All entries of a task in canonical order, streamed (a separate cursor, no list in memory)."""
        cur = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE task = ? ORDER BY key", (task,))
        return map(StateRow._make, cur)

    def rows_below(self, task: int, path: str) -> list[StateRow]:
        """The entries strictly inside folder `path` ("" : all of them), in canonical order (one range read)."""
        if not path:
            return list(self.rows(task))
        low, high = _subtree_keys(path)
        cur = self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE task = ? AND key >= ? AND key < ? ORDER BY key",
            (task, low, high),
        )
        return list(map(StateRow._make, cur))

    def paths_with_local_identity(self, task: int, ino: int, size: int, mtime_ns: int) -> list[str]:
        """Paths whose recorded local file has this inode, size and mtime (a rename's other half)."""
        cur = self._db.execute("SELECT path FROM entries WHERE task = ? AND lino = ? AND lsize = ? AND lmtime = ?",
                               (task, ino, size, mtime_ns))
        return [str(r[0]) for r in cur]

    def paths_with_remote_content(self, task: int, size: int, digest: str) -> list[str]:
        """Paths whose recorded remote file has this size and hash (a remote rename's other half)."""
        cur = self._db.execute("SELECT path FROM entries WHERE task = ? AND rsize = ? AND lower(rhash) = ?",
                               (task, size, digest.lower()))
        return [str(r[0]) for r in cur]

    def counts(self, task: int) -> tuple[int, int]:
        """(files, folders) tracked for a task."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(is_dir = 0), 0), COALESCE(SUM(is_dir = 1), 0) FROM entries WHERE task = ?",
            (task,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def tracks_at_least(self, task: int, n: int) -> bool:
        """Whether the task tracks `n` entries or more; reads no further than the n-th (a COUNT of a large
        task's rows costs ~18 ms per 50,000)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM entries WHERE task = ? LIMIT ?)", (task, n)
        ).fetchone()
        return int(row[0]) >= n

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

    # -- change feed: the cursor and the remote index it describes ----------------------------------------------
    def feed(self, task: int, folder: str, pairing: str) -> Feed | None:
        """The saved cursor of the task's remote `folder`, if it was read for this pairing."""
        row = self._db.execute(
            "SELECT cursor, listed FROM feeds WHERE task = ? AND folder = ? AND pairing = ?", (task, folder, pairing)
        ).fetchone()
        return Feed(str(row[0]), float(row[1])) if row else None

    def index_entries(self, task: int) -> Iterator[RemoteEntry]:
        """The remote index of a task as entries in canonical order, streamed (a separate cursor)."""
        cur = self._db.execute(f"SELECT {_INDEX_COLUMNS} FROM rindex WHERE task = ? ORDER BY key, id", (task,))
        return (_index_entry(r) for r in cur)

    def index_below(self, task: int, path: str) -> Iterator[RemoteEntry]:
        """The remote index strictly inside folder `path` ("" : all of it), in canonical order."""
        if not path:
            return self.index_entries(task)
        low, high = _subtree_keys(path)
        cur = self._db.execute(
            f"SELECT {_INDEX_COLUMNS} FROM rindex WHERE task = ? AND key >= ? AND key < ? ORDER BY key, id",
            (task, low, high),
        )
        return (_index_entry(r) for r in cur)

    def index_skips(self, task: int) -> dict[str, str]:
        """What the full listing the index was built from left out (path -> reason)."""
        return dict(self._db.execute("SELECT path, reason FROM rskips WHERE task = ?", (task,)).fetchall())

    def save_index(self, task: int, feed: FeedKey, cursor: str, listed: float, entries: Iterable[RemoteEntry],
                   skips: dict[str, str]) -> None:
        """Replace the task's remote index by a full listing and save the cursor taken before it, together."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for table in _FEED_TABLES:
                    self._db.execute(f"DELETE FROM {table} WHERE task = ?", (task,))
                self._db.executemany(_PUT_INDEX, (_index_values(task, e) for e in entries))
                self._db.executemany("INSERT INTO rskips (task, path, reason) VALUES (?, ?, ?)",
                                     [(task, p, r) for p, r in skips.items()])
                self._db.execute("INSERT INTO feeds (task, folder, pairing, cursor, listed) VALUES (?, ?, ?, ?, ?)",
                                 (task, feed.folder, feed.pairing, cursor, listed))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def forget_feed(self, task: int) -> None:
        """Drop the cursor and the index (the next pass lists everything and starts a fresh cursor)."""
        with self._lock:
            self._db.execute("BEGIN")
            for table in _FEED_TABLES:
                self._db.execute(f"DELETE FROM {table} WHERE task = ?", (task,))
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def index_update(self, task: int, feed: FeedKey) -> Iterator[IndexUpdate]:
        """One transaction over the task's remote index: changes applied through the yielded `IndexUpdate` are
        kept only if `IndexUpdate.commit(cursor)` is called (the new cursor is written with them); anything else
        (an exception, no commit) leaves the index and the old cursor exactly as they were."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            update = IndexUpdate(self._db, task, feed)
            try:
                yield update
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT" if update.committed else "ROLLBACK")

    # -- the no-change fast path (engine.settled) -----------------------------------------------------------
    def settled(self, task: int) -> tuple[str, str, str, float] | None:
        """(config digest, local tree digest, remote tree digest, when) recorded after a pass that planned
        nothing, or None (never recorded, or the state changed since)."""
        row = self._db.execute("SELECT config, local, remote, made FROM settled WHERE task = ?", (task,)).fetchone()
        return None if row is None else (row[0], row[1], row[2], float(row[3]))

    def set_settled(self, task: int, config: str, local: str, remote: str, made: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO settled (task, config, local, remote, made) VALUES (?, ?, ?, ?, ?)",
                (task, config, local, remote, made),
            )

    def forget_settled(self, task: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM settled WHERE task = ?", (task,))

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
            try:
                cur = self._db.executemany(
                    "INSERT INTO log (time, task, kind, path, message) VALUES (?, ?, ?, ?, ?)",
                    [(r.time, r.task, r.kind, shown(r.path), shown(r.message)) for r in records],
                )
                del cur
                last = self._db.execute("SELECT MAX(id) FROM log").fetchone()[0] or 0
                self._db.execute("DELETE FROM log WHERE id <= ?", (last - cap,))
                self._db.execute("COMMIT")
            except BaseException:
                # (A failure, such as a full disk, must not leave the shared connection inside a transaction: the
                # next write, from any thread, would fail with "cannot start a transaction within a transaction".)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

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


class Feed(NamedTuple):
    cursor: str
    listed: float  # when the index was last rebuilt from a full listing (time.time())


class FeedKey(NamedTuple):
    """Which feed: the task's remote folder, read for one pairing."""

    folder: str
    pairing: str


def _index_entry(r: tuple) -> RemoteEntry:
    rid, parent, path, is_dir, size, mtime, hsh, rev = r
    return RemoteEntry(path, bool(is_dir), size, mtime, hsh, rev, rid, parent)


def _index_values(task: int, e: RemoteEntry) -> tuple[object, ...]:
    return (task, _key(e.path), e.id, e.parent_id, e.path, int(e.is_dir), e.size, e.mtime, e.hash, e.revision)


class IndexUpdate:
    """The remote index of one task inside an open transaction (see `StateDB.index_update`)."""

    def __init__(self, db: sqlite3.Connection, task: int, feed: FeedKey) -> None:
        self._db = db
        self._task = task
        self._feed = feed
        self.committed = False

    def get(self, rid: str) -> RemoteEntry | None:
        r = self._db.execute(f"SELECT {_INDEX_COLUMNS} FROM rindex WHERE task = ? AND id = ?",
                             (self._task, rid)).fetchone()
        return _index_entry(r) if r else None

    def folder_at(self, path: str) -> bool:
        """Whether the index holds a folder at `path` ("" is the feed's folder itself)."""
        if not path:
            return True
        return self._db.execute("SELECT 1 FROM rindex WHERE task = ? AND key = ? AND is_dir = 1 LIMIT 1",
                                (self._task, _key(path))).fetchone() is not None

    def at(self, path: str) -> list[RemoteEntry]:
        """The entries under this very name (more than one only where the service allows duplicates)."""
        cur = self._db.execute(f"SELECT {_INDEX_COLUMNS} FROM rindex WHERE task = ? AND key = ?",
                               (self._task, _key(path)))
        return [_index_entry(r) for r in cur]

    def count_at(self, path: str) -> int:
        """How many entries the index holds under this very name (more than one: duplicates)."""
        return int(self._db.execute("SELECT COUNT(*) FROM rindex WHERE task = ? AND key = ?",
                                    (self._task, _key(path))).fetchone()[0])

    def below(self, path: str) -> list[RemoteEntry]:
        """Everything strictly inside folder `path`."""
        low, high = _subtree_keys(path)
        cur = self._db.execute(f"SELECT {_INDEX_COLUMNS} FROM rindex WHERE task = ? AND key >= ? AND key < ?",
                               (self._task, low, high))
        return [_index_entry(r) for r in cur]

    def put(self, entry: RemoteEntry) -> None:
        self._db.execute(_PUT_INDEX, _index_values(self._task, entry))

    def remove(self, rid: str) -> None:
        self._db.execute("DELETE FROM rindex WHERE task = ? AND id = ?", (self._task, rid))

    def commit(self, cursor: str) -> None:
        """Keep the changes, with `cursor` as the point of the feed they bring the index to."""
        self._db.execute("UPDATE feeds SET cursor = ? WHERE task = ? AND folder = ? AND pairing = ?",
                         (cursor, self._task, self._feed.folder, self._feed.pairing))
        self.committed = True
