"""What the drives' end-to-end tests share (test_{gdrive,dropbox,onedrive,box,yandex,baidu}_e2e.py): a home, a
local folder and the console script (`skysync`) run on them, with the connection and a two-way task between the
local folder and the drive's /Sync added as a user does. Each test module adds its fake service and how it reads
and changes the drive behind the engine's back."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[2]
SKYSYNC = str(pathlib.Path(sys.executable).with_name("skysync"))
MTIME = 1_700_000_000.0  # the time files are given on the drive; local edits are 100 s later


@dataclass
class DriveEnv:
    home: pathlib.Path
    local: pathlib.Path

    def cli(self, *args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`skysync --home HOME ARGS...` (its exit code 0 unless `ok=False`); `stdin` is piped to it."""
        done = subprocess.run(
            [SKYSYNC, "--home", str(self.home), *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
            input=stdin, env={**os.environ, "SKYSYNC_HOSTNAME": "testhost"},
        )  # fmt: skip
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def add_task(self, kind: str, connection: str, options: Mapping[str, str], piped: tuple[str, str] | None = None,
                 ) -> None:  # fmt: skip
        """Connection `connection` of `kind` with `options` (each an `--option KEY=VALUE`; `piped`: one more given
        as `KEY=-` on standard input, as `rclone authorize ... | skysync connection add` does with the token),
        then task `t`: the local folder and the drive's /Sync, both ways."""
        args = [arg for key, value in options.items() for arg in ("--option", f"{key}={value}")]
        stdin = None
        if piped is not None:
            args += ["--option", f"{piped[0]}=-"]
            stdin = piped[1] + "\n"
        self.cli("connection", "add", connection, "--provider", kind, *args, stdin=stdin)
        self.cli("task", "add", "t", "--connection", connection, "--local", str(self.local), "--remote", "/Sync",
                 "--direction", "bidirectional")  # fmt: skip

    def sync(self, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cli("sync", "t", ok=ok)

    def summary(self) -> dict[str, int]:
        """What one more pass of task t did (empty: nothing)."""
        return json.loads(self.cli("sync", "t", "--json").stdout)["tasks"][0]["summary"]

    def local_files(self) -> dict[str, bytes]:
        return {p.relative_to(self.local).as_posix(): p.read_bytes() for p in self.local.rglob("*") if p.is_file()}

    def write(self, path: str, data: bytes, mtime: float = MTIME + 100) -> None:
        target = self.local / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (mtime, mtime))


def new_local(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(home, local folder) under a test's tmp_path; the local folder exists, the home is made by the CLI."""
    local = tmp_path / "local"
    local.mkdir()
    return tmp_path / "home", local


def assert_one_conflict_copy(env: DriveEnv, remote: Mapping[str, bytes], local_edit: bytes, remote_edit: bytes,
                             name: str = "docs/both.txt") -> None:  # fmt: skip
    """After `name` changed on both sides and a pass: the local version keeps the name, the drive's became the
    one conflict copy, and the drive (`remote`, its files under /Sync) holds what the local folder holds."""
    local = env.local_files()
    assert local[name] == local_edit
    copies = [p for p in local if "_Conflict_" in p]
    assert len(copies) == 1 and local[copies[0]] == remote_edit
    assert remote == local
