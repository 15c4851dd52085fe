"""A side that holds only files no rule ever syncs (what a Mac, Windows or a NAS indexer leaves in a bare mount
point) is an empty side to the empty-side guard: --force or not, the pass must not delete the other side."""

from __future__ import annotations

import pytest

from engine.errors import GuardError

from .conftest import Env, write


@pytest.mark.parametrize("junk", ["@eaDir/x/SYNO@.fileindexdb", ".DS_Store", "Thumbs.db", "desktop.ini"])
@pytest.mark.parametrize("side", ["local", "cloud"])
def test_only_never_synced_files_left_on_one_side_is_an_empty_side(env: Env, side: str, junk: str) -> None:
    for i in range(12):
        write(env.local / f"f{i}", f"file {i}")
    assert env.sync().exit_code == 0
    emptied = env.local if side == "local" else env.cloud
    other = env.cloud if side == "local" else env.local
    for i in range(12):
        (emptied / f"f{i}").unlink()
    write(emptied / junk, "left by the system")
    with pytest.raises(GuardError, match="is empty"):
        env.sync(force=True)
    assert sorted(p.name for p in other.iterdir() if p.name.startswith("f")) == sorted(f"f{i}" for i in range(12))
