"""Incremental passes (engine.incremental): over random edit sequences after a full pass, the plan of a pass that
looks only at the edited paths is the full pass's plan, or the scoped pass says it needs a full one; a scoped
pass never deletes, and what it does reaches the other side."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import manage
from engine.config import Home, Task
from engine.connect import open_provider
from engine.incremental import FullPassNeeded, Scope
from engine.reconcile import DELETE_LOCAL, DELETE_REMOTE, Plan
from engine.state import StateDB
from engine.sync import Pairing, PassResult, _prepare, _prepare_scoped, run_pass

from .conftest import Env, write

EXAMPLES = int(os.environ.get("SKYSYNC_MODEL_EXAMPLES", "40"))
FOLDERS = ["", "a", "a/b", "c"]
NAMES = ["f", "g.txt", "h"]
SIDES = ["local", "cloud"]

op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(SIDES), st.sampled_from(FOLDERS), st.sampled_from(NAMES)),
    st.tuples(st.just("delete"), st.sampled_from(SIDES), st.sampled_from(FOLDERS), st.sampled_from(NAMES)),
    st.tuples(st.just("rename"), st.sampled_from(SIDES), st.sampled_from(FOLDERS), st.sampled_from(NAMES),
              st.sampled_from(FOLDERS), st.sampled_from(NAMES)),
    st.tuples(st.just("mkdir"), st.sampled_from(SIDES), st.sampled_from(["a/n", "n", "c/n"])),
    st.tuples(st.just("rmtree"), st.sampled_from(SIDES), st.sampled_from(["a/b", "c", "a"])),
    st.tuples(st.just("chmod"), st.sampled_from(SIDES), st.sampled_from(FOLDERS), st.sampled_from(NAMES)),
)


class World:
    """A task synced once (a `local` connection whose folder plays the cloud), then edited."""

    def __init__(self, tmp: str) -> None:
        self.roots = {"local": os.path.join(tmp, "local"), "cloud": os.path.join(tmp, "cloud")}
        for root in self.roots.values():
            os.makedirs(root)
        self.home = Home(os.path.join(tmp, "home"))
        manage.add_connection(self.home, "c", "local", {"root": self.roots["cloud"]})
        manage.add_task(self.home, Task("t", "c", self.roots["local"], "/"))
        self.home.save()
        self.touched: set[str] = set()
        self.n = 0
        for i, folder in enumerate(FOLDERS):
            for name in NAMES[: 1 + i % 3]:
                self._write("local", os.path.join(folder, name) if folder else name)
        os.makedirs(os.path.join(self.roots["local"], "empty"))
        # A file no operation touches: deleting everything else on one side would otherwise meet the empty-folder
        # guard (a correct refusal, but not what these plans compare).
        self._write("local", "anchor.keep")
        assert run_pass(Home(self.home.path), "t", hostname="h").exit_code == 0
        assert not run_pass(Home(self.home.path), "t", hostname="h").summary
        self.touched.clear()

    def _abs(self, side: str, rel: str) -> str:
        return os.path.join(self.roots[side], rel)

    def _touch(self, rel: str) -> None:
        # What the watcher reports: the path, and every folder the edit made on the way.
        self.touched.add(rel)
        parent = os.path.dirname(rel)
        while parent:
            self.touched.add(parent)
            parent = os.path.dirname(parent)

    def _write(self, side: str, rel: str) -> None:
        path = self._abs(side, rel)
        if os.path.isdir(path) or any(os.path.isfile(self._abs(side, p)) for p in _parents(rel)):
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.n += 1
        with open(path, "wb") as f:
            f.write(b"x" * self.n)
        os.utime(path, (1_700_000_000 + self.n, 1_700_000_000 + self.n))
        self._touch(rel)

    def apply(self, step: tuple) -> None:
        kind, side = step[0], step[1]
        if kind == "write":
            self._write(side, _join(step[2], step[3]))
        elif kind in ("delete", "chmod"):
            rel = _join(step[2], step[3])
            if os.path.isfile(self._abs(side, rel)):
                if kind == "delete":
                    os.unlink(self._abs(side, rel))
                else:
                    os.chmod(self._abs(side, rel), 0o600)
                self._touch(rel)
        elif kind == "rename":
            old, new = _join(step[2], step[3]), _join(step[4], step[5])
            if (old != new and os.path.isfile(self._abs(side, old)) and not os.path.exists(self._abs(side, new))
                    and os.path.isdir(os.path.dirname(self._abs(side, new)))):
                os.rename(self._abs(side, old), self._abs(side, new))
                self._touch(old)
                self._touch(new)
        elif kind == "mkdir":
            if not any(os.path.isfile(self._abs(side, p)) for p in [*_parents(step[2]), step[2]]):
                os.makedirs(self._abs(side, step[2]), exist_ok=True)
                self._touch(step[2])
        elif kind == "rmtree" and os.path.isdir(self._abs(side, step[2])):
            shutil.rmtree(self._abs(side, step[2]))
            self._touch(step[2])

    def plans(self) -> tuple[Plan, Plan | None]:
        """(the full pass's plan, the scoped one or None when it asked for a full pass); nothing is changed."""
        home = Home(self.home.path)
        task = home.task("t")
        provider = open_provider(home, "c", task)
        db = StateDB(home.setting("database-path"))
        try:
            full = _prepare(task, db, provider, None, False, True, (50, 10), Pairing.of(home, task), set())[0]
            try:
                scoped = _prepare_scoped(task, db, provider, None, Pairing.of(home, task), set(),
                                         sorted(self.touched), lambda: 0.0)[0]
            except FullPassNeeded:
                scoped = None
        finally:
            db.close()
            provider.close()
        return full, scoped


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _parents(rel: str) -> list[str]:
    out, parent = [], os.path.dirname(rel)
    while parent:
        out.append(parent)
        parent = os.path.dirname(parent)
    return out


def _shape(p: Plan) -> tuple:
    actions = [(a.kind, a.path, a.remote_path, a.moved_from, a.reason, a.local, a.remote, a.state)
               for a in p.actions]
    return actions, [(a.kind, a.path) for a in p.refresh], sorted(p.skipped.items())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(op, min_size=1, max_size=6))
