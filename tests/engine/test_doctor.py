"""`skysync doctor`: each finding provoked on a real home, asserting its one line and the exit code."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import sqlite3
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from engine import doctor, manage
from engine.config import Home, Task
from engine.doctor import Probes, local_device_id, run_doctor, same_device
from engine.state import StateDB

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
GIB = 1 << 30


def roomy(_path: str) -> Any:
    """A statvfs answer with plenty of room (500 GiB free of 1 TiB)."""
    return SimpleNamespace(f_bavail=500 * GIB // 4096, f_blocks=1024 * GIB // 4096, f_frsize=4096)


@pytest.fixture
def limits(tmp_path: pathlib.Path) -> pathlib.Path:
    """A fake /proc/sys/fs/inotify/max_user_watches; tests write the limit they want into it."""
    path = tmp_path / "max_user_watches"
    path.write_text("524288\n")
    return path


def probes(limits: pathlib.Path, **kw: Any) -> Probes:
    kw.setdefault("statvfs", roomy)
    return Probes(inotify_path=str(limits), **kw)


def run(env: Any, limits: pathlib.Path, capsys: pytest.CaptureFixture[str], **kw: Any) -> tuple[int, list[str]]:
    """(exit code, finding lines) of `skysync doctor` on the env's home."""
    code = run_doctor(Home(env.home.path), False, probes(limits, **kw))
    *lines, summary = capsys.readouterr().out.splitlines()
    problems = sum(not line.startswith("ok ") for line in lines)
    expected = f"{problems} problem{'s' if problems > 1 else ''} found" if problems else "everything looks fine"
    assert summary == expected
    return code, lines


def only_problem(lines: list[str]) -> str:
    bad = [line for line in lines if not line.startswith("ok ")]
    assert len(bad) == 1, lines
    return bad[0]


@pytest.fixture
def synced(env: Any) -> Any:
    """The env after one pass: the state database exists and the local folder has a few subfolders."""
    for sub in ("a", "a/b", "c"):
        (env.local / sub).mkdir()
    (env.local / "a" / "f.txt").write_text("x")
    env.sync()
    return env


# -- the happy path ------------------------------------------------------------------------------------------


def test_a_healthy_home_exits_0_with_one_ok_line_per_check(synced, limits, capsys):
    code, lines = run(synced, limits, capsys)
    assert code == 0, lines
    assert all(line.startswith("ok ") for line in lines), lines
    checks = [line.split()[1].rstrip(":") for line in lines]
    for check in ("home", "secrets", "state-database", "local-folder", "device", "free-space", "inotify",
                  "connection", "clock"):
        assert check in checks, lines
    assert any("the tasks watch 4 folders" in line for line in lines), lines  # local, a, a/b, c


def test_a_home_before_any_pass_is_fine_too(env, limits, capsys):
    code, lines = run(env, limits, capsys)
    assert code == 0, lines
    assert any("no state database at" in line and "the first pass creates it" in line for line in lines)


# -- permissions -----------------------------------------------------------------------------------------------


def test_a_home_writable_by_others_fails_with_the_chmod_to_fix_it(synced, limits, capsys):
    os.chmod(synced.home.path, 0o777)
    code, lines = run(synced, limits, capsys)
    assert code == 1
    line = only_problem(lines)
    assert line.startswith("fail  home: ")
    assert "writable by its group and everyone (mode 0777)" in line
    assert line.endswith(f"run chmod go-w {synced.home.path}")


def test_secrets_readable_by_others_fail_with_chmod_600(synced, limits, capsys):
    secrets = pathlib.Path(synced.home.secrets_path)
    assert secrets.exists()
    os.chmod(secrets, 0o644)
    code, lines = run(synced, limits, capsys)
    assert code == 1
    assert only_problem(lines) == (
        f"fail  secrets: {secrets} holds the connections' secrets but its mode is 0644, not 0600: "
        f"run chmod 600 {secrets}"
    )


def test_secrets_owned_by_someone_else_fail_with_chown(synced, limits, capsys):
    me = os.geteuid()
    code, lines = run(synced, limits, capsys, uid=me + 1)  # as if another user ran doctor on this home
    assert code == 1
    line = only_problem(lines)
    assert f"it belongs to uid {me}, not to you (uid {me + 1})" in line
    assert f"sudo chown {me + 1} {synced.home.secrets_path}" in line


