"""Renames are moves (issue 21): a file renamed on one side is renamed on the other, not copied and deleted.

Locally a rename is told by the inode (with size and mtime) the state recorded for the old path; remotely by the
content hash and size, and only when exactly one old and one new path match. The move is made by the service
(`server_side_move`: a rename in the local provider's folder, CopyObject + DeleteObject on S3) and counted as a
move, not as deletions, by the mass-delete guard: renaming a folder of thousands of files needs no --force.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
import types
from collections import Counter
from dataclasses import replace
from typing import Any

import boto3
import pytest

from engine import manage
from engine.config import Home, Task
from engine.localfs import FileSystem
from engine.providers.base import ProviderError, RemoteEntry
from engine.providers.local import LocalProvider
from engine.providers.s3 import S3Provider

from .conftest import Env, write

_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.providers.servers import _moto, s3  # noqa: E402

FILES = 2_000  # bench/move_bench.py renames 10,000 on both
S3_FILES = 1_000  # moto answers ~150 requests/s on two busy cores; a move is a copy and a delete


def _ino(path: pathlib.Path) -> int:
    return os.stat(path).st_ino


def _fill(folder: pathlib.Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"f{i:05}.txt").write_bytes(f"file {i}\n".encode())


# -- the local provider ----------------------------------------------------------------------------------------


def test_a_renamed_file_is_moved_in_the_cloud(env):
    write(env.local / "a.txt", "hello")
    env.sync()
    before = _ino(env.cloud / "a.txt")
    (env.local / "a.txt").rename(env.local / "b.txt")
    r = env.sync()
    assert r.summary == {"moved-remote": 1}, r.summary
    assert not (env.cloud / "a.txt").exists() and _ino(env.cloud / "b.txt") == before  # renamed, not copied
    assert env.sync().summary == {}


def test_a_folder_of_many_files_renamed_locally_is_moved_without_force(env):
    _fill(env.local / "photos", FILES)
    env.sync()
    inodes = {p.name: _ino(p) for p in (env.cloud / "photos").iterdir()}
    (env.local / "photos").rename(env.local / "pictures")
    started = time.monotonic()
    r = env.sync()
    took = time.monotonic() - started
    assert r.exit_code == 0 and r.held_deletions == 0, r.summary
    assert r.summary.get("moved-remote") == FILES and "uploaded" not in r.summary, r.summary
    assert not (env.cloud / "photos").exists()
    assert {p.name: _ino(p) for p in (env.cloud / "pictures").iterdir()} == inodes
    assert env.sync().summary == {}
    assert took < 30


def test_a_file_renamed_in_the_cloud_is_renamed_locally(make_env):
    env = make_env()
    write(env.local / "d/a.txt", "hello")
    env.sync(provider=HashListingProvider({"root": str(env.cloud)}))
    before = _ino(env.local / "d/a.txt")
    (env.cloud / "e").mkdir()
    (env.cloud / "d/a.txt").rename(env.cloud / "e/b.txt")
    (env.cloud / "d").rmdir()  # a folder renamed: the local one goes once the move has emptied it
    # The local provider lists no hash: a remote rename there is a download and a delete. A provider that
    # lists hashes (here: the local provider with md5 in its listing) has its renames replayed as renames.
    r = env.sync(provider=HashListingProvider({"root": str(env.cloud)}))
    assert r.summary.get("moved-local") == 1 and "downloaded" not in r.summary, r.summary
    assert _ino(env.local / "e/b.txt") == before and not (env.local / "d").exists()
    assert env.sync(provider=HashListingProvider({"root": str(env.cloud)})).summary == {}


class HashListingProvider(LocalProvider):
    """The local provider, with each file's md5 in the listing (as object stores give their ETags)."""

    def list_reporting(self, folder, on_skip):
        for e in super().list_reporting(folder, on_skip):
            yield e if e.is_dir else e._replace(hash=self.file_hash(f"{folder}/{e.path}".strip("/")))

    def upload(self, path, *args, **kwargs):
        return super().upload(path, *args, **kwargs)._replace(hash=self.file_hash(path))


def test_two_copies_of_one_renamed_file_are_not_a_move(make_env):
    env = make_env()
    write(env.cloud / "a.txt", "same")
    env.sync(provider=HashListingProvider({"root": str(env.cloud)}))
    os.link(env.cloud / "a.txt", env.cloud / "b.txt")
    os.link(env.cloud / "a.txt", env.cloud / "c.txt")
    (env.cloud / "a.txt").unlink()
    r = env.sync(provider=HashListingProvider({"root": str(env.cloud)}))
    assert "moved-local" not in r.summary and r.summary.get("downloaded") == 2, r.summary
    assert sorted(p.name for p in env.local.iterdir()) == ["b.txt", "c.txt"]


