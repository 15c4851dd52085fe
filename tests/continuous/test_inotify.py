"""Running out of inotify watches: said once (with the limit and how to raise it), the task's tree is rescanned
every EXHAUSTED_RESCAN seconds instead of every ten minutes, `status` and `skysync doctor` report it, and when
watches are free again every folder is watched again.

watchfiles says nothing when the limit is reached (checked with 1.3: with ignore_permission_denied it stops
adding watches silently, and folders made later get none either way), so the watcher asks the kernel itself.
The last test runs a real engine under a real limit of 10 watches, in a user namespace of its own: the limit
there (/proc/sys/user/max_inotify_watches) is ours to set and nobody else on the machine feels it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from engine import doctor
from engine.events import LogRecord
from engine.runtime import Engine, watch
from engine.runtime.control import inotify_marker_path
from engine.runtime.watch import LocalWatcher, watch_room

from .conftest import make_home, wait_for


class Room:
    """A probe the test controls: False is the kernel saying ENOSPC."""

    def __init__(self, room: bool) -> None:
        self.room = room
        self.asked = 0

    def __call__(self, path: str) -> bool:
        self.asked += 1
        return self.room


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(watch, "EXHAUSTED_RESCAN", 0.5)
    monkeypatch.setattr(watch, "EXHAUSTED_RECHECK", 0.5)


def test_watch_room_answers_for_a_real_folder(tmp_path):
    assert watch_room(str(tmp_path)) is True  # this machine is far from its limit
    assert watch_room(str(tmp_path / "missing")) is None  # cannot tell: not a limit


def test_a_watcher_short_of_watches_says_so_once_and_rescans_often(tmp_path, fast):
    reasons: list[str] = []
    limits: list[tuple[bool, int | None, float]] = []
    room = Room(False)
    w = LocalWatcher(str(tmp_path), lambda reason, paths: reasons.append(reason),
                     on_limit=lambda *a: limits.append(a), probe=room, rescan_interval=600)
    w.start()
    try:
        assert wait_for(lambda: limits, 5)
        exhausted, limit, every = limits[0]
        assert exhausted and every == 0.5 and limit == watch.read_watch_limit()
        assert w.exhausted and w.rescan_period() == 0.5
        time.sleep(1.5)
        assert len(limits) == 1  # said once, however often it looks
        (tmp_path / "new.txt").write_text("x")
        assert wait_for(lambda: "rescan" in reasons, 10), reasons  # the rescan finds it (every 0.5 s, not 600)

        room.room = True  # watches are free again: re-armed, every folder watched, and said once
        assert wait_for(lambda: len(limits) == 2, 5), limits
        assert limits[1][0] is False and not w.exhausted and w.rescan_period() == 600
    finally:
        w.stop(3)


def test_the_rescan_never_takes_more_than_a_tenth_of_the_time(tmp_path, fast):
    w = LocalWatcher(str(tmp_path), lambda *a: None, probe=Room(False), use_events=False)
    w.exhausted = True
    w._rescan_cost = 0.2  # a big tree: 0.2 s per rescan
    assert w.rescan_period() == 2.0
    w._rescan_cost = 100.0
    assert w.rescan_period() == watch.RESCAN_INTERVAL  # never longer than the normal safety net


def test_the_engine_logs_it_once_shows_it_and_doctor_reports_it(short_base, fast, monkeypatch):
    room = Room(False)
    monkeypatch.setattr(watch, "watch_room", room)
    setup = make_home(short_base, conns={"c": {"polling_period": 3600}})
    records: list[LogRecord] = []
    e = Engine(setup.path, control=False)
    e.subscribe(lambda ev: records.append(ev) if isinstance(ev, LogRecord) else None)
    e.start()
    try:
        assert wait_for(lambda: (e.status()["tasks"]["t"]["watch"] or {}).get("mode") == "rescan", 5)
        st = e.status()["tasks"]["t"]["watch"]
        assert st["rescan_every"] == 0.5 and st["limit"] == watch.read_watch_limit()
        # The status changes first, the log line follows on the watcher's thread: wait for it, then make
        # sure it stays the only one.
        assert wait_for(lambda: any("inotify" in r.message for r in records), 5)
        time.sleep(1.0)  # two more recheck periods: a second line would show up here
        lines = [r.message for r in records if "inotify" in r.message]
        assert len(lines) == 1, lines
        target = doctor._suggested_limit(st["limit"] or 0)
        assert f"fs.inotify.max_user_watches = {st['limit']:,}" in lines[0]
        assert f"sudo sysctl fs.inotify.max_user_watches={target}" in lines[0]
        assert f"fs.inotify.max_user_watches={target} in /etc/sysctl.d/60-skysync.conf" in lines[0]

        marker = inotify_marker_path(setup.path)
        assert wait_for(lambda: os.path.exists(marker), 5)  # written just after the status changed
        with open(marker) as f:
            data = json.load(f)
        assert data["pid"] == os.getpid() and list(data["tasks"]) == ["t"]
        findings = [f for f in doctor.collect(setup.home()) if f.check == "inotify" and f.status != "ok"]
        assert len(findings) == 1 and findings[0].status == "fail", findings
        assert "the running engine" in findings[0].message and "task(s) t" in findings[0].message
        assert "rescan every 0.5 s" in findings[0].message

        local = setup.local()  # saves are still seen (here the events work; the rescans are the net)
        with open(os.path.join(local, "a.txt"), "w") as f:
            f.write("a")
        cloud = os.path.join(setup.remote_root(), "t", "a.txt")
        assert wait_for(lambda: os.path.exists(cloud), 5)

        room.room = True
        assert wait_for(lambda: e.status()["tasks"]["t"]["watch"] == {"mode": "events"}, 5)
        assert wait_for(lambda: not os.path.exists(marker), 5)
        assert wait_for(lambda: any("available again" in r.message for r in records), 5)
        assert not [f for f in doctor.collect(setup.home()) if f.check == "inotify" and f.status != "ok"]
    finally:
        e.stop(5)


def test_doctor_tells_a_stopped_engines_report_apart(short_base):
    setup = make_home(short_base)
    marker = inotify_marker_path(setup.path)
    os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open(marker, "w") as f:
        json.dump({"pid": dead.pid, "limit": 8192, "rescan_every": 30,
                   "tasks": {"t": {"since": time.time(), "folder": setup.local()}}}, f)
    (finding,) = [f for f in doctor.collect(setup.home()) if f.check == "inotify" and f.status != "ok"]
    assert finding.status == "warn" and "no longer running" in finding.message and "(limit 8,192)" in finding.message
    assert "sudo sysctl fs.inotify.max_user_watches=524288" in finding.message


# -- a real limit ---------------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from engine import doctor
    from engine.runtime import watch
    from engine.config import Home
    from engine.events import LogRecord
    from engine.runtime import Engine

    watch.EXHAUSTED_RESCAN = 2.0
    home, local, cloud = sys.argv[1:4]
    out = {"limit_lines": [], "user_limit": open("/proc/sys/user/max_inotify_watches").read().strip()}
    e = Engine(home, control=False)
    e.subscribe(lambda ev: out["limit_lines"].append(ev.message)
                if isinstance(ev, LogRecord) and "inotify" in ev.message else None)
    e.start()
    try:
        deadline = time.monotonic() + 15
        while (e.status()["tasks"]["t"]["watch"] or {}).get("mode") != "rescan" and time.monotonic() < deadline:
            time.sleep(0.1)
        out["watch"] = e.status()["tasks"]["t"]["watch"]
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(cloud, "d39", "old.txt")) and time.monotonic() < deadline:
            time.sleep(0.1)
        e.wait_idle(10)
        # a folder made now gets no watch (none is left), and a file saved in it 2.5 s later is not seen by the
        # new-folder look a second after the folder appeared: only the rescans can find it
        os.makedirs(os.path.join(local, "late"))
        time.sleep(2.5)
        with open(os.path.join(local, "late", "saved.txt"), "w") as f:
            f.write("saved")
        t0 = time.monotonic()
        target = os.path.join(cloud, "late", "saved.txt")
        while not os.path.exists(target) and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        out["late_seen_after"] = time.monotonic() - t0 if os.path.exists(target) else None
        out["marker"] = os.path.exists(os.path.join(home, ".run", "inotify-exhausted"))
        out["doctor"] = [f.message for f in doctor.collect(Home(home)) if f.check == "inotify" and f.status != "ok"]
    finally:
        e.stop(5)
    print(json.dumps(out))
    """
)