# -- the state database ----------------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_told_apart(synced, limits, capsys):
    db = pathlib.Path(synced.home.setting("database-path"))
    for extra in ("-wal", "-shm"):
        pathlib.Path(str(db) + extra).unlink(missing_ok=True)
    db.write_bytes(os.urandom(8192))
    code, lines = run(synced, limits, capsys)
    assert code == 1
    line = only_problem(lines)
    assert line.startswith(f"fail  state-database: {db} is not an SQLite database (another file at that path?)")
    assert f"mv {db} {db}.damaged" in line and "deletes nothing" in line


def test_a_damaged_database_is_told_apart(tmp_path, limits, capsys, make_env):
    env = make_env()
    db_path = pathlib.Path(env.home.setting("database-path"))
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)")
    db.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 500,) for _ in range(400)])
    db.execute("CREATE INDEX filler_body ON filler (body)")
    db.commit()
    db.close()
    data = bytearray(db_path.read_bytes())
    assert len(data) > 40 * 4096
    data[10 * 4096 : 30 * 4096] = os.urandom(20 * 4096)  # pages in the middle; the header stays valid
    db_path.write_bytes(bytes(data))
    code, lines = run(env, limits, capsys)
    assert code == 1
    line = only_problem(lines)
    assert line.startswith(f"fail  state-database: the state database {db_path} is damaged (")
    assert "move it aside" in line


# -- local folders and devices ---------------------------------------------------------------------------------


def test_a_missing_local_folder_fails_with_the_mount_hint(synced, limits, capsys):
    shutil.rmtree(synced.local)
    code, lines = run(synced, limits, capsys)
    assert code == 1
    assert only_problem(lines) == (
        f"fail  local-folder: task 't': its local folder {synced.local} does not exist: if it lives on a disk "
        "that is not mounted, mount it (no pass of the task runs until it is back); if it moved, point the task "
        "at it: skysync task edit t --local PATH"
    )


def test_a_local_folder_on_another_device_than_at_the_last_pass_fails(synced, limits, capsys, monkeypatch):
    monkeypatch.setattr(StateDB, "pairing_device", lambda self, task: "8:17 /mnt/usb /dev/sdb1", raising=False)
    code, lines = run(synced, limits, capsys)
    assert code == 1
    line = only_problem(lines)
    now = local_device_id(str(synced.local))
    assert line == (
        f"fail  device: task 't': {synced.local} is now on {now} but was on 8:17 /mnt/usb /dev/sdb1 at the last "
        "pass: if that disk is not mounted, mount it before the next pass; if you moved the folder on purpose, "
        "link it again (skysync task edit t --local PATH)"
    )


def test_no_recorded_device_is_ok(synced, limits, capsys, monkeypatch):
    monkeypatch.setattr(StateDB, "pairing_device", lambda self, task: None, raising=False)
    code, lines = run(synced, limits, capsys)
    assert code == 0
    assert any(line.startswith("ok    device: task 't': no earlier pass recorded") for line in lines), lines


def test_without_pairing_device_in_the_state_every_task_is_ok(synced, limits, capsys, monkeypatch):
    monkeypatch.delattr(StateDB, "pairing_device", raising=False)
    code, lines = run(synced, limits, capsys)
    assert code == 0
    assert any("no earlier pass recorded" in line for line in lines), lines


def test_the_device_id_names_the_longest_mount_and_its_source(tmp_path):
    inner = tmp_path / "my disk" / "photos"
    inner.mkdir(parents=True)
    outer = str(tmp_path / "my disk").replace(" ", "\\040")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"40 22 8:17 / {outer} rw,relatime shared:2 - ext4 /dev/sdb1 rw\n"
        f"41 22 8:17 /x {outer} rw,relatime - ext4 /dev/sdb1 rw\n"  # stacked on the same point: the last wins
        "42 22 0:50 / /elsewhere rw - tmpfs tmpfs rw\n"
    )
    st = os.stat(inner)
    devno = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    assert local_device_id(str(inner), str(mountinfo)) == f"{devno} {outer} /dev/sdb1"
    link = tmp_path / "link"
    link.symlink_to(inner)
    assert local_device_id(str(link), str(mountinfo)) == local_device_id(str(inner), str(mountinfo))
    assert local_device_id(str(inner), str(tmp_path / "no-mountinfo")).endswith(" ? ?")


