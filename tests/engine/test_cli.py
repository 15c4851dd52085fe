"""The console script end to end: every refusal is exit 2 and one clear line; secrets stay secret."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


@pytest.fixture
def cli(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SKYSYNC_HOME": str(home)}

    def run(*args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in p.stderr, p.stderr
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    run.home = home  # type: ignore[attr-defined]
    return run


@pytest.fixture
def setup(cli, tmp_path):
    for d in ("local", "cloud", "local2", "cloud2"):
        (tmp_path / d).mkdir()
    (tmp_path / "local" / "hello.txt").write_text("hello")
    cli("connection", "add", "demo", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    cli("task", "add", "t", "--connection", "demo", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "bidirectional")
    return tmp_path


def refused(cli, *args: str, match: str) -> None:
    p = cli(*args, check=2)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert match.lower() in lines[0].lower(), lines[0]


def test_refusals_are_one_line_and_exit_2(cli, setup):
    t = setup
    refused(cli, "connection", "add", "x", "--provider", "no-such", match="unknown provider")
    refused(cli, "connection", "add", "x", "--provider", "local", "--option", "bogus=1",
            "--option", f"root={t / 'cloud2'}", match="unknown option 'bogus'")
    refused(cli, "connection", "add", "again", "--provider", "local", "--option", f"root={t / 'cloud'}",
            match="already uses this credential")
    refused(cli, "connection", "add", "demo", "--provider", "local", "--option", f"root={t / 'cloud2'}",
            match="already exists")
    refused(cli, "connection", "add", "p", "--provider", "local", "--option", f"root={t / 'cloud2'}",
            "--option", "polling_period=86401", match="polling_period")
    refused(cli, "task", "add", "u", "--connection", "nope", "--local", str(t / "local2"), "--remote", "/u",
            "--direction", "upload", match="no connection named 'nope'")
    refused(cli, "task", "add", "v", "--connection", "demo", "--local", str(t / "missing"), "--remote", "/v",
            "--direction", "upload", match="does not exist")
    refused(cli, "task", "add", "w", "--connection", "demo", "--local", str(t / "local2"), "--remote", "/w",
            "--direction", "sideways", match="invalid choice")
    # An unset shell variable must not pair the folder the command ran in (or the whole connection).
    refused(cli, "task", "add", "e", "--connection", "demo", "--local", "", "--remote", "/e",
            "--direction", "upload", match="--local is empty")
    refused(cli, "task", "add", "e", "--connection", "demo", "--local", str(t / "local2"), "--remote", " ",
            "--direction", "upload", match="--remote is empty")
    refused(cli, "task", "edit", "t", "--local", "", match="--local is empty")
    refused(cli, "task", "add", "same", "--connection", "demo", "--local", str(t / "local"), "--remote", "/s",
            "--direction", "upload", match="overlaps")
    (t / "local" / "inner").mkdir()
    refused(cli, "task", "add", "inside", "--connection", "demo", "--local", str(t / "local" / "inner"),
            "--remote", "/i", "--direction", "upload", match="overlaps")
    refused(cli, "task", "add", "contains", "--connection", "demo", "--local", str(t), "--remote", "/c",
            "--direction", "upload", match="overlaps")
    refused(cli, "task", "add", "nd", "--connection", "demo", "--local", str(t / "local2"), "--remote", "/nd",
            "--direction", "bidirectional", "--no-delete", match="one-way")
    refused(cli, "task", "show", "ghost", match="no task named 'ghost'")
    refused(cli, "connection", "show", "ghost", match="no connection named 'ghost'")
    refused(cli, "sync", "ghost", match="no task named 'ghost'")
    refused(cli, "settings", "set", "log-max-records", "4", match="5 to 100000")
    refused(cli, "settings", "set", "log-max-records", "100001", match="5 to 100000")
    refused(cli, "settings", "set", "no-such-setting", "1", match="unknown setting")
    refused(cli, "frobnicate", match="invalid choice")
    # A malformed address reached urllib as a ValueError, which the CLI called "a bug".
    refused(cli, "connection", "add", "s", "--provider", "s3", "--option", "endpoint=http://[::1",
            "--option", "bucket=abc", "--option", "region=us-east-1", "--option", "access_key_id=x",
            "--option", "secret_access_key=y", match="option 'endpoint' is not a valid URL")
    refused(cli, "connection", "add", "w", "--provider", "webdav", "--option", "url=http://[::1/dav",
            "--option", "user=u", "--option", "password=p", match="option 'url' is not a valid URL")
    refused(cli, "connection", "add", "sw", "--provider", "swift", "--option", "auth_url=http://h:99999/v3",
            "--option", "user=u", "--option", "key=k", "--option", "container=c",
            match="option 'auth_url' is not a valid URL")
    # A password in an address would sit in the main config and show in `connection show`.
    p = cli("connection", "add", "w2", "--provider", "webdav", "--option", "url=http://u:hunter2@127.0.0.1:1/dav",
            "--option", "user=u", "--option", "password=p", check=2)
    assert "holds a password" in p.stderr and "hunter2" not in p.stderr + p.stdout
    assert "hunter2" not in (cli.home / "config.toml").read_text()


def test_a_task_in_another_connection_may_use_another_folder(cli, setup):
    t = setup
    cli("connection", "add", "second", "--provider", "local", "--option", f"root={t / 'cloud2'}")
    cli("task", "add", "t2", "--connection", "second", "--local", str(t / "local2"), "--remote", "/",
        "--direction", "download")
    names = [x["name"] for x in json.loads(cli("task", "list", "--json").stdout)]
    assert names == ["t", "t2"]


def test_sync_json_status_and_log(cli, setup):
    t = setup
    dry = json.loads(cli("sync", "t", "--dry-run", "--json").stdout)
    assert dry["tasks"][0]["planned"] == [{"action": "upload", "path": "hello.txt", "detail": ""}]
    assert not (t / "cloud" / "hello.txt").exists()
    out = json.loads(cli("sync", "--json").stdout)
    assert out["tasks"][0]["summary"] == {"uploaded": 1}
    assert (t / "cloud" / "hello.txt").read_text() == "hello"
    status = json.loads(cli("status", "--json").stdout)
    assert status["tasks"]["t"]["tracked_files"] == 1 and status["tasks"]["t"]["last_pass"]["ok"] is True
    log = json.loads(cli("log", "--json", "--task", "t").stdout)
    assert [(r["kind"], r["path"]) for r in log] == [("uploaded", "hello.txt")]
    assert "uploaded" in cli("log", "--limit", "5").stdout


def test_guard_exit_code_and_force(cli, setup):
    t = setup
    cli("sync", "t")
    (t / "local" / "hello.txt").unlink()
    p = cli("sync", "t", check=2)
    assert "empty" in p.stderr and (t / "cloud" / "hello.txt").exists()
    p = cli("sync", "t", "--force", check=2)  # --force passes the mass-delete guard only
    assert "empty" in p.stderr and (t / "cloud" / "hello.txt").exists()


def test_secrets_never_reach_config_logs_or_output(cli, tmp_path):
    secret = "sup3r-s3cret-value"
    cli("connection", "add", "s", "--provider", "s3", "--no-test", "--option", "bucket=my-bucket",
        "--option", "access_key_id=AKIDEXAMPLE", "--option", f"secret_access_key={secret}",
        "--option", "endpoint=http://127.0.0.1:9")
    home = cli.home
    assert secret not in (home / "config.toml").read_text()
    assert secret in (home / "secrets.toml").read_text()
    assert stat.S_IMODE(os.stat(home / "secrets.toml").st_mode) == 0o600
    for args in (("connection", "show", "s", "--json"), ("connection", "list", "--json")):
        assert secret not in cli(*args).stdout
    p = cli("connection", "test", "s", check=2)
    assert secret not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_remove_task_and_connection_keep_files(cli, setup):
    t = setup
    cli("sync", "t")
    assert "stay on both sides" in cli("task", "remove", "t").stdout
    cli("connection", "remove", "demo")
    assert (t / "local" / "hello.txt").exists() and (t / "cloud" / "hello.txt").exists()
    assert json.loads(cli("connection", "list", "--json").stdout) == []


def test_help_is_fast_and_imports_no_sdk():
    heavy = ("boto3", "textual", "botocore", "b2sdk", "azure", "google")
    code = (
        "import sys, tui.launch, engine.cli; engine.cli.build_parser(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
