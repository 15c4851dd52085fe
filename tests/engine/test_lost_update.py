"""No lost update (issue 21, found item 1): a version another client writes to the cloud while a pass runs is
never overwritten or deleted by skysync; both versions survive, the local one under its name and the cloud's as
a conflict copy.

Every case runs the real console script. Other clients write at chosen moments: on the local provider while an
upload is throttled (upload_limit) and its temporary file sits in the cloud folder; on moto through a front end
that runs a plain boto3 put_object (straight to moto) just before it forwards skysync's request for the name.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.fakes.faulty_proxy import FaultyProxy
from tests.providers.servers import _moto, s3

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
MIB = 1 << 20
TEMP_PREFIX = ".skysync-tmp-"


class Cli:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.env = {**os.environ, "SKYSYNC_HOME": str(tmp / "home")}

    def __call__(self, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr and "unexpected" not in p.stderr, p.stderr
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([SKYSYNC, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


def files(root: pathlib.Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = pathlib.Path(dirpath, name)
            out[os.path.relpath(p, root)] = p.read_bytes()
    return out


def finish(p: subprocess.Popen) -> None:
    out, err = p.communicate(timeout=120)
    assert "Traceback" not in err and "unexpected" not in err, err
    assert p.returncode == 0, (p.returncode, out, err)


def copies(names: dict[str, bytes], of: str) -> dict[str, bytes]:
    stem, dot, suffix = of.rpartition(".")
    return {k: v for k, v in names.items()
            if k.startswith(stem + "_") and "_Conflict_" in k and k.endswith(dot + suffix)}


# -- the local provider: a throttled upload, the cloud file rewritten while it runs ----------------------------


@pytest.fixture
def local_task(tmp_path: pathlib.Path) -> tuple[Cli, pathlib.Path, pathlib.Path]:
    cli = Cli(tmp_path)
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    local.mkdir()
    cloud.mkdir()
    cli("connection", "add", "c", "--provider", "local", "--option", f"root={cloud}", "--option", "upload_limit=2048")
    cli("task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/", "--direction",
        "bidirectional")
    return cli, local, cloud


def rewrite_cloud_file_once_uploading(cloud: pathlib.Path, name: str) -> None:
    """Wait for skysync's temporary file in the cloud folder (its upload is running), then, as another
    program would, write the cloud file atomically (`echo cloud > new.tmp && mv new.tmp name`)."""
    deadline = time.monotonic() + 30
    while not any(n.startswith(TEMP_PREFIX) for n in os.listdir(cloud)):
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.05)
    time.sleep(1.5)
    (cloud / "new.tmp").write_text("cloud\n")
    os.replace(cloud / "new.tmp", cloud / name)


@pytest.mark.parametrize("synced_before", [True, False], ids=["edited-file", "new-file"])
def test_a_cloud_write_during_a_local_upload_is_kept(local_task, synced_before: bool) -> None:
    """(a) an 8 MiB local edit uploading at 2 MiB/s while the cloud file is rewritten; (c) the same for a new
    local file whose name another program takes in the cloud meanwhile."""
    cli, local, cloud = local_task
    if synced_before:
        (local / "x.bin").write_bytes(b"version zero")
        cli("sync", "t")
        assert (cloud / "x.bin").read_bytes() == b"version zero"
    ours = os.urandom(8 * MIB)
    (local / "x.bin").write_bytes(ours)
    running = cli.start("sync", "t")
    rewrite_cloud_file_once_uploading(cloud, "x.bin")
    finish(running)
    assert (cloud / "x.bin").read_bytes() == b"cloud\n"  # not overwritten
    assert "changed in the cloud during the pass" in cli("log", "--task", "t").stdout
    cli("sync", "t")
    for side in (local, cloud):
        got = files(side)
        assert got["x.bin"] == ours, side
        assert list(copies(got, "x.bin").values()) == [b"cloud\n"], side
    assert files(local) == files(cloud)
    cli("sync", "t")  # settled: a third pass changes nothing
    assert files(local) == files(cloud) and len(copies(files(cloud), "x.bin")) == 1


# -- moto: another client's put_object lands just before skysync's request for the same key -------------------


class Meddler(FaultyProxy):
    """Forwards everything to moto; just before it forwards the first request that `match(method, target)`
    accepts, it runs `meddle()` (another client writing straight to moto)."""

    def __init__(self, upstream: str, match: Callable[[str, str], bool], meddle: Callable[[], None]) -> None:
        super().__init__(upstream)
        self.match, self.meddle, self.fired = match, meddle, threading.Event()
        self._meddle_lock = threading.Lock()

    def decide(self, method: str, target: str) -> str | None:
        with self._meddle_lock:
            if not self.fired.is_set() and self.match(method, target):
                self.meddle()
                self.fired.set()
        return super().decide(method, target)


class Bucket:
    """A bucket on the session's moto, an s3 connection and task through a Meddler, and a direct client."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.cli = Cli(tmp)
        self.local = tmp / "local"
        self.local.mkdir()
        self.options = s3.options(_moto.new_bucket())
        self.name = self.options["bucket"]
        self.client: Any = boto3.client(
            "s3", endpoint_url=self.options["endpoint"], region_name="us-east-1",
            aws_access_key_id=self.options["access_key_id"],
            aws_secret_access_key=self.options["secret_access_key"],
        )
        self.match: Callable[[str, str], bool] = lambda method, target: False
        self.meddle: Callable[[], None] = lambda: None
        self.proxy = Meddler(self.options["endpoint"], lambda m, t: self.match(m, t), lambda: self.meddle()).start()
        opts = {**self.options, "endpoint": self.proxy.endpoint, "part_size": "5"}
        self.cli("connection", "add", "c", "--provider", "s3",
                 *[a for k, v in opts.items() for a in ("--option", f"{k}={v}")])
        self.cli("task", "add", "t", "--connection", "c", "--local", str(self.local), "--remote", "/",
                 "--direction", "bidirectional")

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def objects(self) -> dict[str, bytes]:
        out = {}
        for item in self.client.list_objects_v2(Bucket=self.name).get("Contents", ()):
            out[item["Key"]] = self.client.get_object(Bucket=self.name, Key=item["Key"])["Body"].read()
        return out

    def when(self, match: Callable[[str, str], bool], body: bytes, key: str = "doc.bin") -> None:
        """Another client writes `body` to `key` just before skysync's first request that `match` accepts."""
        self.match = match
        self.meddle = lambda: self.put(key, body)

    def close(self) -> None:
        self.proxy.stop()
        self.client.close()


