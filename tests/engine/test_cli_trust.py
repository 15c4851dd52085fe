"""The console script where a user can hurt themselves: every such case is one line saying what is wrong and what
to do (never "unexpected X"), a busy task is waited for, `status` tells failed, stopped and interrupted passes
apart, `task edit` can undo each of add's flags, `log` cannot be forged by a file name, and the sign-in and
rclone-import commands do what they say."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


@pytest.fixture
def cli(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SKYSYNC_HOME": str(home)}

    def run(*args: str, check: int | None = 0, timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=timeout)
        assert "Traceback" not in p.stderr, p.stderr
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([SKYSYNC, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    run.home = home  # type: ignore[attr-defined]
    run.start = start  # type: ignore[attr-defined]
    return run


@pytest.fixture
def setup(cli, tmp_path):
    for d in ("local", "cloud"):
        (tmp_path / d).mkdir()
    (tmp_path / "local" / "hello.txt").write_text("hello")
    cli("connection", "add", "demo", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    cli("task", "add", "t", "--connection", "demo", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "bidirectional")
    return tmp_path


def one_line(p: subprocess.CompletedProcess) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "unexpected" not in lines[0], lines[0]
    return lines[0]


def refused(cli, *args: str) -> str:
    return one_line(cli(*args, check=2))


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (a disk that fills up); skipped where mount is not permitted."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"mount is not permitted here: {p.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no space left; returns it (delete it to make room again)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


# -- task edit undoes add's flags ------------------------------------------------------------------------------


def test_task_edit_undo_flags_are_persisted(cli, tmp_path):
    for d in ("local", "cloud"):
        (tmp_path / d).mkdir()
    cli("connection", "add", "demo", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    cli("task", "add", "u", "--connection", "demo", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "upload", "--no-delete", "--consistency-check", "--case-insensitive",
        "--exclude-folder", "raw", "--exclude-name", "*.bak", "--exclude-ext", "tmp", "--max-size", "100")

    def shown():
        return json.loads(cli("task", "show", "u", "--json").stdout)

    before = shown()
    assert (before["no_delete"], before["consistency_check"], before["case_insensitive"]) == (True, True, True)
    cli("task", "edit", "u", "--delete")
    assert shown()["no_delete"] is False and shown()["consistency_check"] is True
    cli("task", "edit", "u", "--no-consistency-check")
    assert shown()["consistency_check"] is False and shown()["case_insensitive"] is True
    cli("task", "edit", "u", "--case-sensitive")
    assert shown()["case_insensitive"] is False
    assert shown()["exclude_folders"] == ["raw"] and shown()["max_size"] == 100
    cli("task", "edit", "u", "--clear-filters")
    after = shown()
    assert (after["exclude_folders"], after["exclude_names"], after["exclude_exts"], after["max_size"]) == (
        [], [], [], 0)
    # --clear-filters then new filters in the same command: only the new ones stay
    cli("task", "edit", "u", "--exclude-ext", "part", "--no-delete")
    cli("task", "edit", "u", "--clear-filters", "--exclude-name", "*.swp")
    after = shown()
    assert (after["exclude_exts"], after["exclude_names"], after["no_delete"]) == ([], ["*.swp"], True)
    # contradictory flags are one usage line
    assert "not allowed with" in refused(cli, "task", "edit", "u", "--delete", "--no-delete")
    assert "not allowed with" in refused(cli, "task", "edit", "u", "--case-sensitive", "--case-insensitive")


def test_cleared_filters_take_effect_on_the_next_pass(cli, tmp_path):
    for d in ("local", "cloud"):
        (tmp_path / d).mkdir()
    (tmp_path / "local" / "big.bin").write_bytes(b"x" * 500)
    (tmp_path / "local" / "notes.tmp").write_text("tmp")
    (tmp_path / "local" / "raw").mkdir()
    (tmp_path / "local" / "raw" / "a.raw").write_text("raw")
    cli("connection", "add", "demo", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    cli("task", "add", "u", "--connection", "demo", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "upload", "--exclude-folder", "raw", "--exclude-ext", "tmp", "--max-size", "100")
    cli("sync", "u")
    assert files(tmp_path / "cloud") == {}
    cli("task", "edit", "u", "--clear-filters")
    cli("sync", "u")
    assert files(tmp_path / "cloud") == files(tmp_path / "local")


# -- database-path inside a synced folder ----------------------------------------------------------------------


def test_database_path_inside_a_task_folder_is_refused(cli, setup):
    t = setup
    message = refused(cli, "settings", "set", "database-path", str(t / "local" / "sub" / "state.db"))
    assert "inside the local folder of task 't'" in message
    # through a symlink too: paths are compared after resolving them
    (t / "link").symlink_to(t / "local")
    assert "inside the local folder" in refused(cli, "settings", "set", "database-path", str(t / "link" / "s.db"))
    assert cli("settings", "get", "database-path").stdout.strip() == str(cli.home / "state.db")
    # a task whose new folder would hold the current database
    cli("settings", "set", "database-path", str(t / "db" / "state.db"))
    (t / "db").mkdir()
    (t / "other-cloud").mkdir()
    cli("connection", "add", "second", "--provider", "local", "--option", f"root={t / 'other-cloud'}")
    message = refused(cli, "task", "add", "wide", "--connection", "second", "--local", str(t / "db"),
                      "--remote", "/", "--direction", "upload")
    assert "would be inside the local folder of task 'wide'" in message and "settings set database-path" in message
    (t / "elsewhere").mkdir()
    cli("task", "add", "ok", "--connection", "second", "--local", str(t / "elsewhere"), "--remote", "/",
        "--direction", "upload")
    assert "inside the local folder of task 'ok'" in refused(cli, "task", "edit", "ok", "--local", str(t / "db"))
    # a folder holding the connection's own folder: refused for that reason first (engine.connect.cloud_overlap)
    assert "overlap" in refused(cli, "task", "edit", "ok", "--local", str(t))
    assert json.loads(cli("task", "show", "ok", "--json").stdout)["local"] == str(t / "elsewhere")


def test_database_path_inside_a_local_connections_cloud_folder_is_refused(cli, setup):
    """A `local` connection's folder is synced as much as a task's local folder: every pass would copy the live
    database (and its -wal, -shm) into the user's folder."""
    t = setup
    message = refused(cli, "settings", "set", "database-path", str(t / "cloud" / "sub" / "s.db"))
    assert "the state database" in message and "inside the cloud folder of task 't'" in message
    assert cli("settings", "get", "database-path").stdout.strip() == str(cli.home / "state.db")
    # a task whose cloud folder, or a connection whose new root, would hold the current database
    (t / "db").mkdir()
    cli("settings", "set", "database-path", str(t / "db" / "state.db"))
    (t / "other").mkdir()
    cli("connection", "add", "second", "--provider", "local", "--option", f"root={t}")
    message = refused(cli, "task", "add", "wide", "--connection", "second", "--local", str(t / "other"),
                      "--remote", "/db", "--direction", "upload")
    assert "inside the cloud folder of task 'wide'" in message and "settings set database-path" in message
    cli("task", "add", "ok", "--connection", "second", "--local", str(t / "other"), "--remote", "/x",
        "--direction", "upload")
    (t / "x").mkdir()
    message = refused(cli, "connection", "edit", "demo", "--option", f"root={t / 'db'}")
    assert "inside the cloud folder of task 't'" in message
    assert json.loads(cli("connection", "show", "demo", "--json").stdout)["options"]["root"] == str(t / "cloud")