def _unshare_works() -> str | None:
    if not shutil.which("unshare") or not os.path.exists("/proc/sys/user/max_inotify_watches"):
        return "no unshare or no per-namespace inotify limit on this system"
    probe = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c", "echo 10 > /proc/sys/user/max_inotify_watches"],
        capture_output=True, text=True,
    )
    if probe.returncode != 0:
        return f"cannot make a user namespace with its own inotify limit: {probe.stderr.strip()}"
    return None


def test_a_real_limit_of_ten_watches(short_base):
    why = _unshare_works()
    if why:
        pytest.skip(why)
    setup = make_home(short_base, conns={"c": {"polling_period": 3600}})
    local, cloud = setup.local(), os.path.join(setup.remote_root(), "t")
    for i in range(40):
        os.makedirs(os.path.join(local, f"d{i:02d}"))
    os.makedirs(os.path.join(local, "d39"), exist_ok=True)
    with open(os.path.join(local, "d39", "old.txt"), "w") as f:
        f.write("old")
    script = os.path.join(short_base, "child.py")
    with open(script, "w") as f:
        f.write(CHILD)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c",
         'echo 10 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"',
         sys.executable, script, setup.path, local, cloud],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=1))
    assert out["user_limit"] == "10"
    assert "(fs.inotify.max_user_watches = 10)" in out["limit_lines"][0]  # the limit that applies, not the host's
    assert out["watch"]["mode"] == "rescan", out
    assert len(out["limit_lines"]) == 1, out  # logged once
    assert "sudo sysctl fs.inotify.max_user_watches=" in out["limit_lines"][0]
    assert out["late_seen_after"] is not None and out["late_seen_after"] < 8, out  # the 2 s rescan, not 10 min
    assert out["marker"] and len(out["doctor"]) == 1 and "the running engine" in out["doctor"][0], out


def test_threads_left_behind_are_daemons():
    # the watcher threads of the tests above are daemons: a stuck one never keeps pytest alive
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("watch:"))
