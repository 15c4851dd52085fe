"""The tree changes shape under a running pass: a folder swapped for a link, a file for a FIFO, the task's folder
moved away or its disk unmounted. The pass must neither read nor write through what took their place, and never
make again a folder that went away: a next pass would find it not empty and take every file missing from it
for a deletion to send to the cloud.

The changes are made at the I/O adapter, right when the pass opens a file, so each lands mid-pass every time.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.errors import GuardError
from engine.localfs import FileSystem
from engine.providers.local import LocalProvider

from .conftest import Env, write


class ChangesOnce(FileSystem):
    """Runs `change` once: when the pass first opens a file below `below` (before the open when reading, after
    it when writing, so the pass already holds one file in the folder when it changes)."""

    def __init__(self, below: pathlib.Path, change: Callable[[], None]) -> None:
        self.below = str(below) + "/"
        self.change: Callable[[], None] | None = change

    def _now(self, path: str) -> None:
        if self.change is not None and path.startswith(self.below):
            change, self.change = self.change, None
            change()

    def open_read(self, path: str) -> Any:
        self._now(path)
        return super().open_read(path)

    def open_new(self, path: str) -> Any:
        f = super().open_new(path)
        self._now(path)
        return f


@contextlib.contextmanager
def tmpfs_at(folder: pathlib.Path) -> Iterator[pathlib.Path]:
    """A small tmpfs mounted at `folder` (skipped where mount is not permitted), unmounted after, if still there."""
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"mount is not permitted here: {p.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def contents(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_upload_never_reads_through_a_folder_swapped_for_a_link(env: Env, tmp_path: pathlib.Path) -> None:
    outside = tmp_path / "outside"
    for i in range(5):
        write(env.local / "d" / f"f{i}", f"mine {i}")
        write(outside / f"f{i}", f"PRIVATE {i}")

    def swap() -> None:
        (env.local / "d").rename(tmp_path / "d-moved")
        (env.local / "d").symlink_to(outside)

    r = env.sync(fs=ChangesOnce(env.local / "d", swap))
    assert r.summary.get("uploaded", 0) == 0, r.summary
    assert not any(b"PRIVATE" in data for data in contents(env.cloud).values())
    env.sync()  # the link is skipped from now on
    assert not any(b"PRIVATE" in data for data in contents(env.cloud).values())
    assert contents(outside) == {f"f{i}": f"PRIVATE {i}".encode() for i in range(5)}


def test_a_download_never_writes_through_a_folder_swapped_for_a_link(env: Env, tmp_path: pathlib.Path) -> None:
    write(env.cloud / "d" / "first", "synced")
    env.sync()
    outside = tmp_path / "outside"
    write(outside / "theirs", "not the task's")
    for i in range(5):
        write(env.cloud / "d" / f"f{i}", f"cloud {i}")

    def swap() -> None:
        (env.local / "d").rename(tmp_path / "d-moved")
        (env.local / "d").symlink_to(outside)

    env.sync(fs=ChangesOnce(env.local / "d", swap))
    assert sorted(os.listdir(outside)) == ["theirs"]
    env.sync()
    assert sorted(os.listdir(outside)) == ["theirs"]
    assert (env.cloud / "d" / "first").read_text() == "synced"


def test_a_file_replaced_by_a_fifo_mid_pass_is_skipped_not_waited_for(env: Env) -> None:
    for name in ("a", "b", "c"):
        write(env.local / name, name)

    def to_fifo() -> None:
        (env.local / "a").unlink()
        os.mkfifo(env.local / "a")

    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(env.sync(fs=ChangesOnce(env.local, to_fifo))),
                              daemon=True)
    worker.start()
    worker.join(30)
    assert done, "the pass is waiting for a writer on the FIFO"
    assert sorted(os.listdir(env.cloud)) == ["b", "c"]
    assert done[0].failed == 0


def _seed_and_grow(env: Env) -> None:
    """Three files synced on both sides, then five new ones in a new cloud folder for the next pass to fetch."""
    for i in range(3):
        write(env.local / f"o{i}", f"mine {i}")
    assert env.sync().exit_code == 0
    for i in range(5):
        write(env.cloud / "new" / f"n{i}", f"cloud {i}")


def _cloud_kept_everything(env: Env) -> None:
    assert sorted(p for p in contents(env.cloud)) == [f"new/n{i}" for i in range(5)] + [f"o{i}" for i in range(3)]


def test_the_task_folder_moved_away_mid_pass_is_not_made_again(env: Env, tmp_path: pathlib.Path) -> None:
    _seed_and_grow(env)

    def move_away() -> None:
        env.local.rename(tmp_path / "moved")
        env.local.mkdir()  # another program makes an empty folder under the old name

    env.sync(fs=ChangesOnce(env.local, move_away))
    assert os.listdir(env.local) == []  # nothing written into the folder that took the name
    with pytest.raises(GuardError, match="empty"):  # the folder is empty while the state says it held files
        env.sync()
    _cloud_kept_everything(env)


@pytest.fixture
def mounted_local(env: Env) -> Iterator[pathlib.Path]:
    with tmpfs_at(env.local) as folder:
        yield folder


def test_a_disk_unmounted_mid_pass_gets_nothing_written_on_its_bare_mount_point(
    env: Env, mounted_local: pathlib.Path
) -> None:
    _seed_and_grow(env)
    unmount = lambda: subprocess.run(["umount", "-l", str(mounted_local)], check=True)  # noqa: E731
    env.sync(fs=ChangesOnce(env.local, unmount))
    assert os.listdir(env.local) == []  # the bare mount point, still empty
    with pytest.raises(GuardError, match="another disk"):
        env.sync()
    _cloud_kept_everything(env)


def test_a_cloud_disk_unmounted_mid_pass_gets_nothing_written_on_its_bare_mount_point(env: Env) -> None:
    """The same the other way round: a `local` connection's folder on a USB disk that goes away mid-upload."""
    with tmpfs_at(env.cloud):
        for i in range(3):
            write(env.cloud / f"o{i}", f"theirs {i}")
        assert env.sync().exit_code == 0
        for i in range(5):
            write(env.local / "new" / f"n{i}", f"mine {i}")
        unmount = lambda: subprocess.run(["umount", "-l", str(env.cloud)], check=True)  # noqa: E731
        env.sync(provider=LocalProvider({"root": str(env.cloud)}, fs=ChangesOnce(env.cloud, unmount)))
        assert os.listdir(env.cloud) == []
        with pytest.raises(GuardError, match="another disk"):
            env.sync()
        assert sorted(contents(env.local)) == [f"new/n{i}" for i in range(5)] + [f"o{i}" for i in range(3)]


