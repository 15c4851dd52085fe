"""The executor's transfers: the service's hash computed on the way (a damaged download never takes the name;
an upload's hash is recorded where the service returns none), the connection's pacer (Retry-After honoured,
no real sleeps), and remote conflict copies made by the service itself where it can copy."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os

import pytest

import engine.executor as executor_module
from engine.config import Home
from engine.localfs import TEMP_PREFIX
from engine.pacer import Pacer
from engine.providers.base import PreconditionFailed, ProviderError, TransientError
from engine.providers.local import LocalProvider
from engine.state import StateDB

from .conftest import write


def state_row(env, path: str):
    db = StateDB(Home(env.home.path).setting("database-path"))
    try:
        return db.get(db.task_id("t"), path)
    finally:
        db.close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- hashes computed while transferring -------------------------------------------------------------------------


class HashListingProvider(LocalProvider):
    """The local provider, but its listing reports each file's MD5 (as an object store's does), and its
    downloads can be damaged on the way a given number of times."""

    def __init__(self, options, damaged: int = 0) -> None:
        super().__init__(options)
        self.damaged = damaged
        self.downloads = 0
        self.uploads: list[str] = []
        self.copies: list[tuple[str, str]] = []

    def list_reporting(self, folder, on_skip):
        for e in super().list_reporting(folder, on_skip):
            if not e.is_dir:
                e = e._replace(hash=self.file_hash(f"{folder}/{e.path}".strip("/")))
            yield e

    def download(self, path, out):
        self.downloads += 1
        if self.damaged:
            self.damaged -= 1
            buf = io.BytesIO()
            entry = super().download(path, buf)
            data = bytearray(buf.getvalue())
            data[len(data) // 2] ^= 0xFF  # one flipped byte: the size is right, the content is not
            out.write(bytes(data))
            return entry
        return super().download(path, out)

    def upload(self, path, src, size, mtime, **kw):
        self.uploads.append(path)
        return super().upload(path, src, size, mtime, **kw)

    def copy(self, src, dst, *, expect=None):
        self.copies.append((src, dst))
        return super().copy(src, dst, expect=expect)


@pytest.fixture
def quick_retries(monkeypatch):
    """The executor's pacer with a clock that only its sleeps move: retries cost no real time."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(clock=lambda: now[0], sleep=sleep, jitter=lambda: 0.0)
    monkeypatch.setattr(executor_module, "pacer_of", lambda provider: pacer)
    return pacer, now


def test_a_damaged_download_is_read_again(env, quick_retries):
    data = os.urandom(300_000)
    write(env.cloud / "a.bin", data)
    provider = HashListingProvider({"root": str(env.cloud)}, damaged=1)
    r = env.sync(provider=provider)
    assert r.exit_code == 0 and r.summary == {"downloaded": 1}
    assert (env.local / "a.bin").read_bytes() == data
    assert provider.downloads == 2


def test_a_download_that_stays_damaged_fails_and_never_takes_the_name(env, quick_retries):
    write(env.cloud / "a.bin", os.urandom(300_000))
    write(env.local / "b.txt", "other work goes on")
    provider = HashListingProvider({"root": str(env.cloud)}, damaged=99)
    r = env.sync(provider=provider)
    assert r.exit_code == 1 and r.failed == 1
    assert sorted(os.listdir(env.local)) == ["b.txt"]  # no a.bin, no temporary file
    assert (env.cloud / "b.txt").exists()
    db = StateDB(Home(env.home.path).setting("database-path"))
    try:
        [error] = db.read_log("t", kinds=("error",))
    finally:
        db.close()
    assert error.path == "a.bin" and "does not match the service's md5 hash" in error.message


