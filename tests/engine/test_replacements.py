"""Local change detection sees replacements: the inode and ctime of each local file are recorded with its size and
mtime (issue 21, found item 7), so a file replaced by another of the same size and mtime is a change.

Two files written in one clock tick have the same mtime; swapped (a->tmp, b->a, tmp->b) they keep sizes and
mtimes, and only the inode numbers and ctimes at each name tell. A ctime that moved alone (chmod, a hard link)
is a metadata change: content is compared where that needs no download, never transferred for nothing.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from engine.config import Home
from engine.localfs import LocalEntry
from engine.policy import PathPolicy
from engine.providers.base import RemoteEntry
from engine.reconcile import COMPARE, DELETE_LOCAL, RECORD, UPLOAD, plan
from engine.state import StateDB, StateRow

from .conftest import write

T = 1_700_000_000


def _db(env) -> StateDB:
    return StateDB(Home(env.home.path).setting("database-path"))


def _same_tick(*paths) -> None:
    for p in paths:
        os.utime(p, ns=(T * 10**9, T * 10**9))


def _swap(a, b) -> None:
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_two_files_swapped_in_one_tick_are_uploaded(env):
    write(env.local / "a.txt", "AAAA")
    write(env.local / "b.txt", "BBBB")
    _same_tick(env.local / "a.txt", env.local / "b.txt")
    env.sync()
    _swap(env.local / "a.txt", env.local / "b.txt")
    r = env.sync()
    assert r.summary.get("uploaded") == 2, r.summary
    assert (env.cloud / "a.txt").read_text() == "BBBB" and (env.cloud / "b.txt").read_text() == "AAAA"
    assert env.sync().summary == {}  # and then nothing more to do


def test_nothing_to_do_after_each_kind_of_write(env):
    write(env.local / "up.txt", "up")
    write(env.cloud / "down.txt", "down")
    write(env.local / "both.txt", "local")
    write(env.cloud / "both.txt", "remote!")
    first = env.sync()
    assert first.summary.get("uploaded") and first.summary.get("downloaded") and first.summary.get("conflict")
    assert env.sync().summary == {}
    rows = {r.path: r for r in _db(env).rows(_db(env).task_id("t"))}
    st = os.stat(env.local / "down.txt")
    assert (rows["down.txt"].lino, rows["down.txt"].lctime) == (st.st_ino, st.st_ctime_ns)
    st = os.stat(env.local / "up.txt")
    assert (rows["up.txt"].lino, rows["up.txt"].lctime) == (st.st_ino, st.st_ctime_ns)


def test_a_ctime_only_change_is_compared_not_transferred(env):
    write(env.local / "a.txt", "same")
    env.sync()
    os.chmod(env.local / "a.txt", 0o600)
    os.link(env.local / "a.txt", env.local.parent / "outside-link")
    r = env.sync()
    assert "uploaded" not in r.summary and "conflict" not in r.summary, r.summary
    assert r.summary.get("record") == 1  # the content was compared (md5 on both sides), found equal
    assert env.sync().summary == {}  # the new ctime is recorded


def test_a_rewrite_in_place_that_keeps_size_and_mtime_is_not_lost(env):
    write(env.local / "a.txt", "old!")
    env.sync()
    st = os.stat(env.local / "a.txt")
    with open(env.local / "a.txt", "r+b") as f:  # same inode, same size
        f.write(b"new!")
    os.utime(env.local / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime put back
    r = env.sync()
    assert r.summary.get("conflict") == 1, r.summary  # both versions kept
    assert (env.cloud / "a.txt").read_text() == "new!"
    copies = [p for p in env.cloud.iterdir() if "_Conflict_" in p.name]
    assert [p.read_text() for p in copies] == ["old!"]


def test_an_older_database_gains_the_columns_and_they_are_filled_in(env, tmp_path):
    # The schema as it was: no lino/lctime.
    path = Home(env.home.path).setting("database-path")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);"
        "CREATE TABLE entries (task INTEGER NOT NULL, key BLOB NOT NULL, path TEXT NOT NULL, is_dir INTEGER NOT NULL,"
        " lsize INTEGER, lmtime INTEGER, rsize INTEGER, rrev TEXT, rmtime REAL, rhash TEXT, rname TEXT,"
        " PRIMARY KEY (task, key)) WITHOUT ROWID;"
        "INSERT INTO tasks (id, name) VALUES (1, 'old');"
        "INSERT INTO entries VALUES (1, CAST('x' AS BLOB), 'x', 0, 1, 2, 1, 'r', 3.0, NULL, NULL);"
    )
    old.commit()
    old.close()
    dbs: list[StateDB] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            dbs.append(StateDB(path))
        except BaseException as exc:  # two processes migrating at once: neither may fail
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    db = dbs[0]
    assert list(db.rows(1)) == [StateRow("x", False, 1, 2, 1, "r", 3.0, None, None, None, None)]
    for d in dbs:
        d.close()

    # A state written before inodes were recorded: an unchanged file gets its inode and ctime filled in by the
    # next pass (no transfer, no log line), after which a swap is seen.
    write(env.local / "a.txt", "AAAA")
    write(env.local / "b.txt", "BBBB")
    _same_tick(env.local / "a.txt", env.local / "b.txt")
    env.sync()
    db = _db(env)
    db._db.execute("UPDATE entries SET lino = NULL, lctime = NULL")
    assert env.sync().summary == {}
    assert all(r.lino is not None for r in db.rows(db.task_id("t")))
    _swap(env.local / "a.txt", env.local / "b.txt")
    assert env.sync().summary.get("uploaded") == 2
    assert (env.cloud / "a.txt").read_text() == "BBBB"
    db.close()


# -- the decision itself, on plain data ----------------------------------------------------------------------------

ROW = StateRow("f", False, 4, 1000, 4, None, 1.0, "h", None, 7, 500)
REMOTE = RemoteEntry("f", False, 4, 1.0, "h", None)


def _kind(local: LocalEntry, cheap: bool = True, direction: str = "bidirectional",
          remote: RemoteEntry | None = REMOTE) -> str | None:
    p = plan([ROW], [local], [("f", remote)] if remote else [], direction, PathPolicy("local"),
             cheap_compare=(lambda r: cheap))
    return p.actions[0].kind if p.actions else None


def test_decision_table_for_inode_and_ctime():
    assert _kind(LocalEntry("f", False, 4, 1000, 7, 500)) is None  # untouched
    assert _kind(LocalEntry("f", False, 4, 1000, 8, 600)) == UPLOAD  # another file in its place
    assert _kind(LocalEntry("f", False, 4, 1000, 8, 500)) is None  # renumbered (FUSE, remount): same ctime
    assert _kind(LocalEntry("f", False, 4, 1000, 7, 600)) == COMPARE  # metadata only: compare, no transfer
    assert _kind(LocalEntry("f", False, 4, 1000, 7, 600), cheap=False) == RECORD  # only a download could tell
    assert _kind(LocalEntry("f", False, 4, 1000, 7, 600), direction="download") == RECORD
    assert _kind(LocalEntry("f", False, 4, 1000)) is None  # unknown inode and ctime: not compared


def test_a_ctime_that_moved_is_never_trusted_to_delete_or_overwrite():
    """Only the ctime moved locally, and the other side changed too: the file may have been rewritten in place
    with its size and mtime kept (found by the model test: such an edit was deleted by the cloud's deletion)."""
    moved = LocalEntry("f", False, 4, 1000, 7, 600)
    assert _kind(moved, remote=None) == UPLOAD  # deleted in the cloud: kept and sent back, not deleted
    assert _kind(moved, remote=REMOTE._replace(size=5, mtime=2.0)) == COMPARE  # both kept if they differ
    untouched = LocalEntry("f", False, 4, 1000, 7, 500)
    assert _kind(untouched, remote=None) == DELETE_LOCAL  # the ctime is the recorded one: the deletion applies


def test_a_same_size_same_mtime_rewrite_survives_a_deletion_in_the_cloud(env):
    write(env.local / "a.txt", "old!")
    env.sync()
    st = os.stat(env.local / "a.txt")
    with open(env.local / "a.txt", "r+b") as f:
        f.write(b"new!")
    os.utime(env.local / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.remove(env.cloud / "a.txt")
    r = env.sync()
    assert r.summary == {"uploaded": 1}, r.summary
    assert (env.cloud / "a.txt").read_text() == "new!" == (env.local / "a.txt").read_text()
