"""A cloud folder other computers write to (issue 21): conflict copy names that never collide across computers,
entries gone between the listing and the transfer."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import BinaryIO

from engine import manage
from engine.config import Home, Task
from engine.providers.base import RemoteEntry
from engine.providers.local import LocalProvider
from engine.sync import computer_name, run_pass

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
FIXED = 1_800_000_000.0  # both computers sync "in the same second"


def _home(tmp: pathlib.Path, name: str, cloud: pathlib.Path) -> tuple[Home, pathlib.Path]:
    home = Home(str(tmp / f"home-{name}"))
    local = tmp / f"local-{name}"
    local.mkdir()
    manage.add_connection(home, "c", "local", {"root": str(cloud)})
    manage.add_task(home, Task("t", "c", str(local), "/"))
    home.save()
    return home, local


def _sync(home: Home) -> None:
    result = run_pass(Home(home.path), "t", hostname="nas", clock=lambda: FIXED)
    assert result.exit_code == 0, result.as_dict()


def test_two_computers_with_one_host_name_never_overwrite_each_others_copy(tmp_path: pathlib.Path) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    (cloud / "f.txt").write_text("v0")
    a, local_a = _home(tmp_path, "a", cloud)
    b, local_b = _home(tmp_path, "b", cloud)
    _sync(a)
    _sync(b)
    (local_a / "f.txt").write_text("edited on A")
    (local_b / "f.txt").write_text("edited on B")
    (cloud / "f.txt").write_text("edited in the cloud")
    _sync(a)  # cloud: f = A's edit, a copy of the cloud's edit
    _sync(b)  # B's edit wins f; A's edit becomes a copy: its name must not be the one A just used
    versions = {p.read_text() for p in cloud.iterdir()}
    assert {"edited on A", "edited on B", "edited in the cloud"} <= versions, versions


def test_conflict_names_carry_a_stable_computer_id(tmp_path: pathlib.Path) -> None:
    home = Home(str(tmp_path / "home"))
    first = computer_name(home)
    assert re.fullmatch(r"[^_]+-[0-9a-f]{6}", first), first
    assert computer_name(Home(home.path)) == first
    other = computer_name(Home(str(tmp_path / "other")))
    assert other != first and other.rsplit("-", 1)[0] == first.rsplit("-", 1)[0]


def test_conflict_copy_name_through_the_console_script(tmp_path: pathlib.Path) -> None:
    cloud, local = tmp_path / "cloud", tmp_path / "local"
    cloud.mkdir()
    local.mkdir()
    env = {**os.environ, "SKYSYNC_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> None:
        p = subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr

    cli("connection", "add", "c", "--provider", "local", "--option", f"root={cloud}")
    cli("task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/", "--direction",
        "bidirectional")
    (local / "f.txt").write_text("local")
    (cloud / "f.txt").write_text("cloud!")
    cli("sync", "t")
    cid = (tmp_path / "home" / "computer-id").read_text().strip()
    copies = [n for n in os.listdir(cloud) if "_Conflict_" in n]
    assert len(copies) == 1 and f"-{cid}_Conflict_" in copies[0], copies


class Vanishing(LocalProvider):
    """Deletes a file from the cloud right after listing it, as another client would."""

    victim = "gone.txt"

    def list_reporting(self, folder: str, on_skip) -> Iterator[RemoteEntry]:
        yield from super().list_reporting(folder, on_skip)
        os.unlink(os.path.join(self.tree.root, self.victim))

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        return super().download(path, out)


def test_a_remote_file_gone_before_its_download_is_gone_not_failed(tmp_path: pathlib.Path) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    (cloud / "gone.txt").write_text("soon deleted")
    (cloud / "stays.txt").write_text("stays")
    home, local = _home(tmp_path, "a", cloud)
    result = run_pass(Home(home.path), "t", provider=Vanishing({"root": str(cloud)}), hostname="nas")
    assert result.exit_code == 0, result.as_dict()
    assert (local / "stays.txt").read_text() == "stays"
    assert not (local / "gone.txt").exists()
    again = run_pass(Home(home.path), "t", hostname="nas")
    assert again.exit_code == 0 and not (local / "gone.txt").exists()


def test_a_local_file_renamed_during_the_pass_is_not_a_failure(tmp_path: pathlib.Path) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    home, local = _home(tmp_path, "a", cloud)
    (local / "draft.txt").write_text("draft")

    class RenameFirst(LocalProvider):
        def upload(self, path, src, size, mtime, **kw):
            if path == "draft.txt" and (local / "draft.txt").exists():
                os.rename(local / "draft.txt", local / "final.txt")
                raise FileNotFoundError(2, "No such file or directory", str(local / "draft.txt"))
            return super().upload(path, src, size, mtime, **kw)

    result = run_pass(Home(home.path), "t", provider=RenameFirst({"root": str(cloud)}), hostname="nas")
    assert result.exit_code == 0, result.as_dict()
    run_pass(Home(home.path), "t", hostname="nas")
    assert (cloud / "final.txt").read_text() == "draft" and not (cloud / "draft.txt").exists()
