"""A tree that people live in and a cloud others write to, through the real console script (issue 21):
same-tick swaps, a folder renamed with most of the files, another client writing while skysync downloads."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


class Cli:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.local, self.cloud = tmp / "local", tmp / "cloud"
        self.local.mkdir()
        self.cloud.mkdir()
        self.env = {**os.environ, "SKYSYNC_HOME": str(tmp / "home")}
        self("connection", "add", "c", "--provider", "local", "--option", f"root={self.cloud}")
        self("task", "add", "t", "--connection", "c", "--local", str(self.local), "--remote", "/",
             "--direction", "bidirectional")

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr, p.stderr
        assert p.returncode == code, (args, p.stdout, p.stderr)
        return p

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([SKYSYNC, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


def tree(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cli(tmp_path: pathlib.Path) -> Cli:
    return Cli(tmp_path)


def test_two_files_swapped_in_one_clock_tick(cli: Cli) -> None:
    """Found 7: a -> tmp, b -> a, tmp -> b with one size and one mtime left both sides different for good."""
    for name, data in (("a.txt", b"AAAA"), ("b.txt", b"BBBB")):
        (cli.local / name).write_bytes(data)
        os.utime(cli.local / name, (1_700_000_000, 1_700_000_000))
    cli("sync", "t")
    os.rename(cli.local / "a.txt", cli.local / "tmp")
    os.rename(cli.local / "b.txt", cli.local / "a.txt")
    os.rename(cli.local / "tmp", cli.local / "b.txt")
    cli("sync", "t")
    assert tree(cli.cloud) == {"a.txt": b"BBBB", "b.txt": b"AAAA"}
    assert "nothing to do" in cli("sync", "t").stdout


def test_renaming_the_folder_that_holds_most_files_needs_no_force(cli: Cli) -> None:
    """Found 8: such a rename tripped the mass-delete guard, which then held back every change of the task."""
    for i in range(30):
        (cli.local / "photos").mkdir(exist_ok=True)
        (cli.local / "photos" / f"p{i:02}.jpg").write_bytes(b"jpeg %d" % i)
    (cli.local / "notes.txt").write_text("n")
    cli("sync", "t")
    os.rename(cli.local / "photos", cli.local / "Photos 2026")
    (cli.local / "new.txt").write_text("made in the same minute")
    out = cli("sync", "t").stdout
    assert tree(cli.cloud) == tree(cli.local)
    assert "moved" in out or "move" in out, out
    assert not (cli.cloud / "photos").exists()


def test_another_client_rewrites_a_file_while_it_downloads(cli: Cli) -> None:
    """Found 1, the download side: whatever the cloud holds at the end reaches the local side whole; a copy
    read while it was rewritten in place is never kept."""
    cli("connection", "edit", "c", "--option", "download_limit=1024")
    first = os.urandom(3 << 20)
    (cli.cloud / "movie.bin").write_bytes(first)
    proc = cli.popen("sync", "t")
    time.sleep(1.0)
    with open(cli.cloud / "movie.bin", "r+b") as f:  # rewritten in place, as some tools do
        f.truncate(0)
        f.write(b"the other client's version")
    proc.communicate(timeout=60)
    assert proc.returncode in (0, 1)
    cli("connection", "edit", "c", "--option", "download_limit=0")
    cli("sync", "t")
    assert (cli.local / "movie.bin").read_bytes() == b"the other client's version"
    assert not any(n.startswith(".skysync-tmp-") for n in os.listdir(cli.local))
    copies = [n for n in os.listdir(cli.local) if "_Conflict_" in n]
    assert all((cli.local / n).read_bytes() in (first, b"the other client's version") for n in copies)
