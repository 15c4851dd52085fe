"""A real `skysync run` process against the local provider: changes flow both ways, one engine per home,
changes made during a pass are not lost, SIGTERM mid-transfer leaves no partial file."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.config import Home
from engine.runtime import control

from .conftest import HomeSetup, make_home, wait_for

SKYSYNC = os.path.join(os.path.dirname(sys.executable), "skysync")
MiB = 1 << 20


def _command(home: str, *args: str) -> list[str]:
    if os.path.exists(SKYSYNC):
        return [SKYSYNC, "--home", home, *args]
    return [sys.executable, "-m", "engine.cli", "--home", home, *args]


class Runner:
    """One `skysync run` process; its stderr goes to a file the test can grep."""

    def __init__(self, setup: HomeSetup, name: str = "run") -> None:
        self.setup = setup
        self.log_path = os.path.join(setup.base, f"{name}.log")
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(_command(setup.path, "run"), stderr=self._log, stdout=self._log, env=env)

    def ready(self, timeout: float = 10.0) -> dict:
        """Wait until the engine answers and its first pass of every task is done."""

        def first_passes_done():
            st = control.query(self.setup.path, {"cmd": "status"}, timeout=2)
            if st and st.get("tasks") and all(t["passes"] >= 1 for t in st["tasks"].values()):
                return st
            assert self.proc.poll() is None, self.log()
            return None

        st = wait_for(first_passes_done, timeout, 0.05)
        assert st, self.log()
        return st

    def status(self) -> dict:
        return control.query(self.setup.path, {"cmd": "status"}, timeout=2) or {}

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout: float = 8.0) -> tuple[int, float]:
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._log.close()
        return rc, time.monotonic() - t0


@pytest.fixture
def runners():
    started: list[Runner] = []
    yield started
    for r in started:
        if r.proc.poll() is None:
            r.stop()


def _temp_files(*roots: str) -> list[str]:
    found = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            found += [os.path.join(folder, f) for f in files if f.startswith(".skysync-tmp-")]
    return found


def _md5(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def test_changes_flow_both_ways_while_the_engine_runs(short_base, runners):
    setup = make_home(short_base, conns={"c": {"polling_period": 10}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    run = Runner(setup)
    runners.append(run)
    run.ready()

    # A local save is uploaded promptly (the watcher, not the poll).
    t0 = time.monotonic()
    with open(os.path.join(local, "doc.txt"), "w") as f:
        f.write("saved locally")
    assert wait_for(lambda: os.path.exists(os.path.join(cloud, "doc.txt")), 5), run.log()
    upload_latency = time.monotonic() - t0
    assert upload_latency < 3.0, upload_latency
    with open(os.path.join(cloud, "doc.txt")) as f:
        assert f.read() == "saved locally"

    # A remote change arrives by polling, within the polling period (10 s) plus the pass itself.
    os.makedirs(os.path.join(cloud, "from-cloud"), exist_ok=True)
    with open(os.path.join(cloud, "from-cloud", "remote.txt"), "w") as f:
        f.write("changed remotely")
    t0 = time.monotonic()
    target = os.path.join(local, "from-cloud", "remote.txt")
    assert wait_for(lambda: os.path.exists(target), 13), run.log()
    assert time.monotonic() - t0 <= 12.5
    with open(target) as f:
        assert f.read() == "changed remotely"

    # `skysync status --json` talks to the running engine.
    out = subprocess.run(_command(setup.path, "status", "--json"), capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["engine_running"] is True

    # A second engine for the same home refuses, with one clear line.
    second = subprocess.run(_command(setup.path, "run"), capture_output=True, text=True, timeout=20)
    assert second.returncode == 2
    assert second.stderr.strip().startswith("skysync: another skysync engine is already running for this home")
    assert len(second.stderr.strip().splitlines()) == 1

    rc, took = run.stop()
    assert rc == 0 and took < 5, (rc, took)
    log = run.log()
    assert " skysync task=t uploaded path=doc.txt" in log
    assert " skysync task=t downloaded path=from-cloud/remote.txt" in log
    assert "engine stopped" in log


def test_changes_made_during_a_pass_are_picked_up_by_the_next(short_base, runners):
    setup = make_home(short_base, conns={"c": {"upload_limit": 2048, "polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    with open(os.path.join(local, "big.bin"), "wb") as f:
        f.write(os.urandom(4 * MiB))  # ~2 s at 2 MiB/s: the first pass is still running when we edit
    run = Runner(setup)
    runners.append(run)
    assert wait_for(lambda: run.status().get("tasks", {}).get("t", {}).get("transfers"), 8), run.log()

    with open(os.path.join(local, "during.txt"), "w") as f:
        f.write("written while the first pass ran")
    os.makedirs(os.path.join(local, "new", "deeper"))
    with open(os.path.join(local, "new", "deeper", "x.txt"), "w") as f:
        f.write("x")
    assert run.status()["tasks"]["t"]["state"] == "syncing"  # the edits really landed mid-pass

    expected = ["big.bin", "during.txt", os.path.join("new", "deeper", "x.txt")]
    assert wait_for(lambda: all(os.path.exists(os.path.join(cloud, p)) for p in expected), 10), run.log()
    assert _md5(os.path.join(cloud, "big.bin")) == _md5(os.path.join(local, "big.bin"))
    # The counter moves when a pass returns, a moment after its last file lands; wait for it rather than race it.
    assert wait_for(lambda: run.status().get("tasks", {}).get("t", {}).get("passes", 0) >= 2, 10), run.log()
    rc, _ = run.stop()
    assert rc == 0


def test_sigterm_mid_transfer_leaves_no_partial_file_and_the_next_start_completes(short_base, runners):
    setup = make_home(short_base, conns={"c": {"upload_limit": 1024, "polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    with open(os.path.join(local, "large.bin"), "wb") as f:
        f.write(os.urandom(8 * MiB))  # 8 s at the 1 MiB/s limit
    run = Runner(setup)
    runners.append(run)

    def in_flight():
        transfers = run.status().get("tasks", {}).get("t", {}).get("transfers", [])
        return [t for t in transfers if t["done"] > MiB]

    assert wait_for(in_flight, 8), run.log()
    assert _temp_files(cloud), "the upload is in progress under a temporary name"
    rc, took = run.stop()
    assert rc == 0, run.log()
    assert took < 5, took
    assert not os.path.exists(os.path.join(cloud, "large.bin"))
    assert _temp_files(cloud, local) == []

    home = Home(setup.path)  # lift the limit and start again: the work completes
    conn = home.connection("c")
    conn.upload_limit = 0
    home.put_connection(conn, {})
    home.save()
    run2 = Runner(setup, "run2")
    runners.append(run2)
    assert wait_for(lambda: os.path.exists(os.path.join(cloud, "large.bin")), 10), run2.log()
    assert _md5(os.path.join(cloud, "large.bin")) == _md5(os.path.join(local, "large.bin"))
    rc, _ = run2.stop()
    assert rc == 0
    assert _temp_files(cloud, local) == []


def test_a_crash_is_followed_by_a_clean_restart(short_base, runners):
    setup = make_home(short_base, conns={"c": {"upload_limit": 2048, "polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    with open(os.path.join(local, "video.bin"), "wb") as f:
        f.write(os.urandom(6 * MiB))
    run = Runner(setup)
    runners.append(run)
    assert wait_for(lambda: run.status().get("tasks", {}).get("t", {}).get("transfers"), 8), run.log()
    run.proc.kill()  # no cleanup at all: the kernel drops the engine lock
    run.proc.wait(5)
    assert not os.path.exists(os.path.join(cloud, "video.bin"))

    home = Home(setup.path)
    conn = home.connection("c")
    conn.upload_limit = 0
    home.put_connection(conn, {})
    home.save()
    run2 = Runner(setup, "run2")
    runners.append(run2)
    assert wait_for(lambda: os.path.exists(os.path.join(cloud, "video.bin")), 10), run2.log()
    assert _md5(os.path.join(cloud, "video.bin")) == _md5(os.path.join(local, "video.bin"))
    assert "already running" not in run2.log()
    rc, _ = run2.stop()
    assert rc == 0
    assert _temp_files(local) == []  # the killed run's local leftovers are cleaned by the next pass
