"""End-to-end passes against the `local` provider: what a user does, what must happen on both sides."""

from __future__ import annotations

import dataclasses
import errno
import os
import pathlib
import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from engine import manage
from engine.config import Home, Task
from engine.errors import ConnectionFailed, GuardError, LockedError
from engine.localfs import TEMP_PREFIX, FileSystem, _temp_name, is_temp_name
from engine.providers.base import HashKind, RemoteEntry, TransientError
from engine.providers.local import LocalProvider
from engine.state import StateDB
from engine.sync import TaskLock, run_pass

from .conftest import write

DAY = 24 * 3600  # how old a temporary file in the cloud must be before a pass removes it


def transfers(result) -> int:
    s = result.summary
    return sum(s.get(k, 0) for k in ("uploaded", "downloaded", "conflict", "mkdir-local", "mkdir-remote",
                                      "deleted-local", "deleted-remote"))


def test_initial_union_then_nothing(env):
    write(env.local / "a.txt", "A")
    write(env.local / "b/c.txt", "C")
    write(env.cloud / "d.txt", "D")
    write(env.cloud / "b/e.txt", "E")
    r = env.sync()
    assert r.exit_code == 0
    assert env.local_tree() == env.cloud_tree()
    assert set(env.local_tree()) == {"a.txt", "b", "b/c.txt", "d.txt", "b/e.txt"}
    again = env.sync()
    assert again.summary == {} and again.exit_code == 0


def test_changes_and_deletions_travel_both_ways(env):
    write(env.local / "x.txt", "1")
    write(env.local / "dir/y.txt", "2")
    write(env.local / "z.txt", "3")
    env.sync()
    write(env.local / "x.txt", "local edit", mtime=2_000_000_000)
    write(env.cloud / "dir/y.txt", "remote edit!", mtime=2_000_000_000)
    os.remove(env.cloud / "z.txt")
    write(env.cloud / "new/remote.txt", "n")
    r = env.sync()
    assert r.exit_code == 0, r
    assert (env.cloud / "x.txt").read_text() == "local edit"
    assert (env.local / "dir/y.txt").read_text() == "remote edit!"
    assert not (env.local / "z.txt").exists()
    assert (env.local / "new/remote.txt").read_text() == "n"
    assert os.stat(env.local / "dir/y.txt").st_mtime == 2_000_000_000  # the remote mtime is kept
    assert env.local_tree() == env.cloud_tree()
    os.remove(env.local / "dir/y.txt")
    (env.local / "dir").rmdir()
    env.sync()
    assert not (env.cloud / "dir").exists()
    assert env.sync().summary == {}


def test_conflict_keeps_local_name_and_remote_copy_on_both_sides(env):
    write(env.local / "doc.txt", "base")
    env.sync()
    write(env.local / "doc.txt", "local version", mtime=2_000_000_000)
    write(env.cloud / "doc.txt", "remote version!", mtime=2_000_000_100)
    r = env.sync()
    assert r.summary.get("conflict") == 1 and r.exit_code == 0
    local = env.local_tree()
    assert local == env.cloud_tree()
    assert local["doc.txt"] == b"local version"
    copies = [k for k in local if k.startswith("doc_testhost_Conflict_") and k.endswith(".txt")]
    assert len(copies) == 1 and local[copies[0]] == b"remote version!"
    assert env.sync().summary == {}


def test_same_content_on_both_sides_is_no_conflict_and_transfers_nothing(env):
    write(env.local / "same.txt", "v1")
    env.sync()
    write(env.local / "same.txt", "v2 same", mtime=2_000_000_000)
    write(env.cloud / "same.txt", "v2 same", mtime=2_000_000_500)
    r = env.sync()
    assert transfers(r) == 0 and r.summary.get("record") == 1
    assert env.sync().summary == {}


