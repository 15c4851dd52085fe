"""Note 4: 'File or folder names that end with a period (.) or a space will be renamed as
"file name._DiskStation_modified date_TailCharacterConflict".'"""

from __future__ import annotations

import calendar
import re

import pytest

from engine.policy import PathPolicy

MTIME = calendar.timegm((2024, 1, 2, 3, 4, 5))  # 2024-01-02 03:04:05 UTC
DATE = "20240102-030405"


@pytest.mark.parametrize(
    ("path", "is_dir", "remote"),
    [
        ("report.", False, f"report.._DiskStation_{DATE}_TailCharacterConflict"),
        ("report ", False, f"report ._DiskStation_{DATE}_TailCharacterConflict"),
        ("a/b/notes.", False, f"a/b/notes.._DiskStation_{DATE}_TailCharacterConflict"),
        ("folder.", True, f"folder.._DiskStation_{DATE}_TailCharacterConflict"),
        ("folder ", True, f"folder ._DiskStation_{DATE}_TailCharacterConflict"),
        ("...", False, f"...._DiskStation_{DATE}_TailCharacterConflict"),
    ],
)
def test_names_ending_in_period_or_space_are_renamed(path: str, is_dir: bool, remote: str) -> None:
    for kind in ("local", "onedrive-business", "s3", "b2"):
        got = PathPolicy(kind).check(path, is_dir, 1, mtime=MTIME)
        assert (got.action, got.remote_name) == ("rename", remote)
        assert "tail-character" in got.reason


@pytest.mark.parametrize("path", ["report.txt", "report", " lead", "a.b/c", "mid .dle", ".hidden"])
def test_other_names_are_not_renamed(path: str) -> None:
    assert PathPolicy("local").check(path, False, 1, mtime=MTIME).action == "sync"


def test_local_name_strips_the_suffix() -> None:
    policy = PathPolicy("local")
    for local, is_dir in [("report.", False), ("report ", False), ("a/b/notes.", False), ("folder.", True)]:
        remote = policy.check(local, is_dir, 1, mtime=MTIME).remote_name
        assert remote is not None
        assert policy.local_name(remote) == local


def test_local_name_leaves_other_names_alone() -> None:
    policy = PathPolicy("local")
    assert policy.local_name("a/b.txt") == "a/b.txt"
    # the suffix only ever follows a name that ends in "." or " "
    plain = f"x._DiskStation_{DATE}_TailCharacterConflict"
    assert policy.local_name(plain) == plain
    assert policy.local_name("x.._DiskStation_2024_TailCharacterConflict").endswith("Conflict")  # no date


def test_the_rename_is_stable_for_the_same_mtime() -> None:
    # the same file seen again (a second pass) maps to the same remote name: nothing to re-upload
    policy = PathPolicy("local")
    first = policy.check("a/report.", False, 1, mtime=MTIME)
    second = PathPolicy("local").check("a/report.", False, 1, mtime=MTIME)
    assert first == second


def test_parent_folders_are_mapped_as_the_folder_itself_is() -> None:
    policy = PathPolicy("local")
    folder = policy.check("draft.", True)  # folders are checked without an mtime
    child = policy.check("draft./x.txt", False, 1, mtime=MTIME)
    deeper = policy.check("draft./sub/y.", False, 1, mtime=MTIME)
    # a folder is dated with the local time of its rename (its mtime changes with its content), never the pattern
    assert re.fullmatch(r"draft\.\._DiskStation_\d{8}-\d{6}_TailCharacterConflict", folder.remote_name or "")
    assert (child.action, child.remote_name) == ("rename", f"{folder.remote_name}/x.txt")
    assert deeper.remote_name == f"{folder.remote_name}/sub/y.._DiskStation_{DATE}_TailCharacterConflict"
    assert policy.local_name(child.remote_name or "") == "draft./x.txt"
    assert policy.local_name(deeper.remote_name or "") == "draft./sub/y."


def test_parent_remote_from_the_engine_wins() -> None:
    # the engine remembers the pair made when the folder was created (with the folder's own date)
    parent = "draft.._DiskStation_20200101-000000_TailCharacterConflict"
    got = PathPolicy("local").check("draft./x.", False, 1, mtime=MTIME, parent_remote=parent)
    assert got.remote_name == f"{parent}/x.._DiskStation_{DATE}_TailCharacterConflict"
    got = PathPolicy("local").check("draft./y.txt", False, 1, parent_remote=parent)
    assert (got.action, got.remote_name) == ("rename", f"{parent}/y.txt")


def test_unknown_mtime_shows_the_pattern() -> None:
    got = PathPolicy("local").check("report.", False, 1)
    assert got.remote_name == "report.._DiskStation_YYYYMMDD-HHMMSS_TailCharacterConflict"
    assert PathPolicy("local").local_name(got.remote_name) == "report."


def test_the_renamed_name_meets_the_service_rules() -> None:
    # OneDrive for Business refuses names ending in "."; after the rename the name no longer does
    got = PathPolicy("onedrive-business").check("Q3 results.", False, 1, mtime=MTIME)
    assert got.action == "rename"
    # SharePoint: the file name may not exceed 128 characters -- the suffix counts
    long_name = "n" * 100 + "."
    assert PathPolicy("sharepoint").check(long_name, False, 1, mtime=MTIME).action == "skip"
