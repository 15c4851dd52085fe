"""A stateful model test: random user operations on both sides interleaved with sync passes.

After every pass: both sides are equal; every version that was new or changed since the previous pass still
exists somewhere; a file deleted on one side and unchanged on the other stays deleted; a second pass does
nothing. Some operations only change what the engine can see (a local folder moved away with a link left in
its place, the whole synced folder moved to another place with a link left behind): while a folder is hidden,
a pass changes nothing of it on either side, and the rest still converges; a moved root is a new pairing.
Another client writes to the cloud during some passes (a third actor), and files of one size and one mtime
are swapped on the local side (a same-tick swap): nothing any of them wrote is lost.
CI runs a bounded number of examples; `SKYSYNC_MODEL_EXAMPLES=2000 pytest tests/engine/test_model.py` runs a
long one (`SKYSYNC_MODEL_STEPS=80`: longer histories; `--hypothesis-seed=N`: other examples). Variants run the
same model against a cloud that keeps revisions (conflicts in revision mode), with incremental passes scoped to
the edited paths, against a cloud that lists correct hashes, and against one whose listed hashes are often
wrong (Baidu).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import os
import shutil
import tempfile
import threading
import uuid

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from engine import manage
from engine.config import Home, Task
from engine.errors import GuardError
from engine.providers.base import MtimeMode, RemoteEntry
from engine.providers.local import LocalProvider
from engine.sync import PassResult, run_pass

EXAMPLES = int(os.environ.get("SKYSYNC_MODEL_EXAMPLES", "25"))
# The variants run fewer by default (the suite's time); SKYSYNC_MODEL_EXAMPLES sets them all.
VARIANT_EXAMPLES = int(os.environ.get("SKYSYNC_MODEL_EXAMPLES", "8"))
STEPS = int(os.environ.get("SKYSYNC_MODEL_STEPS", "25"))  # longer histories reach states short ones do not
DIRS = ["", "d0", "d0/e0"]
FILES = ["f0", "f1.txt"]
SIDES = ["local", "cloud"]


def snapshot(root: str) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return out


class SyncModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="skysync-model-")
        self.roots = {"local": os.path.join(self.tmp, "local"), "cloud": os.path.join(self.tmp, "cloud")}
        for r in self.roots.values():
            os.makedirs(r)
        self.home = Home(os.path.join(self.tmp, "home"))
        manage.add_connection(self.home, "c", "local", {"root": self.roots["cloud"]})
        manage.add_task(self.home, Task("t", "c", self.roots["local"], "/"))
        self.home.save()
        self.counter = itertools.count(1)
        self.synced: dict[str, bytes | None] = {}
        self.hidden: dict[str, str] = {}  # local folder (relative) -> where it really is now, behind a link
        self.fresh_pairing = False  # the next pass is a first pass (the root moved)
        self.versions: str | None = None  # where a revision-keeping cloud keeps what uploads replaced
        self.full_owed = False  # a pass was stopped: the next one looks at everything
        self.synced_ids: dict[str, tuple[int, int, int, int]] = {}  # local file -> (inode, size, mtime, ctime)

    def _cloud(self) -> LocalProvider | None:
        """The provider a pass talks to; None: the connection's own (a `local` cloud keeping no revisions)."""
        return None

    def _meddler(self, moment: int, rel: str, content: bytes | None) -> Meddler:
        return Meddler({"root": self.roots["cloud"]}, moment, rel, content)

    def _pass(self, provider: LocalProvider | None = None) -> PassResult:
        return run_pass(Home(self.home.path), "t", force=True, empty_ok=True, hostname="model",
                        provider=provider or self._cloud())

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize()
    def start(self) -> None:
        pass

    def _path(self, side: str, rel: str) -> str:
        return os.path.join(self.roots[side], rel)

    @rule(side=st.sampled_from(SIDES), folder=st.sampled_from(DIRS), name=st.sampled_from(FILES))
    def write(self, side: str, folder: str, name: str) -> None:
        rel = os.path.join(folder, name)
        path = self._path(side, rel)
        if os.path.isdir(path):
            return
        parent = os.path.dirname(path)
        if any(os.path.isfile(p) for p in _ancestors(self.roots[side], parent)):
            return
        os.makedirs(parent, exist_ok=True)
        n = next(self.counter)
        with open(path, "wb") as f:
            f.write(f"{side}:{rel}:v{n}".encode() * (1 + n % 3))
        os.utime(path, (1_700_000_000 + n, 1_700_000_000 + n))

    @rule(folder=st.sampled_from(DIRS), name=st.sampled_from(FILES))
    def write_both(self, folder: str, name: str) -> None:
        """The same file edited on both sides between two passes: the case conflicts are made of."""
        self.write("local", folder, name)
        self.write("cloud", folder, name)

    @rule(side=st.sampled_from(SIDES), data=st.data())
    def delete(self, side: str, data: st.DataObject) -> None:
        files = [p for p, v in snapshot(self.roots[side]).items() if v is not None]
        if files:
            os.remove(self._path(side, data.draw(st.sampled_from(sorted(files)))))

    @rule(side=st.sampled_from(SIDES), data=st.data(), folder=st.sampled_from(DIRS), name=st.sampled_from(FILES))
    def rename(self, side: str, data: st.DataObject, folder: str, name: str) -> None:
        files = [p for p, v in snapshot(self.roots[side]).items() if v is not None]
        target = self._path(side, os.path.join(folder, name))
        if not files or os.path.exists(target) or not os.path.isdir(os.path.dirname(target)):
            return
        os.rename(self._path(side, data.draw(st.sampled_from(sorted(files)))), target)

    @rule(side=st.sampled_from(SIDES), folder=st.sampled_from(DIRS[1:]))
    def mkdir(self, side: str, folder: str) -> None:
        path = self._path(side, folder)
        if not any(os.path.isfile(p) for p in [path, *_ancestors(self.roots[side], path)]):
            os.makedirs(path, exist_ok=True)

    @rule(side=st.sampled_from(SIDES), folder=st.sampled_from(DIRS[1:]))
    def rmtree(self, side: str, folder: str) -> None:
        path = self._path(side, folder)
        if os.path.isdir(path) and not self._blocked(side, folder):
            shutil.rmtree(path)

    @rule(side=st.sampled_from(SIDES), folder=st.sampled_from(DIRS[1:]))
    def folder_becomes_file(self, side: str, folder: str) -> None:
        """A type change: the folder goes (with what is in it) and a file takes its name."""
        path = self._path(side, folder)
        if os.path.isdir(path) and not self._blocked(side, folder):
            shutil.rmtree(path)
            n = next(self.counter)
            with open(path, "wb") as f:
                f.write(f"{side}:{folder}:file-v{n}".encode())

    @rule(side=st.sampled_from(SIDES), folder=st.sampled_from(DIRS[1:]), name=st.sampled_from(FILES))
    def file_becomes_folder(self, side: str, folder: str, name: str) -> None:
        path = self._path(side, folder)
        if os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            self.write(side, folder, name)

    # -- operations that change only what the engine can see ------------------------------------------------
    def _blocked(self, side: str, folder: str) -> bool:
        """True for a local folder that is hidden or lies under or around a hidden one (left to hide/show)."""
        return side == "local" and any(
            folder == h or folder.startswith(h + "/") or h.startswith(folder + "/") for h in self.hidden
        )

    @rule(folder=st.sampled_from(DIRS[1:]))
    def hide_folder(self, folder: str) -> None:
        """The folder moves elsewhere (another disk) and a symbolic link takes its place."""
        path = self._path("local", folder)
        if self._blocked("local", folder) or not os.path.isdir(path) or os.path.islink(path):
            return
        away = os.path.join(self.tmp, f"away-{next(self.counter)}")
        shutil.move(path, away)
        os.symlink(away, path)
        self.hidden[folder] = away

    @rule(data=st.data())
    def show_folder(self, data: st.DataObject) -> None:
        if not self.hidden:
            return
        folder = data.draw(st.sampled_from(sorted(self.hidden)))
        path = self._path("local", folder)
        os.unlink(path)
        shutil.move(self.hidden.pop(folder), path)

    @rule()
    def move_root(self) -> None:
        """The whole synced folder moves to a bigger disk; a link is left at the configured path."""
        link = self.roots["local"]
        real = os.path.realpath(link)
        moved = os.path.join(self.tmp, f"root-{next(self.counter)}")
        shutil.move(real, moved)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(moved, link)
        # A new pairing: the next pass is a first pass, which deletes nothing (so makes no promise about
        # deletions made since the last pass: they may come back).
        self.fresh_pairing = True

    def _visible(self, tree: dict[str, bytes | None]) -> dict[str, bytes | None]:
        return {p: v for p, v in tree.items() if not self._blocked("local", p)}

    def _behind(self) -> dict[str, dict[str, bytes | None]]:
        """What is hidden, on both sides: the cloud's copy of each hidden folder and the folder itself."""
        out: dict[str, dict[str, bytes | None]] = {}
        for folder, away in self.hidden.items():
            there = self._path("cloud", folder)
            if os.path.isdir(there):
                cloud = snapshot(there)
            elif os.path.isfile(there):
                with open(there, "rb") as f:
                    cloud = {".": f.read()}  # the cloud holds a file where the hidden folder is
            else:
                cloud = {}
            out[folder] = {**{f"cloud:{k}": v for k, v in cloud.items()},
                           **{f"local:{k}": v for k, v in snapshot(away).items()}}
        return out

    @rule(folder=st.sampled_from(DIRS), when=st.integers(0, 1_000))
    def write_twins(self, folder: str, when: int) -> None:
        """Two files of one size written in one clock tick (same mtime): what a same-tick swap is made of."""
        parent = self._path("local", folder)
        if self._blocked("local", folder) or any(
            os.path.isfile(p) for p in [parent, *_ancestors(self.roots["local"], parent)]
        ):
            return
        os.makedirs(parent, exist_ok=True)
        n = next(self.counter)
        for i, name in enumerate(FILES):
            path = os.path.join(parent, name)
            if os.path.isdir(path):
                return
            with open(path, "wb") as f:
                f.write(f"twin{i}:{n:08d}".encode())
            os.utime(path, (1_600_000_000 + when, 1_600_000_000 + when))

    @rule(folder=st.sampled_from(DIRS))
    def swap(self, folder: str) -> None:
        """a -> tmp, b -> a, tmp -> b: same names, same sizes and mtimes, swapped contents."""
        a, b = (self._path("local", os.path.join(folder, name)) for name in FILES)
        if self._blocked("local", folder) or not (os.path.isfile(a) and os.path.isfile(b)):
            return
        tmp = a + ".swap"
        os.rename(a, tmp)
        os.rename(b, a)
        os.rename(tmp, b)

    @rule(moment=st.integers(0, 4), folder=st.sampled_from(DIRS), name=st.sampled_from(FILES),
          delete=st.booleans())
    def sync_while_another_client_writes(self, moment: int, folder: str, name: str, delete: bool) -> None:
        """A third actor writes to the cloud during the pass; after one more pass, every version written by
        anyone still exists (under its name or as a conflict copy) and the sides agree."""
        rel = os.path.join(folder, name)
        if self._blocked("local", folder) or self._blocked("local", rel):
            return
        content = None if delete else f"other client:{rel}:v{next(self.counter)}".encode()
        before = {side: snapshot(root) for side, root in self.roots.items()}
        meddler = self._meddler(moment, rel, content)
        first = self._pass(meddler)
        assert first.exit_code == 0, (first, self._errors())
        if content is not None and not meddler.done:
            content = None  # the pass made fewer calls than the moment: nobody wrote
        second = self._pass()
        assert second.exit_code == 0, second
        after_local = self._visible(snapshot(self.roots["local"]))
        assert after_local == self._visible(snapshot(self.roots["cloud"])), "the sides did not converge"
        surviving = self._surviving(self._behind())
        if content is not None:
            assert content in surviving, "the other client's version was lost"
        for side, tree in before.items():
            for path, data in tree.items():
                if path == rel and meddler.done and (side == "cloud" or meddler.ours_first):
                    continue  # the other client replaced or deleted that version itself, after it was synced
                if data is not None and data != self.synced.get(path) and not self._blocked("local", path):
                    assert data in surviving, f"{side} version of {path} was lost"
        again = self._pass()
        assert {k: v for k, v in again.summary.items() if k != "skipped"} == {}, again.summary
        self.synced = self._synced_now(after_local)
        self.synced_ids = self._ids_now()
        self.fresh_pairing = False

    def _surviving(self, behind: dict[str, dict[str, bytes | None]]) -> set[bytes]:
        """Every content still held anywhere: both trees whole (a cloud file where a hidden folder's parent was
        is not visible to the comparison of the sides, but it is not lost) and what is behind the links."""
        trees = [snapshot(root) for root in self.roots.values()] + list(behind.values())
        if self.versions is not None:
            trees.append(snapshot(self.versions))  # what the cloud keeps as earlier revisions
        return {v for tree in trees for v in tree.values() if v is not None}

    def _synced_now(self, visible: dict[str, bytes | None]) -> dict[str, bytes | None]:
        """What both sides agree on after a pass: the visible tree, and for a hidden folder what was synced
        before it was hidden (the engine keeps that state while the folder is out of sight, and rightly
        applies a deletion made on the other side meanwhile once the folder is back). Not across a new pairing:
        its first pass forgets the whole state, the hidden folder's too, so once back that folder is seen for the
        first time (copied where missing, nothing deleted), like everything else was in that first pass."""
        kept = {} if self.fresh_pairing else {p: v for p, v in self.synced.items() if self._blocked("local", p)}
        return {**kept, **visible}

    def _errors(self) -> list[str]:
        from engine.state import StateDB

        db = StateDB(Home(self.home.path).setting("database-path"))
        try:
            return [f"{r.path}: {r.message}" for r in db.read_log("t", 20) if r.kind == "error"]
        finally:
            db.close()

    @rule()
    def sync(self) -> None:
        self._sync_checked({side: snapshot(root) for side, root in self.roots.items()}, self._behind())

    @rule(moment=st.integers(0, 8))
    def sync_interrupted(self, moment: int) -> None:
        """A pass stopped after its `moment`-th event (a log line or a transfer's progress), the way a signal or
        a pause stops it, then a whole pass: together they must do what one pass does."""
        before = {side: snapshot(root) for side, root in self.roots.items()}
        behind = self._behind()
        cancel = threading.Event()
        seen = itertools.count(1)

        def on_event(event: object) -> None:
            if next(seen) > moment:
                cancel.set()

        first = run_pass(Home(self.home.path), "t", force=True, empty_ok=True, hostname="model", provider=self._cloud(),
                         on_event=on_event, cancel=cancel)
        self.full_owed = True  # the engine's next pass after a stopped one is full (runtime.passes.pass_scope)
        assert first.error is None and not first.failed, (first, self._errors())
        assert self._behind() == behind, "a stopped pass changed something it could not see"
        surviving = self._surviving(behind)
        for side, tree in before.items():
            for path, content in tree.items():
                if content is not None and content != self.synced.get(path):
                    assert content in surviving, f"{side} version of {path} was lost by a stopped pass"
        self._sync_checked(before, behind)

    def _cloud_hashes_tell(self) -> bool:
        """Whether the state holds a trustworthy hash of each synced file (the cloud lists correct hashes)."""
        return False

    def _ids_now(self) -> dict[str, tuple[int, int, int, int]]:
        out = {}
        for path in self.synced:
            try:
                st = os.lstat(self._path("local", path))
            except OSError:
                continue
            out[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return out

    def _only_ctime_moved(self) -> set[str]:
        """Synced local files that are the same file (inode), size and mtime, with only the ctime moved (renamed
        away and back, say). Against a deletion or an edit in the cloud, the engine cannot tell such a file from
        one rewritten in place with its mtime restored unless a recorded hash proves its content: without one it
        keeps the file (a deletion undone, nothing lost), which the model then allows."""
        if self._cloud_hashes_tell():
            return set()
        return {path for path, (ino, size, mtime, ctime) in self._ids_now().items()
                if (was := self.synced_ids.get(path)) is not None and was[:3] == (ino, size, mtime) and was[3] != ctime}

    def _sync_checked(self, before: dict[str, dict[str, bytes | None]],
                      behind: dict[str, dict[str, bytes | None]]) -> None:
        """One pass, then every promise checked against the trees as they were `before` the user's last pass."""
        maybe_rewritten = self._only_ctime_moved()
        result = self._pass()
        assert result.exit_code == 0, result
        assert self._behind() == behind, "a pass changed something it could not see"
        after_local = self._visible(snapshot(self.roots["local"]))
        after_cloud = self._visible(snapshot(self.roots["cloud"]))
        assert after_local == after_cloud, "the two sides did not converge"

        surviving = self._surviving(behind)
        for side, tree in before.items():
            for path, content in tree.items():
                if content is not None and content != self.synced.get(path):
                    assert content in surviving, f"{side} version of {path} was lost"

        for path, content in self.synced.items():
            if content is None or self._blocked("local", path) or self.fresh_pairing:
                continue
            for gone, other in (("local", "cloud"), ("cloud", "local")):
                if gone == "cloud" and path in maybe_rewritten:
                    continue
                if path not in before[gone] and before[other].get(path) == content:
                    assert after_local.get(path) != content, f"{path}, deleted on the {gone} side, came back"

        again = self._pass()
        work = {k: v for k, v in again.summary.items() if k != "skipped"}
        assert work == {}, f"a second pass still had work: {again.summary}"
        self.synced = self._synced_now(after_local)
        self.synced_ids = self._ids_now()
        self.fresh_pairing = False


class Meddler(LocalProvider):
    """The cloud side as another client sees it: just before the engine's `moment`-th write or delete (or
    read), someone else writes `content` at `path` (or deletes it, when `content` is None)."""

    def __init__(self, options, moment: int, path: str, content: bytes | None) -> None:
        super().__init__(options)
        self.moment, self.path, self.content = moment, path, content
        self.calls = 0
        self.tried = False
        self.done = False  # the other client did write (or delete)
        self.ours_first = False  # the engine wrote that name before the other client did: theirs is newer

    def _meddle(self) -> None:
        self.calls += 1
        if self.tried or self.calls <= self.moment:
            return
        self.tried = True
        full = os.path.join(self.tree.root, self.path)
        parent = os.path.dirname(full)
        if self.content is None:
            if os.path.isfile(full):
                os.remove(full)
                self.done = True
            return
        if os.path.isdir(full) or any(os.path.isfile(p) for p in _ancestors(self.tree.root, parent)):
            return
        os.makedirs(parent, exist_ok=True)
        with open(full + ".other-client", "wb") as f:
            f.write(self.content)
        os.replace(full + ".other-client", full)  # the way another client's write lands: whole, at once
        self.done = True

    def upload(self, path, src, size, mtime, **kw):
        self._meddle()
        entry = super().upload(path, src, size, mtime, **kw)
        if path == self.path and not self.tried:
            self.ours_first = True
        return entry

    def download(self, path, out):
        self._meddle()
        return super().download(path, out)

    def delete(self, path, **kw):
        self._meddle()
        return super().delete(path, **kw)


def _ancestors(root: str, path: str) -> list[str]:
    out = []
    while len(path) > len(root):
        out.append(path)
        path = os.path.dirname(path)
    return out


class Versioning(LocalProvider):
    """A cloud that keeps each file an upload replaces as an earlier revision (a versioned bucket, a drive's
    file history): `keeps_revisions()` is None, so a two-way conflict runs in revision mode. Only what an
    upload really replaced is kept (a hard link to the old file, dropped when the upload did not happen), and
    deletions keep nothing, so a file the engine wrongly deleted is still found lost."""

    versions: str

    def keeps_revisions(self) -> str | None:
        return None

    def upload(self, path, src, size, mtime, **kw):
        current = os.path.join(self.tree.root, path)
        kept = os.path.join(self.versions, uuid.uuid4().hex)  # uploads run in parallel: no shared counter
        try:
            os.link(current, kept)
        except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError):
            kept = ""
        try:
            entry = super().upload(path, src, size, mtime, **kw)
        except BaseException:
            if kept:
                os.unlink(kept)
            raise
        if kept and os.path.samefile(kept, current):  # written in place: nothing was replaced
            os.unlink(kept)
        return entry


