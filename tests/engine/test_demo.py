"""The demo home of `make demo`: built once, then opened as it was left."""

from __future__ import annotations

import os
from pathlib import Path

from engine.demo import prepare


def test_the_demo_is_built_with_its_first_pass_run(tmp_path: Path) -> None:
    home = prepare(str(tmp_path / "demo"))
    assert os.path.isfile(os.path.join(home, "config.toml"))
    cloud, local = tmp_path / "demo/cloud", tmp_path / "demo/My files"
    assert (cloud / "Documents/notes.txt").is_file() and (local / "From the cloud/welcome.txt").is_file()
    assert not (cloud / ".DS_Store").exists()  # the rules keep system files out


def test_running_it_again_keeps_what_was_tried_in_it(tmp_path: Path) -> None:
    home = prepare(str(tmp_path / "demo"))
    mine = tmp_path / "demo/My files/my own file.txt"
    mine.write_text("tried the demo with a file of mine")
    database = os.stat(os.path.join(home, "state.db"))
    assert prepare(str(tmp_path / "demo")) == home
    assert mine.read_text() == "tried the demo with a file of mine"
    assert os.stat(os.path.join(home, "state.db")).st_ino == database.st_ino  # the home was not rebuilt under an app


def test_a_build_cut_short_is_finished(tmp_path: Path) -> None:
    (tmp_path / "demo/home").mkdir(parents=True)  # killed before the configuration was written
    home = prepare(str(tmp_path / "demo"))
    assert os.path.isfile(os.path.join(home, "config.toml"))
