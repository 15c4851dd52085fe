"""Case-only renames on a case-insensitive service (engine.case_names): which side follows which spelling, as a
table, and the renames themselves: a local rename never replaces anything, the state rows follow, a refusal
changes nothing. (Through a whole pass against Dropbox: tests/providers/test_dropbox_e2e.py.)"""

from __future__ import annotations

import os
import pathlib

import pytest

from engine.case_names import CaseDiff, CaseMatch, apply_case_renames, case_renames
from engine.localfs import LocalTree
from engine.providers.base import Capabilities, HashKind, MtimeMode, ProviderError, RemoteEntry
from engine.state import StateDB, StateRow


def diff(local: str, remote: str, is_dir: bool = False) -> CaseDiff:
    return CaseDiff(local, remote, is_dir, RemoteEntry(remote, is_dir, 1, revision="r1"))


def plan_for(d: CaseDiff, state: set[str], direction: str = "bidirectional") -> list[tuple[str, str, str]]:
    return [(r.side, r.old, r.new) for r in case_renames([d], state.__contains__, direction)]


@pytest.mark.parametrize(
    ("state", "direction", "expected"),
    [
        # Renamed in the cloud since the last pass (the state has the local spelling): renamed here.
        ({"A/Remote.TXT"}, "bidirectional", [("local", "A/Remote.TXT", "A/remote.txt")]),
        ({"A/Remote.TXT"}, "download", [("local", "A/Remote.TXT", "A/remote.txt")]),
        ({"A/Remote.TXT"}, "upload", []),  # the cloud never changes local files of an upload-only task
        # Renamed here (the state has the cloud's spelling): moved in the cloud.
        ({"A/remote.txt"}, "bidirectional", [("remote", "a/remote.txt", "a/Remote.TXT")]),
        ({"A/remote.txt"}, "upload", [("remote", "a/remote.txt", "a/Remote.TXT")]),
        ({"A/remote.txt"}, "download", []),  # a download-only task never changes the cloud
        # Renamed on both sides, or never synced: one spelling is kept, the source's for a one-way task.
        (set(), "bidirectional", [("remote", "a/remote.txt", "a/Remote.TXT")]),
        ({"A/REMOTE.txt"}, "upload", [("remote", "a/remote.txt", "a/Remote.TXT")]),
        (set(), "download", [("local", "A/Remote.TXT", "A/remote.txt")]),
    ],
)
def test_which_side_follows(state: set[str], direction: str, expected: list[tuple[str, str, str]]) -> None:
    # Local "A/Remote.TXT"; the cloud spells the folder "a" (a diff of its own) and the file "remote.txt".
    assert plan_for(diff("A/Remote.TXT", "a/remote.txt"), state, direction) == expected


def test_deepest_first_so_each_rename_changes_only_a_last_name() -> None:
    renames = case_renames([diff("Docs", "docs", True), diff("Docs/A.txt", "docs/a.txt")],
                           {"Docs", "Docs/A.txt"}.__contains__, "bidirectional")  # fmt: skip
    assert [(r.old, r.new) for r in renames] == [("Docs/A.txt", "Docs/a.txt"), ("Docs", "docs")]


@pytest.fixture
def db(tmp_path: pathlib.Path) -> StateDB:
    return StateDB(str(tmp_path / "state.db"))


def row(path: str, is_dir: bool = False) -> StateRow:
    return StateRow(path, is_dir, 1, 1, 1, "r1", 1.0, "h", None)


class MovingProvider:
    kind = "fake"
    capabilities = Capabilities(HashKind.NONE, MtimeMode.NATIVE, server_side_move=True, case_insensitive=True)

    def __init__(self, refuse: bool = False) -> None:
        self.moves: list[tuple[str, str]] = []
        self.refuse = refuse

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        if self.refuse:
            raise ProviderError("refused")
        self.moves.append((src, dst))
        return RemoteEntry(dst, False)


def test_a_folder_renamed_in_the_cloud_is_renamed_here_with_its_state_rows(tmp_path: pathlib.Path, db: StateDB) -> None:
    local = tmp_path / "local"
    (local / "Docs" / "sub").mkdir(parents=True)
    (local / "Docs" / "sub" / "a.txt").write_bytes(b"a")
    task = db.task_id("t")
    db.put_many(task, [row("Docs", True), row("Docs/sub", True), row("Docs/sub/a.txt"), row("Docsx.txt")])
    lines: list[tuple[str, str, str]] = []
    renames = case_renames([diff("Docs", "docs", True)], {"Docs"}.__contains__, "bidirectional")
    assert apply_case_renames(renames, LocalTree(str(local)), MovingProvider(), "root", db, task,
                              lambda *line: lines.append(line)) == 1  # type: ignore[arg-type]  # fmt: skip
    assert (local / "docs" / "sub" / "a.txt").read_bytes() == b"a" and not (local / "Docs").exists()
    assert sorted(r.path for r in db.rows(task)) == ["Docsx.txt", "docs", "docs/sub", "docs/sub/a.txt"]
    assert lines == [("moved-local", "docs", "from Docs (renamed by case in the cloud)")]


def test_a_file_made_at_the_new_spelling_is_never_replaced(tmp_path: pathlib.Path, db: StateDB) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "Report.txt").write_bytes(b"synced")
    (local / "report.txt").write_bytes(b"made since the scan")
    task = db.task_id("t")
    db.put(task, row("Report.txt"))
    lines: list[tuple[str, str, str]] = []
    renames = case_renames([diff("Report.txt", "report.txt")], {"Report.txt"}.__contains__, "bidirectional")
    assert apply_case_renames(renames, LocalTree(str(local)), MovingProvider(), "", db, task,
                              lambda *line: lines.append(line)) == 0  # type: ignore[arg-type]  # fmt: skip
    assert (local / "Report.txt").read_bytes() == b"synced"
    assert (local / "report.txt").read_bytes() == b"made since the scan"
    assert [r.path for r in db.rows(task)] == ["Report.txt"]
    assert lines[0][0] == "error" and "in the way" in lines[0][2]


def test_a_move_the_service_refuses_changes_no_state(tmp_path: pathlib.Path, db: StateDB) -> None:
    task = db.task_id("t")
    db.put(task, row("notes.txt"))
    renames = case_renames([diff("NOTES.txt", "notes.txt")], {"notes.txt"}.__contains__, "bidirectional")
    for provider, done, path in ((MovingProvider(refuse=True), 0, "notes.txt"), (MovingProvider(), 1, "NOTES.txt")):
        assert apply_case_renames(renames, LocalTree(str(tmp_path)), provider, "root", db, task,  # type: ignore[arg-type]
                                  lambda *line: None) == done  # fmt: skip
        assert [r.path for r in db.rows(task)] == [path]
    assert provider.moves == [("root/notes.txt", "root/NOTES.txt")]


def test_names_with_local_case_twins_are_left_to_the_twins_rule(tmp_path: pathlib.Path) -> None:
    for name in ("Readme.md", "README.md", "Other.txt"):
        (tmp_path / name).write_bytes(b"x")
    match = CaseMatch(LocalTree(str(tmp_path)))
    pairs = [(p, RemoteEntry(p, False)) for p in ("other.txt", "readme.md")]
    assert [p for p, _ in match.remote(iter(pairs), lambda path, why: None)] == ["Other.txt", "README.md"]
    assert [(d.local, d.remote) for d in match.diffs] == [("Other.txt", "other.txt")]
    assert os.path.exists(tmp_path / "Readme.md")