class VersionedLocal(Versioning):
    def __init__(self, options, versions: str) -> None:
        super().__init__(options)
        self.versions = versions


class VersionedMeddler(Meddler, Versioning):
    """The third actor against a revision-keeping cloud (its own write lands before the engine's upload, so
    the upload's revision is the other client's version)."""

    def __init__(self, options, versions: str, moment: int, path: str, content: bytes | None) -> None:
        super().__init__(options, moment, path, content)
        self.versions = versions


class SyncModelRevisions(SyncModel):
    """The same model against a cloud that keeps revisions: conflicts keep the cloud's version as a revision
    (no conflict copies), and that revision must be readable, so nothing is lost either."""

    def __init__(self) -> None:
        super().__init__()
        self.versions = os.path.join(self.tmp, "versions")
        os.makedirs(self.versions)

    def _cloud(self) -> LocalProvider | None:
        assert self.versions is not None
        return VersionedLocal({"root": self.roots["cloud"]}, self.versions)

    def _meddler(self, moment: int, rel: str, content: bytes | None) -> Meddler:
        assert self.versions is not None
        return VersionedMeddler({"root": self.roots["cloud"]}, self.versions, moment, rel, content)


class SyncModelScoped(SyncModel):
    """The same model with the passes a watcher (and a feed) trigger: a pass looks only at the paths edited
    since the last one (engine.incremental), without --force; it may fall back to a full pass, and where a guard
    then stops it or holds deletions back, the user's `sync --force` follows. Every edit goes through `_path`,
    so the scope names at least what changed (more is harmless: a root covers its subtree)."""

    def __init__(self) -> None:
        super().__init__()
        self.touched: set[str] = set()

    def _path(self, side: str, rel: str) -> str:
        self.touched.add(os.path.normpath(rel).replace(os.sep, "/"))
        return super()._path(side, rel)

    def _pass(self, provider: LocalProvider | None = None) -> PassResult:
        if not self.touched or self.full_owed:  # the checking passes, and the one after a stopped pass: full
            self.touched, self.full_owed = set(), False
            return super()._pass(provider)
        scope, self.touched = sorted(self.touched), set()
        try:
            result = run_pass(Home(self.home.path), "t", hostname="model", provider=provider, scope=scope)
        except GuardError:  # a side emptied (the one file deleted): nothing changed; the user forces the pass
            return super()._pass()
        if result.exit_code != 0 and not result.failed:  # deletions held back: the user forces them through
            result = super()._pass()
        return result