def test_first_pass_compares_existing_files(env):
    for i in range(5):
        write(env.local / f"f{i}.txt", f"content {i}", mtime=1_600_000_000 + i)
        write(env.cloud / f"f{i}.txt", f"content {i}", mtime=1_700_000_000 + i)  # same bytes, other mtime
    write(env.local / "diff.txt", "local side")
    write(env.cloud / "diff.txt", "cloud side")
    r = env.sync()
    assert r.summary == {"record": 5, "conflict": 1}  # equal files are recorded, not copied
    tree = env.local_tree()
    assert tree == env.cloud_tree()
    assert tree["diff.txt"] == b"local side"
    assert any(v == b"cloud side" for k, v in tree.items() if "_Conflict_" in k)


def test_deleted_on_one_side_changed_on_the_other_survives(env):
    write(env.local / "keep.txt", "v1")
    write(env.local / "keep2.txt", "v1")
    env.sync()
    os.remove(env.local / "keep.txt")
    write(env.cloud / "keep.txt", "changed remotely", mtime=2_000_000_000)
    os.remove(env.cloud / "keep2.txt")
    write(env.local / "keep2.txt", "changed locally", mtime=2_000_000_000)
    env.sync()
    assert (env.local / "keep.txt").read_text() == "changed remotely"
    assert (env.cloud / "keep2.txt").read_text() == "changed locally"


def test_type_changes_both_ways(env):
    write(env.local / "thing", "file")
    write(env.local / "box/inner.txt", "i")
    env.sync()
    os.remove(env.local / "thing")
    write(env.local / "thing/now-a-folder.txt", "x")
    os.remove(env.local / "box/inner.txt")
    (env.local / "box").rmdir()
    write(env.local / "box", "now a file")
    r = env.sync()
    assert r.exit_code == 0, r
    assert (env.cloud / "thing/now-a-folder.txt").read_text() == "x"
    assert (env.cloud / "box").read_text() == "now a file"
    assert env.local_tree() == env.cloud_tree()
    assert env.sync().summary == {}


@pytest.mark.parametrize("file_side", ["local", "cloud"])
def test_folder_replaced_by_file_while_a_child_changed_on_the_other_side(env, file_side):
    """The changed child keeps its folder; the file that replaced the folder survives as a conflict copy;
    the unchanged sibling follows the deletion of its folder."""
    write(env.local / "A/x.txt", "base x")
    write(env.local / "A/y.txt", "base y")
    env.sync()
    file_root, folder_root = (env.local, env.cloud) if file_side == "local" else (env.cloud, env.local)
    shutil.rmtree(file_root / "A")
    write(file_root / "A", "now a file")
    write(folder_root / "A/x.txt", "edited x", mtime=2_000_000_000)
    write(folder_root / "A/new/z.txt", "new z")  # a folder made inside it is restored too
    r = env.sync()
    assert r.exit_code == 0 and r.summary.get("conflict") == 1, r
    tree = env.local_tree()
    assert tree == env.cloud_tree()
    assert tree["A/x.txt"] == b"edited x" and tree["A/new/z.txt"] == b"new z"
    assert "A/y.txt" not in tree
    copies = [k for k in tree if k.startswith("A_testhost_Conflict_")]
    assert len(copies) == 1 and tree[copies[0]] == b"now a file"
    assert env.sync().summary == {}


@pytest.mark.parametrize("file_side", ["local", "cloud"])
def test_empty_folder_replaced_by_file(env, file_side):
    (env.local / "A").mkdir()
    env.sync()
    file_root = env.local if file_side == "local" else env.cloud
    (file_root / "A").rmdir()
    write(file_root / "A", "a file now")
    r = env.sync()
    assert r.exit_code == 0 and "conflict" not in r.summary, r
    assert env.local_tree() == env.cloud_tree() == {"A": b"a file now"}
    assert env.sync().summary == {}


