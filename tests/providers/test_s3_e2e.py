"""Two-way tasks against moto S3 through the real engine pass: what a user does, what must happen on both sides.

The bucket is changed behind the engine's back with a plain boto3 client, as another device would; the moto
gate counts every HTTP request, so "a pass with nothing to do costs one listing" is checked, not assumed.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from engine import manage
from engine.config import Home, Task
from engine.sync import PassResult, run_pass

from .servers import _moto, s3

HOSTILE_KEYS = ["../escape", "/abs", "a/../../b", "back\\slash.txt", "n" * 300]


@dataclass
class Env:
    home: Home
    local: pathlib.Path
    bucket: str
    client: Any

    def sync(self, **kw: Any) -> PassResult:
        kw.setdefault("hostname", "testhost")
        return run_pass(Home(self.home.path), "t", **kw)

    def put(self, key: str, data: bytes | str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data.encode() if isinstance(data, str) else data)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def bucket_files(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                if not item["Key"].endswith("/"):
                    body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                    out[item["Key"]] = body.read()
        return out

    def bucket_folders(self) -> set[str]:
        keys = {
            item["Key"]
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            for item in page.get("Contents", ())
        }
        return {k.rstrip("/") for k in keys if k.endswith("/")} | {
            "/".join(k.split("/")[:i]) for k in keys for i in range(1, k.rstrip("/").count("/") + 1)
        }

    def local_files(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for dirpath, _, filenames in os.walk(self.local):
            for name in filenames:
                full = pathlib.Path(dirpath, name)
                out[full.relative_to(self.local).as_posix()] = full.read_bytes()
        return out

    def local_folders(self) -> set[str]:
        return {
            pathlib.Path(dirpath, d).relative_to(self.local).as_posix()
            for dirpath, dirnames, _ in os.walk(self.local)
            for d in dirnames
        }


def write(path: pathlib.Path, data: bytes | str, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def make_env(tmp_path: pathlib.Path) -> Iterator[Callable[..., Env]]:
    clients: list[Any] = []

    def make(direction: str = "bidirectional", remote: str = "/") -> Env:
        home = Home(str(tmp_path / "home"))
        local = tmp_path / "sandbox" / "local"
        local.mkdir(parents=True)
        options = s3.options(_moto.new_bucket())
        manage.add_connection(home, "c", "s3", options)
        manage.add_task(home, Task("t", "c", str(local), remote, direction=direction))
        home.save()
        client = boto3.client(
            "s3",
            endpoint_url=options["endpoint"],
            region_name="us-east-1",
            aws_access_key_id=options["access_key_id"],
            aws_secret_access_key=options["secret_access_key"],
        )
        clients.append(client)
        return Env(home, local, options["bucket"], client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


def data_requests(counts: dict[str, int]) -> int:
    """Requests other than listings: anything that moves or changes an object."""
    return sum(n for label, n in counts.items() if label != "GET list")


def test_initial_union_then_an_idempotent_pass(env: Env) -> None:
    write(env.local / "a.txt", "A")
    write(env.local / "b/c.txt", "C")
    (env.local / "empty").mkdir()
    env.put("d.txt", "D")
    env.put("b/e.txt", "E")
    env.put("remote-empty/", b"")
    result = env.sync()
    assert result.exit_code == 0, result.as_dict()
    expected = {"a.txt": b"A", "b/c.txt": b"C", "d.txt": b"D", "b/e.txt": b"E"}
    assert env.local_files() == expected
    assert env.bucket_files() == expected
    assert env.local_folders() == {"b", "empty", "remote-empty"}
    assert {"b", "empty", "remote-empty"} <= env.bucket_folders()

    _moto.reset_counts()
    again = env.sync()
    counts = _moto.request_counts()
    assert again.summary == {} and again.exit_code == 0
    assert data_requests(counts) <= 1, counts  # at most the once-a-process cleanup of unfinished uploads
    assert counts.get("GET list", 0) == 1, counts


def test_changes_and_deletions_travel_both_ways(env: Env) -> None:
    write(env.local / "x.txt", "1")
    write(env.local / "dir/y.txt", "2")
    write(env.local / "z.txt", "3")
    write(env.local / "gone-remote.txt", "4")
    assert env.sync().exit_code == 0
    write(env.local / "x.txt", "local edit", mtime=2_000_000_000)
    env.put("dir/y.txt", "remote edit!")
    env.remove("z.txt")
    env.put("new/remote.txt", "n")
    os.remove(env.local / "gone-remote.txt")
    result = env.sync()
    assert result.exit_code == 0, result.as_dict()
    assert env.bucket_files()["x.txt"] == b"local edit"
    assert (env.local / "dir/y.txt").read_bytes() == b"remote edit!"
    assert not (env.local / "z.txt").exists()
    assert "gone-remote.txt" not in env.bucket_files()
    assert (env.local / "new/remote.txt").read_bytes() == b"n"
    assert env.local_files() == env.bucket_files()

    os.remove(env.local / "dir/y.txt")
    (env.local / "dir").rmdir()
    assert env.sync().exit_code == 0
    assert "dir" not in env.bucket_folders() and "dir/y.txt" not in env.bucket_files()
    assert env.sync().summary == {}


def test_mtime_survives_a_round_trip_through_the_bucket(make_env: Callable[..., Env], tmp_path: pathlib.Path) -> None:
    up = make_env("upload")
    write(up.local / "old.txt", "kept", mtime=1_500_000_000)
    assert up.sync().exit_code == 0
    head = up.client.head_object(Bucket=up.bucket, Key="old.txt")
    assert float(head["Metadata"]["mtime"]) == 1_500_000_000
    # A second device downloads it: the file gets the original mtime, not the upload time.
    down_home = Home(str(tmp_path / "home2"))
    down_local = tmp_path / "sandbox" / "local2"
    down_local.mkdir(parents=True)
    manage.add_connection(down_home, "c2", "s3", s3.options(up.bucket))
    manage.add_task(down_home, Task("t2", "c2", str(down_local), "/", direction="download"))
    down_home.save()
    assert run_pass(Home(down_home.path), "t2", hostname="other").exit_code == 0
    assert os.stat(down_local / "old.txt").st_mtime == 1_500_000_000


def test_conflict_keeps_local_name_and_remote_copy_on_both_sides(env: Env) -> None:
    write(env.local / "doc.txt", "base")
    assert env.sync().exit_code == 0
    write(env.local / "doc.txt", "local version", mtime=2_000_000_000)
    env.put("doc.txt", "remote version!")
    result = env.sync()
    assert result.summary.get("conflict") == 1 and result.exit_code == 0, result.as_dict()
    local, remote = env.local_files(), env.bucket_files()
    assert local == remote
    assert local["doc.txt"] == b"local version"
    copies = [k for k in local if k.startswith("doc_testhost_Conflict_") and k.endswith(".txt")]
    assert len(copies) == 1 and local[copies[0]] == b"remote version!"
    assert env.sync().summary == {}


def test_a_task_on_a_subfolder_of_the_bucket(make_env: Callable[..., Env]) -> None:
    env = make_env(remote="/photos/2024")
    write(env.local / "p.jpg", "jpg")
    env.put("outside.txt", "not mine")
    env.put("photos/2024/r.jpg", "remote jpg")
    assert env.sync().exit_code == 0
    assert env.local_files() == {"p.jpg": b"jpg", "r.jpg": b"remote jpg"}
    assert env.bucket_files() == {
        "outside.txt": b"not mine",
        "photos/2024/p.jpg": b"jpg",
        "photos/2024/r.jpg": b"remote jpg",
    }


def test_hostile_keys_never_write_outside_the_local_folder(env: Env, tmp_path: pathlib.Path) -> None:
    before = {p for p in (tmp_path / "sandbox").rglob("*")}
    for key in HOSTILE_KEYS:
        env.put(key, "evil")
    env.put("fine.txt", "ok")
    preview = env.sync(dry_run=True)
    skipped = {path for kind, path, _ in preview.planned if kind == "skip"}
    result = env.sync()
    assert result.exit_code == 0, result.as_dict()  # skipped, not failed
    assert result.summary.get("skipped", 0) >= len(HOSTILE_KEYS), result.as_dict()
    assert (env.local / "fine.txt").read_bytes() == b"ok"
    after = {p for p in (tmp_path / "sandbox").rglob("*")}
    outside = {p for p in after - before if env.local not in p.parents and p != env.local}
    assert outside == set()
    # Every hostile key is reported as skipped, and none of them became a local file.
    for key in HOSTILE_KEYS:
        assert any(key == s or key.startswith(s + "/") for s in skipped), (key, skipped)
    assert set(env.local_files()) == {"fine.txt"}
    assert not (tmp_path / "escape").exists() and not pathlib.Path("/abs").exists()


@pytest.mark.slow
def test_request_count_of_a_no_change_pass_over_2000_objects(env: Env) -> None:
    # The same 2,000 files on both sides: the first pass matches them by the MD5 in the listing and
    # records them without transferring anything (which also keeps this test fast).
    paths = [f"d{i % 40:02d}/f{i:04d}.bin" for i in range(2000)]
    _moto.populate(env.bucket, paths)
    for path in paths:
        write(env.local / path, "x")
    _moto.reset_counts()
    first = env.sync()
    assert first.exit_code == 0, first.as_dict()
    assert data_requests(_moto.request_counts()) <= 1  # no GET or PUT per file: matched by hash
    keys = sum(
        len(page.get("Contents", ()))
        for page in env.client.get_paginator("list_objects_v2").paginate(Bucket=env.bucket)
    )

    _moto.reset_counts()
    again = env.sync()
    counts = _moto.request_counts()
    assert again.summary == {}
    # One ListObjectsV2 pagination (1,000 keys a page) and nothing per object.
    assert counts.get("GET list", 0) == -(-keys // 1000), counts
    assert data_requests(counts) <= 1, counts  # at most the once-a-process cleanup of unfinished uploads
    print(f"\nno-change pass over {keys} objects: {sum(counts.values())} HTTP requests {dict(counts)}")