def test_hard_links_of_one_renamed_file_are_not_a_move(env):
    write(env.local / "a.txt", "same")
    env.sync()
    os.link(env.local / "a.txt", env.local / "b.txt")
    os.link(env.local / "a.txt", env.local / "c.txt")
    (env.local / "a.txt").unlink()
    r = env.sync()
    assert "moved-remote" not in r.summary and r.summary.get("uploaded") == 2, r.summary
    assert sorted(p.name for p in env.cloud.iterdir()) == ["b.txt", "c.txt"]


class NoMoveProvider(LocalProvider):
    capabilities = replace(LocalProvider.capabilities, server_side_move=False)


class RefusingProvider(LocalProvider):
    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        raise ProviderError(f"moving /{src}: refused")


@pytest.mark.parametrize("cls", [NoMoveProvider, RefusingProvider])
def test_without_a_server_side_move_a_rename_is_an_upload_and_a_delete(env, cls):
    write(env.local / "a.txt", "hello")
    env.sync()
    (env.local / "a.txt").rename(env.local / "b.txt")
    r = env.sync(provider=cls({"root": str(env.cloud)}))
    assert r.summary == {"uploaded": 1, "deleted-remote": 1} and r.exit_code == 0, r.summary
    assert sorted(p.name for p in env.cloud.iterdir()) == ["b.txt"]
    assert (env.cloud / "b.txt").read_text() == "hello"
    assert env.sync().summary == {}


class ReusedInodeFS(FileSystem):
    """Reports `new` with the inode number `old` had: what a file system does when it gives a freed inode to
    the very next new file."""

    def __init__(self, root: pathlib.Path, old: int, new: str) -> None:
        self.root, self.old, self.new = str(root), old, new

    def _fix(self, path: str, st: Any) -> Any:
        if os.path.relpath(path, self.root) != self.new:
            return st
        fields = {k: getattr(st, k) for k in dir(st) if k.startswith("st_")}
        return types.SimpleNamespace(**{**fields, "st_ino": self.old})

    def stat(self, path: str) -> Any:
        return self._fix(path, super().stat(path))

    def open_read(self, path: str) -> Any:
        f = super().open_read(path)
        f.opened_as = path  # type: ignore[attr-defined]
        return f

    def fstat(self, f: Any) -> Any:
        return self._fix(getattr(f, "opened_as", ""), super().fstat(f))

    def scandir(self, path: str) -> list[Any]:
        out = []
        for e in super().scandir(path):
            st = self._fix(e.path, e.stat(follow_symlinks=False))
            out.append(types.SimpleNamespace(name=e.name, path=e.path, stat=lambda follow_symlinks=True, st=st: st))
        return out