@pytest.fixture
def bucket(tmp_path: pathlib.Path) -> Iterator[Bucket]:
    b = Bucket(tmp_path)
    yield b
    b.close()


def request_for(key: str, method: str, query: str = "") -> Callable[[str, str], bool]:
    def match(m: str, target: str) -> bool:
        split = urlsplit(target)
        return m == method and split.path.endswith("/" + key) and query in split.query

    return match


def both_kept(bucket: Bucket, ours: bytes, theirs: bytes) -> None:
    """After one more pass: ours under the name and theirs as a conflict copy, on both sides."""
    bucket.cli("sync", "t")
    cloud = bucket.objects()
    for side in (files(bucket.local), cloud):
        assert side["doc.bin"] == ours
        assert list(copies(side, "doc.bin").values()) == [theirs]
    assert files(bucket.local) == cloud


@pytest.mark.parametrize("size,when", [(MIB, ("PUT", "")), (12 * MIB, ("PUT", "partNumber=2"))],
                         ids=["single-part", "multipart"])
def test_a_cloud_write_during_an_s3_upload_is_kept(bucket: Bucket, size: int, when: tuple[str, str]) -> None:
    """(b) the local edit is uploading (its PUT, or its second part) when another client's put_object lands."""
    (bucket.local / "doc.bin").write_bytes(b"version zero")
    bucket.cli("sync", "t")
    ours, theirs = os.urandom(size), b"the other client's version"
    (bucket.local / "doc.bin").write_bytes(ours)
    bucket.when(request_for("doc.bin", *when), theirs)
    bucket.cli("sync", "t")
    assert bucket.proxy.fired.is_set()
    assert bucket.objects()["doc.bin"] == theirs  # not overwritten
    assert "changed in the cloud during the pass" in bucket.cli("log", "--task", "t").stdout
    assert not bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads")  # aborted, not left
    both_kept(bucket, ours, theirs)


def test_a_new_object_another_client_made_after_the_listing_is_kept(bucket: Bucket) -> None:
    """(c) the name was free when listed; another client creates it before skysync's upload of it lands."""
    ours, theirs = b"our new file", b"the other client's new file"
    (bucket.local / "doc.bin").write_bytes(ours)
    bucket.when(request_for("doc.bin", "PUT"), theirs)
    bucket.cli("sync", "t")
    assert bucket.proxy.fired.is_set()
    assert bucket.objects()["doc.bin"] == theirs
    both_kept(bucket, ours, theirs)


def test_an_object_rewritten_after_the_listing_is_not_deleted(bucket: Bucket) -> None:
    """(d) deleted locally, so the pass deletes it remotely; another client rewrote it after the listing."""
    (bucket.local / "doc.bin").write_bytes(b"version zero")
    (bucket.local / "other.txt").write_bytes(b"stays")
    bucket.cli("sync", "t")
    (bucket.local / "doc.bin").unlink()
    theirs = b"rewritten by the other client"
    bucket.when(lambda m, t: m in ("HEAD", "DELETE") and urlsplit(t).path.endswith("/doc.bin"), theirs)
    bucket.cli("sync", "t")
    assert bucket.proxy.fired.is_set()
    assert bucket.objects()["doc.bin"] == theirs  # not deleted
    assert "so it was not deleted" in bucket.cli("log", "--task", "t").stdout
    bucket.cli("sync", "t")  # the new version comes down
    assert (bucket.local / "doc.bin").read_bytes() == theirs
    assert files(bucket.local) == bucket.objects() == {"doc.bin": theirs, "other.txt": b"stays"}
