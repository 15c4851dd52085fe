"""A task removed while its pass still runs: the pass goes on writing rows under the task's id after the removal
forgot its state. A task added again under the same name must never read those rows as its own (they would make
every file of its new folder that the old one had look deleted)."""

from __future__ import annotations

import pathlib

from engine.state import StateDB, StateRow


def test_a_task_added_again_never_gets_the_id_of_rows_left_behind(tmp_path: pathlib.Path) -> None:
    db = StateDB(str(tmp_path / "state.db"))
    old = db.task_id("t")
    db.forget_task("t")
    # The removed task's pass, still running, records a file and its pairing after the removal.
    db.put(old, StateRow("doc.txt", False, 5, 1, 5, "r1", 1.0, None, None))
    db.set_pairing(old, "the old pairing", None, forget=False)
    new = db.task_id("t")
    assert new != old
    assert db.pairing(new) is None and list(db.rows(new)) == []
    assert db.task_id("t") == new  # stable from then on
