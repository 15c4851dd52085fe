"""The reconcile as a table: every (local, remote) status for files and folders, in every direction.

The expected outcomes are written out here from the product's rules, independently of the module's tables:
two-way keeps every version and lets deletions win only over unchanged copies; one-way moves only the
source side's changes and never changes the source.
"""

from __future__ import annotations

import pytest

from engine.localfs import LocalEntry
from engine.policy import PathPolicy
from engine.providers.base import RemoteEntry
from engine.reconcile import plan
from engine.state import StateRow

P = "f"
STATE_FILE = StateRow(P, False, 10, 1_000, 10, "r1", 1.0, None, None)
STATE_DIR = StateRow(P, True, None, None, None, None, None, None, None)
LOCAL = {"same": LocalEntry(P, False, 10, 1_000), "changed": LocalEntry(P, False, 11, 2_000)}
REMOTE = {"same": RemoteEntry(P, False, 10, 1.0, None, "r1"), "changed": RemoteEntry(P, False, 12, 3.0, None, "r2")}

# (local status, remote status) -> expected action per direction; None means "nothing happens".
# unchanged/changed/deleted need a previous sync (a state row); new/absent mean there is none.
FILE_CASES = {
    ("unchanged", "unchanged"): (None, None, None),
    ("unchanged", "changed"): ("download", "record", "download"),
    ("unchanged", "deleted"): ("delete-local", "upload", "delete-local"),
    ("changed", "unchanged"): ("upload", "upload", "record"),
    ("changed", "changed"): ("compare", "compare", "compare"),
    ("changed", "deleted"): ("upload", "upload", "forget"),
    ("deleted", "unchanged"): ("delete-remote", "delete-remote", "download"),
    ("deleted", "changed"): ("download", "forget", "download"),
    ("deleted", "deleted"): ("forget", "forget", "forget"),
    ("new", "absent"): ("upload", "upload", None),
    ("absent", "new"): ("download", None, "download"),
    ("new", "new"): ("compare", "compare", "compare"),
}
DIRECTIONS = ("bidirectional", "upload", "download")


def _entries(ls: str, rs: str, is_dir: bool):
    state = None
    if ls in ("unchanged", "changed", "deleted"):
        state = STATE_DIR if is_dir else STATE_FILE
    if is_dir:
        local = LocalEntry(P, True, 0, 0) if ls in ("unchanged", "new") else None
        remote = RemoteEntry(P, True) if rs in ("unchanged", "new") else None
    else:
        local = {"unchanged": LOCAL["same"], "changed": LOCAL["changed"], "new": LOCAL["changed"]}.get(ls)
        remote = {"unchanged": REMOTE["same"], "changed": REMOTE["changed"], "new": REMOTE["changed"]}.get(rs)
    return state, local, remote


def _kinds(state, local, remote, direction, no_delete=False):
    p = plan(
        [state] if state else [],
        [local] if local else [],
        [(P, remote)] if remote else [],
        direction,
        PathPolicy("local"),
        no_delete=no_delete,
    )
    return [a.kind for a in p.actions]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", list(FILE_CASES), ids=lambda c: f"{c[0]}-{c[1]}")
def test_files(case, direction):
    expected = FILE_CASES[case][DIRECTIONS.index(direction)]
    state, local, remote = _entries(*case, is_dir=False)
    assert _kinds(state, local, remote, direction) == ([expected] if expected else [])


# Folders have no content to change; "changed" for a folder is a change of type, tested below.
DIR_CASES = {
    ("unchanged", "unchanged"): (None, None, None),
    ("unchanged", "deleted"): ("delete-local", "upload", "delete-local"),
    ("deleted", "unchanged"): ("delete-remote", "delete-remote", "download"),
    ("deleted", "deleted"): ("forget", "forget", "forget"),
    ("new", "absent"): ("upload", "upload", None),
    ("absent", "new"): ("download", None, "download"),
    ("new", "new"): ("compare", "compare", "compare"),
}


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", list(DIR_CASES), ids=lambda c: f"{c[0]}-{c[1]}")
def test_folders(case, direction):
    expected = DIR_CASES[case][DIRECTIONS.index(direction)]
    state, local, remote = _entries(*case, is_dir=True)
    assert _kinds(state, local, remote, direction) == ([expected] if expected else [])


@pytest.mark.parametrize("direction", ("upload", "download"))
def test_no_delete_keeps_the_destination_copy(direction):
    if direction == "upload":
        state, local, remote = STATE_FILE, None, REMOTE["same"]
    else:
        state, local, remote = STATE_FILE, LOCAL["same"], None
    assert _kinds(state, local, remote, direction, no_delete=True) == ["forget"]