def test_a_new_file_on_a_reused_inode_is_uploaded_not_given_the_old_content(env):
    write(env.local / "a.txt", "AAAA")
    env.sync()
    st = os.stat(env.local / "a.txt")
    (env.local / "a.txt").unlink()
    write(env.local / "b.txt", "BBBB")  # same size; same mtime below: only the content differs
    os.utime(env.local / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    r = env.sync(fs=ReusedInodeFS(env.local, st.st_ino, "b.txt"))
    assert (env.cloud / "b.txt").read_text() == "BBBB", r.summary
    assert not (env.cloud / "a.txt").exists()


def test_a_renamed_file_changed_during_the_pass_is_left_for_the_next_pass(env):
    write(env.local / "a.txt", "hello")
    env.sync()
    (env.local / "a.txt").rename(env.local / "b.txt")

    class Touching(LocalProvider):
        def move(self, src, dst, listed=None):
            raise AssertionError("must not be called")

    fs = TouchBeforeMoveFS(env.local / "b.txt")
    r = env.sync(fs=fs, provider=Touching({"root": str(env.cloud)}))
    assert r.failed == 0 and (env.cloud / "a.txt").exists() and not (env.cloud / "b.txt").exists(), r.summary
    r = env.sync()
    assert r.summary.get("uploaded") == 1 and r.summary.get("deleted-remote") == 1, r.summary
    assert (env.cloud / "b.txt").read_text() == "hello, edited"


class TouchBeforeMoveFS(FileSystem):
    """Appends to `path` the first time the executor stats it (after the scan, before the move)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path, self.done = str(path), False

    def stat(self, path: str) -> os.stat_result:
        if path == self.path and not self.done:
            self.done = True
            with open(path, "a") as f:
                f.write(", edited")
        return super().stat(path)


# -- S3 on moto: server-side copies, counted ----------------------------------------------------------------------


def _s3_env(tmp_path: pathlib.Path) -> tuple[Env, dict[str, str], Any]:
    home = Home(str(tmp_path / "home"))
    local = tmp_path / "local"
    local.mkdir()
    options = s3.options(_moto.new_bucket())
    manage.add_connection(home, "c", "s3", options)
    manage.add_task(home, Task("t", "c", str(local), "/"))
    home.save()
    client = boto3.client("s3", endpoint_url=options["endpoint"], region_name="us-east-1",
                          aws_access_key_id=options["access_key_id"],
                          aws_secret_access_key=options["secret_access_key"])
    return Env(home, local, tmp_path / "unused"), options, client


def _counting(options: dict[str, str]) -> tuple[S3Provider, Counter[str]]:
    """A provider whose client counts its calls by operation, and PutObject calls that carry data."""
    provider = S3Provider(options)
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    def data(params: Any, **_: Any) -> None:
        if params.get("Body"):
            calls["PutObject with data"] += 1

    provider.client.meta.events.register("before-call.s3", count)
    provider.client.meta.events.register("provide-client-params.s3.PutObject", data)
    return provider, calls


def test_s3_a_folder_renamed_locally_is_copied_server_side(tmp_path):
    env, options, client = _s3_env(tmp_path)
    try:
        _fill(env.local / "photos", S3_FILES)
        assert env.sync().exit_code == 0
        (env.local / "photos").rename(env.local / "pictures")
        provider, calls = _counting(options)
        _moto.reset_counts()
        started = time.monotonic()
        r = env.sync(provider=provider)
        took = time.monotonic() - started
        requests = _moto.request_counts()
        provider.close()
        assert r.exit_code == 0 and r.held_deletions == 0, r.summary
        # The old folder's marker is deleted (a folder: not counted by the guard), the new one made.
        assert r.summary == {"moved-remote": S3_FILES, "mkdir-remote": 1, "deleted-remote": 1}, r.summary
        assert calls["CopyObject"] == S3_FILES and calls["DeleteObject"] == S3_FILES + 1, calls  # + the old marker
        assert calls["PutObject with data"] == 0 and calls["PutObject"] == 1, calls  # only the folder marker
        assert requests.get("PUT", 0) == S3_FILES + 1 and requests.get("DELETE", 0) == S3_FILES + 1, requests
        keys = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=options["bucket"])
                for o in page.get("Contents", ())}
        assert keys == {"pictures/"} | {f"pictures/f{i:05}.txt" for i in range(S3_FILES)}
        body = client.get_object(Bucket=options["bucket"], Key="pictures/f00007.txt")
        assert body["Body"].read() == b"file 7\n" and "mtime" in body["Metadata"]  # the mtime travelled
        assert env.sync().summary == {}
        print(f"\n{S3_FILES} files renamed on moto: {sum(requests.values())} requests {dict(requests)}, {took:.1f} s")
        assert took < 30
    finally:
        client.close()


def test_s3_a_file_renamed_in_the_bucket_is_renamed_locally(tmp_path):
    env, options, client = _s3_env(tmp_path)
    try:
        write(env.local / "a.txt", "hello")
        env.sync()
        before = _ino(env.local / "a.txt")
        bucket = options["bucket"]
        client.copy_object(Bucket=bucket, Key="b.txt", CopySource={"Bucket": bucket, "Key": "a.txt"})
        client.delete_object(Bucket=bucket, Key="a.txt")
        _moto.reset_counts()
        r = env.sync()
        assert r.summary == {"moved-local": 1}, r.summary
        assert "GET" not in _moto.request_counts()  # nothing downloaded (listings are "GET list")
        assert _ino(env.local / "b.txt") == before and not (env.local / "a.txt").exists()
        assert env.sync().summary == {}
    finally:
        client.close()


def test_s3_move_copies_only_the_listed_version_and_returns_the_listed_entry(tmp_path):
    _, options, client = _s3_env(tmp_path)
    provider = S3Provider(options)
    sent: list[str | None] = []
    provider.client.meta.events.register(
        "before-send.s3.CopyObject",
        lambda request, **_: sent.append(request.headers.get("x-amz-copy-source-if-match", b"").decode()),
    )
    try:
        bucket = options["bucket"]
        client.put_object(Bucket=bucket, Key="a.txt", Body=b"one", Metadata={"mtime": "1700000000.5"})
        listed = next(e for e in provider.list("") if e.path == "a.txt")
        moved = provider.move("a.txt", "b.txt", listed)
        # The copy is conditional on the listed ETag (S3 answers 412 to another version; moto 5.2 does not check).
        assert sent == [f'"{listed.revision}"']
        assert [e for e in provider.list("") if not e.is_dir] == [moved]
        assert provider.download("b.txt", __import__("io").BytesIO()).mtime == 1700000000.5
    finally:
        provider.close()
        client.close()