def test_download_only_folder_replaced_remotely_keeps_local_edits_in_a_conflict_folder(make_env):
    env = make_env(direction="download")
    write(env.cloud / "A/x.txt", "base x")
    write(env.cloud / "A/y.txt", "base y")
    env.sync()
    write(env.local / "A/x.txt", "local edit", mtime=2_000_000_000)
    write(env.local / "A/new.txt", "local only")
    shutil.rmtree(env.cloud / "A")
    write(env.cloud / "A", "now a file")
    r = env.sync()
    assert r.exit_code == 0 and r.summary.get("conflict") == 1, r
    local = env.local_tree()
    assert local["A"] == b"now a file"
    kept = [k for k in local if k.startswith("A_testhost_Conflict_") and local[k] is None]
    assert len(kept) == 1
    assert local[kept[0] + "/x.txt"] == b"local edit" and local[kept[0] + "/new.txt"] == b"local only"
    assert kept[0] + "/y.txt" not in local  # unchanged, and deleted by the remote: it follows the remote
    assert env.cloud_tree() == {"A": b"now a file"}  # download-only never changes the remote
    assert env.sync().summary == {}


def test_upload_only_folder_replaced_locally_never_deletes_remote_edits(make_env):
    env = make_env(direction="upload")
    write(env.local / "A/x.txt", "base x")
    env.sync()
    write(env.cloud / "A/x.txt", "remote edit", mtime=2_000_000_000)
    shutil.rmtree(env.local / "A")
    write(env.local / "A", "now a file")
    r = env.sync()
    assert r.exit_code == 1 and r.summary.get("failed") == 1, r
    assert (env.cloud / "A/x.txt").read_text() == "remote edit" and (env.local / "A").read_text() == "now a file"
    db = StateDB(Home(env.home.path).setting("database-path"))
    errors = db.read_log(kinds=("error",))
    db.close()
    assert errors and "never deleted by an upload-only task" in errors[0].message


def test_upload_only_never_changes_local(make_env):
    env = make_env("upload")
    write(env.local / "a.txt", "a")
    write(env.local / "other.txt", "o")
    write(env.cloud / "remote-only.txt", "r")
    env.sync()
    assert (env.cloud / "a.txt").read_text() == "a"
    assert not (env.local / "remote-only.txt").exists()
    write(env.cloud / "a.txt", "remote edit", mtime=2_000_000_000)
    env.sync()
    assert (env.local / "a.txt").read_text() == "a"
    os.remove(env.local / "a.txt")
    env.sync()
    assert not (env.cloud / "a.txt").exists() or (env.cloud / "a.txt").read_text() == "remote edit"


def test_upload_only_propagates_deletion_unless_no_delete(make_env, tmp_path):
    env = make_env("upload")
    write(env.local / "gone.txt", "g")
    write(env.local / "stays.txt", "s")
    env.sync()
    os.remove(env.local / "gone.txt")
    env.sync()
    assert not (env.cloud / "gone.txt").exists()


def test_no_delete_keeps_destination_files(make_env):
    env = make_env("upload", no_delete=True)
    write(env.local / "gone.txt", "g")
    env.sync()
    os.remove(env.local / "gone.txt")
    env.sync()
    assert (env.cloud / "gone.txt").read_text() == "g"
    assert env.sync().summary == {}


def test_download_only_mirrors_and_keeps_local_edits_as_copies(make_env):
    env = make_env("download")
    write(env.cloud / "r.txt", "remote")
    write(env.local / "local-only.txt", "l")
    env.sync()
    assert (env.local / "r.txt").read_text() == "remote"
    assert not (env.cloud / "local-only.txt").exists()
    write(env.local / "r.txt", "my local edit", mtime=2_000_000_000)
    write(env.cloud / "r.txt", "remote edit!!", mtime=2_000_000_100)
    env.sync()
    assert (env.local / "r.txt").read_text() == "remote edit!!"
    copies = [p for p in env.local.iterdir() if "_Conflict_" in p.name]
    assert len(copies) == 1 and copies[0].read_text() == "my local edit"
    assert not any("_Conflict_" in p.name for p in env.cloud.iterdir())


def test_missing_local_root_aborts_without_change(env):
    write(env.local / "a.txt", "a")
    env.sync()
    env.local.rename(env.local.with_name("moved"))
    with pytest.raises(GuardError, match="missing"):
        env.sync()
    assert (env.cloud / "a.txt").exists()