def test_type_change_file_to_folder_locally_replaces_the_remote_file():
    kinds = _kinds(STATE_FILE, LocalEntry(P, True, 0, 0), REMOTE["same"], "bidirectional")
    assert kinds == ["upload"]


def test_first_pass_with_both_sides_full_compares_instead_of_copying():
    names = [f"d/{i}" for i in range(5)]
    local = [LocalEntry("d", True, 0, 0)] + [LocalEntry(n, False, 1, 1) for n in names]
    remote = [("d", RemoteEntry("d", True))] + [(n, RemoteEntry(n, False, 1, 1.0, None, "x")) for n in names]
    p = plan([], local, remote, "bidirectional", PathPolicy("local"))
    assert {a.kind for a in p.actions} == {"compare"}


def test_folder_deleted_locally_is_kept_when_a_file_inside_changed_remotely():
    state = [StateRow("d", True, None, None, None, None, None, None, None),
             StateRow("d/a", False, 1, 1, 1, "r", 1.0, None, None),
             StateRow("d/b", False, 1, 1, 1, "r", 1.0, None, None)]
    remote = [("d", RemoteEntry("d", True)), ("d/a", RemoteEntry("d/a", False, 1, 1.0, None, "r")),
              ("d/b", RemoteEntry("d/b", False, 5, 2.0, None, "r2"))]
    p = plan(state, [], remote, "bidirectional", PathPolicy("local"))
    kinds = {(a.kind, a.path) for a in p.actions}
    assert ("download", "d/b") in kinds and ("delete-remote", "d/a") in kinds
    assert ("delete-remote", "d") not in kinds  # the folder survives: it still holds a changed file


def test_folder_deleted_locally_goes_remotely_after_its_files():
    state = [StateRow("d", True, None, None, None, None, None, None, None),
             StateRow("d/a", False, 1, 1, 1, "r", 1.0, None, None)]
    remote = [("d", RemoteEntry("d", True)), ("d/a", RemoteEntry("d/a", False, 1, 1.0, None, "r"))]
    p = plan(state, [], remote, "bidirectional", PathPolicy("local"))
    assert [(a.kind, a.path) for a in p.actions] == [("delete-remote", "d/a"), ("delete-remote", "d")]


def test_folder_replaced_by_a_file_becomes_a_type_conflict_when_a_file_inside_changed_remotely():
    state = [StateRow("d", True, None, None, None, None, None, None, None),
             StateRow("d/a", False, 1, 1, 1, "r", 1.0, None, None),
             StateRow("d/b", False, 1, 1, 1, "r", 1.0, None, None)]
    local = [LocalEntry("d", False, 3, 3)]
    remote = [("d", RemoteEntry("d", True)), ("d/a", RemoteEntry("d/a", False, 1, 1.0, None, "r")),
              ("d/b", RemoteEntry("d/b", False, 5, 2.0, None, "r2"))]
    p = plan(state, local, remote, "bidirectional", PathPolicy("local"))
    assert [(a.kind, a.path) for a in p.actions] == [
        ("delete-remote", "d/a"), ("download", "d/b"), ("compare", "d")  # the folder stays, the file moves aside
    ]


def test_folder_replaced_by_a_file_replaces_it_when_nothing_inside_changed():
    state = [StateRow("d", True, None, None, None, None, None, None, None),
             StateRow("d/a", False, 1, 1, 1, "r", 1.0, None, None)]
    local = [LocalEntry("d", False, 3, 3)]
    remote = [("d", RemoteEntry("d", True)), ("d/a", RemoteEntry("d/a", False, 1, 1.0, None, "r"))]
    p = plan(state, local, remote, "bidirectional", PathPolicy("local"))
    assert [(a.kind, a.path) for a in p.actions] == [("delete-remote", "d/a"), ("upload", "d")]


def test_unreadable_local_folder_is_never_treated_as_deleted():
    state = [StateRow("d", True, None, None, None, None, None, None, None),
             StateRow("d/a", False, 1, 1, 1, "r", 1.0, None, None)]
    remote = [("d", RemoteEntry("d", True)), ("d/a", RemoteEntry("d/a", False, 1, 1.0, None, "r"))]
    p = plan(state, [LocalEntry("d", True, 0, 0)], remote, "bidirectional", PathPolicy("local"),
             frozen=lambda path: path.startswith("d/"))
    assert p.actions == []


def test_out_of_order_listing_is_detected():
    from engine.reconcile import OrderViolation

    remote = [("b", RemoteEntry("b", False, 1, 1.0)), ("a", RemoteEntry("a", False, 1, 1.0))]
    with pytest.raises(OrderViolation):
        plan([], [], remote, "bidirectional", PathPolicy("local"))