@pytest.mark.parametrize(
    ("recorded", "current", "same"),
    [
        ("8:17 /mnt/usb /dev/sdb1", "8:17 /mnt/usb /dev/sdb1", True),
        ("8:17 /mnt/usb /dev/sdb1", "8:33 /mnt/usb /dev/sdb1", True),  # replugged: another minor, same disk
        ("8:17 /mnt/usb /dev/sdb1", "8:1 / /dev/sda1", False),  # unmounted: the folder is on the root disk
        ("8:1 /home /dev/sda1", "8:1 /home/me/photos /dev/sda1", False),  # a bind mount of the same disk
        ("8:17 /mnt/usb /dev/sdb1", "8:33 /mnt/usb /dev/sdc1", False),
        ("8:17", "8:17 /mnt/usb /dev/sdb1", True),  # a bare major:minor recorded by an older engine
        ("8:17", "8:1 / /dev/sda1", False),
    ],
)
def test_same_device(recorded, current, same):
    assert same_device(recorded, current) is same


# -- free space and inotify ------------------------------------------------------------------------------------


def test_low_free_space_warns(synced, limits, capsys):
    def tight(_path: str) -> Any:
        return SimpleNamespace(f_bavail=512 * (1 << 20) // 4096, f_blocks=100 * GIB // 4096, f_frsize=4096)

    code, lines = run(synced, limits, capsys, statvfs=tight)
    assert code == 1
    bad = [line for line in lines if not line.startswith("ok ")]
    assert f"warn  free-space: task 't': only 512.0 MiB free (0%) on the disk of {synced.local}: free some " \
        "space; downloads and conflict copies need room, and a full disk fails them" in bad
    assert any(line.startswith("warn  free-space: state database: only 512.0 MiB free") for line in bad), bad


def test_a_large_disk_under_5_percent_free_warns_too(synced, limits, capsys):
    def full(_path: str) -> Any:
        return SimpleNamespace(f_bavail=40 * GIB // 4096, f_blocks=1024 * GIB // 4096, f_frsize=4096)

    code, lines = run(synced, limits, capsys, statvfs=full)
    assert code == 1
    assert any(line.startswith("warn  free-space: task 't': only 40.0 GiB free (4%)") for line in lines), lines


def test_an_inotify_limit_below_the_folders_watched_fails_with_the_sysctl_to_raise_it(env, limits, capsys):
    for i in range(150):
        (env.local / f"d{i:03}" / "sub").mkdir(parents=True)
    limits.write_text("100\n")
    code, lines = run(env, limits, capsys)
    assert code == 1
    assert only_problem(lines) == (
        "fail  inotify: the tasks watch 301 folders and the limit is 100 watches: changes in the rest are only "
        "seen by the 10-minute rescan; raise it with: sudo sysctl fs.inotify.max_user_watches=524288, and keep "
        "it after a reboot with the line fs.inotify.max_user_watches=524288 in /etc/sysctl.d/60-skysync.conf"
    )


def test_an_inotify_limit_nearly_used_up_warns(env, limits, capsys):
    for i in range(90):
        (env.local / f"d{i:03}").mkdir()
    limits.write_text("100\n")
    code, lines = run(env, limits, capsys)
    assert code == 1
    assert only_problem(lines).startswith(
        "warn  inotify: the tasks watch 91 folders and the limit is 100 watches, which it shares with the user's "
        "other programs: raise it with: sudo sysctl fs.inotify.max_user_watches=524288"
    )


def test_download_only_tasks_are_not_watched_and_the_walk_is_bounded(make_env, tmp_path, limits, capsys):
    env = make_env("download")
    for i in range(50):
        (env.local / f"d{i:03}").mkdir()
    limits.write_text("10\n")
    code, lines = run(env, limits, capsys)
    assert code == 0, lines
    assert any("no task folder to watch" in line for line in lines), lines
    assert doctor.count_folders(str(env.local), 7) == 7
    assert doctor.count_folders(str(env.local), 1000) == 51


def test_no_inotify_on_this_system_is_ok(synced, tmp_path, capsys):
    code, lines = run(synced, tmp_path / "absent", capsys)
    assert code == 0
    assert any(line.startswith("ok    inotify: no inotify watch limit to check") for line in lines), lines


# -- connections and clocks ------------------------------------------------------------------------------------


def test_an_unreachable_local_connection_fails_with_what_to_do(synced, limits, capsys):
    shutil.rmtree(synced.cloud)
    code, lines = run(synced, limits, capsys)
    assert code == 1
    assert only_problem(lines) == (
        f"fail  connection: connection 'c' does not answer its check: the folder {synced.cloud} does not exist: "
        "create it, or point the connection at one that exists: skysync connection edit c"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_s3_connection_to_a_closed_port_fails_and_never_shows_its_secret(synced, limits, capsys):
    secret = "do-not-print-this-secret-123"
    home = Home(synced.home.path)
    manage.add_connection(home, "s", "s3", {
        "preset": "other", "endpoint": f"http://127.0.0.1:{_closed_port()}", "bucket": "photos",
        "access_key_id": "AKIATEST", "secret_access_key": secret,
    })  # fmt: skip
    home.save()
    code = run_doctor(Home(synced.home.path), True, probes(limits))
    out = capsys.readouterr().out
    assert secret not in out
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    bad = [f for f in data["findings"] if f["status"] != "ok"]
    assert bad == [{
        "check": "connection", "status": "fail", "subject": "s",
        "message": bad[0]["message"],
    }]  # fmt: skip
    assert bad[0]["message"].startswith("connection 's' does not answer its check: cannot reach http://127.0.0.1:")
    assert bad[0]["message"].endswith("check the network, the endpoint and any proxy; the engine keeps retrying "
                                      "meanwhile")
    clock = [f for f in data["findings"] if f["check"] == "clock" and f["subject"] == "s"]
    assert clock[0]["message"] == "connection 's': no clock to compare (no answer)"


class SkewedProvider:
    """A provider whose service clock is `skew` seconds ahead of ours."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def check(self) -> None:
        pass

    def server_time(self) -> float:
        return FIXED_NOW + self.skew

    def close(self) -> None:
        pass


FIXED_NOW = 1_767_225_600.0


@pytest.mark.parametrize(
    ("skew", "line"),
    [
        (20.0, "ok    clock: connection 'c': this machine's clock is within 20 s of the service's"),
        (-61.0, "warn  clock: connection 'c': this machine's clock is 61 s ahead of the service's: turn on time "
                "synchronisation (sudo timedatectl set-ntp true); S3 and the services that sign requests like it "
                "refuse every request once the skew passes 15 minutes"),
        (16 * 60 + 5, "fail  clock: connection 'c': this machine's clock is 16 min 5 s behind the service's: turn "
                      "on time synchronisation (sudo timedatectl set-ntp true); S3 and the services that sign "
                      "requests like it refuse every request once the skew passes 15 minutes"),
    ],
)
def test_clock_skew_against_the_service(synced, limits, capsys, skew, line):
    code, lines = run(synced, limits, capsys, open_provider=lambda _home, _name: SkewedProvider(skew),
                      clock=lambda: FIXED_NOW)
    assert line in lines, lines
    assert code == (0 if line.startswith("ok") else 1)


class RefusingProvider(SkewedProvider):
    """Refuses the credentials (as S3 does past 15 minutes of skew), or fails with a bug whose text holds a secret."""

    def __init__(self, skew: float, error: Exception) -> None:
        super().__init__(skew)
        self.error = error

    def check(self) -> None:
        raise self.error


def test_a_refused_check_still_reads_the_clock_that_explains_it(synced, limits, capsys):
    from engine.providers.base import AuthError

    refused = RefusingProvider(-20 * 60, AuthError("the S3 service at s3.example refused the access key "
                                                   "(RequestTimeTooSkewed)"))
    code, lines = run(synced, limits, capsys, open_provider=lambda _h, _n: refused, clock=lambda: FIXED_NOW)
    assert code == 1
    assert [line for line in lines if not line.startswith("ok ")] == [
        "fail  connection: connection 'c' does not answer its check: the S3 service at s3.example refused the "
        "access key (RequestTimeTooSkewed): fix the credentials: skysync connection edit c --option KEY=-",
        "fail  clock: connection 'c': this machine's clock is 20 min 0 s ahead of the service's: turn on time "
        "synchronisation (sudo timedatectl set-ntp true); S3 and the services that sign requests like it refuse "
        "every request once the skew passes 15 minutes",
    ]


def test_an_unexpected_failure_shows_its_kind_and_never_its_text(synced, limits, capsys):
    broken = RefusingProvider(0, KeyError("secret_access_key=hunter2-very-secret"))
    code, lines = run(synced, limits, capsys, open_provider=lambda _h, _n: broken, clock=lambda: FIXED_NOW)
    assert code == 1
    assert only_problem(lines) == (
        "fail  connection: connection 'c' does not answer its check (KeyError): skysync connection test c tells more"
    )
    assert not any("hunter2" in line for line in lines)


def test_clock_skew_is_read_from_a_real_s3_answer(synced, limits, capsys):
    """moto's Date header, read by S3Provider.server_time, against a clock of ours set 10 minutes fast."""
    root = str(pathlib.Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.providers.servers import s3 as s3_server

    with s3_server.serve(pathlib.Path(synced.home.path)) as options:
        home = Home(synced.home.path)
        manage.add_connection(home, "s", "s3", dict(options))
        home.save()
        import time

        code, lines = run(synced, limits, capsys, clock=lambda: time.time() + 600)
    assert code == 1
    skewed = [line for line in lines if line.startswith("warn  clock: connection 's': this machine's clock is ")]
    assert len(skewed) == 1, lines
    assert "ahead of the service's" in skewed[0] and "15 minutes" in skewed[0]
    assert any(line == "ok    connection: connection 's' answers" for line in lines), lines


# -- output ----------------------------------------------------------------------------------------------------


def test_a_name_with_a_newline_stays_on_one_line(make_env, tmp_path, limits, capsys):
    env = make_env()
    home = Home(env.home.path)
    odd = tmp_path / "gone\nfail  home: forged"
    home.put_task(Task("odd", "c", str(odd), "/odd"))
    home.save()
    code, lines = run(env, limits, capsys)
    assert code == 1
    line = only_problem(lines)
    assert line.startswith("fail  local-folder: task 'odd': its local folder ")
    assert "gone\\x0afail  home: forged does not exist" in line


def test_json_lists_every_finding(synced, limits, capsys):
    shutil.rmtree(synced.cloud)
    code = run_doctor(Home(synced.home.path), True, probes(limits))
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["ok"] is False
    assert {f["status"] for f in data["findings"]} == {"ok", "fail"}
    assert all(set(f) == {"check", "status", "subject", "message"} for f in data["findings"])
    assert [f["check"] for f in data["findings"] if f["status"] == "fail"] == ["connection"]


def test_the_console_script_runs_doctor(synced):
    env = {**os.environ, "SKYSYNC_HOME": synced.home.path}
    ok = subprocess.run([SKYSYNC, "doctor", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in ok.stderr, ok.stderr
    data = json.loads(ok.stdout)
    assert {f["check"] for f in data["findings"]} >= {"home", "secrets", "state-database", "connection"}
    os.chmod(synced.home.secrets_path, 0o640)
    bad = subprocess.run([SKYSYNC, "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert any(line.startswith("fail  secrets: ") and "chmod 600" in line for line in bad.stdout.splitlines())


# -- every provider's clock ------------------------------------------------------------------------------------

NO_CLOCK = {"local", "b2"}  # a folder has no clock; b2sdk hides the answers' headers (and its simulator has none)
NO_CLOCK_WHEN_REFUSED = {"cos"}  # the COS SDK hands back the headers of successful answers only


def _servers() -> dict[str, Any]:
    root = str(pathlib.Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.providers.servers import discover

    return discover()


def _connection_kinds() -> list[str]:
    """The test servers of kinds a connection can have (the encrypted views wrap one of those: doctor asks the
    connection's own provider for the clock)."""
    from engine.providers import kinds

    return sorted(set(_servers()) & set(kinds()))


@pytest.mark.parametrize("kind", _connection_kinds())
def test_each_provider_reads_the_service_clock(kind, tmp_path):
    import time

    from engine.providers import provider_class

    module = _servers()[kind]
    reason = getattr(module, "unavailable", lambda: None)()
    if reason:
        pytest.skip(reason)
    with module.serve(tmp_path) as options:
        made = [provider_class(kind)(dict(options))]
        bad = getattr(module, "bad_credentials", lambda _o: None)(dict(options))
        if bad:
            made.append(provider_class(kind)(bad))
        try:
            for provider, refused in zip(made, (False, True), strict=False):
                theirs = provider.server_time()
                if kind in NO_CLOCK or (refused and kind in NO_CLOCK_WHEN_REFUSED):
                    assert theirs is None
                else:
                    assert theirs is not None, (kind, refused)
                    assert abs(theirs - time.time()) < 5, (kind, refused)
        finally:
            for provider in made:
                provider.close()
