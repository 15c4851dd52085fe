"""A home with one `local` connection and one task, and helpers to run passes and look at both sides."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from engine import manage
from engine.config import Home, Task
from engine.sync import PassResult, run_pass


@dataclass
class Env:
    home: Home
    local: pathlib.Path
    cloud: pathlib.Path
    task: str = "t"

    def sync(self, **kw) -> PassResult:
        kw.setdefault("hostname", "testhost")
        return run_pass(Home(self.home.path), self.task, **kw)

    def tree(self, root: pathlib.Path) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for d in dirnames:
                out[os.path.normpath(os.path.join(rel, d))] = None
            for f in filenames:
                out[os.path.normpath(os.path.join(rel, f))] = pathlib.Path(dirpath, f).read_bytes()
        return out

    def local_tree(self):
        return self.tree(self.local)

    def cloud_tree(self):
        return self.tree(self.cloud)


def write(path: pathlib.Path, data: bytes | str, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def make_env(tmp_path: pathlib.Path) -> Callable[..., Env]:
    def make(direction: str = "bidirectional", **task_kw) -> Env:
        home = Home(str(tmp_path / "home"))
        local = tmp_path / "local"
        cloud = tmp_path / "cloud"
        local.mkdir(exist_ok=True)
        cloud.mkdir(exist_ok=True)
        manage.add_connection(home, "c", "local", {"root": str(cloud)})
        manage.add_task(home, Task("t", "c", str(local), "/", direction=direction, **task_kw))
        home.save()
        return Env(home, local, cloud)

    return make


@pytest.fixture
def env(make_env) -> Env:
    return make_env()