def test_empty_local_root_never_wipes_the_remote(env):
    for i in range(3):
        write(env.local / f"f{i}", "x")
    env.sync()
    for i in range(3):
        os.remove(env.local / f"f{i}")
    with pytest.raises(GuardError, match="empty"):
        env.sync()
    with pytest.raises(GuardError, match="--force or not"):  # what a cron line passing the mass-delete guard runs
        env.sync(force=True)
    assert len(list(env.cloud.iterdir())) == 3
    for f in env.cloud.iterdir():  # the user really deleted everything: the cloud's copies go too, by hand
        f.unlink()
    env.sync()
    assert list(env.cloud.iterdir()) == [] and list(env.local.iterdir()) == []


def test_mass_delete_guard_holds_the_deletions(env):
    for i in range(20):
        write(env.local / f"f{i}", "x")
    env.sync()
    for i in range(15):
        os.remove(env.cloud / f"f{i}")
    write(env.local / "new.txt", "new")
    r = env.sync()  # the deletions wait; the rest of the pass runs
    assert (r.held_deletions, r.exit_code, r.error) == (15, 1, None)
    assert len(list(env.local.glob("f*"))) == 20 and (env.cloud / "new.txt").exists()
    assert env.sync().held_deletions == 15  # planned again, still held
    env.sync(force=True)
    assert len(list(env.local.glob("f*"))) == 5


def test_second_pass_while_one_runs_is_refused(env):
    with TaskLock(Home(env.home.path), "t"), pytest.raises(LockedError):
        env.sync()


class HostileProvider(LocalProvider):
    """A remote that lists keys a malicious or broken service could return."""

    HOSTILE = ["../escape", "/abs", "a/../../b", "back\\slash", "nul\x00byte", "./dot", "ok//double"]

    def list_reporting(self, folder: str, on_skip) -> Iterator[RemoteEntry]:
        yield from super().list_reporting(folder, on_skip)
        for key in self.HOSTILE:
            yield RemoteEntry(key, False, 3, 1.0, None, "h")


def test_hostile_remote_names_never_write_outside(env, tmp_path):
    write(env.cloud / "fine.txt", "ok")
    provider = HostileProvider({"root": str(env.cloud)})
    r = env.sync(provider=provider)
    assert (env.local / "fine.txt").read_text() == "ok"
    assert not (tmp_path / "escape").exists() and not os.path.exists("/abs") and not (tmp_path / "b").exists()
    assert set(os.listdir(env.local)) == {"fine.txt"}
    assert r.summary.get("skipped") == len(HostileProvider.HOSTILE)
    db = StateDB(Home(env.home.path).setting("database-path"))
    skipped = [rec for rec in db.read_log("t", 100) if rec.kind == "skipped"]
    assert len(skipped) == len(HostileProvider.HOSTILE)
    assert all("outside the local folder" in rec.message for rec in skipped)
    env.sync(provider=provider)  # logged once, not on every pass
    assert len([rec for rec in db.read_log("t", 100) if rec.kind == "skipped"]) == len(HostileProvider.HOSTILE)


class FailingFS(FileSystem):
    def __init__(self, bad: str, error: int = errno.EACCES) -> None:
        self.bad = bad
        self.error = error

    def open_read(self, path: str):
        if os.path.basename(path) == self.bad:
            raise PermissionError(self.error, os.strerror(self.error), path)
        return super().open_read(path)


def test_one_failing_item_does_not_stop_the_pass(env):
    for name in ("a", "b", "c"):
        write(env.local / name, name)
    r = env.sync(fs=FailingFS("b"))
    assert r.exit_code == 1 and r.failed == 1
    assert sorted(os.listdir(env.cloud)) == ["a", "c"]
    db = StateDB(Home(env.home.path).setting("database-path"))
    errors = [rec for rec in db.read_log("t", 50) if rec.kind == "error"]
    assert errors and errors[0].path == "b" and "Permission denied" in errors[0].message
    assert env.sync().exit_code == 0
    assert sorted(os.listdir(env.cloud)) == ["a", "b", "c"]


