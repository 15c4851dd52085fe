"""The no-change fast path (engine.settled): it ends only passes that would have done nothing, and any change on
either side, in the state or in the configuration, brings the full pass back."""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from collections.abc import Callable

import pytest

from engine import manage, prewalk, settled
from engine.config import Home
from engine.errors import GuardError
from engine.state import StateDB
from engine.treedigest import tree_digest

from .conftest import Env, write

MTIME = 1_700_000_000


def settle(env: Env) -> None:
    """Passes until one ends on the fast path (a quiet pass records the digests, the next one uses them)."""
    for _ in range(4):
        if env.sync().settled:
            return
    raise AssertionError("the fast path never applied")


def seeded(env: Env) -> Env:
    write(env.local / "a.txt", "alpha", MTIME)
    write(env.local / "docs/b.txt", "bravo", MTIME)
    write(env.cloud / "docs/deep/c.txt", "charlie", MTIME)
    assert env.sync().exit_code == 0
    settle(env)
    return env


@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "child-process"])
def test_a_quiet_task_ends_on_the_fast_path_with_the_same_outcome(env, monkeypatch, parallel):
    monkeypatch.setattr(settled, "PARALLEL_FROM", 0 if parallel else 10**9)
    seeded(env)
    os.symlink("/etc", env.local / "link")  # a skip is part of the outcome
    first = env.sync()
    assert not first.settled and first.summary == {"skipped": 1}
    second = env.sync()  # the first pass recorded its digests: it planned nothing but the skip
    assert second.settled and second.summary == {"skipped": 1} and second.exit_code == 0
    assert env.local_tree().keys() - {"link"} == env.cloud_tree().keys()


def _rewrite_in_place(p: pathlib.Path) -> None:
    """Same size, mtime set back: only the ctime tells (the state's planner sees it the same way)."""
    st = p.stat()
    p.write_bytes(p.read_bytes().upper())
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


CHANGES: dict[str, Callable[[pathlib.Path], None]] = {
    "new file": lambda side: write(side / "docs/new.txt", "new"),
    "edited file": lambda side: write(side / "docs/b.txt", "bravo, longer"),
    "rewritten in place": lambda side: _rewrite_in_place(side / "docs/b.txt"),
    "touched": lambda side: os.utime(side / "a.txt", (MTIME + 5, MTIME + 5)),
    "deleted file": lambda side: (side / "a.txt").unlink(),
    "renamed file": lambda side: (side / "a.txt").rename(side / "docs/a.txt"),
    "new empty folder": lambda side: (side / "docs/empty").mkdir(),
    "deleted folder": lambda side: shutil.rmtree(side / "docs/deep"),
    "chmod": lambda side: os.chmod(side / "a.txt", 0o600),
}


@pytest.mark.parametrize("side_name", ["local", "cloud"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_on_either_side_brings_the_full_pass_back(env, side_name, change):
    seeded(env)
    side = env.local if side_name == "local" else env.cloud
    CHANGES[change](side)
    result = env.sync()
    assert not result.settled
    if change == "rewritten in place" and side_name == "cloud":
        # The digest sees it; the full pass compares a `local` connection's cloud side by size and mtime only
        # (its listing carries no ctime), as it always did: a known limit of that provider, not of this path.
        return
    if change != "chmod":  # a metadata change alone is recorded, not transferred
        assert result.summary, result
    assert env.sync().exit_code == 0
    assert env.local_tree() == env.cloud_tree()


def test_a_change_while_the_recording_pass_runs_is_not_recorded_as_quiet(env, monkeypatch):
    seeded(env)
    write(env.local / "docs/b.txt", "edited again")  # so the next pass is a full one, not a settled one
    assert not env.sync().settled
    finish = settled.Watch.finish
    edited = env.local / "a.txt"

    def edit_then_finish(self, *args, **kw):
        _rewrite_in_place(edited)  # after the plan looked, before the second digest
        return finish(self, *args, **kw)

    monkeypatch.setattr(settled.Watch, "finish", edit_then_finish)
    quiet = env.sync()
    assert quiet.summary == {} and not quiet.settled
    monkeypatch.setattr(settled.Watch, "finish", finish)
    db = StateDB(env.home.setting("database-path"))
    try:
        assert db.settled(db.task_id("t")) is None
    finally:
        db.close()
    result = env.sync()
    assert not result.settled and result.summary  # the edit is seen (and synced) by a full pass
    assert (env.cloud / "a.txt").read_bytes() == b"ALPHA"


def test_a_change_to_the_state_voids_the_record(env):
    seeded(env)
    db = StateDB(env.home.setting("database-path"))
    try:
        task_id = db.task_id("t")
        assert db.settled(task_id) is not None
        db.delete(task_id, "a.txt")  # any write to the rows, the skips, the pairing or the remote index
        assert db.settled(task_id) is None
    finally:
        db.close()
    assert not env.sync().settled


def test_another_configuration_voids_the_record(env):
    seeded(env)
    home = Home(env.home.path)
    manage.edit_task(home, "t", {"exclude_exts": ["tmp"]})
    home.save()
    assert not env.sync().settled


def test_the_full_plan_runs_at_least_once_a_day(env):
    seeded(env)
    now = time.time()
    assert env.sync(clock=lambda: now).settled
    assert not env.sync(clock=lambda: now + settled.MAX_AGE + 1).settled


def test_forced_scoped_and_dry_passes_never_take_it(env):
    seeded(env)
    assert not env.sync(force=True).settled
    assert not env.sync(dry_run=True).settled
    assert not env.sync(scope=["a.txt"]).settled


def test_a_vanished_local_folder_is_still_refused(env):
    seeded(env)
    shutil.rmtree(env.local)
    with pytest.raises(GuardError, match="missing"):
        env.sync()
    assert (env.cloud / "a.txt").exists()


def test_an_emptied_local_folder_still_meets_the_empty_guard(env):
    seeded(env)
    for child in env.local.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    with pytest.raises(GuardError):
        env.sync()
    assert (env.cloud / "a.txt").exists() and (env.cloud / "docs/b.txt").exists()


def test_a_folder_mounted_or_swapped_in_place_changes_the_digest(tmp_path):
    root = tmp_path / "root"
    write(root / "x/y.txt", "y")
    before = tree_digest(str(root))
    moved = tmp_path / "elsewhere"
    (root / "x").rename(moved)
    shutil.copytree(moved, root / "x", copy_function=shutil.copy2)  # same names, sizes and mtimes
    assert tree_digest(str(root)) != before
    assert tree_digest(str(tmp_path / "missing")) is None


def test_an_excluded_folder_does_not_count(tmp_path):
    root = tmp_path / "root"
    write(root / "keep.txt", "k")
    write(root / "build/out.o", "o")
    digest = tree_digest(str(root), prune=lambda rel: rel == "build")
    write(root / "build/more.o", "more")
    assert tree_digest(str(root), prune=lambda rel: rel == "build") == digest
    assert tree_digest(str(root)) != tree_digest(str(root), prune=lambda rel: rel == "build")


def test_the_child_process_walk_gives_the_same_digest(tmp_path):
    root = tmp_path / "root"
    write(root / "a/b.txt", "b")
    (root / "bad\udcff".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")).mkdir()
    side = settled._where(str(root))
    assert side is not None
    child = settled._start_child(side)
    assert child is not None
    assert prewalk.child_digest(child) == tree_digest(side.root, side.mounts)