def test_the_scoped_plan_is_the_full_plan(steps: list[tuple]) -> None:
    tmp = tempfile.mkdtemp(prefix="skysync-incr-")
    try:
        world = World(tmp)
        for step in steps:
            world.apply(step)
        if not world.touched:
            return
        full, scoped = world.plans()
        event(f"scoped: {scoped is not None}")
        if scoped is None:
            return  # a full pass runs instead: always allowed
        assert _shape(scoped) == _shape(full)
        assert not any(a.kind in (DELETE_LOCAL, DELETE_REMOTE) for a in scoped.actions)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def world(tmp_path) -> World:
    return World(str(tmp_path))


@pytest.mark.parametrize("edit", ["save", "new-file", "new-folder", "rename", "remote-edit-in-scope"])
def test_common_edits_stay_scoped_and_match(world: World, edit: str) -> None:
    if edit == "save":
        world._write("local", "a/b/f")
    elif edit == "new-file":
        world._write("local", "a/new.txt")
    elif edit == "new-folder":
        world._write("local", "a/fresh/deep/x")
    elif edit == "rename":
        world.apply(("rename", "local", "a/b", "f", "a", "moved"))
    else:
        world._write("cloud", "c/f")
        world._write("local", "c/g.txt")
    full, scoped = world.plans()
    assert scoped is not None, "these edits never need a full pass"
    assert _shape(scoped) == _shape(full)
    assert scoped.actions


def test_a_deletion_asks_for_a_full_pass_and_the_engine_runs_one(world: World) -> None:
    world.apply(("delete", "local", "a", "f"))
    full, scoped = world.plans()
    assert scoped is None and full.count(DELETE_REMOTE) == 1
    result = run_pass(Home(world.home.path), "t", hostname="h", scope=sorted(world.touched))
    assert result.scoped is None and "gone" in result.full_because
    assert not os.path.exists(os.path.join(world.roots["cloud"], "a", "f"))


def test_a_rename_from_outside_the_scope_is_a_full_pass(world: World) -> None:
    # Only the new half was reported (the old one's event was lost): the state knows that file elsewhere.
    world.apply(("rename", "local", "a/b", "f", "c", "moved"))
    with pytest.raises(FullPassNeeded, match="rename"):
        home = Home(world.home.path)
        task = home.task("t")
        provider = open_provider(home, "c", task)
        db = StateDB(home.setting("database-path"))
        try:
            _prepare_scoped(task, db, provider, None, Pairing.of(home, task), set(), ["c/moved"], lambda: 0.0)
        finally:
            db.close()
            provider.close()


def test_a_scoped_pass_syncs_and_keeps_skips_outside_its_scope(world: World) -> None:
    os.symlink("/etc", os.path.join(world.roots["local"], "c", "link"))
    assert run_pass(Home(world.home.path), "t", hostname="h").exit_code == 0  # full: records the skip
    world._write("local", "a/b/f")
    result = run_pass(Home(world.home.path), "t", hostname="h", scope=["a/b/f"])
    assert result.scoped == 1 and result.summary == {"uploaded": 1}
    with open(os.path.join(world.roots["cloud"], "a", "b", "f"), "rb") as f:
        assert f.read() == b"x" * world.n
    db = StateDB(Home(world.home.path).setting("database-path"))
    try:
        assert "c/link" in db.skipped(db.task_id("t"))
    finally:
        db.close()
    assert not run_pass(Home(world.home.path), "t", hostname="h").summary.get("upload")


def test_scope_roots() -> None:
    scope = Scope.of(["a/b/c", "a/b", "x", "a/b/d/e"])
    assert scope.roots == ("a/b", "x") and scope.ancestors == {"a"}
    assert scope.covers("a/b/zz") and not scope.covers("a") and not scope.covers("a/bb")
    with pytest.raises(FullPassNeeded):
        Scope.of([""])
    assert Scope.of(["skip/me", "k"], excluded=lambda p: p == "skip").roots == ("k",)


