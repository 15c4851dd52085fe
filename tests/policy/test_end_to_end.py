"""The policy inside real passes (engine.sync with the `local` provider): what the issue asks to see end to end.

- a two-way task with a folder full of system files syncs only what it should, in both directions;
- a file excluded by a filter is neither uploaded nor deleted remotely;
- the tail-character rename round-trips through two passes with no re-upload.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from engine import manage
from engine.config import Home, Task
from engine.state import StateDB
from engine.sync import PassResult, run_pass

SYSTEM = [".DS_Store", "@eaDir/thumb.jpg", "._x", "Thumbs.db", "#recycle/old.txt", "@tmp/t.txt", "desktop.ini"]
KEPT = ["a/@tmp/kept.txt", "doc.txt", "a/b.txt"]


class Env:
    def __init__(self, tmp: pathlib.Path, **task: object) -> None:
        self.home = Home(str(tmp / "home"))
        self.local = tmp / "local"
        self.cloud = tmp / "cloud"
        self.local.mkdir()
        self.cloud.mkdir()
        manage.add_connection(self.home, "c", "local", {"root": str(self.cloud)})
        manage.add_task(self.home, Task("t", "c", str(self.local), "/", **task))  # type: ignore[arg-type]
        self.home.save()

    def sync(self) -> PassResult:
        result = run_pass(Home(self.home.path), "t", hostname="testhost")
        assert result.exit_code == 0, result.as_dict()
        return result

    @staticmethod
    def files(root: pathlib.Path) -> set[str]:
        out = set()
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                out.add(os.path.relpath(os.path.join(dirpath, name), root))
        return out


def write(root: pathlib.Path, rel: str, data: str = "x", mtime: float | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.mark.parametrize("side", ["local", "cloud"])
def test_system_files_stay_where_they_are_in_both_directions(tmp_path: pathlib.Path, side: str) -> None:
    env = Env(tmp_path)
    source = env.local if side == "local" else env.cloud
    other = env.cloud if side == "local" else env.local
    for rel in SYSTEM + KEPT:
        write(source, rel)
    env.sync()
    assert env.files(other) == set(KEPT)
    assert env.files(source) == set(SYSTEM + KEPT)  # nothing was deleted on the side that has them
    assert not (other / "@eaDir").exists() and not (other / "#recycle").exists()
    env.sync()  # and a second pass changes nothing either
    assert env.files(other) == set(KEPT)
    assert env.files(source) == set(SYSTEM + KEPT)


def test_a_filtered_file_is_neither_uploaded_nor_deleted_remotely(tmp_path: pathlib.Path) -> None:
    env = Env(tmp_path, exclude_exts=["bak"], exclude_names=["*.tmp"], exclude_folders=["private"])
    write(env.local, "keep.txt")
    write(env.local, "old.bak")
    write(env.local, "x.tmp")
    write(env.local, "private/secret.txt")
    write(env.cloud, "remote-only.bak", "cloud")  # filtered, and missing locally: must survive
    write(env.cloud, "private/cloud.txt", "cloud")
    env.sync()
    assert env.files(env.cloud) == {"keep.txt", "remote-only.bak", "private/cloud.txt"}
    assert env.files(env.local) == {"keep.txt", "old.bak", "x.tmp", "private/secret.txt"}
    env.sync()
    assert (env.cloud / "remote-only.bak").read_text() == "cloud"
    assert (env.cloud / "private/cloud.txt").read_text() == "cloud"


def test_tail_character_rename_round_trips_with_no_reupload(tmp_path: pathlib.Path) -> None:
    env = Env(tmp_path)
    write(env.local, "notes.", "n", mtime=1_704_164_645)  # 2024-01-02 03:04:05 UTC
    write(env.local, "draft ", "d", mtime=1_704_164_645)
    first = env.sync()
    assert env.files(env.cloud) == {
        "notes.._DiskStation_20240102-030405_TailCharacterConflict",
        "draft ._DiskStation_20240102-030405_TailCharacterConflict",
    }
    assert env.files(env.local) == {"notes.", "draft "}
    assert first.summary.get("uploaded") == 2
    second = env.sync()
    assert second.summary.get("uploaded", 0) == 0 and second.summary.get("downloaded", 0) == 0
    assert env.files(env.local) == {"notes.", "draft "}
    # a change made on the remote copy comes back under the local name
    (env.cloud / "notes.._DiskStation_20240102-030405_TailCharacterConflict").write_text("changed")
    env.sync()
    assert (env.local / "notes.").read_text() == "changed"
    assert env.files(env.local) == {"notes.", "draft "}


def test_a_folder_ending_in_a_period_and_its_files(tmp_path: pathlib.Path) -> None:
    env = Env(tmp_path)
    write(env.local, "proj./a.txt", "a")
    write(env.local, "proj./sub/b.", "b", mtime=1_704_164_645)
    env.sync()
    (folder,) = os.listdir(env.cloud)  # dated with the local time of the rename: proj.._DiskStation_<date>_...
    assert re.fullmatch(r"proj\.\._DiskStation_\d{8}-\d{6}_TailCharacterConflict", folder), folder
    assert env.files(env.cloud) == {
        f"{folder}/a.txt",
        f"{folder}/sub/b.._DiskStation_20240102-030405_TailCharacterConflict",
    }
    second = env.sync()
    assert second.summary.get("uploaded", 0) == 0 and second.summary.get("downloaded", 0) == 0
    assert env.files(env.local) == {"proj./a.txt", "proj./sub/b."}


def test_skips_are_counted_in_the_pass_summary(tmp_path: pathlib.Path) -> None:
    env = Env(tmp_path)
    for rel in SYSTEM + KEPT:
        write(env.local, rel)
    result = env.sync()
    assert result.summary.get("skipped", 0) == len(SYSTEM)
    env.sync()
    # one history record per skipped path, with the rule that stopped it, not one per pass
    db = StateDB(Home(env.home.path).setting("database-path"))
    records = db.read_log(limit=1000, kinds=("skipped",))
    by_path = {r.path: r.message for r in records}
    assert len(records) == len(by_path)
    assert "system file" in by_path[".DS_Store"]
    # a skipped folder is one record; what is inside it is left alone without a record each
    assert "@tmp" in by_path["@tmp"] and "@tmp/t.txt" not in by_path
    assert "@eaDir" in by_path and "@eaDir/thumb.jpg" not in by_path
