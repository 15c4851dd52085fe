"""A `local` connection whose folder holds the task's local folder, or lies inside it: each pass would copy the
tree into itself once more (found by a hostile probe: R/inner/inner/inner/...). Refused when the task is made,
and before any pass when the configuration comes to say so later (edited by hand, the connection re-pointed)."""

from __future__ import annotations

import os
import pathlib

import pytest

from engine import manage
from engine.cli import main
from engine.config import Home, Task
from engine.errors import UsageError
from engine.sync import run_pass


@pytest.fixture
def folders(tmp_path: pathlib.Path) -> tuple[Home, pathlib.Path]:
    root = tmp_path / "cloud"
    (root / "inner").mkdir(parents=True)
    (root / "inner" / "a.txt").write_text("a")
    home = Home(str(tmp_path / "home"))
    manage.add_connection(home, "c", "local", {"root": str(root)})
    home.save()
    return home, root


@pytest.mark.parametrize("local, remote", [("inner", "/"), (".", "/inner"), ("inner", "/inner/deeper")])
def test_a_task_whose_folders_overlap_is_refused(folders, local, remote, capsys):
    home, root = folders
    local_path = os.path.normpath(root / local)
    code = main(["--home", home.path, "task", "add", "t", "--connection", "c", "--local", local_path,
                 "--remote", remote, "--direction", "bidirectional"])
    err = capsys.readouterr().err
    assert code == 2 and "overlap" in err and len(err.strip().splitlines()) == 1
    assert not Home(home.path).has_task("t")


def test_folders_apart_are_fine(folders, tmp_path):
    home, _ = folders
    (tmp_path / "local").mkdir()
    manage.add_task(home, Task("t", "c", str(tmp_path / "local"), "/inner"))
    home.save()
    assert run_pass(Home(home.path), "t").exit_code == 0
    assert (tmp_path / "local" / "a.txt").read_text() == "a"


def test_a_connection_re_pointed_into_the_task_folder_stops_the_pass(folders, tmp_path):
    home, root = folders
    local = tmp_path / "local"
    local.mkdir()
    (local / "b.txt").write_text("b")
    manage.add_task(home, Task("t", "c", str(local), "/"))
    home.save()
    assert run_pass(Home(home.path), "t").exit_code == 0
    text = pathlib.Path(home.config_path).read_text().replace(f'"{root}"', f'"{local / "sub"}"')
    pathlib.Path(home.config_path).write_text(text)  # by hand: the connection's folder now inside the task's
    (local / "sub").mkdir()
    with pytest.raises(UsageError, match="overlap"):
        run_pass(Home(home.path), "t")
    assert sorted(p.name for p in local.rglob("*")) == ["a.txt", "b.txt", "inner", "sub"]  # nothing nested
