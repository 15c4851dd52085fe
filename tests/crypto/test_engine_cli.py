"""Encryption through the console script: `task add --encrypt`, `connection export-key`, `decrypt`.

Every refusal is exit 2 and one line; the password and the private key never reach config.toml, stdout or
stderr; the exported key.zip opens what the task uploaded, without a connection.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable

import pytest

from engine import manage
from engine.config import Home
from engine.crypto import MAGIC
from engine.errors import UsageError

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
PASSWORD = "tr0ub4dor & 3"

Run = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def cli(tmp_path: pathlib.Path) -> Run:
    env = {**os.environ, "SKYSYNC_HOME": str(tmp_path / "home")}

    def run(*args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert "Traceback" not in p.stderr, p.stderr
        assert PASSWORD not in p.stdout + p.stderr
        assert "PRIVATE KEY" not in p.stdout + p.stderr
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    return run


def refused(cli: Run, *args: str, match: str) -> None:
    p = cli(*args, check=2)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert match.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def setup(cli: Run, tmp_path: pathlib.Path) -> pathlib.Path:
    for d in ("local", "local2", "local3", "cloud"):
        (tmp_path / d).mkdir()
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "wrong-pw").write_text("not " + PASSWORD + "\n")
    cli("connection", "add", "c", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    return tmp_path


def add_task(cli: Run, t: pathlib.Path, name: str, local: str, remote: str, *extra: str, check: int = 0):
    return cli(
        "task", "add", name, "--connection", "c", "--local", str(t / local), "--remote", remote,
        "--direction", "bidirectional", *extra, check=check,
    )  # fmt: skip


def test_encrypted_tasks_share_one_password_per_connection(cli: Run, setup: pathlib.Path) -> None:
    t = setup
    refused(cli, "task", "add", "e0", "--connection", "c", "--local", str(t / "local"), "--remote", "/e",
            "--direction", "upload", "--encrypt", match="--password-file")  # fmt: skip
    refused(cli, "task", "add", "e0", "--connection", "c", "--local", str(t / "local"), "--remote", "/e",
            "--direction", "upload", "--encrypt", "--password-file", str(t / "missing"),
            match="cannot read")  # fmt: skip
    assert json.loads(cli("task", "list", "--json").stdout) == []
    assert "encryption_password" not in json.loads(cli("connection", "show", "c", "--json").stdout)["secrets"]

    add_task(cli, t, "e1", "local", "/e1", "--encrypt", "--password-file", str(t / "pw"))
    shown = json.loads(cli("connection", "show", "c", "--json").stdout)
    assert {"encryption_password", "encryption_private_key", "encryption_public_key"} <= set(shown["secrets"])
    assert json.loads(cli("task", "show", "e1", "--json").stdout)["encrypt"] is True
    home = t / "home"
    assert PASSWORD not in (home / "config.toml").read_text()
    assert "PRIVATE KEY" not in (home / "config.toml").read_text()
    assert stat.S_IMODE((home / "secrets.toml").stat().st_mode) == 0o600
    key_before = Home(str(home)).secrets("c")["encryption_private_key"]

    # A second encrypted task of the same connection must give the same password; a wrong one adds nothing.
    refused(cli, "task", "add", "e2", "--connection", "c", "--local", str(t / "local2"), "--remote", "/e2",
            "--direction", "bidirectional", "--encrypt", "--password-file", str(t / "wrong-pw"),
            match="the encryption password does not match the one this connection already uses")  # fmt: skip
    assert [x["name"] for x in json.loads(cli("task", "list", "--json").stdout)] == ["e1"]
    add_task(cli, t, "e2", "local2", "/e2", "--encrypt", "--password-file", str(t / "pw"))
    assert Home(str(home)).secrets("c")["encryption_private_key"] == key_before  # one key per account

    # Encryption is chosen when a task is made, never later, and never turned off.
    add_task(cli, t, "plain", "local3", "/plain")
    refused(cli, "task", "edit", "plain", "--encrypt", "--password-file", str(t / "pw"),
            match="encryption can only be chosen when a task is created")  # fmt: skip
    with pytest.raises(UsageError, match="cannot be turned off"):
        manage.edit_task(Home(str(home)), "e1", {"encrypt": False})
    cli("task", "edit", "e1", "--exclude-ext", "tmp")  # other edits keep it encrypted
    assert json.loads(cli("task", "show", "e1", "--json").stdout)["encrypt"] is True
    assert json.loads(cli("task", "show", "plain", "--json").stdout)["encrypt"] is False


def synced_cloud(cli: Run, t: pathlib.Path) -> dict[str, bytes]:
    """An encrypted task synced once; returns the plain files it holds."""
    files = {"a.txt": b"alpha " * 1000, "sub/b.bin": os.urandom(70_000), "sub/empty": b""}
    for rel, data in files.items():
        (t / "local" / rel).parent.mkdir(parents=True, exist_ok=True)
        (t / "local" / rel).write_bytes(data)
    add_task(cli, t, "e1", "local", "/docs", "--encrypt", "--password-file", str(t / "pw"))
    p = cli("sync", "e1", "--json")
    assert json.loads(p.stdout)["tasks"][0]["summary"].get("uploaded") == 3
    for rel in files:
        assert (t / "cloud" / "docs" / rel).read_bytes().startswith(MAGIC)
    assert (t / "cloud" / "@SynologyCloudSync").is_dir()
    return files


def tree(root: pathlib.Path) -> dict[str, bytes]:
    return {
        pathlib.Path(d, n).relative_to(root).as_posix(): pathlib.Path(d, n).read_bytes()
        for d, _, names in os.walk(root)
        for n in names
    }


def test_export_key_writes_a_synology_key_zip(cli: Run, setup: pathlib.Path) -> None:
    t = setup
    refused(cli, "connection", "export-key", "c", "--out", str(t / "key.zip"), match="no encryption key")
    assert not (t / "key.zip").exists()
    files = synced_cloud(cli, t)

    cli("connection", "export-key", "c", "--out", str(t / "key.zip"))
    assert stat.S_IMODE((t / "key.zip").stat().st_mode) == 0o600
    with zipfile.ZipFile(t / "key.zip") as zf:
        assert sorted(zf.namelist()) == ["private.pem", "public.pem"]
        private = zf.read("private.pem")
        public = zf.read("public.pem")
    secrets = Home(str(t / "home")).secrets("c")
    assert private.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert public.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert public.decode() == secrets["encryption_public_key"]

    # The private.pem from the zip opens what the task uploaded, with no connection and no password.
    (t / "private.pem").write_bytes(private)
    out = t / "by-key"
    p = cli("decrypt", "--private-key", str(t / "private.pem"), str(t / "cloud" / "docs"), "--out", str(out))
    assert "decrypted 3 files" in p.stdout
    assert tree(out / "docs") == files


def test_decrypt_takes_the_key_zip_itself(cli: Run, setup: pathlib.Path) -> None:
    t = setup
    files = synced_cloud(cli, t)
    cli("connection", "export-key", "c", "--out", str(t / "key.zip"))
    out = t / "by-zip"
    cli("decrypt", "--private-key", str(t / "key.zip"), str(t / "cloud" / "docs"), "--out", str(out))
    assert tree(out / "docs") == files


def test_decrypt_by_password_and_a_wrong_password(cli: Run, setup: pathlib.Path) -> None:
    t = setup
    files = synced_cloud(cli, t)
    out = t / "by-password"
    cli("decrypt", "--password-file", str(t / "pw"), str(t / "cloud"), "--out", str(out))
    assert tree(out / "cloud") == {f"docs/{k}": v for k, v in files.items()}  # @SynologyCloudSync skipped

    wrong = t / "wrong-out"
    p = cli("decrypt", "--password-file", str(t / "wrong-pw"), str(t / "cloud" / "docs" / "a.txt"),
            "--out", str(wrong), check=1)  # fmt: skip
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "wrong password" in lines[0], p.stderr
    assert list(wrong.iterdir()) == []  # nothing under the destination name, no temporary file


def test_a_lost_key_stops_the_pass_before_anything_moves(cli: Run, setup: pathlib.Path) -> None:
    t = setup
    synced_cloud(cli, t)
    home = Home(str(t / "home"))
    home.put_connection(home.connection("c"), {})  # secrets.toml lost its encryption entries
    home.save()
    (t / "local" / "new.txt").write_text("must not go up in plain text")
    refused(cli, "sync", "e1", match="encryption key is missing from the secrets store")
    assert not (t / "cloud" / "docs" / "new.txt").exists()
