"""`skysync settings set database-path` moves the state database with its history (issue 18 item 4).

Through the CLI (in process): `status` and `log` read the same before and after, the next pass finds its state
(nothing to do), the old file is gone only after the copy was verified, and every refusal is one line, exit 2,
with the database left where it was.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3

import pytest

from engine.cli import main
from engine.config import Home
from engine.dbmove import table_counts
from engine.runtime.lock import EngineLock
from engine.sync import TaskLock


class Cli:
    def __init__(self, home: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = home
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> str:
        self.capsys.readouterr()
        got = main(["--home", str(self.home), *args])
        out, err = self.capsys.readouterr()
        assert got == code, (args, got, out, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1, err
            return lines[0]
        return out

    def db(self) -> str:
        return Home(str(self.home)).setting("database-path")


@pytest.fixture
def cli(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    run = Cli(tmp_path / "home", capsys)
    for folder in ("local", "cloud"):
        (tmp_path / folder).mkdir()
    (tmp_path / "local" / "a.txt").write_text("a")
    (tmp_path / "cloud" / "b.txt").write_text("b")
    run("connection", "add", "c", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    run("task", "add", "t", "--connection", "c", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "bidirectional")
    run("sync", "t")
    (tmp_path / "local" / "c.txt").write_text("c")
    run("sync", "t")
    return run


def test_status_and_log_are_the_same_after_the_move(cli: Cli, tmp_path: pathlib.Path) -> None:
    old = cli.db()
    before = (cli("status", "--json"), cli("log", "--json", "--limit", "1000"), cli("status"), cli("log"))
    with sqlite3.connect(old) as db:
        rows = table_counts(db)
    target = tmp_path / "elsewhere"
    target.mkdir()
    out = cli("settings", "set", "database-path", str(target))  # a folder: the database goes in it
    new = str(target / "state.db")
    assert out.strip() == f"database-path = {new}"
    assert cli.db() == new
    assert not any(os.path.exists(old + s) for s in ("", "-wal", "-shm", ".lock"))
    with sqlite3.connect(new) as db:
        assert table_counts(db) == rows
    assert os.stat(new).st_mode & 0o777 == 0o600
    after = (cli("status", "--json"), cli("log", "--json", "--limit", "1000"), cli("status"), cli("log"))
    assert after == before
    # The sync state came along: the next pass finds nothing to do (a forgotten state would compare all).
    assert json.loads(cli("sync", "t", "--json"))["tasks"][0]["summary"] == {}
    assert not [n for n in os.listdir(target) if n.startswith(".skysync-")]


def test_moved_back_by_file_name_keeps_everything(cli: Cli, tmp_path: pathlib.Path) -> None:
    before = cli("log", "--json", "--limit", "1000")
    cli("settings", "set", "database-path", str(tmp_path / "new" / "dir" / "sky.db"))  # folders are made
    assert cli.db() == str(tmp_path / "new" / "dir" / "sky.db")
    cli("settings", "set", "database-path", "")  # back to the home's state.db
    assert cli.db() == str(cli.home / "state.db")
    assert cli("log", "--json", "--limit", "1000") == before
    assert not (tmp_path / "new" / "dir" / "sky.db").exists()


def test_refused_while_a_pass_or_the_engine_runs(cli: Cli, tmp_path: pathlib.Path) -> None:
    old = cli.db()
    home = Home(str(cli.home))
    with TaskLock(home, "t"):
        line = cli("settings", "set", "database-path", str(tmp_path / "x.db"), code=2)
    assert "task 't' is syncing" in line
    lock = EngineLock(str(cli.home))
    lock.acquire()
    try:
        line = cli("settings", "set", "database-path", str(tmp_path / "x.db"), code=2)
    finally:
        lock.release()
    assert "the engine is running" in line
    assert cli.db() == old and os.path.exists(old) and not (tmp_path / "x.db").exists()


def test_refused_inside_a_task_folder_over_a_file_or_unwritable(cli: Cli, tmp_path: pathlib.Path) -> None:
    old = cli.db()
    assert "inside the local folder of task 't'" in cli(
        "settings", "set", "database-path", str(tmp_path / "local" / "db"), code=2)
    (tmp_path / "taken.db").write_text("somebody's file")
    assert "already exists" in cli("settings", "set", "database-path", str(tmp_path / "taken.db"), code=2)
    assert (tmp_path / "taken.db").read_text() == "somebody's file"
    (tmp_path / "blocked").write_text("a file where a folder should be")
    assert "cannot be written" in cli("settings", "set", "database-path", str(tmp_path / "blocked" / "s.db"),
                                      code=2)
    assert "absolute path" in cli("settings", "set", "database-path", "relative.db", code=2)
    assert cli.db() == old and os.path.exists(old)


def test_a_copy_that_does_not_verify_leaves_the_database_where_it_was(
    cli: Cli, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import dbmove

    old = cli.db()
    real = dbmove.table_counts
    calls: list[int] = []

    def short_copy(db: sqlite3.Connection) -> dict[str, int]:
        counts = real(db)
        calls.append(1)
        if len(calls) == 2:  # the copy's count: one history row missing
            counts["log"] -= 1
        return counts

    monkeypatch.setattr(dbmove, "table_counts", short_copy)
    line = cli("settings", "set", "database-path", str(tmp_path / "moved"), code=2)
    assert "does not hold the same rows" in line
    assert cli.db() == old and os.path.exists(old)
    assert not (tmp_path / "moved").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".skysync-")]  # nor is the unverified copy


def test_the_apps_settings_form_moves_the_database_too(cli: Cli, tmp_path: pathlib.Path) -> None:
    from tui import bridge

    before = cli("log", "--json", "--limit", "1000")
    old = cli.db()
    bridge.set_settings(Home(str(cli.home)), {"concurrency": "3", "database-path": str(tmp_path / "app.db")})
    home = Home(str(cli.home))
    assert home.setting("database-path") == str(tmp_path / "app.db") and home.setting("concurrency") == 3
    assert not os.path.exists(old)
    assert cli("log", "--json", "--limit", "1000") == before


def test_a_pass_that_loaded_the_config_before_the_move_finds_the_moved_database(cli: Cli, tmp_path: pathlib.Path
                                                                                ) -> None:
    """`skysync sync` reads the config, then waits for its task's lock, which the move holds: once it runs, it
    must use the moved database, not start an empty one at the old path."""
    from engine.sync import run_pass

    stale = Home(str(cli.home))
    old = stale.setting("database-path")
    cli("settings", "set", "database-path", str(tmp_path / "moved.db"))
    result = run_pass(stale, "t")
    assert result.exit_code == 0 and result.summary == {}, result.as_dict()  # the state came along
    assert not os.path.exists(old)
