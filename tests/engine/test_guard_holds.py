"""The guard holds deletions, not the task (issue 21, found item 8).

A pass that would delete more than `mass-delete-percent` of a side's files leaves those deletions out and runs
everything else; the held paths keep their state, so every pass plans them again until `sync --force`. The pass
result, one log line (said again only when the number changes), `skysync status` (text and JSON) and the app's
overview say how many wait, with the command that allows them. Exit code 1: the pass ran, something waits for
the user. The empty-folder guard (an unmounted disk) still stops the whole pass (exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from engine.config import Connection, Home, Task
from engine.errors import GuardError
from engine.state import StateDB

from .conftest import write

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


def _held_records(env) -> list:
    db = StateDB(Home(env.home.path).setting("database-path"))
    try:
        return [r for r in db.read_log("t", 1000) if r.kind == "held"]
    finally:
        db.close()


def test_local_deletions_are_held_and_everything_else_syncs(env):
    for i in range(20):
        write(env.local / f"f{i}.txt", f"{i}")
    write(env.local / "gone/x.txt", "x")
    write(env.local / "gone/y.txt", "y")
    write(env.local / "edit.txt", "old")
    env.sync()
    for i in range(15):
        os.remove(env.local / f"f{i}.txt")
    shutil.rmtree(env.local / "gone")  # a folder: held with its files, so its removal cannot fail
    write(env.local / "new.txt", "new")
    write(env.local / "edit.txt", "edited")
    write(env.cloud / "from-cloud.txt", "down")

    r = env.sync()
    assert (r.held_deletions, r.failed, r.error, r.exit_code) == (17, 0, None, 1), r.summary
    assert r.summary.get("uploaded") == 2 and r.summary.get("downloaded") == 1, r.summary
    assert (env.cloud / "new.txt").read_text() == "new" and (env.cloud / "edit.txt").read_text() == "edited"
    assert (env.local / "from-cloud.txt").read_text() == "down"
    assert len(list(env.cloud.glob("f[0-9]*.txt"))) == 20 and (env.cloud / "gone/x.txt").exists()
    held = _held_records(env)
    assert len(held) == 1 and "skysync sync --force t" in held[0].message, held
    assert held[0].message.startswith("17 deletions held back: this pass would delete 17 of 23 files (17 on the "
                                      "remote side; more than 50 %)")

    again = env.sync()  # still planned, still held; the log line is not repeated
    assert again.held_deletions == 17 and again.exit_code == 1
    assert len(_held_records(env)) == 1

    forced = env.sync(force=True)
    assert forced.held_deletions == 0 and forced.exit_code == 0
    assert len(list(env.cloud.glob("f[0-9]*.txt"))) == 5 and not (env.cloud / "gone").exists()
    assert env.sync().summary == {}


def test_remote_deletions_are_held_too(env):
    for i in range(10):
        write(env.local / f"f{i}.txt", f"{i}")
    env.sync()
    for i in range(9):
        os.remove(env.cloud / f"f{i}.txt")
    write(env.local / "new.txt", "new")
    r = env.sync()
    assert r.held_deletions == 9 and (env.cloud / "new.txt").exists()
    assert len(list(env.local.glob("f[0-9]*.txt"))) == 10
    assert env.sync(dry_run=True).summary.get("held-deletions") == 9


def test_deletions_on_both_sides_that_together_pass_the_threshold_are_held(env):
    """45 % deleted here and 45 % in the cloud: neither side alone is a mass deletion, the pass as a whole is."""
    for i in range(20):
        write(env.local / f"f{i}.txt", f"{i}")
    env.sync()
    for i in range(9):
        os.remove(env.local / f"f{i}.txt")
    for i in range(9, 18):
        os.remove(env.cloud / f"f{i}.txt")
    r = env.sync()
    assert r.held_deletions == 18 and r.exit_code == 1, r.summary
    assert len(list(env.local.glob("f[0-9]*.txt"))) == 11 and len(list(env.cloud.glob("f[0-9]*.txt"))) == 11
    assert _held_records(env)[0].message.startswith("18 deletions held back: this pass would delete 18 of 20 files")
    forced = env.sync(force=True)
    assert forced.held_deletions == 0 and forced.exit_code == 0
    assert sorted(p.name for p in env.local.glob("f*.txt")) == sorted(p.name for p in env.cloud.glob("f*.txt"))
    assert len(list(env.local.glob("f[0-9]*.txt"))) == 2


def test_more_deleted_on_one_side_never_leaves_the_other_sides_deletions_unheld(env):
    for i in range(20):
        write(env.local / f"f{i}.txt", f"{i}")
    env.sync()
    for i in range(11):  # 55 % here
        os.remove(env.local / f"f{i}.txt")
    for i in range(11, 20):  # 45 % in the cloud
        os.remove(env.cloud / f"f{i}.txt")
    r = env.sync()
    assert r.held_deletions == 20 and r.exit_code == 1, r.summary
    assert len(list(env.local.glob("f*.txt"))) == 9 and len(list(env.cloud.glob("f*.txt"))) == 11


def test_the_empty_folder_guard_still_stops_the_pass(env):
    for i in range(5):
        write(env.local / f"f{i}.txt", f"{i}")
    env.sync()
    for i in range(5):
        os.remove(env.local / f"f{i}.txt")
    write(env.cloud / "new.txt", "new")
    with pytest.raises(GuardError, match="empty"):
        env.sync()
    assert len(list(env.cloud.glob("f[0-9]*.txt"))) == 5 and not (env.local / "new.txt").exists()


def test_console_script_exit_code_status_and_force(tmp_path):
    home = tmp_path / "home"
    environ = {**os.environ, "SKYSYNC_HOME": str(home)}

    def cli(*args: str, check: int = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, *args], env=environ, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in p.stderr, p.stderr
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    (tmp_path / "local").mkdir()
    (tmp_path / "cloud").mkdir()
    for i in range(10):
        (tmp_path / "local" / f"f{i}.txt").write_text(str(i))
    cli("connection", "add", "demo", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    cli("task", "add", "t", "--connection", "demo", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "bidirectional")
    cli("sync", "t")
    for i in range(8):
        (tmp_path / "local" / f"f{i}.txt").unlink()
    (tmp_path / "local" / "new.txt").write_text("new")

    p = cli("sync", "t", check=1)
    assert "8 deletions held back" in p.stderr and "skysync sync --force t" in p.stderr, p.stderr
    assert "1 uploaded" in p.stdout and (tmp_path / "cloud" / "new.txt").exists()
    out = json.loads(cli("sync", "t", "--json", check=1).stdout)
    assert out["tasks"][0]["held_deletions"] == 8 and out["tasks"][0]["exit_code"] == 1

    status = json.loads(cli("status", "--json").stdout)["tasks"]["t"]
    assert status["held_deletions"] == 8 and status["state"] == "ok"
    text = cli("status").stdout
    assert "8 deletions held back" in text and "skysync sync --force t" in text, text
    log = cli("log", "--task", "t").stdout
    assert sum(" held " in line.split("deletions")[0] for line in log.splitlines()) == 1, log

    cli("sync", "t", "--force")
    assert sorted(p.name for p in (tmp_path / "cloud").iterdir()) == ["f8.txt", "f9.txt", "new.txt"]
    assert json.loads(cli("status", "--json").stdout)["tasks"]["t"]["held_deletions"] == 0
    assert "held" not in cli("status").stdout


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_overview_shows_the_held_deletions(tmp_path: Path):
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.tui.helpers import FakeEngine, text_of, wait_for
    from tui.app import SkysyncApp

    home = Home(str(tmp_path / "home"))
    (tmp_path / "cloud").mkdir()
    (tmp_path / "local").mkdir()
    home.put_connection(Connection("cloud", "local", {"root": str(tmp_path / "cloud")}), {})
    home.put_task(Task("photos", "cloud", str(tmp_path / "local"), "/"))
    home.save()
    status = {
        "connections": {"cloud": {"state": "ok"}},
        "tasks": {"photos": {"state": "idle", "last_pass": {
            "finished": time.time(), "summary": {"uploaded": 3, "held-deletions": 12}, "failed": 0, "error": None,
        }}},
    }
    app = SkysyncApp(str(tmp_path / "home"), engine_factory=lambda _p: FakeEngine(status), start_engine=True,
                     steady=True, hostname="test", poll_interval=60)
    async with app.run_test(size=(140, 44)) as pilot:
        def shown() -> str:
            return text_of(app.screen.query_one("#overview-status", Static))

        await wait_for(pilot, lambda: "held back" in shown(), what="held deletions in the overview")
        assert "12 deletions held back" in shown() and "skysync sync --force photos" in shown()