class DiskFullFS(FileSystem):
    def open_new(self, path: str):
        f = super().open_new(path)
        real_write = f.write

        def write(data):
            real_write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

        f.write = write  # type: ignore[method-assign]
        return f


def test_failed_download_leaves_no_partial_file(env):
    write(env.cloud / "big.bin", os.urandom(300_000))
    r = env.sync(fs=DiskFullFS())
    assert r.failed == 1
    assert os.listdir(env.local) == []  # neither the file nor a temporary


def test_engine_temporary_files_are_cleaned_and_never_synced(env):
    assert all(is_temp_name(_temp_name()) for _ in range(20))  # the name the check knows is the name made
    write(env.local / f"{TEMP_PREFIX}0123abcd1f", "partial from a killed pass")  # the format _temp_name makes
    write(env.cloud / f"{TEMP_PREFIX}0123abcd20", "partial upload from a killed pass")
    write(env.local / "real.txt", "r")
    later = LocalProvider({"root": str(env.cloud)})
    later.clock = lambda: time.time() + DAY + 60  # the cloud's leftover is a day old: not an upload in progress
    env.sync(provider=later)
    assert os.listdir(env.cloud) == ["real.txt"]
    assert sorted(os.listdir(env.local)) == ["real.txt"]
    db = StateDB(Home(env.home.path).setting("database-path"))
    infos = [(r.path, r.message) for r in db.read_log("t", 50) if r.kind == "info"]
    assert (f"{TEMP_PREFIX}0123abcd1f", "removed a temporary file that an interrupted pass left behind") in infos
    assert ("", "removed 1 leftover(s) of interrupted uploads in the cloud") in infos


class SlowUpload(LocalProvider):
    """A local folder whose upload calls `midway` once its temporary file holds the first bytes."""

    def __init__(self, options, midway):
        super().__init__(options)
        self.midway = midway

    def upload(self, path, src, size, mtime, *, expect=None):
        class Src:
            def __init__(self, inner, midway):
                self.inner, self.midway = inner, midway

            def read(self, n=-1):
                data = self.inner.read(n)
                if self.midway:
                    self.midway, midway = None, self.midway
                    midway()
                return data

        return super().upload(path, Src(src, self.midway), size, mtime, expect=expect)


def test_a_pass_leaves_another_computers_upload_in_progress_alone(make_env, tmp_path):
    """Two computers sync their own folders with one shared `local` cloud folder: a pass of the second while the
    first is writing its upload's temporary file leaves that file alone (it is fresh), so the upload completes."""
    first = make_env()
    second_local = tmp_path / "local2"
    write(second_local / "mine.txt", "from computer 2")
    second_home = Home(str(tmp_path / "home2"))
    manage.add_connection(second_home, "c", "local", {"root": str(first.cloud)})
    manage.add_task(second_home, Task("t", "c", str(second_local), "/"))
    second_home.save()
    second_passes = []

    def second_pass():
        temps = [n for n in os.listdir(first.cloud) if n.startswith(TEMP_PREFIX)]
        assert temps, "the first computer's upload is under way"
        second_passes.append(run_pass(Home(second_home.path), "t", hostname="other"))
        assert [n for n in os.listdir(first.cloud) if n.startswith(TEMP_PREFIX)] == temps

    write(first.local / "big.bin", os.urandom(3 << 20))
    result = first.sync(provider=SlowUpload({"root": str(first.cloud)}, second_pass))
    assert second_passes and second_passes[0].exit_code == 0
    assert result.exit_code == 0 and result.summary.get("uploaded") == 1, result.summary
    assert (first.cloud / "big.bin").read_bytes() == (first.local / "big.bin").read_bytes()
    assert (first.cloud / "mine.txt").read_text() == "from computer 2"