def test_a_disk_unmounted_between_passes_over_a_leftover_file_deletes_nothing(env: Env) -> None:
    """The bare mount point holds a file (left there before the disk was first mounted): not empty, so the empty
    folder guard does not hold; the other device makes it a new pairing, which deletes nothing, --force or not."""
    write(env.local / "left-before-mounting.txt", "stale")
    with tmpfs_at(env.local):
        for i in range(9):
            write(env.local / f"f{i}", f"on the disk {i}")
        assert env.sync().exit_code == 0
        subprocess.run(["umount", "-l", str(env.local)], check=True)
        r = env.sync(force=True)
        assert r.summary.get("deleted-remote", 0) == 0, r.summary
        assert sorted(contents(env.cloud)) == [f"f{i}" for i in range(9)] + ["left-before-mounting.txt"]


def test_a_cloud_disk_unmounted_after_a_first_pass_that_made_the_cloud_folder_deletes_nothing(
    tmp_path: pathlib.Path,
) -> None:
    """The first pass makes the task's cloud folder on a mounted disk: the disk is known from that pass on (the
    folder's parent's), so once it is unmounted and a stray file shows at the same path, nothing local goes."""
    from engine import manage
    from engine.config import Home, Task
    from engine.sync import run_pass

    cloud, local = tmp_path / "cloud", tmp_path / "local"
    cloud.mkdir()
    local.mkdir()
    with tmpfs_at(cloud):
        home = Home(str(tmp_path / "home"))
        manage.add_connection(home, "c", "local", {"root": str(cloud)})
        manage.add_task(home, Task("t", "c", str(local), "/t", direction="bidirectional"))
        home.save()
        for i in range(5):
            write(local / f"f{i}", f"precious {i}")
        assert run_pass(Home(home.path), "t", hostname="h").exit_code == 0
        subprocess.run(["umount", "-l", str(cloud)], check=True)
        write(cloud / "t" / "stray", "left on the bare mount point")
        r = run_pass(Home(home.path), "t", hostname="h", force=True)
        assert r.summary.get("deleted-local", 0) == 0, r.summary
        assert sorted(p.name for p in local.iterdir()) == [f"f{i}" for i in range(5)] + ["stray"]