def test_a_home_inside_a_task_folder_is_refused_and_never_synced(tmp_path):
    """The home holds secrets.toml (every secret): a task whose folders would hold it is refused, and a home that
    got there anyway (a --home given later) is skipped by the pass, on both sides, with the reason."""
    for d in ("local", "cloud", "db"):
        (tmp_path / d).mkdir()
    (tmp_path / "local" / "a.txt").write_text("a")

    def run(home: Path, *args: str, check: int = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, "--home", str(home), *args], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in p.stderr and p.returncode == check, (args, p.stdout, p.stderr)
        return p

    inside = tmp_path / "cloud" / ".skyhome"
    run(inside, "connection", "add", "c", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    run(inside, "connection", "add", "s3c", "--provider", "s3", "--no-test", "--option", "bucket=mybucket", "--option",
        "access_key_id=AK", "--option", "secret_access_key=SUPERSECRET123", "--option", "endpoint=http://127.0.0.1:9")
    message = one_line(run(inside, "task", "add", "t", "--connection", "c", "--local", str(tmp_path / "local"),
                           "--remote", "/", "--direction", "bidirectional", check=2))
    assert "the skysync home" in message and "inside the cloud folder of task 't'" in message
    # the same home made elsewhere, then used from inside both folders, its database too
    home = tmp_path / "home"
    run(home, "connection", "add", "c", "--provider", "local", "--option", f"root={tmp_path / 'cloud'}")
    run(home, "connection", "add", "s3c", "--provider", "s3", "--no-test", "--option", "bucket=mybucket", "--option",
        "access_key_id=AK", "--option", "secret_access_key=SUPERSECRET123", "--option", "endpoint=http://127.0.0.1:9")
    run(home, "task", "add", "t", "--connection", "c", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "bidirectional")
    shutil.rmtree(inside)
    for side, other in (("cloud", "local"), ("local", "cloud")):
        used = tmp_path / side / ".skyhome"
        shutil.copytree(home, used)
        for _ in range(2):
            run(used, "sync")
        log = run(used, "log", "--task", "t").stdout
        assert "skysync's own files (its home or its state database) are never synced" in log
        assert not (tmp_path / other / ".skyhome").exists()
        assert (tmp_path / "cloud" / "a.txt").read_text() == "a"
        shutil.rmtree(used)
        assert not any(b"SUPERSECRET123" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
                       and home not in p.parents)


# -- the log cannot be forged ----------------------------------------------------------------------------------


def test_log_escapes_control_characters_so_a_name_cannot_forge_a_line(cli, setup):
    t = setup
    forged = "x\n2020-01-01 00:00:00 t deleted        everything.txt"
    (t / "local" / forged).write_text("evil")
    cli("sync", "t")
    db = sqlite3.connect(cli.home / "state.db")
    with db:
        db.execute("INSERT INTO log (time, task, kind, path, message) VALUES (?, ?, ?, ?, ?)",
                   (time.time(), "t", "error", "a\x1b[2Jb\rc", "line one\nline two\x07"))
    db.close()
    out = cli("log", "--task", "t").stdout
    lines = out.splitlines()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d t ")
    assert lines and all(stamp.match(line) for line in lines), out
    assert not any(line.startswith("2020-01-01") for line in lines), out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "a\\x1b[2Jb\\x0dc" in out and "line one\\x0aline two\\x07" in out
    records = json.loads(cli("log", "--json", "--task", "t").stdout)  # valid JSON, the real text inside
    assert {"a\x1b[2Jb\rc", "line one\nline two\x07"} <= {v for r in records for v in (r["path"], r["message"])}


def test_log_limit_out_of_range_is_a_usage_line(cli, setup):
    for bad in ("0", "-5", "100001", "99999999999999999999999", "many"):
        message = refused(cli, "log", "--limit", bad)
        assert "--limit: must be a whole number from 1 to 100000" in message, message
    assert cli("log", "--limit", "100000").returncode == 0


# -- the state database ----------------------------------------------------------------------------------------


def test_a_damaged_state_database_says_what_to_do_and_moving_it_aside_deletes_nothing(cli, setup):
    t = setup
    cli("sync", "t")
    (t / "local" / "local-only.txt").write_text("mine")
    (t / "cloud" / "cloud-only.txt").write_text("theirs")
    db = cli.home / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database, just some bytes" * 100)
    for args in (("sync", "t"), ("status",), ("status", "--json"), ("log",), ("task", "remove", "t")):
        message = refused(cli, *args)
        assert f"the state database {db} is damaged" in message, message
        assert "move it aside and run the task again" in message
    db.rename(t / "state.db.damaged")
    cli("sync", "t")
    expected = {"hello.txt": b"hello", "local-only.txt": b"mine", "cloud-only.txt": b"theirs"}
    assert files(t / "local") == expected and files(t / "cloud") == expected


def test_a_truncated_state_database_is_damaged_too(cli, setup):
    t = setup
    for i in range(300):
        (t / "local" / f"f{i:03}.txt").write_text(str(i))
    cli("sync", "t")
    cli("status")  # checkpoints the WAL into the file
    db = cli.home / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    data = db.read_bytes()
    assert len(data) > 8192
    db.write_bytes(data[:4096] + b"\xff" * (len(data) - 4096))
    p = cli("status", check=None)
    if p.returncode == 0:
        p = cli("sync", "t", check=None)
    assert p.returncode == 2, (p.stdout, p.stderr)
    message = one_line(p)
    assert "is damaged" in message and ("malformed" in message or "not a database" in message), message


def test_a_full_disk_under_the_state_database_is_one_line(cli, setup, tmpfs):
    t = setup
    disk = tmpfs("dbdisk", "256k")
    cli("settings", "set", "database-path", str(disk / "state.db"))
    filler = fill(disk)
    message = refused(cli, "sync", "t")
    assert f"the disk holding the state database {disk / 'state.db'} is full" in message, message
    assert "free some space" in message
    filler.unlink()
    cli("sync", "t")
    assert files(t / "cloud") == {"hello.txt": b"hello"}


def test_a_full_disk_under_the_home_is_one_line(cli, setup, tmpfs):
    disk = tmpfs("homedisk", "256k")
    home = disk / "home"
    shutil.copytree(cli.home, home)
    fill(disk)
    env = {**os.environ, "SKYSYNC_HOME": str(home)}
    p = subprocess.run([SKYSYNC, "settings", "set", "concurrency", "3"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    message = one_line(p)
    assert "no space left" in message and "free some space" in message, message


# -- the home's permissions ------------------------------------------------------------------------------------


def test_a_home_others_can_change_or_read_is_refused_with_the_fix(cli, setup):
    home = cli.home
    os.chmod(home, 0o777)
    message = refused(cli, "status")
    assert f"{home} can be changed by other users (mode 777); fix it with: chmod go-w {home}" in message
    assert "can be changed by other users" in refused(cli, "sync", "t")
    os.chmod(home, 0o700)
    os.chmod(home / "secrets.toml", 0o644)
    message = refused(cli, "task", "list")
    assert "secrets.toml can be read by other users" in message and "chmod 600" in message
    os.chmod(home / "secrets.toml", 0o600)
    os.chmod(home / "config.toml", 0o666)
    assert "config.toml can be changed by other users" in refused(cli, "connection", "list")
    os.chmod(home / "config.toml", 0o644)
    cli("status")


def test_a_home_owned_by_someone_else_is_refused(cli, setup):
    home = cli.home
    os.chown(home, 54321, 54321)
    try:
        message = refused(cli, "task", "list")
        assert f"{home} belongs to uid 54321" in message and "not to you" in message, message
        assert "belongs to" in refused(cli, "run")
    finally:
        os.chown(home, os.geteuid(), os.getegid())
    cli("task", "list")


# -- a busy task waits its turn --------------------------------------------------------------------------------


def _slow_setup(cli, t: Path) -> None:
    (t / "local" / "big.bin").write_bytes(os.urandom(1_000_000))
    # 100 KiB/s: a pass of ~10 s, long enough for the checks that a loaded CI machine runs slowly
    cli("connection", "edit", "demo", "--option", "upload_limit=100")


def _state(cli) -> str:
    return json.loads(cli("status", "--json").stdout)["tasks"]["t"]["state"]


def test_a_second_sync_waits_for_the_first_and_no_wait_exits_at_once(cli, setup):
    t = setup
    _slow_setup(cli, t)
    first = cli.start("sync", "t")
    try:
        wait_for(lambda: _state(cli) == "syncing", "the first pass to hold the task")
        started = time.monotonic()
        p = cli("sync", "t", "--no-wait", check=2)
        assert time.monotonic() - started < 5
        message = one_line(p)
        assert message == ("skysync: error: task 't': it is being synced by another process; "
                           "not waiting for it (--no-wait)")
        assert message.count("'t'") == 1
        second = cli("sync", "t", timeout=120)
        first_out, first_err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, first_err
    assert "uploaded" in first_out
    waiting = [line for line in second.stderr.splitlines() if "waiting" in line]
    assert waiting == ["task 't' is being synced by another process; waiting for it to finish"], second.stderr
    assert "nothing to do" in second.stdout  # it ran after the first one, not beside it
    assert files(t / "cloud") == files(t / "local")


# -- status tells passes apart ---------------------------------------------------------------------------------


def _status_line(cli) -> str:
    lines = [line for line in cli("status").stdout.splitlines() if line.startswith("t ")]
    assert len(lines) == 1
    return lines[0]


def test_status_never_ok_and_error(cli, setup):
    t = setup
    assert _state(cli) == "never" and "last pass: never" in _status_line(cli)
    cli("sync", "t")
    assert _state(cli) == "ok" and _status_line(cli).endswith("  ok")
    (t / "local" / "hello.txt").unlink()
    cli("sync", "t", check=2)  # the empty-folder guard stops the pass
    data = json.loads(cli("status", "--json").stdout)["tasks"]["t"]
    assert data["state"] == "error" and "empty" in data["error"]
    line = _status_line(cli)
    assert "  error: the local folder" in line and " ok" not in line
    assert (t / "cloud" / "hello.txt").exists()


def test_status_failed_items(cli, setup, tmpfs):
    t = setup
    cloud = tmpfs("smallcloud", "64k")
    cli("connection", "add", "small", "--provider", "local", "--option", f"root={cloud}")
    (t / "local2").mkdir()
    (t / "local2" / "fits.txt").write_text("fits")
    (t / "local2" / "too-big.bin").write_bytes(os.urandom(200_000))
    cli("task", "add", "s", "--connection", "small", "--local", str(t / "local2"), "--remote", "/",
        "--direction", "upload")
    cli("sync", "s", check=1)
    data = json.loads(cli("status", "--json").stdout)["tasks"]["s"]
    assert data["state"] == "failed" and data["failed"] == 1, data
    line = next(x for x in cli("status").stdout.splitlines() if x.startswith("s "))
    assert line.endswith("failed: 1 items (see skysync log --task s)"), line
    assert (cloud / "fits.txt").read_text() == "fits"


def test_status_interrupted_syncing_and_paused(cli, setup):
    t = setup
    cli("sync", "t")
    _slow_setup(cli, t)
    proc = cli.start("sync", "t")
    try:
        wait_for(lambda: _state(cli) == "syncing", "the pass to start")
        assert "syncing now" in _status_line(cli)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _state(cli) == "interrupted"
    line = _status_line(cli)
    assert "interrupted" in line and "never" not in line and " ok" not in line
    assert cli("status").returncode == 0
    config = cli.home / "config.toml"
    config.write_text(config.read_text().replace("paused = false", "paused = true"))
    assert _state(cli) == "paused" and "paused" in _status_line(cli)


# -- doctor, sign-in and rclone --------------------------------------------------------------------------------


def test_doctor_is_wired(cli, setup):
    assert "--json" in cli("doctor", "--help").stdout
    p = cli("doctor", "--json", check=None)
    assert p.returncode in (0, 1), p.stderr
    json.loads(p.stdout)


def test_login_says_why_there_is_nothing_to_do(cli, setup):
    cli("connection", "add", "keys", "--provider", "s3", "--no-test", "--option", "bucket=bkt",
        "--option", "access_key_id=AKIDEXAMPLE", "--option", "secret_access_key=sup3r-s3cret",
        "--option", "endpoint=http://127.0.0.1:9")
    message = refused(cli, "connection", "login", "keys")
    assert message == "skysync: error: connection 'keys' (s3) signs in with keys, not a browser; nothing to do"
    assert "sup3r" not in message
    assert refused(cli, "connection", "login", "demo").endswith("connection 'demo' (local) needs no sign-in; "
                                                                "nothing to do")
    assert "no connection named 'ghost'" in refused(cli, "connection", "login", "ghost")


def _rclone_config(path: Path, remotes: dict[str, dict[str, str]]) -> Path:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    for name, values in remotes.items():
        parser[name] = values
    with open(path, "w") as f:
        parser.write(f)
    return path


def test_import_rclone_local_remote_syncs(cli, tmp_path):
    (tmp_path / "cloud").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "a.txt").write_text("a")
    conf = _rclone_config(tmp_path / "rclone.conf", {"nas": {"type": "local", "copy_links": "true"}})
    out = cli("connection", "import-rclone", "--config", str(conf), f"nas:{tmp_path / 'cloud'}").stdout
    assert "connection 'nas' added (local)" in out and "not carried over: copy_links" in out
    assert json.loads(cli("connection", "show", "nas", "--json").stdout)["options"] == {"root": str(tmp_path / "cloud")}
    cli("task", "add", "t", "--connection", "nas", "--local", str(tmp_path / "local"), "--remote", "/",
        "--direction", "upload")
    cli("sync", "t")
    assert (tmp_path / "cloud" / "a.txt").read_text() == "a"


def test_import_rclone_maps_options_and_keeps_secrets_out_of_the_config(cli, tmp_path):
    sa = tmp_path / "sa.json"
    sa.write_text('{"type": "service_account", "project_id": "p", "private_key": "gcs-private-key-material"}')
    conf = _rclone_config(tmp_path / "rclone.conf", {
        "minio": {"type": "s3", "provider": "Minio", "access_key_id": "AKID", "secret_access_key": "s3-secret-value",
                  "endpoint": "http://127.0.0.1:9", "region": "eu-1", "force_path_style": "true", "acl": "private"},
        "bb": {"type": "b2", "account": "keyid", "key": "b2-secret-value"},
        "az": {"type": "azureblob", "account": "acct", "key": "YXp1cmUtc2VjcmV0LXZhbHVl"},
        "g": {"type": "google cloud storage", "service_account_file": str(sa), "project_number": "1234"},
        "sw": {"type": "swift", "auth": "http://127.0.0.1:9/auth/v1.0", "user": "u", "key": "swift-secret-value"},
        # rclone's obscured form of "potato" (a test vector of rclone's fs/config/obscure)
        "dav": {"type": "webdav", "url": "http://127.0.0.1:9/dav", "user": "u", "vendor": "other",
                "pass": "YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ"},
    })
    imports = {
        "minio:photos/2024": ("s3", {"bucket": "photos", "preset": "other", "endpoint": "http://127.0.0.1:9",
                                     "region": "eu-1", "access_key_id": "AKID", "addressing_style": "path"},
                              {"secret_access_key": "s3-secret-value"}),
        "bb:bucket1": ("b2", {"bucket": "bucket1", "key_id": "keyid"}, {"application_key": "b2-secret-value"}),
        "az:box": ("azure", {"container": "box", "account_name": "acct"},
                   {"account_key": "YXp1cmUtc2VjcmV0LXZhbHVl"}),
        "g:gbucket": ("gcs", {"bucket": "gbucket", "project": "1234"}, {"credentials_file": sa.read_text()}),
        "sw:cont": ("swift", {"container": "cont", "auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "u"},
                    {"key": "swift-secret-value"}),
        "dav": ("webdav", {"url": "http://127.0.0.1:9/dav", "user": "u"}, {"password": "potato"}),
    }
    for remote, (kind, options, secrets) in imports.items():
        name = remote.partition(":")[0]
        p = cli("connection", "import-rclone", "--config", str(conf), remote, f"{name}-c", "--no-test")
        assert f"connection '{name}-c' added ({kind})" in p.stdout
        shown = json.loads(cli("connection", "show", f"{name}-c", "--json").stdout)
        assert {k: shown["options"].get(k) for k in options} == options, shown
        assert shown["secrets"] == sorted(secrets)
        for value in secrets.values():
            assert value not in p.stdout + p.stderr
        if remote == "minio:photos/2024":  # a folder inside the bucket belongs to the tasks
            assert "--remote /2024" in p.stdout and "not carried over: acl" in p.stdout
    config = (cli.home / "config.toml").read_text()
    stored = (cli.home / "secrets.toml").read_text()
    for _, _, secrets in imports.values():
        for key, value in secrets.items():
            assert value not in config
            if key != "credentials_file":
                assert value in stored
    assert "gcs-private-key-material" in stored and "gcs-private-key-material" not in config


def test_import_rclone_refusals_are_one_line(cli, tmp_path):
    conf = _rclone_config(tmp_path / "rclone.conf", {
        "gd": {"type": "drive", "token": '{"access_token": "ya29.secret-token"}'},
        "envs3": {"type": "s3", "provider": "AWS", "env_auth": "true"},
        "s3": {"type": "s3", "provider": "AWS", "access_key_id": "AKID", "secret_access_key": "s3-secret-value"},
        "unreachable": {"type": "s3", "provider": "Other", "endpoint": "http://127.0.0.1:9", "access_key_id": "AKID",
                        "secret_access_key": "s3-secret-value"},
        "oauthgcs": {"type": "google cloud storage", "token": '{"access_token": "ya29.secret-token"}'},
        "sas": {"type": "azureblob", "sas_url": "https://acct.blob.core.windows.net/c?sig=sas-secret"},
        "nolocal": {"type": "local"},
        "badpass": {"type": "webdav", "url": "http://127.0.0.1:9", "user": "u", "pass": "not obscured!"},
    })
    cases = {
        "gd": "signs in with rclone's own app (no client_id)",
        "envs3": "takes its S3 keys from the environment",
        "s3": "names no bucket: give it after a colon, as in s3:MY-BUCKET",
        "oauthgcs": "needs a service account",
        "sas:c": "signs in with a SAS URL",
        "nolocal": "give it as nolocal:/ABSOLUTE/PATH",
        "badpass:": "is not in rclone's obscured form",
        "ghost": "no remote named 'ghost'",
    }
    for remote, expected in cases.items():
        message = refused(cli, "connection", "import-rclone", "--config", str(conf), remote, "--no-test")
        assert expected in message, message
        assert "secret" not in message.replace("secrets", "")
    assert "there is no rclone config at" in refused(cli, "connection", "import-rclone", "--config",
                                                      str(tmp_path / "missing.conf"), "s3:b")
    (tmp_path / "broken.conf").write_text("type = s3\n[x\n")
    assert "is not valid" in refused(cli, "connection", "import-rclone", "--config", str(tmp_path / "broken.conf"),
                                     "x:b")
    # a remote that cannot be reached is tested before it is saved, and the secret stays out of the message
    message = refused(cli, "connection", "import-rclone", "--config", str(conf), "unreachable:bucket")
    assert "failed its test" in message and "s3-secret-value" not in message
    assert json.loads(cli("connection", "list", "--json").stdout) == []