def test_only_a_day_old_temporary_file_in_the_cloud_is_removed(env):
    fresh, old = env.cloud / f"{TEMP_PREFIX}0123abcd0", env.cloud / f"{TEMP_PREFIX}0123abcd1"
    write(fresh, "being written")
    write(old, "left by a killed pass", mtime=1_000_000_000)
    provider = LocalProvider({"root": str(env.cloud)})
    assert env.sync(provider=provider).exit_code == 0
    assert fresh.exists() and old.exists()  # an old mtime alone is not enough: a writer sets it before its rename
    provider.clock = lambda: time.time() + DAY + 60
    assert env.sync(provider=provider).exit_code == 0
    assert not fresh.exists() and not old.exists()
    assert sorted(os.listdir(env.local)) == []  # neither was ever synced


@pytest.mark.parametrize("name", [f"{TEMP_PREFIX}notes.txt", f"{TEMP_PREFIX}0123abcd", f"{TEMP_PREFIX}0123ABCD1",
                                  f"{TEMP_PREFIX}0123abcd1.txt"])
def test_user_files_that_only_look_like_temporary_files_sync(env, name):
    """Only skysync's own temporary names are leftovers: a user's file with the prefix syncs, on both sides."""
    write(env.local / "docs" / name, "my notes")
    write(env.cloud / "plans" / name, "cloud notes")
    for _ in range(2):
        assert env.sync().exit_code == 0
    assert env.local_tree()[f"docs/{name}"] == env.cloud_tree()[f"docs/{name}"] == b"my notes"
    assert env.local_tree()[f"plans/{name}"] == env.cloud_tree()[f"plans/{name}"] == b"cloud notes"


def test_log_is_capped(env):
    Home(env.home.path).set_setting("log-max-records", "5")
    home = Home(env.home.path)
    home.set_setting("log-max-records", "5")
    home.save()
    for i in range(12):
        write(env.local / f"f{i}", "x")
    env.sync()
    db = StateDB(home.setting("database-path"))
    assert db.log_count() == 5


def test_consistency_check_finds_what_size_and_mtime_miss(make_env):
    env = make_env(consistency_check=True)
    write(env.local / "a.txt", "aaaa", mtime=1_700_000_000)
    env.sync()
    write(env.cloud / "a.txt", "bbbb", mtime=1_700_000_000)  # same size, same mtime, other bytes
    r = env.sync()
    assert r.summary.get("conflict") == 1
    tree = env.local_tree()
    assert tree["a.txt"] == b"aaaa" and any(v == b"bbbb" for k, v in tree.items() if "_Conflict_" in k)