class SyncModelSettled(SyncModel):
    """The same model with one-shot passes as a user or cron runs them (no --force, the connection's own
    `local` provider), so the no-change fast path (engine.settled) is in play: whenever a pass finds nothing to
    do, two more follow, the first recording the trees' digests and the second ending on them. Every later edit
    of the model then meets a recorded fast path, which must never hide it."""

    def _pass(self, provider: LocalProvider | None = None) -> PassResult:
        if provider is not None or self.full_owed:
            self.full_owed = False
            return super()._pass(provider)
        try:
            result = run_pass(Home(self.home.path), "t", hostname="model")
        except GuardError:  # a side emptied (the one file deleted): nothing changed; the user forces the pass
            return super()._pass()
        if result.exit_code != 0 and not result.failed:  # deletions held back: the user forces them through
            return super()._pass()
        if not result.summary and not result.settled:
            run_pass(Home(self.home.path), "t", hostname="model")
            settled_pass = run_pass(Home(self.home.path), "t", hostname="model")
            assert settled_pass.settled and not settled_pass.summary, settled_pass
        return result


class ListedHashes(LocalProvider):
    """A cloud that lists an md5 with every file (S3, Drive, GCS do): the state then records each synced file's
    hash, and a local file whose ctime alone moved proves by it whether it still holds that content."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, hash_in_listing=True)

    def _digest(self, data: bytes) -> str:
        return hashlib.md5(data).hexdigest()

    def _told(self, entry: RemoteEntry, folder: str = "") -> RemoteEntry:
        if entry.is_dir:
            return entry
        try:
            with open(os.path.join(self.tree.root, folder, entry.path), "rb") as f:
                data = f.read()
        except OSError:  # gone since the scan: as if the service had no hash for it
            return entry
        return entry._replace(hash=self._digest(data))

    def list_reporting(self, folder, on_skip):
        return (self._told(e, folder) for e in super().list_reporting(folder, on_skip))

    def download(self, path, out):
        read = io.BytesIO()  # the hash of what was read, as a service returns it with the content
        entry = super().download(path, read)
        out.write(read.getvalue())
        return entry._replace(hash=self._digest(read.getvalue()))

    def file_hash(self, path):
        return self._told(RemoteEntry(path, False)).hash

    def upload(self, path, src, size, mtime, **kw):
        return self._told(super().upload(path, src, size, mtime, **kw))

    def copy(self, src, dst, **kw):
        return self._told(super().copy(src, dst, **kw))

    def move(self, src, dst, listed=None):
        return self._told(super().move(src, dst, listed))


class ListedHashesMeddler(Meddler, ListedHashes):
    pass


class WrongHashes(ListedHashes):
    """Baidu's listing (spec FAQ, `Capabilities.hash_unreliable`): every file comes with an md5, and for about
    half of the contents it is wrong. A wrong hash must neither lose a version nor make a pass transfer the
    same file again and again."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, hash_unreliable=True, hash_in_listing=True,
                                       mtime_mode=MtimeMode.METADATA)

    def _digest(self, data: bytes) -> str:
        md5 = hashlib.md5(data).hexdigest()
        return hashlib.md5(data + b"baidu").hexdigest() if md5[0] in "01234567" else md5


