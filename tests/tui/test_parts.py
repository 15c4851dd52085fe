"""The TUI's pure parts: tri-state selective-sync rules, the filter preview, size parsing, admin ordering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.config import Connection, Home
from engine.errors import UsageError
from tests.tui.helpers import write_tree
from tui import bridge
from tui.filter_preview import Rules, parse_size, preview
from tui.widgets.check_tree import CHECKED, PARTIAL, UNCHECKED, folder_state, toggle

TREE = {"": ["a", "b"], "a": ["x", "y"], "a/x": ["deep", "other"], "b": []}


def siblings(folder: str) -> list[str] | None:
    return TREE.get(folder)


def test_folder_states() -> None:
    excluded = {"a/x"}
    assert folder_state("", excluded) == PARTIAL
    assert folder_state("a", excluded) == PARTIAL
    assert folder_state("a/x", excluded) == UNCHECKED
    assert folder_state("a/x/deep", excluded) == UNCHECKED
    assert folder_state("a/y", excluded) == CHECKED
    assert folder_state("ab", {"a"}) == CHECKED  # a sibling with a common prefix is not inside "a"


@pytest.mark.parametrize(
    ("excluded", "path", "after"),
    [
        (set(), "a", {"a"}),  # uncheck a folder
        ({"a/x", "a/y/z"}, "a", {"a"}),  # unchecking a partly checked folder drops the exclusions below it
        ({"a"}, "a", set()),  # check it again
        ({"a"}, "a/y", {"a/x"}),  # check one child of an excluded folder: its siblings stay excluded
        ({"a"}, "a/x/deep", {"a/y", "a/x/other"}),  # two levels down
        (set(), "", {"a", "b"}),  # the task folder itself: everything off
        ({"a", "b"}, "", set()),  # and everything on again
    ],
)
def test_toggle(excluded: set[str], path: str, after: set[str]) -> None:
    assert toggle(path, excluded, siblings) == after


def test_filter_preview_counts_each_rule(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.tmp": b"1", "B.TMP": b"2", "c.txt": b"3", "big.iso": b"4" * 5000,
                          "Thumbs.db": b"5", "skip/x.tmp": b"6"})
    rules = Rules(exts=("tmp",), names=("thumbs*",), max_size=4096)
    result = preview(str(tmp_path), rules, skip_folders=("skip",))
    assert (result.files, result.excluded) == (5, 2)
    assert result.by_rule == {".tmp": 1, "thumbs*": 0, "> 4,096 bytes": 1}
    folded = preview(str(tmp_path), Rules(exts=("tmp",), names=("thumbs*",), case_insensitive=True))
    assert (folded.files, folded.excluded, folded.by_rule) == (6, 4, {".tmp": 3, "thumbs*": 1})


@pytest.mark.parametrize(("text", "size"), [("0", 0), ("1048576", 1 << 20), ("10M", 10 << 20),
                                            ("1.5 GB", 3 << 29), ("2k", 2048), ("4 KiB", 4096)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_refuses_nonsense() -> None:
    with pytest.raises(UsageError):
        parse_size("ten megs")


def test_admin_order_by_user_or_cloud_type(tmp_path: Path) -> None:
    home = Home(str(tmp_path))
    for name, kind in (("zeta", "local"), ("alpha", "s3"), ("mid", "local")):
        home.put_connection(Connection(name, kind, {"root": "/x"} if kind == "local" else {}), {})
    home.save()
    assert [c.name for c in bridge.ordered_connections(Home(str(tmp_path)))] == ["zeta", "alpha", "mid"]
    bridge.set_settings(home, {"admin-order": "cloud-type"})
    assert [c.name for c in bridge.ordered_connections(Home(str(tmp_path)))] == ["mid", "zeta", "alpha"]


def _counting_provider(root: Path, method: str, one_level: bool) -> tuple[Any, list[str]]:
    """A local provider whose `method` calls are recorded, claiming a one-level listing or not."""
    from engine.providers.local import LocalProvider

    provider = LocalProvider({"root": str(root)})
    provider.capabilities = replace(provider.capabilities, list_dir=one_level)
    calls: list[str] = []
    original = getattr(provider, method)

    def counting(folder: str):  # type: ignore[no-untyped-def]
        calls.append(folder)
        return original(folder)

    setattr(provider, method, counting)
    return provider, calls


def test_folder_index_lists_once_and_answers_every_level(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/b/c/file.txt": b"1", "a/d/": b"", "e/f.txt": b"2", "top.txt": b"3"})
    provider, calls = _counting_provider(tmp_path, "list", one_level=False)
    index = bridge.FolderIndex(provider)
    assert index.children("") == ["a", "e"]
    assert index.children("a") == ["b", "d"]
    assert index.children("a/b") == ["c"]
    assert index.children("a/b/c") == [] and index.children("a/d") == []
    assert calls == [""]
    (tmp_path / "a" / "new").mkdir()
    index.forget("a")
    assert index.children("a") == ["b", "d", "new"]
    assert calls == ["", "a"]


def test_folder_index_asks_one_level_at_a_time_where_the_service_can(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/b/c/file.txt": b"1", "a/d/": b"", "e/f.txt": b"2", "top.txt": b"3"})
    provider, calls = _counting_provider(tmp_path, "list_dir", one_level=True)
    provider.list = lambda folder: pytest.fail("a whole listing while browsing")  # type: ignore[method-assign]
    index = bridge.FolderIndex(provider)
    assert index.children("") == ["a", "e"]
    assert calls == [""]  # only the root, not the levels below it
    assert index.children("a") == ["b", "d"] and index.children("a") == ["b", "d"]
    assert calls == ["", "a"]  # each level once


def test_filter_preview_means_what_the_engine_means(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.tar.gz": b"1", "b.gz": b"2", "cache/x.bin": b"3", "cache/y.bin": b"4", "z.bin": b"5"})
    result = preview(str(tmp_path), Rules(exts=("tar.gz",), names=("cache",)))
    # a multi-part extension is a suffix, and a name glob that matches a folder takes the files inside it
    assert (result.excluded, result.by_rule) == (3, {".tar.gz": 1, "cache": 2})


def test_advanced_settings_are_what_each_provider_declares() -> None:
    infos = {p.kind: p for p in bridge.providers()}
    advanced = {kind: {s.name for s in info.options if s.advanced} for kind, info in infos.items()}
    assert advanced["s3"] == {"storage_class", "part_size", "addressing_style", "server_side_encryption",
                              "sse_kms_key_id", "upload_concurrency"}
    assert advanced["swift"] == {"segment_size"} and advanced["azure"] == {"block_size"}
    assert advanced["local"] == set()
    secrets_and_required = [s.name for info in infos.values() for s in info.options if s.advanced and
                            (s.secret or s.required)]
    assert secrets_and_required == []  # the main form must be enough to connect