class QuickXorProvider(LocalProvider):
    """A local folder playing a service whose hashes are base64 (OneDrive's quickXorHash): case matters."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, hash_kind=HashKind.QUICKXOR)

    def list_reporting(self, folder, on_skip):
        from engine.hashing import hash_file

        for e in super().list_reporting(folder, on_skip):
            if not e.is_dir:
                e = e._replace(hash=hash_file(os.path.join(self.options["root"], folder, e.path), HashKind.QUICKXOR))
            yield e


def test_consistency_check_compares_base64_hashes_as_they_are(make_env):
    env = make_env(consistency_check=True)
    for i in range(20):  # enough files that some base64 digests hold both cases
        write(env.local / f"f{i}.txt", f"content {i}", mtime=1_700_000_000)
    provider = QuickXorProvider({"root": str(env.cloud)})
    assert env.sync(provider=provider).exit_code == 0
    again = env.sync(provider=provider)
    assert again.exit_code == 0 and not again.summary  # the same bytes: no conflict from a lowercased digest
    write(env.cloud / "f3.txt", "content X", mtime=1_700_000_000)  # same size, same mtime, other bytes
    assert env.sync(provider=provider).summary.get("conflict") == 1


def test_cancel_stops_without_partial_files(env):
    for i in range(30):
        write(env.local / f"f{i}", os.urandom(10_000))
    cancel = threading.Event()
    cancel.set()
    env.sync(cancel=cancel)
    assert not [n for n in os.listdir(env.cloud) if n.startswith(TEMP_PREFIX)]
    assert env.sync().exit_code == 0
    assert len(os.listdir(env.cloud)) == 30


class FlakyProvider(LocalProvider):
    """Fails the first two uploads of every file with a retryable error, then works."""

    def __init__(self, options, failures: int = 2) -> None:
        super().__init__(options)
        self.failures = failures
        self.calls: dict[str, int] = {}

    def upload(self, path, src, size, mtime, **kw):
        from engine.providers.base import TransientError

        n = self.calls[path] = self.calls.get(path, 0) + 1
        if n <= self.failures:
            raise TransientError("service busy (503)")
        return super().upload(path, src, size, mtime, **kw)


def test_transient_errors_are_retried_with_backoff(env):
    write(env.local / "a.txt", "a")
    provider = FlakyProvider({"root": str(env.cloud)})
    r = env.sync(provider=provider)
    assert r.exit_code == 0 and r.summary == {"uploaded": 1}
    assert provider.calls == {"a.txt": 3}


def test_persistent_transient_errors_fail_the_item_only(env):
    write(env.local / "a.txt", "a")
    r = env.sync(provider=FlakyProvider({"root": str(env.cloud)}, failures=99))
    assert r.exit_code == 1 and r.failed == 1


class VanishingFS(FileSystem):
    """The file disappears between the listing and the upload (a user deleted it meanwhile)."""

    def open_read(self, path: str):
        if os.path.basename(path) == "vanishing.txt":
            os.remove(path)
        return super().open_read(path)


def test_a_file_that_vanishes_mid_pass_is_not_fatal(env):
    write(env.local / "vanishing.txt", "v")
    write(env.local / "stays.txt", "s")
    r = env.sync(fs=VanishingFS())
    # Gone since it was listed: the next pass looks again; not a failure (issue 21).
    assert r.failed == 0 and (env.cloud / "stays.txt").exists()
    assert env.sync().exit_code == 0
    assert sorted(os.listdir(env.cloud)) == ["stays.txt"]


class GoneWhileListedFS(FileSystem):
    """The folder playing the cloud is read, and one file of it is deleted before its entry is looked at (a cloud
    disk something else keeps changing); its name was in the folder's listing, its stat finds nothing."""

    def __init__(self, name: str) -> None:
        self.name = name

    def scandir(self, path: str):
        entries = list(super().scandir(path))
        for e in entries:
            if e.name == self.name:
                os.remove(e.path)
        return entries


def test_a_cloud_file_gone_while_its_folder_is_listed_leaves_the_pass_going(env):
    write(env.local / "d" / "gone.txt", "g")
    write(env.local / "d" / "keep.txt", "k")
    env.sync()
    write(env.local / "new.txt", "n")
    r = env.sync(provider=LocalProvider({"root": str(env.cloud)}, fs=GoneWhileListedFS("gone.txt")))
    # Before: "listing /d/gone.txt: not found" stopped the pass, and every pass after it while the churn lasted.
    assert r.exit_code == 0 and r.error is None
    assert (env.cloud / "new.txt").exists()
    # Not looked at: left alone on both sides this pass (neither uploaded again nor deleted locally)...
    assert (env.local / "d" / "gone.txt").exists() and not (env.cloud / "d" / "gone.txt").exists()
    # ...and the next pass, which sees it gone from the cloud, applies that deletion.
    r = env.sync()
    assert r.summary.get("deleted-local") == 1 and not (env.local / "d" / "gone.txt").exists()
    assert env.local_tree() == env.cloud_tree()


class UnreadableFolderFS(FileSystem):
    """One local folder cannot be listed (an I/O error, a permission problem root cannot provoke)."""

    def scandir(self, path: str):
        if os.path.basename(path) == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return super().scandir(path)


