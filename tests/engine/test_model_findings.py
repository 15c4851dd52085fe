"""Failures the model test (tests/engine/test_model.py) found, shrunk by hand to fixed sequences of its steps.

Each test replays one sequence on the model's own state machine, so it checks the engine and the model's
bookkeeping together, deterministically and in a second or two.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from engine.config import Home
from engine.events import LogRecord
from engine.sync import run_pass

from .test_model import SyncModel, SyncModelListedHashes, SyncModelRevisions, SyncModelScoped, SyncModelSettled


class _Draw:
    """Stands in for hypothesis's `data` argument of a rule: draws one fixed value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def draw(self, strategy: object) -> str:
        return self.value


def _tracked(m: SyncModel) -> list[str]:
    db = sqlite3.connect(Home(m.home.path).setting("database-path"))
    try:
        return sorted(r[0] for r in db.execute("SELECT path FROM entries"))
    finally:
        db.close()


@pytest.mark.parametrize("machine", [SyncModel, SyncModelRevisions, SyncModelScoped])
def test_folder_hidden_across_a_new_pairing_is_seen_afresh_when_back(machine: type[SyncModel]) -> None:
    """Seeds 3006 (revisions) and 3003 (scoped), STEPS=70: "d0/e0/f1.txt, deleted on the cloud side, came back".

    The root moves (a new pairing) while d0/e0 is hidden behind a link. That first pass forgets the whole state,
    the hidden folder's too (it could not see it). The cloud then deletes d0/e0 and the folder comes back: to the
    engine its files are new local files of this pairing, and it uploads them, as a first pass does (nothing is
    deleted on a state it does not have). The model kept its pre-move record of the hidden folder across the
    pairing and called that a deletion undone; it now drops it (SyncModel._synced_now)."""
    m = machine()
    try:
        m.write_twins("d0/e0", 105)
        m.sync()
        m.move_root()
        m.hide_folder("d0/e0")
        m.sync()  # the new pairing's first pass: d0/e0 is out of sight
        assert not any(p.startswith("d0/e0") for p in _tracked(m)), "the new pairing kept the old state"
        m.rmtree("cloud", "d0/e0")
        m.show_folder(_Draw("d0/e0"))
        m.sync()  # uploads d0/e0 again: nothing recorded it in this pairing
        assert m.synced.get("d0/e0/f1.txt") is not None
    finally:
        m.teardown()


def _renamed_away_and_back(m: SyncModel) -> None:
    """The settled variant's seed (make test, 2026-11-30), shrunk: the cloud replaces folder d0 by a file while
    the local d0/f1.txt is renamed away and back (same file, size and mtime; only its ctime moved)."""
    m.write("local", "d0", "f1.txt")
    m.sync()
    m.folder_becomes_file("cloud", "d0")
    m.rename("local", _Draw("d0/f1.txt"), "", "f0")
    m.rename("local", _Draw("f0"), "d0", "f1.txt")
    m.sync()


def test_a_file_renamed_away_and_back_is_kept_against_a_deletion_when_no_hash_can_prove_it_unchanged() -> None:
    """A `local` connection records no hash, so the engine cannot tell that file from one rewritten in place
    with its size and mtime restored: it keeps it (re-uploads it) and the cloud's file d0 becomes a conflict
    copy. A deletion undone, nothing lost: the model allows exactly that case (SyncModel._only_ctime_moved)."""
    m = SyncModelSettled()
    try:
        _renamed_away_and_back(m)
        assert "d0/f1.txt" in m.synced and any("_Conflict_" in p for p in m.synced)
    finally:
        m.teardown()


def test_a_file_renamed_away_and_back_proves_by_its_hash_that_the_deletion_stands() -> None:
    """Where the cloud lists hashes (recorded in the state), the file's md5 shows it is the synced content: the
    cloud's deletion is applied and the cloud's file d0 comes down, with no conflict copy."""
    m = SyncModelListedHashes()
    try:
        _renamed_away_and_back(m)
        assert m.synced == {"d0": b"cloud:d0:file-v2"}
    finally:
        m.teardown()


@pytest.mark.parametrize("machine", [SyncModel, SyncModelListedHashes])
def test_a_rewrite_in_place_that_restores_size_and_mtime_survives_a_deletion_in_the_cloud(
    machine: type[SyncModel],
) -> None:
    """What the ctime rule is for: another program rewrites a synced file in place and sets its mtime back; the
    cloud deletes it meanwhile. Its hash (where there is one) differs from the synced one, so it is kept and
    uploaded; the model's sync() asserts no version was lost."""
    m = machine()
    try:
        m.write("local", "", "f0")
        m.sync()
        path = m._path("local", "f0")
        st = os.stat(path)
        with open(path, "r+b") as f:
            old = f.read()
            f.seek(0)
            f.write(bytes(reversed(old)))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.remove(m._path("cloud", "f0"))
        m.sync()
        assert m.synced.get("f0") == bytes(reversed(old))
    finally:
        m.teardown()


@pytest.mark.parametrize(("machine", "copies"), [(SyncModel, 1), (SyncModelListedHashes, 0)])
def test_a_chmod_beside_an_edit_in_the_cloud(machine: type[SyncModel], copies: int) -> None:
    """`chmod` moves only a ctime. With the cloud edited meanwhile, a hash proves the local file unchanged, so
    the cloud's version simply comes down; without one, both versions are kept (a conflict copy)."""
    m = machine()
    try:
        m.write("local", "", "f0")
        m.sync()
        os.chmod(m._path("local", "f0"), 0o600)
        m.write("cloud", "", "f0")
        m.sync()
        copy_names = [p for p in m.synced if "_Conflict_" in p]
        assert len(copy_names) == copies
        kept = [m.synced[p] for p in ["f0", *copy_names]]
        assert any(v.startswith(b"cloud:f0:") for v in kept)  # the cloud's edit, under the name or as the copy
    finally:
        m.teardown()


def test_a_rewrite_in_place_between_the_plan_and_the_deletion_is_not_deleted() -> None:
    """The plan proved f0 unchanged by its hash and decided to apply the cloud's deletion; before the deletion
    runs, another program rewrites f0 in place and restores size and mtime. Only the ctime tells: the deletion
    is conditional on it too, so f0 stays, and the next pass uploads the new content."""
    m = SyncModelListedHashes()
    try:
        m.write("local", "", "f0")
        m.write("local", "d0", "f0")  # the cloud keeps a file: no empty-side guard
        m.sync()
        path = m._path("local", "f0")
        os.chmod(path, 0o600)  # ctime moved: the plan has to prove f0 by its hash
        os.remove(m._path("cloud", "f0"))
        os.symlink("/nonexistent", m._path("local", "link"))  # skipped: logged after the plan, before any write
        rewritten = b"rewritten in place, same size!"[: os.path.getsize(path)].ljust(os.path.getsize(path), b"!")

        def meddle(event: object) -> None:
            if isinstance(event, LogRecord) and event.kind == "skipped" and event.path == "link":
                st = os.stat(path)
                with open(path, "r+b") as f:
                    f.write(rewritten)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

        first = run_pass(Home(m.home.path), "t", hostname="model", provider=m._cloud(), on_event=meddle)
        assert first.summary.get("skipped"), first
        with open(path, "rb") as f:
            assert f.read() == rewritten
        run_pass(Home(m.home.path), "t", hostname="model", provider=m._cloud())
        with open(m._path("cloud", "f0"), "rb") as f:
            assert f.read() == rewritten
    finally:
        m.teardown()