class RemoteProvider(LocalProvider):
    """The local provider as if it were reached over a network (its uploads return no hash, as before)."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, network=True)


@pytest.mark.parametrize("size", [2_000_000, 9 * 1024 * 1024])  # hashed inline, and on a thread of its own
def test_an_uploads_hash_is_recorded_when_the_service_returns_none(env, size):
    data = os.urandom(size)
    write(env.local / "big.bin", data)
    provider = RemoteProvider({"root": str(env.cloud)})
    assert provider.capabilities.hash_in_listing is False  # the local provider returns no hash
    assert env.sync(provider=provider).exit_code == 0
    assert state_row(env, "big.bin").rhash == md5(data)


def test_a_folder_playing_the_cloud_is_not_hashed_on_the_way(env):
    write(env.local / "big.bin", os.urandom(100_000))
    assert env.sync().exit_code == 0
    assert state_row(env, "big.bin").rhash is None


class SeekingProvider(RemoteProvider):
    """Reads the upload twice (an SDK that retries from the start after a broken request)."""

    def upload(self, path, src, size, mtime, **kw):
        src.read(1000)
        src.seek(0)
        return super().upload(path, src, size, mtime, **kw)


class PartsProvider(RemoteProvider):
    """Reads the second half first (an SDK sending parts in parallel): the hash on the way cannot be known."""

    def upload(self, path, src, size, mtime, **kw):
        src.seek(size // 2)
        tail = src.read()
        src.seek(0)
        head = src.read(size // 2)
        return super().upload(path, io.BytesIO(head + tail), size, mtime, **kw)


def test_a_reread_from_the_start_still_gives_the_right_hash(env):
    data = os.urandom(100_000)
    write(env.local / "a.bin", data)
    assert env.sync(provider=SeekingProvider({"root": str(env.cloud)})).exit_code == 0
    assert state_row(env, "a.bin").rhash == md5(data)


def test_bytes_read_out_of_order_record_no_hash(env):
    write(env.local / "a.bin", os.urandom(100_000))
    assert env.sync(provider=PartsProvider({"root": str(env.cloud)})).exit_code == 0
    assert state_row(env, "a.bin").rhash is None


# -- the pacer ----------------------------------------------------------------------------------------------------


class ThrottledProvider(LocalProvider):
    """Answers the first upload with a 429 that asks for a wait (Retry-After: 2)."""

    def __init__(self, options, clock, retry_after: float = 2) -> None:
        super().__init__(options)
        self.clock = clock
        self.retry_after = retry_after
        self.attempts: list[float] = []

    def upload(self, path, src, size, mtime, **kw):
        self.attempts.append(self.clock())
        if len(self.attempts) == 1:
            raise TransientError("too many requests (429)", retry_after=self.retry_after)
        return super().upload(path, src, size, mtime, **kw)


def test_retry_after_is_honoured(env, quick_retries):
    pacer, now = quick_retries
    write(env.local / "a.txt", "a")
    provider = ThrottledProvider({"root": str(env.cloud)}, clock=lambda: now[0])
    r = env.sync(provider=provider)
    assert r.exit_code == 0 and r.summary == {"uploaded": 1}
    assert len(provider.attempts) == 2 and provider.attempts[1] - provider.attempts[0] >= 2
    assert pacer.failures == 0  # the success reset the backoff


def test_a_wait_longer_than_the_cap_fails_the_item_for_this_pass(env, quick_retries):
    _, now = quick_retries
    write(env.local / "a.txt", "a")
    write(env.local / "b.txt", "b")
    provider = ThrottledProvider({"root": str(env.cloud)}, clock=lambda: now[0], retry_after=86_400)
    r = env.sync(provider=provider)
    assert r.exit_code == 1 and r.failed == 1
    assert now[0] < 60  # nobody waited a day
    assert len(os.listdir(env.cloud)) == 1  # the other file went


# -- server-side conflict copies ----------------------------------------------------------------------------------


def _conflict(env, provider_cls=HashListingProvider, **kw):
    write(env.local / "f.txt", "v0")
    assert env.sync().exit_code == 0
    write(env.local / "f.txt", "local edit")
    write(env.cloud / "f.txt", "cloud edit, a little longer")
    provider = provider_cls({"root": str(env.cloud)}, **kw)
    r = env.sync(provider=provider)
    return r, provider


def _copies(root) -> dict[str, bytes]:
    return {n: (root / n).read_bytes() for n in os.listdir(root) if "_Conflict_" in n}


def test_a_remote_conflict_copy_is_one_server_side_copy(env):
    r, provider = _conflict(env)
    assert r.exit_code == 0 and r.summary.get("conflict") == 1
    [(src, dst)] = provider.copies
    assert src == "f.txt" and "_Conflict_" in dst
    assert provider.uploads == ["f.txt"]  # only the local version travelled
    assert _copies(env.cloud) == _copies(env.local) == {dst: b"cloud edit, a little longer"}
    assert (env.cloud / "f.txt").read_bytes() == b"local edit"
    again = env.sync(provider=HashListingProvider({"root": str(env.cloud)}))
    assert again.exit_code == 0 and again.summary == {}  # the copy was recorded as synced


class RefusingCopy(HashListingProvider):
    def __init__(self, options, error: Exception) -> None:
        super().__init__(options)
        self.error = error

    def copy(self, src, dst, *, expect=None):
        self.copies.append((src, dst))
        raise self.error


@pytest.mark.parametrize("error", [NotImplementedError("no copy"), ProviderError("copy not allowed here")])
def test_a_refused_copy_falls_back_to_an_upload(env, error):
    r, provider = _conflict(env, RefusingCopy, error=error)
    assert r.exit_code == 0 and r.summary.get("conflict") == 1
    assert len(provider.copies) == 1 and len(provider.uploads) == 2
    assert _copies(env.cloud) == _copies(env.local)
    assert list(_copies(env.cloud).values()) == [b"cloud edit, a little longer"]


def test_a_taken_name_is_not_sent_again(env):
    r, provider = _conflict(env, RefusingCopy, error=PreconditionFailed("another client made it"))
    assert r.failed == 0  # another client's write: nothing failed, the next pass looks again
    assert provider.uploads == []  # the name was taken meanwhile: nothing is written over it
    assert (env.cloud / "f.txt").read_bytes() == b"cloud edit, a little longer"
    assert (env.local / "f.txt").read_bytes() == b"local edit"


class RewrittenBeforeCopy(HashListingProvider):
    """Another client rewrites the file between the listing and the copy."""

    def copy(self, src, dst, *, expect=None):
        with open(os.path.join(self.options["root"], src), "wb") as f:
            f.write(b"a third version, written meanwhile")
        return super().copy(src, dst, expect=expect)


def test_a_copy_of_another_version_is_left_for_the_next_pass(env):
    r, provider = _conflict(env, RewrittenBeforeCopy)
    assert len(provider.copies) == 1
    assert r.failed == 0
    for _ in range(2):
        env.sync()
    versions = {p.read_bytes() for p in env.cloud.iterdir()} | {p.read_bytes() for p in env.local.iterdir()}
    assert {b"local edit", b"cloud edit, a little longer", b"a third version, written meanwhile"} <= versions
    assert env.sync().summary == {}
    assert sorted(os.listdir(env.cloud)) == sorted(os.listdir(env.local))


def test_upload_only_keeps_the_remote_version_without_downloading_it(make_env):
    env = make_env("upload")
    write(env.local / "f.txt", "v0")
    assert env.sync().exit_code == 0
    write(env.local / "f.txt", "local edit")
    write(env.cloud / "f.txt", "cloud edit, a little longer")
    provider = HashListingProvider({"root": str(env.cloud)})
    r = env.sync(provider=provider)
    assert r.exit_code == 0 and r.summary.get("conflict") == 1
    assert provider.downloads == 0 and len(provider.copies) == 1 and provider.uploads == ["f.txt"]
    assert list(_copies(env.cloud).values()) == [b"cloud edit, a little longer"]
    assert not any(n.startswith(TEMP_PREFIX) for n in os.listdir(env.local))



class NoHashForThisContent(HashListingProvider):
    """A listing hash that is not the content's (an S3 ETag of a KMS-encrypted object), and a download answer
    that says so with an empty hash."""

    def list_reporting(self, folder, on_skip):
        for e in super().list_reporting(folder, on_skip):
            yield e if e.is_dir else e._replace(hash="0123456789abcdef0123456789abcdef")

    def download(self, path, out):
        return super().download(path, out)._replace(hash="")


def test_a_download_the_service_gives_no_hash_for_is_not_checked(env, quick_retries):
    data = os.urandom(300_000)
    write(env.cloud / "a.bin", data)
    provider = NoHashForThisContent({"root": str(env.cloud)})
    r = env.sync(provider=provider)
    assert r.exit_code == 0 and r.summary == {"downloaded": 1}
    assert (env.local / "a.bin").read_bytes() == data and provider.downloads == 1
