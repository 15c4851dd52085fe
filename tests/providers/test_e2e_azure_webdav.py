"""Two-way tasks end to end against real servers: Azurite (azure) and wsgidav (webdav).

Each scenario configures a connection and a bidirectional task the way `skysync connection add` / `task add`
do, runs real passes with `run_pass`, changes the cloud side through a second provider instance (another
client of the same account), and checks both sides converge, with an idempotent pass at the end.
"""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from engine import manage
from engine.config import Home, Task
from engine.providers import provider_class
from engine.providers.base import Provider
from engine.sync import PassResult, run_pass

from .servers import azure as azure_server
from .servers import webdav as webdav_server

SERVERS = {"azure": azure_server, "webdav": webdav_server}


@dataclass
class Env:
    home: Home
    local: pathlib.Path
    cloud: Provider  # another client of the same account

    def sync(self) -> PassResult:
        result = run_pass(Home(self.home.path), "t", hostname="testhost")
        assert result.exit_code == 0, result.as_dict()
        return result

    def local_tree(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for dirpath, dirnames, filenames in os.walk(self.local):
            rel = os.path.relpath(dirpath, self.local)
            for d in dirnames:
                out[os.path.normpath(os.path.join(rel, d))] = None
            for f in filenames:
                out[os.path.normpath(os.path.join(rel, f))] = pathlib.Path(dirpath, f).read_bytes()
        return out

    def cloud_tree(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for entry in self.cloud.list(""):
            if entry.is_dir:
                out[entry.path] = None
            else:
                buf = io.BytesIO()
                self.cloud.download(entry.path, buf)
                out[entry.path] = buf.getvalue()
        return out

    def put_cloud(self, path: str, data: bytes, mtime: float = 1_700_000_000) -> None:
        self.cloud.upload(path, io.BytesIO(data), len(data), mtime)


def write(path: pathlib.Path, data: bytes, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def transfers(result: PassResult) -> int:
    return sum(result.summary.values())


@pytest.fixture(params=sorted(SERVERS))
def env(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Env]:
    module = SERVERS[request.param]
    reason = getattr(module, "unavailable", lambda: None)()
    if reason:
        pytest.skip(reason)
    with module.serve(tmp_path) as options:
        home = Home(str(tmp_path / "home"))
        local = tmp_path / "local"
        local.mkdir()
        manage.add_connection(home, "c", request.param, options)
        manage.add_task(home, Task("t", "c", str(local), "/", direction="bidirectional"))
        home.save()
        cloud = provider_class(request.param)(options)
        try:
            yield Env(home, local, cloud)
        finally:
            cloud.close()


def test_initial_union_then_an_idempotent_pass(env: Env) -> None:
    write(env.local / "a.txt", b"A")
    write(env.local / "b/c.txt", b"C")
    (env.local / "empty-local").mkdir()
    env.put_cloud("d.txt", b"D")
    env.put_cloud("b/e.txt", b"E")
    env.cloud.mkdir("empty-cloud")
    env.sync()
    expected = {
        "a.txt": b"A", "b": None, "b/c.txt": b"C", "b/e.txt": b"E", "d.txt": b"D",
        "empty-local": None, "empty-cloud": None,
    }  # fmt: skip
    assert env.local_tree() == expected
    assert env.cloud_tree() == expected
    again = env.sync()
    assert transfers(again) == 0, again.summary


def test_changes_and_deletions_travel_both_ways(env: Env) -> None:
    write(env.local / "x.txt", b"1")
    write(env.local / "dir/y.txt", b"2")
    write(env.local / "z.txt", b"3")
    write(env.local / "gone/w.txt", b"4")
    env.sync()
    write(env.local / "x.txt", b"local edit", mtime=2_000_000_000)
    env.put_cloud("dir/y.txt", b"remote edit!")
    env.cloud.delete("z.txt")
    env.put_cloud("new/remote.txt", b"n")
    (env.local / "gone/w.txt").unlink()
    (env.local / "gone").rmdir()
    env.sync()
    expected = {"x.txt": b"local edit", "dir": None, "dir/y.txt": b"remote edit!", "new": None,
                "new/remote.txt": b"n"}  # fmt: skip
    assert env.local_tree() == expected
    assert env.cloud_tree() == expected
    # A folder emptied on the cloud side disappears locally too.
    env.cloud.delete("new/remote.txt")
    env.cloud.rmdir("new")
    env.sync()
    assert "new" not in env.local_tree()
    assert env.cloud_tree() == env.local_tree()
    assert transfers(env.sync()) == 0


def test_conflict_keeps_local_version_and_a_copy_of_the_remote_one(env: Env) -> None:
    write(env.local / "doc.txt", b"base")
    env.sync()
    write(env.local / "doc.txt", b"local version", mtime=2_000_000_000)
    env.put_cloud("doc.txt", b"remote version!", mtime=2_000_000_100)
    result = env.sync()
    assert result.summary.get("conflict") == 1, result.summary
    local = env.local_tree()
    assert local == env.cloud_tree()
    assert local["doc.txt"] == b"local version"
    copies = [k for k in local if k.startswith("doc_testhost_Conflict_") and k.endswith(".txt")]
    assert len(copies) == 1 and local[copies[0]] == b"remote version!"
    assert transfers(env.sync()) == 0
