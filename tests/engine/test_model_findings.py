"""Failures the model test (tests/engine/test_model.py) found, shrunk by hand to fixed sequences of its steps.

Each test replays one sequence on the model's own state machine, so it checks the engine and the model's
bookkeeping together, deterministically and in a second or two.
"""

from __future__ import annotations

import sqlite3

import pytest

from engine.config import Home

from .test_model import SyncModel, SyncModelRevisions, SyncModelScoped


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
