"""SIGTERM to `skysync sync` (a service manager stopping it, `timeout`) stops it as Ctrl+C does: the transfer's
temporary file is removed, the exit is 143 with one line, and the next pass finishes the work."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


def test_sigterm_mid_transfer_stops_cleanly(tmp_path: pathlib.Path) -> None:
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    local.mkdir()
    cloud.mkdir()
    env = {**os.environ, "SKYSYNC_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60)

    # 1 MiB/s: the 6 MiB file takes six seconds, time enough to stop it mid-way.
    assert cli("connection", "add", "c", "--provider", "local", "--option", f"root={cloud}",
               "--option", "upload_limit=1024").returncode == 0
    assert cli("task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/",
               "--direction", "bidirectional").returncode == 0
    data = os.urandom(6 * 1024 * 1024)
    (local / "big.bin").write_bytes(data)
    p = subprocess.Popen([SKYSYNC, "sync", "t"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n.startswith(".skysync-tmp-") for n in os.listdir(cloud)):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "SIGTERM" in err
    assert os.listdir(cloud) == []  # the temporary file is gone, nothing half-written in place
    assert cli("connection", "edit", "c", "--option", "upload_limit=0").returncode == 0
    assert cli("sync", "t").returncode == 0
    assert (cloud / "big.bin").read_bytes() == data


def test_sigterm_while_many_small_files_are_copied(tmp_path: pathlib.Path) -> None:
    """SIGTERM part-way through the small files of a local cloud (copied one after another in the main thread):
    no temporary file anywhere, every file in the cloud whole, and the next pass copies the rest."""
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    cloud.mkdir()
    env = {**os.environ, "SKYSYNC_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60)

    files = {f"d{i // 40}/f{i}.txt": os.urandom(500 + i % 300) for i in range(400)}
    for rel, data in files.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    # 64 KiB/s: the 260 KB take four seconds, time enough to stop the pass part-way.
    assert cli("connection", "add", "c", "--provider", "local", "--option", f"root={cloud}",
               "--option", "upload_limit=64").returncode == 0
    assert cli("task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/",
               "--direction", "bidirectional").returncode == 0
    p = subprocess.Popen([SKYSYNC, "sync", "t"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(len(f) for _, _, f in os.walk(cloud)) < 40:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    copied = {os.path.relpath(os.path.join(d, n), cloud) for d, _, names in os.walk(cloud) for n in names}
    assert not any(".skysync-tmp-" in c for c in copied), copied
    assert 0 < len(copied) < len(files)
    for rel in copied:
        assert (cloud / rel).read_bytes() == files[rel]  # whole, never a torn copy under the name
    assert cli("connection", "edit", "c", "--option", "upload_limit=0").returncode == 0
    assert cli("sync", "t").returncode == 0
    assert {os.path.relpath(os.path.join(d, n), cloud) for d, _, names in os.walk(cloud) for n in names} == set(files)


def test_ctrl_c_pressed_three_times_is_one_line(tmp_path: pathlib.Path) -> None:
    """An impatient user presses Ctrl+C three times while big files download in worker threads: the first stops
    the pass (the transfers stop, their temporary files removed), the later ones are ignored; one line, no
    traceback from the cleanup they would otherwise cut short."""
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    local.mkdir()
    cloud.mkdir()
    env = {**os.environ, "SKYSYNC_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60)

    # 1 MiB/s shared by the downloads of 12 MiB: twelve seconds, far longer than the three presses.
    assert cli("connection", "add", "c", "--provider", "local", "--option", f"root={cloud}",
               "--option", "download_limit=1024").returncode == 0
    assert cli("task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/",
               "--direction", "bidirectional").returncode == 0
    for i in range(6):
        (cloud / f"big{i}.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    p = subprocess.Popen([SKYSYNC, "sync", "t"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n.startswith(".skysync-tmp-") for n in os.listdir(local)):
        time.sleep(0.02)
    for _ in range(3):
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert err.strip() == "skysync: error: interrupted", err
    assert os.listdir(local) == []  # every temporary file removed, nothing half-written in place