class WrongHashesMeddler(Meddler, WrongHashes):
    pass


class SyncModelListedHashes(SyncModel):
    """The same model against a cloud that lists correct hashes: there a file renamed away and back (its ctime
    alone moved) must not bring back what the cloud deleted, nor turn the cloud's edit into a conflict."""

    def _cloud(self) -> LocalProvider | None:
        return ListedHashes({"root": self.roots["cloud"]})

    def _meddler(self, moment: int, rel: str, content: bytes | None) -> Meddler:
        return ListedHashesMeddler({"root": self.roots["cloud"]}, moment, rel, content)

    def _cloud_hashes_tell(self) -> bool:
        return True


class SyncModelWrongHashes(SyncModel):
    """The same model against a cloud whose listed hashes are often wrong (Baidu)."""

    def _cloud(self) -> LocalProvider | None:
        return WrongHashes({"root": self.roots["cloud"]})

    def _meddler(self, moment: int, rel: str, content: bytes | None) -> Meddler:
        return WrongHashesMeddler({"root": self.roots["cloud"]}, moment, rel, content)


MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",  # CI replays fixed examples; local runs explore new ones
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
VARIANT_SETTINGS = settings(MODEL_SETTINGS, max_examples=VARIANT_EXAMPLES)
SyncModel.TestCase.settings = MODEL_SETTINGS
test_sync_model = SyncModel.TestCase
SyncModelRevisions.TestCase.settings = VARIANT_SETTINGS
test_sync_model_revisions = SyncModelRevisions.TestCase
SyncModelScoped.TestCase.settings = VARIANT_SETTINGS
test_sync_model_scoped = SyncModelScoped.TestCase
SyncModelSettled.TestCase.settings = VARIANT_SETTINGS
test_sync_model_settled = SyncModelSettled.TestCase
SyncModelWrongHashes.TestCase.settings = VARIANT_SETTINGS
test_sync_model_wrong_hashes = SyncModelWrongHashes.TestCase
SyncModelListedHashes.TestCase.settings = VARIANT_SETTINGS
test_sync_model_listed_hashes = SyncModelListedHashes.TestCase
