"""Schema versions: a home made by the release before them (tests/fixtures/state-v1, made by
tests/fixtures/make_state_v1.py with that release's code) opens with today's code without a re-sync, and keeps
its history, skipped rows and pairings; a database from a newer release is refused, unchanged."""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator

import pytest

from engine import cli
from engine.config import Home
from engine.state import MIGRATIONS, SCHEMA_VERSION, StateDB, StateTooNew
from engine.sync import run_pass

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "state-v1"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())
ROOT = pathlib.Path(MANIFEST["root"])
LOCAL = {"docs": ROOT / "docs", "photos": ROOT / "photos"}
TRANSFERS = ("uploaded", "downloaded", "conflict", "mkdir-local", "mkdir-remote", "deleted-local", "deleted-remote",
             "moved-local", "moved-remote", "failed")


@pytest.fixture
def old_home() -> Iterator[Home]:
    """The fixture unpacked where it was made (a pairing is a digest of absolute paths), one test at a time.

    Unpacking gives every file a new inode and ctime, as no upgrade does: those two columns are set to the
    unpacked files' values with plain SQL on the OLD schema, so the test sees what a user's own disk would hold.
    """
    with open(f"{ROOT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(ROOT, ignore_errors=True)
        ROOT.mkdir(parents=True)
        with tarfile.open(FIXTURE / "state-v1.tar.gz") as tar:
            tar.extractall(ROOT, filter="tar")
        db = sqlite3.connect(ROOT / "home" / "state.db")
        for task, local in LOCAL.items():
            rows = db.execute(
                "SELECT e.key, e.path FROM entries e JOIN tasks t ON t.id = e.task "
                "WHERE t.name = ? AND e.lino IS NOT NULL", (task,)
            ).fetchall()
            for key, path in rows:
                st = os.stat(local / path)
                db.execute("UPDATE entries SET lino = ?, lctime = ? WHERE key = ? AND task = "
                           "(SELECT id FROM tasks WHERE name = ?)", (st.st_ino, st.st_ctime_ns, key, task))
        db.commit()
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # as the old release left it
        db.close()
        try:
            yield Home(str(ROOT / "home"))
        finally:
            shutil.rmtree(ROOT, ignore_errors=True)


def _dump(path: pathlib.Path, table: str, columns: str = "*") -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        db.close()


def test_the_fixture_was_made_by_the_old_release() -> None:
    assert MANIFEST["made_with_commit"] == "4c357bf"
    counts = MANIFEST["counts"]
    assert counts["entries"] > 5 and counts["log"] > 10 and counts["skipped"] and counts["pairings"] == 2
    assert MANIFEST["renamed"]  # a tail-character rename: an entry whose remote name differs


def test_upgrade_keeps_everything(old_home: Home) -> None:
    path = pathlib.Path(old_home.setting("database-path"))
    before = {t: _dump(path, t) for t in ("tasks", "entries", "skipped", "log", "pairings", "passes")}
    db = StateDB(str(path))
    try:
        assert db.schema_version() == SCHEMA_VERSION
    finally:
        db.close()
    after_entries = _dump(path, "entries", "task, key, path, is_dir, lsize, lmtime, rsize, rrev, rmtime, rhash, "
                                           "rname, lino, lctime")
    assert after_entries == before["entries"]
    assert {r[2] for r in _dump(path, "entries", "task, key, rid")} == {None}
    for table in ("tasks", "skipped", "log", "passes"):
        assert _dump(path, table) == before[table], table
    assert _dump(path, "pairings", "task, identity, device") == before["pairings"]  # rdevice: added, empty
    assert {r[1] for r in _dump(path, "pairings", "task, rdevice")} == {None}
    assert len(before["log"]) == MANIFEST["counts"]["log"]


def test_a_pass_after_the_upgrade_transfers_nothing(old_home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    path = pathlib.Path(old_home.setting("database-path"))
    pairings = _dump(path, "pairings", "task, identity, device")
    local_before = {t: sorted(p.relative_to(d) for p in d.rglob("*")) for t, d in LOCAL.items()}
    cloud_before = sorted(p.relative_to(ROOT / "cloud") for p in (ROOT / "cloud").rglob("*"))
    for task in LOCAL:
        dry = run_pass(Home(old_home.path), task, dry_run=True, hostname="fixturehost")
        assert [p for p in dry.planned if p[0] != "skip"] == [], dry.planned  # the plan is empty
        result = run_pass(Home(old_home.path), task, hostname="fixturehost")
        assert result.exit_code == 0, result.as_dict()
        assert not any(result.summary.get(k) for k in TRANSFERS), result.summary
        db = StateDB(str(path))
        assert "new pairing" not in " ".join(r.message for r in db.read_log(task, 5))
        db.close()
    assert _dump(path, "pairings", "task, identity, device") == pairings
    assert {t: sorted(p.relative_to(d) for p in d.rglob("*")) for t, d in LOCAL.items()} == local_before
    assert sorted(p.relative_to(ROOT / "cloud") for p in (ROOT / "cloud").rglob("*")) == cloud_before

    # `skysync log` still shows the records the old release wrote.
    assert cli.main(["--home", old_home.path, "log", "--limit", "1000", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    old = [r for r in shown if r["time"] <= max(row[1] for row in _dump(path, "log")[: MANIFEST["counts"]["log"]])]
    assert len(old) == MANIFEST["counts"]["log"]
    assert {r["kind"] for r in old} >= {"uploaded", "downloaded", "deleted-local", "deleted-remote", "skipped"}


def test_a_newer_database_is_refused_unchanged(old_home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    path = pathlib.Path(old_home.setting("database-path"))
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    image = path.read_bytes()
    with pytest.raises(StateTooNew, match="newer skysync"):
        StateDB(str(path))
    assert path.read_bytes() == image
    assert cli.main(["--home", old_home.path, "log"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newer skysync" in err and "Traceback" not in err
    assert path.read_bytes() == image


def test_a_database_older_than_inode_columns_migrates(tmp_path: pathlib.Path) -> None:
    """The first release had no lino/lctime: version 0 without them gains them (and every later step)."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)
    db.execute("INSERT INTO tasks (name) VALUES ('t')")
    db.execute("INSERT INTO entries (task, key, path, is_dir, lsize, lmtime) VALUES (1, x'61', 'a', 0, 1, 5)")
    db.commit()
    db.close()
    state = StateDB(str(path))
    try:
        row = state.get(1, "a")
        assert row is not None and row.lsize == 1 and row.lino is None and row.rid is None
        assert state.schema_version() == SCHEMA_VERSION
        assert state.feed(1, "", "x") is None and list(state.index_entries(1)) == []
    finally:
        state.close()


def test_a_failed_migration_changes_nothing(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)
    db.commit()
    db.close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk I/O error")

    import engine.state as state_module

    monkeypatch.setattr(state_module, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(state_module, "SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with pytest.raises(sqlite3.OperationalError):
        StateDB(str(path))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # all steps or none
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in names and "feeds" not in names
    db.close()


def test_two_processes_naming_the_same_new_task_at_once_get_one_id(tmp_path) -> None:
    """A `status` beside a first `sync`: both may find no row for the task and add it; neither may fail."""
    from engine.state import StateDB

    path = str(tmp_path / "state.db")
    first, second = StateDB(path), StateDB(path)
    try:
        real = second._db

        class InsertsFirst:  # the other process adds the name between this one's SELECT and INSERT
            def execute(self, sql: str, params: tuple = ()) -> object:
                if sql.startswith("INSERT") and "tasks" in sql:
                    first.task_id("t")
                return real.execute(sql, params)

        second._db = InsertsFirst()  # type: ignore[assignment]
        assert second.task_id("t") == first.task_id("t")
    finally:
        second._db = real
        first.close()
        second.close()
