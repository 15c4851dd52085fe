"""The early digest walks of `skysync sync TASK` (engine.prewalk): taken only when they walked the trees the
pass would, and a stale or forged hint never keeps a change from being synced."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from engine import prewalk, settled
from engine.cli import main
from engine.prewalk import PreWalk
from engine.treedigest import tree_digest

from .conftest import Env, write
from .test_settled import MTIME, seeded


@pytest.fixture(autouse=True)
def large_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tree counts as large: small ones get no hint (walked here faster than children start)."""
    monkeypatch.setattr(settled, "PARALLEL_FROM", 0)


def _hint(env: Env) -> tuple[prewalk.Side, prewalk.Side]:
    sides = prewalk.load(env.home.path, env.task)
    assert sides is not None, "the recording pass left no walk hint"
    return sides


def _early_pass(env: Env):
    early = PreWalk.start(env.home.path, env.task)
    assert early is not None and len(early.children) == 2
    try:
        return env.sync(early=early), early
    finally:
        early.stop()


def test_a_recording_pass_leaves_a_hint_and_the_next_pass_takes_the_early_walks(env):
    seeded(env)
    local, remote = _hint(env)
    assert (local.root, remote.root) == (os.path.realpath(env.local), os.path.realpath(env.cloud))
    result, early = _early_pass(env)
    assert result.settled and early.taken and early.children == []


def test_walks_of_other_folders_are_not_taken(env, tmp_path):
    seeded(env)
    local, remote = _hint(env)
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "a.txt", "alpha", MTIME)
    prewalk.save(env.home.path, env.task, dataclasses.replace(local, root=str(elsewhere)), remote)
    result, early = _early_pass(env)
    assert not early.taken and result.settled  # the pass walked the real trees itself


def test_a_forged_list_of_left_out_folders_cannot_hide_a_change(env):
    seeded(env)
    local, remote = _hint(env)
    # The hint says to leave "docs" out: a file added there must still reach the cloud.
    prewalk.save(env.home.path, env.task, dataclasses.replace(local, prune=("docs",)), remote)
    write(env.local / "docs/new.txt", "new")
    result, early = _early_pass(env)
    assert early.taken and not result.settled
    assert (env.cloud / "docs/new.txt").read_text() == "new"


def test_a_folder_the_task_excludes_is_left_out_early_as_it_is_later(make_env):
    env = make_env(exclude_folders=["build"])
    write(env.local / "build/out.o", "o", MTIME)
    seeded(env)
    local, _ = _hint(env)
    assert local.prune == ("build",)
    write(env.local / "build/more.o", "more")  # inside the excluded folder: nothing for the sync to see
    result, early = _early_pass(env)
    assert early.taken and result.settled
    assert not (env.cloud / "build").exists()


def test_a_record_that_is_no_longer_fresh_removes_the_hint(env):
    seeded(env)
    write(env.local / "a.txt", "alpha, edited")
    assert env.sync().summary.get("uploaded") == 1  # a state write voids the record
    assert prewalk.load(env.home.path, env.task) is not None
    assert not env.sync().settled  # no fresh record: the hint goes, the next `sync` walks no earlier
    assert prewalk.load(env.home.path, env.task) is None
    settle_again = [env.sync().settled for _ in range(2)]
    assert settle_again == [False, True] and prewalk.load(env.home.path, env.task) is not None


def test_hints_round_trip_names_that_are_not_utf8(tmp_path):
    odd = str(tmp_path / "bad\udcff")
    side = prewalk.Side(odd, (odd + "/mnt",), ("x\udcfe",))
    prewalk.save(str(tmp_path), "t", side, side)
    assert prewalk.load(str(tmp_path), "t") == (side, side)
    assert oct(os.stat(prewalk.hint_path(str(tmp_path), "t")).st_mode & 0o777) == "0o600"


def test_no_hint_is_read_for_a_name_that_is_not_a_task_name(tmp_path):
    outside = tmp_path / "x.json"
    outside.write_text(json.dumps({"local": {"root": "/", "mounts": [], "prune": []},
                                   "remote": {"root": "/", "mounts": [], "prune": []}}))
    (tmp_path / "home").mkdir()
    assert PreWalk.start(str(tmp_path / "home"), "../x") is None


def test_the_cli_takes_the_early_walks_and_leaves_no_walker_behind(env, capsys, monkeypatch):
    seeded(env)
    started: list[PreWalk | None] = []
    children = []
    real_start, real_child = PreWalk.start.__func__, prewalk.start_child

    def start(cls, home_path: str, task: str) -> PreWalk | None:
        started.append(real_start(cls, home_path, task))
        return started[-1]

    def start_child(side):
        children.append(real_child(side))
        return children[-1]

    monkeypatch.setattr(PreWalk, "start", classmethod(start))
    monkeypatch.setattr(prewalk, "start_child", start_child)
    assert main(["--home", env.home.path, "sync", env.task, "--json"]) == 0
    assert '"exit_code": 0' in capsys.readouterr().out
    assert len(started) == 1 and started[0] is not None and started[0].taken
    assert main(["--home", env.home.path, "sync", env.task, "--dry-run"]) == 0
    assert len(started) == 1  # a dry run never takes the fast path: no early walk
    assert main(["--home", env.home.path, "sync", env.task, "no-such-task"]) == 2  # refused before any pass
    assert len(started) == 2 and started[1] is not None and not started[1].taken
    assert len(children) == 4 and all(c.returncode is not None for c in children)  # none left running


def test_a_small_tree_gets_no_hint(env, monkeypatch):
    monkeypatch.setattr(settled, "PARALLEL_FROM", 10**9)
    seeded(env)
    assert prewalk.load(env.home.path, env.task) is None
    assert env.sync().settled  # the fast path itself still applies, walked in this process


def test_a_hint_that_is_not_a_plain_small_file_is_no_hint(tmp_path):
    home = tmp_path / "home"
    folder = home / prewalk.FOLDER
    folder.mkdir(parents=True)
    os.mkfifo(folder / "fifo.json")  # opening it for reading would wait for a writer forever
    (folder / "zero.json").symlink_to("/dev/zero")  # reading it would never end
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)  # json's recursion limit
    (folder / "dir.json").mkdir()
    for name in ("fifo", "zero", "deep", "dir", "missing"):
        assert prewalk.load(str(home), name) is None
        assert PreWalk.start(str(home), name) is None


def test_a_walk_ends_when_the_process_that_wanted_it_is_gone(tmp_path):
    """A walker whose parent is not the process named in its arguments (that one was killed, and the walker was
    handed to init) stops at its next folder instead of walking whatever its hint named to the end."""
    import engine.treedigest

    write(tmp_path / "root/a/b.txt", "b")
    args = json.dumps({"root": str(tmp_path / "root"), "parent": os.getpid()})
    ours = subprocess.run([sys.executable, "-I", "-S", engine.treedigest.__file__], input=args, capture_output=True,
                          text=True)
    assert ours.returncode == 0 and len(ours.stdout) == 40
    orphan = json.dumps({"root": str(tmp_path / "root"), "parent": 1})  # not its parent: as if ours were gone
    gone = subprocess.run([sys.executable, "-I", "-S", engine.treedigest.__file__], input=orphan,
                          capture_output=True, text=True)
    assert gone.returncode == 1 and gone.stdout == ""
    assert tree_digest(str(tmp_path / "root"), alive=lambda: False) is None