# -- services with a change feed: the paths the feed names are the remote side's scope -------------------------

_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fakes.feed_provider import FeedProvider  # noqa: E402

remote_op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(FOLDERS), st.sampled_from(NAMES)),
    st.tuples(st.just("remove"), st.sampled_from(FOLDERS), st.sampled_from(NAMES)),
    st.tuples(st.just("rename"), st.sampled_from(FOLDERS), st.sampled_from(NAMES), st.sampled_from(FOLDERS),
              st.sampled_from(NAMES)),
)


class FeedWorld:
    """A task on a feed service (tests/fakes/feed_provider), synced once; then remote and local edits."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.fake = FeedProvider()
        self.n = 0
        for i, folder in enumerate(FOLDERS):
            for name in NAMES[: 1 + i % 3]:
                self.put(_join(folder, name))
        assert self.sync().exit_code == 0
        assert not self.sync().summary

    def sync(self, **kw) -> PassResult:
        return run_pass(Home(self.env.home.path), self.env.task, provider=self.fake, hostname="h",
                        clock=lambda: 1_800_000_000.0, **kw)

    def put(self, path: str) -> None:
        tree = self.fake.tree()
        if (path in tree and tree[path] is None) or any(tree.get(p, b"") is not None and p in tree
                                                      for p in _parents(path)):
            return
        self.n += 1
        self.fake.put(path, b"r" * self.n, mtime=1_700_000_000.0 + self.n)

    def apply(self, step: tuple) -> None:
        tree = self.fake.tree()
        if step[0] == "put":
            self.put(_join(step[1], step[2]))
        elif step[0] == "remove" and tree.get(_join(step[1], step[2])) is not None:
            self.fake.remove(_join(step[1], step[2]))
        elif step[0] == "rename":
            old, new = _join(step[1], step[2]), _join(step[3], step[4])
            if old != new and tree.get(old) is not None and new not in tree and (not step[3] or
                                                                                 tree.get(step[3], b"") is None):
                self.fake.rename(old, new)

    def plans(self, local_paths: list[str]) -> tuple[Plan, Plan | None]:
        home = Home(self.env.home.path)
        task = home.task("t")
        db = StateDB(home.setting("database-path"))
        try:  # the full pass's plan from a listing (a dry run), then the scoped one from the feed
            full = _prepare(task, db, self.fake, None, False, True, (50, 10), Pairing.of(home, task), set())[0]
            try:
                scoped = _prepare_scoped(task, db, self.fake, None, Pairing.of(home, task), set(), local_paths,
                                         lambda: 1_800_000_000.0)[0]
            except FullPassNeeded:
                scoped = None
        finally:
            db.close()
        return full, scoped


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(remote_op, min_size=1, max_size=5), local=st.lists(st.sampled_from(NAMES), max_size=2))
def test_a_feed_scoped_plan_is_the_full_plan(make_env, steps: list[tuple], local: list[str]) -> None:
    world = FeedWorld(make_env())
    try:
        for step in steps:
            world.apply(step)
        for name in local:
            write(world.env.local / "a" / name, f"local {name} {world.n}")
        full, scoped = world.plans([f"a/{name}" for name in local])
        event(f"scoped: {scoped is not None}")
        if scoped is not None:
            assert _shape(scoped) == _shape(full)
    finally:
        shutil.rmtree(world.env.local, ignore_errors=True)
        shutil.rmtree(world.env.home.path, ignore_errors=True)
        world.env.local.mkdir()


def test_a_remote_edit_reported_by_the_feed_is_synced_without_a_listing(make_env) -> None:
    world = FeedWorld(make_env())
    world.put("a/b/f")
    world.fake.calls.clear()
    result = world.sync(scope=[])
    assert result.scoped == 1 and result.summary == {"downloaded": 1}
    assert world.fake.calls["list"] == 0
    assert (world.env.local / "a" / "b" / "f").read_bytes() == b"r" * world.n
    world.fake.remove("c/f")
    result = world.sync(scope=[])
    assert result.scoped is None and "gone" in result.full_because and not (world.env.local / "c" / "f").exists()


def test_a_file_mounted_over_a_watched_path_is_skipped_by_a_scoped_pass(env: Env, tmp_path: pathlib.Path) -> None:
    """The watcher names a path a file was bind-mounted over: the pass that looks at it alone leaves it alone, as
    the full walk does (engine.localfs FILE_MOUNT)."""
    import subprocess

    write(env.local / "doc.txt", "ours")
    assert env.sync().exit_code == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("another place's content")
    p = subprocess.run(["mount", "--bind", str(outside), str(env.local / "doc.txt")], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"mount is not permitted here: {p.stderr.strip()}")
    try:
        result = env.sync(scope=["doc.txt"])
        assert result.exit_code == 0
        assert (env.cloud / "doc.txt").read_text() == "ours"
    finally:
        subprocess.run(["umount", "-l", str(env.local / "doc.txt")], check=False)
