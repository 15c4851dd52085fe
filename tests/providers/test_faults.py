"""Fault injection: a two-way s3 task synced through a front end that fails requests at random, on changing data.

`FaultyProxy` (tests/fakes/faulty_proxy.py) sits between the console script and moto and answers a share of
the requests with 503 + Retry-After, 500, 429, bodies cut short and dropped connections (before and after the
request reached moto). Between faulty passes both sides change: the local folder through the file system, the
bucket through a plain boto3 client talking to moto directly, as another device would. Each side only changes
the files it "owns", so no file is ever changed on both sides and no conflict copy is legitimate. After the
faults are turned off, one or two clean passes must leave both sides byte-identical to the model of what the
user did, with no temporary files, no unfinished multipart uploads and no conflict copies.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time
from typing import Any

import boto3
import pytest

from engine.providers.base import NetworkError, TransientError
from engine.providers.s3 import S3Provider
from tests.fakes.faulty_proxy import FaultyProxy

from .servers import _moto

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
# Fixed, so CI fails the same requests every run; FAULT_SEED / FAULT_RATE explore others by hand.
SEED = int(os.environ.get("FAULT_SEED", "1212"))
FAULT_RATE = float(os.environ.get("FAULT_RATE", "0.2"))
FAULTY_PASSES = 6
MIB = 1 << 20


def blob(rng: random.Random, size: int) -> bytes:
    """`size` bytes of cheap pseudo-random content (one random 64 KiB block, repeated with a varying prefix)."""
    block = rng.randbytes(min(size, 1 << 16))
    out = bytearray()
    n = 0
    while len(out) < size:
        out += n.to_bytes(4, "big") + block
        n += 1
    return bytes(out[:size])


class World:
    """Both sides of the task plus the model: path -> content both sides must end up with."""

    def __init__(self, local: pathlib.Path, client: Any, bucket: str, rng: random.Random) -> None:
        self.local = local
        self.client = client
        self.bucket = bucket
        self.rng = rng
        self.model: dict[str, bytes] = {}
        self.local_owned: set[str] = set()  # only the local side ever changes these
        self.remote_owned: set[str] = set()  # only the bucket side ever changes these
        self.counter = 0

    def fresh(self, folder: str, suffix: str = ".txt") -> str:
        self.counter += 1
        return f"{folder}/f{self.counter:03d}{suffix}" if folder else f"f{self.counter:03d}{suffix}"

    # -- the local side -------------------------------------------------------------------------------------
    def local_write(self, path: str, data: bytes) -> None:
        full = self.local / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        self.model[path] = data
        self.local_owned.add(path)

    def local_delete(self, path: str) -> None:
        (self.local / path).unlink()
        del self.model[path]
        self.local_owned.discard(path)

    def local_rename(self, path: str, new: str) -> None:
        """A file or a whole folder (every file in it owned by this side)."""
        (self.local / new).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.local / path, self.local / new)
        for old in [p for p in self.model if p == path or p.startswith(path + "/")]:
            assert old in self.local_owned, old
            moved = new + old[len(path) :]
            self.model[moved] = self.model.pop(old)
            self.local_owned.discard(old)
            self.local_owned.add(moved)

    # -- the bucket side, behind the engine's back --------------------------------------------------------------
    def remote_write(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=path, Body=data)
        self.model[path] = data
        self.remote_owned.add(path)

    def remote_delete(self, path: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=path)
        del self.model[path]
        self.remote_owned.discard(path)

    # -- what is there --------------------------------------------------------------------------------------
    def local_folders(self) -> set[str]:
        return {p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_dir()}

    def bucket_folders(self) -> set[str]:
        """Folder markers and the folders keys run through."""
        keys = self.bucket_keys()
        return {k.rstrip("/") for k in keys if k.endswith("/")} | {
            "/".join(k.split("/")[:i]) for k in keys for i in range(1, k.rstrip("/").count("/") + 1)
        }

    def local_files(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.local).as_posix(): p.read_bytes()
            for p in self.local.rglob("*")
            if p.is_file() and not p.is_symlink()
        }

    def bucket_keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", ())]

    def bucket_files(self) -> dict[str, bytes]:
        return {
            key: self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            for key in self.bucket_keys()
            if not key.endswith("/")
        }

    def unfinished_uploads(self) -> list[tuple[str, str]]:
        page = self.client.list_multipart_uploads(Bucket=self.bucket)
        return [(u["Key"], u["UploadId"]) for u in page.get("Uploads", ())]


def initial_data(world: World) -> None:
    """~30 files in nested folders, half owned by each side; three are large enough for multipart (5 MiB parts)."""
    rng = world.rng
    for i in range(8):
        world.local_write(f"docs/sub{i % 3}/note{i}.txt", f"local note {i}\n".encode() * (i + 1))
    for i in range(4):
        world.local_write(f"lown/deep/er/l{i}.bin", blob(rng, 1000 * (i + 1)))
    world.local_write("media/big-local.bin", blob(rng, 11 * MIB + 123))  # three parts
    world.local_write("media/mid-local.bin", blob(rng, 6 * MIB))  # two parts
    world.local_write("top.txt", b"top\n")
    for i in range(10):
        world.remote_write(f"remote/r{i % 2}/item{i}.txt", f"remote item {i}\n".encode() * (i + 2))
    world.remote_write("remote/big-remote.bin", blob(rng, 7 * MIB + 5))
    for i in range(4):
        world.remote_write(f"shared/x{i}.dat", blob(rng, 3000 + i))


def mutate(world: World, round_no: int) -> None:
    """A few changes on each side: create, edit, delete and rename locally; create, edit and delete remotely."""
    rng = world.rng
    local = sorted(world.local_owned)
    small_local = [p for p in local if len(world.model[p]) < MIB]
    # Local: one new file (sometimes large), one edit (the large file every other round), a delete, a rename.
    size = 5 * MIB + 17 * round_no if round_no % 3 == 0 else rng.randint(10, 5000)
    world.local_write(world.fresh(rng.choice(["docs", "docs/new", "lown/deep", ""])), blob(rng, size))
    edit = "media/big-local.bin" if round_no % 2 == 0 and "media/big-local.bin" in world.model else rng.choice(local)
    world.local_write(edit, blob(rng, len(world.model[edit]) + rng.randint(1, 100)))
    victim = rng.choice([p for p in small_local if p != edit])
    world.local_delete(victim)
    moved = rng.choice([p for p in sorted(world.local_owned) if len(world.model[p]) < MIB and p != edit])
    world.local_rename(moved, world.fresh(f"renamed/r{round_no}", pathlib.PurePosixPath(moved).suffix))
    # The bucket: one new object, one edit, one delete.
    remote = sorted(world.remote_owned)
    world.remote_write(world.fresh(rng.choice(["remote", "remote/r1", "shared/new"])), blob(rng, rng.randint(1, 9000)))
    edit = rng.choice(remote)
    world.remote_write(edit, blob(rng, rng.randint(1, 9000)))
    world.remote_delete(rng.choice([p for p in sorted(world.remote_owned) if p != edit]))
    # Now and then a whole folder: renamed locally, emptied in the bucket.
    if round_no == 2:
        world.local_rename("lown/deep", "lown/moved")
    if round_no == 4:
        for path in [p for p in sorted(world.remote_owned) if p.startswith("remote/r0/")]:
            world.remote_delete(path)


def failures(cli: Any) -> list[str]:
    """The error lines of the task's log, for a failing assertion's message."""
    return [line for line in cli("log", "--task", "t", "--limit", "200").stdout.splitlines() if " error " in line]


@pytest.mark.slow
def test_faulty_passes_on_changing_data_then_a_clean_pass(tmp_path: pathlib.Path) -> None:
    upstream = _moto.endpoint()
    bucket = _moto.new_bucket("faults")
    client = boto3.client(
        "s3",
        endpoint_url=upstream,  # straight to moto, never through the proxy
        region_name="us-east-1",
        aws_access_key_id=_moto.ACCESS_KEY_ID,
        aws_secret_access_key=_moto.SECRET_ACCESS_KEY,
    )
    local = tmp_path / "local"
    local.mkdir()
    env = {**os.environ, "SKYSYNC_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr, (args, p.stderr)
        return p

    with FaultyProxy(upstream, seed=SEED) as proxy:
        added = cli(
            "connection", "add", "flaky", "--provider", "s3",
            "--option", "preset=other", "--option", f"endpoint={proxy.endpoint}",
            "--option", f"bucket={bucket}", "--option", "region=us-east-1",
            "--option", f"access_key_id={_moto.ACCESS_KEY_ID}",
            "--option", f"secret_access_key={_moto.SECRET_ACCESS_KEY}",
            "--option", "part_size=5",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        task = cli("task", "add", "t", "--connection", "flaky", "--local", str(local), "--remote", "/",
                   "--direction", "bidirectional")  # fmt: skip
        assert task.returncode == 0, task.stderr

        world = World(local, client, bucket, random.Random(SEED))
        initial_data(world)
        proxy.set_rate(FAULT_RATE)
        codes: list[int] = []
        leaks: list[tuple[int, str]] = []
        for round_no in range(1, FAULTY_PASSES + 1):
            p = cli("sync", "t")
            codes.append(p.returncode)
            assert p.returncode in (0, 1), (round_no, p.returncode, p.stdout, p.stderr)
            # The pass's own start aborted every older unfinished upload (moto dates them all 2010, so they look
            # a day old): what is left now is this pass's, and none may sit beside an object it completed.
            objects = set(world.bucket_keys())
            leaks += [(round_no, key) for key, _ in world.unfinished_uploads() if key in objects]
            mutate(world, round_no)
        assert sum(n for fault, n in proxy.counts.items() if fault != "forwarded") >= 20, proxy.counts

        proxy.set_rate(0.0)
        clean = cli("sync", "t")
        assert clean.returncode == 0, (codes, clean.stdout, clean.stderr, failures(cli), proxy.counts)
        again = cli("sync", "t", "--json")  # and nothing is left to do
        assert again.returncode == 0, again.stderr
        assert not json.loads(again.stdout)["tasks"][0]["summary"], again.stdout

    local_files = world.local_files()
    assert not [p for p in local_files if pathlib.PurePosixPath(p).name.startswith(".skysync-tmp-")]
    assert not [p for p in local_files if "_Conflict_" in p], sorted(local_files)
    remote_files = world.bucket_files()
    assert not [p for p in remote_files if "_Conflict_" in p], sorted(remote_files)
    assert sorted(local_files) == sorted(world.model)
    assert sorted(remote_files) == sorted(world.model)
    assert local_files == world.model
    assert remote_files == world.model
    assert world.local_folders() == world.bucket_folders()
    assert not leaks, leaks
    leftover = [(key, upload) for key, upload in world.unfinished_uploads() if key in world.model]
    assert not leftover, leftover
    client.close()


# -- one fault at one step, straight through the provider ------------------------------------------------------


@pytest.fixture
def flaky() -> Any:
    """(provider through a clean proxy, the proxy, a boto3 client straight to moto, the bucket)."""
    upstream = _moto.endpoint()
    bucket = _moto.new_bucket("flaky")
    client = boto3.client(
        "s3",
        endpoint_url=upstream,
        region_name="us-east-1",
        aws_access_key_id=_moto.ACCESS_KEY_ID,
        aws_secret_access_key=_moto.SECRET_ACCESS_KEY,
    )
    with FaultyProxy(upstream, seed=SEED) as proxy:
        provider = S3Provider({
            "preset": "other", "endpoint": proxy.endpoint, "bucket": bucket, "part_size": "5",
            "access_key_id": _moto.ACCESS_KEY_ID, "secret_access_key": _moto.SECRET_ACCESS_KEY,
        })  # fmt: skip
        yield provider, proxy, client, bucket
        provider.close()
    client.close()


def test_retry_after_is_waited_for_and_throttling_is_retried(flaky: Any) -> None:
    provider, proxy, client, bucket = flaky
    client.put_object(Bucket=bucket, Key="a.txt", Body=b"A")
    proxy.inject("503", "GET", "list-type")
    proxy.inject("429", "GET", "list-type")
    started = time.monotonic()
    assert [e.path for e in provider.list("")] == ["a.txt"]
    assert time.monotonic() - started >= 2.0  # Retry-After: 1, twice (botocore alone may retry at once)


def test_throttling_that_outlasts_the_retries_is_transient() -> None:
    from botocore.exceptions import ClientError

    provider = S3Provider({"bucket": "bkt", "access_key_id": "k", "secret_access_key": "s"})
    for code, status in (("TooManyRequests", 429), ("", 429), ("SlowDown", 503)):
        error = ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
        assert isinstance(provider._translate(error, "reading /x"), TransientError), (code, status)


def test_a_download_cut_short_is_a_retryable_network_error(flaky: Any) -> None:
    import io

    provider, proxy, client, bucket = flaky
    client.put_object(Bucket=bucket, Key="big.bin", Body=b"x" * 300_000)
    proxy.inject("truncate", "GET")
    with pytest.raises(NetworkError) as caught:
        provider.download("big.bin", io.BytesIO())
    assert caught.value.retryable
    out = io.BytesIO()
    assert provider.download("big.bin", out).size == 300_000 and out.getvalue() == b"x" * 300_000


def test_a_lost_answer_to_create_multipart_upload_leaves_no_unfinished_upload(flaky: Any) -> None:
    import io

    provider, proxy, client, bucket = flaky
    data = blob(random.Random(SEED), 11 * MIB)
    proxy.inject("drop-after", "POST", "uploads")  # moto made an upload; the answer never came
    proxy.inject("truncate", "POST", "uploads")  # and another one, answered only by half
    proxy.inject("drop-after", "DELETE", "uploadId")  # the first abort's answer is lost too
    entry = provider.upload("f/big.bin", io.BytesIO(data), len(data), 1_700_000_000.0)
    assert entry.size == len(data)
    assert client.get_object(Bucket=bucket, Key="f/big.bin")["Body"].read() == data
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_failed_multipart_upload_is_aborted(flaky: Any) -> None:
    import io

    provider, proxy, client, bucket = flaky
    data = blob(random.Random(SEED), 6 * MIB)
    for _ in range(10):  # every attempt at both parts (upload_concurrency sends them side by side)
        proxy.inject("drop-before", "PUT", "partNumber")
    proxy.inject("drop-after", "DELETE", "uploadId")  # and the abort's first answer is lost
    with pytest.raises(NetworkError):
        provider.upload("g/big.bin", io.BytesIO(data), len(data), 1_700_000_000.0)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)


# -- a listing the service does not end properly ---------------------------------------------------------------


def test_a_page_that_says_more_follow_but_not_where_fails_the_listing(flaky: Any) -> None:
    """Taken as the whole listing, the first page would read as every later key deleted in the cloud."""
    import re

    from engine.providers.paging import BrokenListing

    provider, proxy, client, bucket = flaky
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    proxy.rewrite_target = lambda method, target: re.sub(r"max-keys=\d+", "max-keys=1", target)
    proxy.rewrite_answer = lambda method, target, body: re.sub(
        rb"<NextContinuationToken>.*?</NextContinuationToken>", b"", body)
    with pytest.raises(BrokenListing, match="more entries follow but not where"):
        list(provider.list(""))


def test_a_page_sent_again_and_again_fails_the_listing_instead_of_looping(flaky: Any) -> None:
    import re

    from engine.providers.paging import BrokenListing

    provider, proxy, client, bucket = flaky
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    # Every page request is answered with the first page again (and its token).
    proxy.rewrite_target = lambda method, target: re.sub(
        r"&?continuation-token=[^&]*", "", re.sub(r"max-keys=\d+", "max-keys=1", target))
    with pytest.raises(BrokenListing, match="already read"):
        list(provider.list(""))
    with pytest.raises(BrokenListing, match="already read"):
        list(provider.list_dir(""))


def _write_when(proxy: Any, method: str, client: Any, bucket: str, key: str, body: bytes) -> None:
    """Another client writes `key` right before our next `method` request reaches the server."""

    def rewrite(m: str, target: str) -> str:
        if m == method and proxy.rewrite_target is rewrite:
            proxy.rewrite_target = None
            client.put_object(Bucket=bucket, Key=key, Body=body)
        return target

    proxy.rewrite_target = rewrite


def test_a_version_written_just_before_our_delete_is_not_deleted(flaky: Any) -> None:
    from engine.providers.base import Expect, PreconditionFailed

    provider, proxy, client, bucket = flaky
    client.put_object(Bucket=bucket, Key="a.txt", Body=b"listed")
    seen = next(e for e in provider.list("") if e.path == "a.txt")
    _write_when(proxy, "DELETE", client, bucket, "a.txt", b"theirs")
    with pytest.raises(PreconditionFailed):
        provider.delete("a.txt", expect=Expect.entry(seen))
    assert client.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"theirs"


def test_a_move_leaves_a_version_written_while_it_copied(flaky: Any) -> None:
    provider, proxy, client, bucket = flaky
    client.put_object(Bucket=bucket, Key="old.txt", Body=b"listed")
    seen = next(e for e in provider.list("") if e.path == "old.txt")
    _write_when(proxy, "DELETE", client, bucket, "old.txt", b"theirs")
    with contextlib.suppress(Exception):
        provider.move("old.txt", "new.txt", seen)
    assert client.get_object(Bucket=bucket, Key="old.txt")["Body"].read() == b"theirs"
    assert client.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"listed"