def test_an_unreadable_local_folder_never_deletes_its_remote_copy(env):
    for i in range(3):
        write(env.local / "locked" / f"f{i}", "x")
    write(env.local / "open.txt", "o")
    env.sync()
    r = env.sync(fs=UnreadableFolderFS())
    assert r.summary.get("deleted-remote", 0) == 0
    assert sorted(os.listdir(env.cloud / "locked")) == ["f0", "f1", "f2"]
    assert env.sync().summary == {}


def test_an_unreadable_cloud_folder_never_deletes_its_local_copy(env):
    for i in range(3):
        write(env.local / "locked" / f"f{i}", "x")
    write(env.local / "open.txt", "o")
    env.sync()
    write(env.local / "new.txt", "n")
    r = env.sync(provider=LocalProvider({"root": str(env.cloud)}, fs=UnreadableFolderFS()))
    # The pass goes on for the rest; what it could not list is neither deleted here nor sent again.
    assert r.exit_code == 0 and (env.cloud / "new.txt").exists()
    assert r.summary.get("deleted-local", 0) == 0 and r.summary.get("skipped") == 1
    assert sorted(os.listdir(env.local / "locked")) == ["f0", "f1", "f2"]
    assert env.sync().summary == {}


def test_a_local_folder_swapped_for_a_symlink_never_leads_writes_outside(env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write(env.cloud / "a" / "x.txt", "remote")
    os.symlink(outside, env.local / "a")
    r = env.sync()
    assert os.listdir(outside) == []
    assert r.failed >= 1 or r.summary.get("skipped")


class BusyListing(LocalProvider):
    """A listing that breaks off with the service's "busy, come back in 2 s" the first `busy` times."""

    def __init__(self, options, busy: int) -> None:
        super().__init__(options)
        self.busy = busy
        self.listings = 0

    def list_reporting(self, folder, on_skip):
        self.listings += 1
        if self.busy:
            self.busy -= 1
            raise TransientError("busy", retry_after=2.0)
        return super().list_reporting(folder, on_skip)


def test_a_listing_broken_off_is_read_again_after_the_wait_the_service_asked_for(env, monkeypatch):
    import engine.sync as sync_module
    from engine.pacer import Pacer

    now = [0.0]
    pacer = Pacer(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s), jitter=lambda: 0.0)
    monkeypatch.setattr(sync_module, "pacer_of", lambda provider: pacer)
    write(env.local / "a.txt", "a")
    provider = BusyListing({"root": str(env.cloud)}, busy=2)
    r = env.sync(provider=provider)
    assert r.exit_code == 0 and r.summary == {"uploaded": 1} and provider.listings == 3
    assert now[0] >= 4.0  # twice the 2 s asked for, never sooner
    write(env.local / "b.txt", "b")
    provider.busy = 5  # busy beyond the attempts: the pass gives up with the service's words, nothing changed
    with pytest.raises(ConnectionFailed, match="busy"):
        env.sync(provider=provider)
    assert not (env.cloud / "b.txt").exists()


class WritesBeforeRmdir(LocalProvider):
    """Another client writes into a cloud folder just before the pass removes it."""

    def rmdir(self, path):
        write(pathlib.Path(self.options["root"], path, "theirs.txt"), "written meanwhile")
        return super().rmdir(path)


def test_a_local_file_taking_a_folders_place_waits_for_what_another_client_wrote_into_it(env):
    write(env.cloud / "d" / "old.txt", "old")
    env.sync()
    shutil.rmtree(env.local / "d")
    write(env.local / "d", "a file now")
    r = env.sync(provider=WritesBeforeRmdir({"root": str(env.cloud)}))
    assert r.exit_code == 0, r  # changed during the pass: not a failure, and nothing of theirs deleted
    assert (env.cloud / "d" / "theirs.txt").read_text() == "written meanwhile"
    r = env.sync()  # the next pass sees their file: both versions kept, and the sides agree
    assert r.exit_code == 0
    local, cloud = env.local_tree(), env.tree(env.cloud)
    assert local == cloud
    assert {b"a file now", b"written meanwhile"} <= {v for v in local.values() if v is not None}
