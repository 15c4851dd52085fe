"""A one-way task meets a name that is a file on one side and a folder on the other, neither known to the state.
The two-way answer (the file moves aside under a conflict name on both sides) would change the side a one-way task
only reads: the name is skipped with its reason instead, on both sides, until the user renames one of them."""

from __future__ import annotations

import pathlib

import pytest

from .conftest import Env, write


def snapshot(root: pathlib.Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("direction", "folder_side"), [("download", "local"), ("download", "cloud"),
                                                          ("upload", "local"), ("upload", "cloud")])
def test_a_one_way_task_never_settles_a_file_folder_clash_by_changing_its_source(
    make_env, direction: str, folder_side: str
) -> None:
    env: Env = make_env(direction)
    folder_root, file_root = (env.local, env.cloud) if folder_side == "local" else (env.cloud, env.local)
    write(folder_root / "q" / "inside", "in the folder")
    write(file_root / "q", "the file")
    write(env.local / "mine", "local only")
    write(env.cloud / "theirs", "cloud only")
    source = env.cloud if direction == "download" else env.local
    before = snapshot(source)

    r = env.sync()
    assert snapshot(source) == before
    assert r.summary.get("skipped") == 1, r.summary
    assert (folder_root / "q" / "inside").read_text() == "in the folder"
    assert (file_root / "q").read_text() == "the file"
    # The rest of the task syncs as usual.
    copied = "theirs" if direction == "download" else "mine"
    assert ((env.local if direction == "download" else env.cloud) / copied).exists()

    env.sync()  # still left alone
    assert snapshot(source) == before

    (file_root / "q").rename(file_root / "q-file")  # the user settles it
    env.sync()
    dest = env.local if direction == "download" else env.cloud
    if source is folder_root:
        assert (dest / "q" / "inside").read_text() == "in the folder"
    else:
        assert (dest / "q-file").read_text() == "the file"
