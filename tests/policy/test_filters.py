"""Selective Sync and the File Filter: the task's own choices (and note 9 on letter case)."""

from __future__ import annotations

from engine.policy import PathPolicy


def test_excluded_folders_prune_their_subtree() -> None:
    policy = PathPolicy("local", exclude_folders=("photos/raw", "/tmp-build/"))
    assert policy.is_excluded_folder("photos/raw")
    assert policy.is_excluded_folder("photos/raw/2024/a.nef")
    assert policy.is_excluded_folder("tmp-build")
    assert not policy.is_excluded_folder("photos")
    assert not policy.is_excluded_folder("photos/raw2")  # a sibling whose name merely starts the same
    assert not policy.is_excluded_folder("x/photos/raw")  # paths are relative to the task root
    assert policy.check("photos/raw/a.nef", False, 1).action == "skip"
    assert "selective sync" in policy.check("photos/raw", True).reason
    assert policy.check("photos/raw2/a.nef", False, 1).action == "sync"
    assert policy.check("photos/a.jpg", False, 1).action == "sync"


def test_new_files_and_folders_sync_by_default() -> None:
    policy = PathPolicy("local", exclude_folders=("old",), exclude_names=("*.tmp",), exclude_exts=("bak",))
    for path in ("new", "new/file.txt", "brand-new.doc"):
        assert policy.check(path, path == "new", 1).action == "sync"


def test_excluded_names_are_globs_on_the_base_name() -> None:
    policy = PathPolicy("local", exclude_names=("*.tmp", "~$*", "cache", "build-??"))
    assert policy.check("a/b/x.tmp", False, 1).action == "skip"
    assert policy.check("~$report.docx", False, 1).action == "skip"
    assert policy.check("cache", False, 1).action == "skip"
    assert policy.check("cache/inner.txt", False, 1).action == "skip"  # a folder matching a name pattern
    assert policy.check("build-01", True).action == "skip"
    assert policy.check("build-001", True).action == "sync"
    assert policy.check("x.tmp.txt", False, 1).action == "sync"
    assert policy.check("tmp/x.txt", False, 1).action == "sync"  # the glob is on the name, not the path
    assert "'*.tmp'" in policy.check("x.tmp", False, 1).reason


def test_excluded_extensions_with_or_without_a_dot() -> None:
    policy = PathPolicy("local", exclude_exts=("bak", ".part", "tar.gz"))
    assert policy.check("a.bak", False, 1).action == "skip"
    assert policy.check("a.part", False, 1).action == "skip"
    assert policy.check("dump.tar.gz", False, 1).action == "skip"
    assert policy.check("a.gz", False, 1).action == "sync"
    assert policy.check("abak", False, 1).action == "sync"
    assert policy.check("a.bak.txt", False, 1).action == "sync"
    assert policy.check("dir.bak", True).action == "sync"  # extensions filter files


def test_maximum_file_size() -> None:
    policy = PathPolicy("local", max_size=1000)
    assert policy.check("a", False, 1000).action == "sync"
    assert policy.check("a", False, 1001).action == "skip"
    assert policy.check("a", False, None).action == "sync"
    assert policy.check("d", True, 10**9).action == "sync"
    assert PathPolicy("local", max_size=0).check("a", False, 10**15).action == "sync"  # 0 = no limit


def test_matching_is_case_sensitive_by_default() -> None:
    # note 9: "they will be considered different file names on Linux and Mac systems"
    policy = PathPolicy("local", exclude_folders=("Photos",), exclude_names=("A.txt",), exclude_exts=("JPG",))
    assert policy.check("A.txt", False, 1).action == "skip"
    assert policy.check("a.txt", False, 1).action == "sync"
    assert policy.check("x.JPG", False, 1).action == "skip"
    assert policy.check("x.jpg", False, 1).action == "sync"
    assert policy.is_excluded_folder("Photos/x")
    assert not policy.is_excluded_folder("photos/x")


def test_case_insensitive_option() -> None:
    # note 9: "file names will be considered the same if one file name is capitalized ... on Windows"
    policy = PathPolicy(
        "local", exclude_folders=("Photos",), exclude_names=("A.txt",), exclude_exts=("JPG",), case_insensitive=True
    )
    assert policy.check("a.txt", False, 1).action == "skip"
    assert policy.check("x.jpg", False, 1).action == "skip"
    assert policy.is_excluded_folder("photos/x")
    assert policy.check("b.txt", False, 1).action == "sync"


def test_filters_come_before_service_rules() -> None:
    # the user's own exclusion is the reason reported, even where the service would refuse the name anyway
    policy = PathPolicy("gcs", exclude_names=("*#*",))
    assert "excluded name" in policy.check("a#b", False, 1).reason
