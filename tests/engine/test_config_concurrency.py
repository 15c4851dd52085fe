"""Changes of one home's configuration made at the same time: none is lost, none writes over another."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import tomllib

import pytest

from engine.config import Home, Task
from engine.configlock import config_lock
from engine.errors import UsageError

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


def test_parallel_task_and_connection_adds_all_survive(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SKYSYNC_HOME": str(home)}
    (tmp_path / "cloud").mkdir()
    subprocess.run([SKYSYNC, "connection", "add", "c", "--provider", "local", "--option",
                    f"root={tmp_path / 'cloud'}"], env=env, check=True, capture_output=True, timeout=60)
    commands = []
    for i in range(8):
        (tmp_path / f"l{i}").mkdir()
        commands.append(["task", "add", f"t{i}", "--connection", "c", "--local", str(tmp_path / f"l{i}"),
                         "--remote", f"/r{i}", "--direction", "bidirectional"])
    for i in range(4):  # a password each, in secrets.toml: the two files change together
        commands.append(["connection", "add", f"w{i}", "--provider", "webdav", "--no-test", "--option",
                         f"url=http://127.0.0.1:9/d{i}", "--option", f"user=u{i}", "--option", f"password=PW{i}"])
    procs = [subprocess.Popen([SKYSYNC, *c], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    config = tomllib.loads((home / "config.toml").read_text())
    secrets = tomllib.loads((home / "secrets.toml").read_text())
    assert sorted(config["tasks"]) == sorted(f"t{i}" for i in range(8))
    assert sorted(config["connections"]) == sorted(["c", *(f"w{i}" for i in range(4))])
    assert {n: s["password"] for n, s in secrets["connections"].items()} == {f"w{i}": f"PW{i}" for i in range(4)}


def _home_with_connection(tmp_path) -> Home:
    (tmp_path / "cloud").mkdir()
    home = Home(str(tmp_path / "home"))
    from engine.config import Connection

    home.put_connection(Connection("c", "local", {"root": str(tmp_path / "cloud")}), {})
    home.save()
    return Home(home.path)


def test_a_save_never_writes_over_a_change_made_since_its_read(tmp_path):
    first = _home_with_connection(tmp_path)
    second = Home(first.path)
    for home, name in ((first, "a"), (second, "b")):
        (tmp_path / name).mkdir()
        home.put_task(Task(name, "c", str(tmp_path / name), "/" + name))
    first.save()
    with pytest.raises(UsageError, match="changed by another command while this one ran; nothing was saved"):
        second.save()
    assert [t.name for t in Home(first.path).tasks()] == ["a"]
    (tmp_path / "x").mkdir()
    first.put_task(Task("x", "c", str(tmp_path / "x"), "/x"))
    first.save()  # what it wrote itself is no change by another
    assert [t.name for t in Home(first.path).tasks()] == ["a", "x"]


def test_the_lock_is_reentrant_and_a_long_wait_is_one_line(tmp_path):
    path = str(tmp_path / "home")
    held, release = threading.Event(), threading.Event()

    def other() -> None:
        with config_lock(path):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        held.wait(10)
        with (pytest.raises(UsageError, match="another skysync command has been changing the configuration") as exc,
              config_lock(path, wait=0.2)):
            pass
        assert "\n" not in str(exc.value)
    finally:
        release.set()
        thread.join()
    with config_lock(path), config_lock(path, wait=0.1):  # this thread's own hold: no wait
        pass
