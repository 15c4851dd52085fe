"""The benchmarks' --workdir: a folder that does not exist yet is created, one that cannot be is a one-line error."""

from __future__ import annotations

import os

import pytest

from bench.sync_bench import sandbox


def test_a_missing_workdir_is_created(tmp_path) -> None:
    work = sandbox("b-", str(tmp_path / "new" / "deeper"))
    assert os.path.isdir(work) and os.path.dirname(work) == str(tmp_path / "new" / "deeper")


def test_a_workdir_that_cannot_hold_a_folder_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        sandbox("b-", str(blocker / "below"))
    message = str(exc.value.code)
    assert "--workdir" in message and "\n" not in message and "Traceback" not in message
