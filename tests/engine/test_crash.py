"""kill -9 a real `skysync sync` at random moments; the next pass must converge with nothing lost,
corrupted, duplicated or left behind."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

from engine import manage
from engine.config import Home, Task
from engine.localfs import TEMP_PREFIX
from engine.providers.local import LocalProvider

SKYSYNC = [sys.executable, "-m", "engine.cli"]


def _digest_tree(root) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.md5(fh.read()).hexdigest()
    return out


def _populate(root, prefix: str, n: int, rng: random.Random) -> None:
    for i in range(n):
        path = os.path.join(root, f"{prefix}{i % 7}", f"sub{i % 3}", f"{prefix}-{i}.bin")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(rng.randbytes(rng.choice([0, 1, 100, 5_000, 60_000])))


def test_kill_minus_nine_then_resume(tmp_path):
    rng = random.Random(20261125)
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    local.mkdir()
    cloud.mkdir()
    _populate(local, "up", 500, rng)
    _populate(cloud, "down", 500, rng)
    expected = {**_digest_tree(local), **_digest_tree(cloud)}

    home = Home(str(tmp_path / "home"))
    manage.add_connection(home, "c", "local", {"root": str(cloud), "upload_limit": "1200",
                                                "download_limit": "1200"})
    manage.add_task(home, Task("t", "c", str(local), "/"))
    home.save()
    env = {**os.environ, "SKYSYNC_HOME": home.path}

    seed = random.randrange(1 << 30)
    timing = random.Random(seed)  # fresh kill moments every run; the seed is in the failure message
    # ~6.5 MB each way at 1,200 KB/s is a pass of over 5 s, longer than all four kill moments together,
    # so every round is killed mid-pass however fast the machine is.
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen([*SKYSYNC, "sync", "t"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        time.sleep(timing.uniform(0.3, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills == 4, f"the pass finished before it could be killed (seed {seed}); use more data"

    final = subprocess.run([*SKYSYNC, "sync", "t"], env=env, capture_output=True, text=True)
    assert final.returncode == 0, (seed, final.stderr)
    local_tree, cloud_tree = _digest_tree(local), _digest_tree(cloud)
    assert not [p for p in local_tree if os.path.basename(p).startswith(TEMP_PREFIX)]
    # The killed uploads' temporary files stay in the cloud folder (shared: one may be another computer's upload
    # in progress) until they are a day old; then the next pass removes them.
    cloud_temps = [p for p in cloud_tree if os.path.basename(p).startswith(TEMP_PREFIX)]
    cloud_tree = {p: d for p, d in cloud_tree.items() if p not in cloud_temps}
    later = LocalProvider({"root": str(cloud)})
    later.clock = lambda: time.time() + 2 * 24 * 3600
    list(later.list(""))
    assert later.clean_interrupted("") == len(cloud_temps)
    assert not [p for p in _digest_tree(cloud) if os.path.basename(p).startswith(TEMP_PREFIX)]
    assert local_tree == cloud_tree == expected, seed  # nothing lost, corrupted or duplicated
    again = subprocess.run([*SKYSYNC, "sync", "t", "--json"], env=env, capture_output=True, text=True)
    assert '"summary": {}' in again.stdout
