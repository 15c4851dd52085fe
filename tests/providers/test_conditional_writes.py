"""Compare before you overwrite (issue 21, "lost update"): `upload()` and `delete()` with `expect`, per provider.

Another client (a second provider on the same namespace) writes or deletes the name between our listing and our
write; the write must then be refused with PreconditionFailed and leave the other client's version as it is.
Where a test server cannot enforce a condition the test is skipped with the reason (see SERVER_LIMITS).
"""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Callable, Iterator

import pytest

from engine.crypto import AccountKey
from engine.crypto.provider import EncryptedProvider
from engine.providers.base import Conditional, Expect, NetworkError, PreconditionFailed, Provider, RemoteEntry
from engine.providers.local import LocalProvider
from engine.providers.s3 import MAX_ATTEMPTS, S3Provider
from tests.fakes.faulty_proxy import FaultyProxy

from .conftest import Harness

MTIME = 1_600_000_123.0
LATER = MTIME + 60.0
MIB = 1 << 20

# Test servers that cannot enforce what the real service does, by kind (the provider's own re-read is still
# tested everywhere; only writes landing *during* an upload depend on the server).
SERVER_LIMITS = {
    "gcs": "gcp-storage-emulator does not enforce ifGenerationMatch, so a write during the upload cannot be "
    "caught here (Google's service checks it as it commits; the re-read before the upload is tested)",
}


def put(p: Provider, path: str, data: bytes, mtime: float = MTIME, expect: Expect | None = None) -> RemoteEntry:
    return p.upload(path, io.BytesIO(data), len(data), mtime, expect=expect)


def content(p: Provider, path: str) -> bytes:
    out = io.BytesIO()
    p.download(path, out)
    return out.getvalue()


def listed(p: Provider, path: str) -> RemoteEntry | None:
    return {e.path: e for e in p.list("")}.get(path)


def same(a: RemoteEntry | None, b: RemoteEntry) -> bool:
    """What the engine compares (listed mtimes may be the upload time where metadata keeps the file's)."""
    return a is not None and (a.path, a.size, a.revision, a.hash) == (b.path, b.size, b.revision, b.hash)


@pytest.fixture
def other(harness: Harness) -> Provider:
    """Another client of the same bucket, container or folder."""
    return harness.make()


# -- uploads ---------------------------------------------------------------------------------------------------


def test_a_new_name_is_written_when_it_is_still_free(provider: Provider) -> None:
    entry = put(provider, "new/a.txt", b"fresh", expect=Expect.absent())
    assert same(listed(provider, "new/a.txt"), entry)
    assert content(provider, "new/a.txt") == b"fresh"


def test_a_new_name_another_client_took_meanwhile_is_not_overwritten(provider: Provider, other: Provider) -> None:
    put(other, "a.txt", b"the other client's file", LATER)
    with pytest.raises(PreconditionFailed) as raised:
        put(provider, "a.txt", b"ours", expect=Expect.absent())
    assert "\n" not in str(raised.value) and "a.txt" in str(raised.value)
    assert content(provider, "a.txt") == b"the other client's file"
    assert not raised.value.retryable


def test_a_replace_goes_ahead_when_the_file_is_still_what_was_listed(provider: Provider) -> None:
    put(provider, "a.txt", b"version one")
    seen = listed(provider, "a.txt")
    assert seen is not None
    entry = put(provider, "a.txt", b"version two, ours", LATER, expect=Expect.entry(seen))
    assert same(listed(provider, "a.txt"), entry)
    assert content(provider, "a.txt") == b"version two, ours"


def test_a_file_another_client_changed_since_the_listing_is_not_overwritten(
    provider: Provider, other: Provider
) -> None:
    put(provider, "dir/a.txt", b"version one")
    seen = listed(provider, "dir/a.txt")
    assert seen is not None
    put(other, "dir/a.txt", b"the other client's edit", LATER)
    with pytest.raises(PreconditionFailed):
        put(provider, "dir/a.txt", b"ours", LATER + 1, expect=Expect.entry(seen))
    assert content(provider, "dir/a.txt") == b"the other client's edit"


def test_a_file_another_client_deleted_since_the_listing_is_not_recreated(
    provider: Provider, other: Provider
) -> None:
    put(provider, "a.txt", b"version one")
    seen = listed(provider, "a.txt")
    assert seen is not None
    other.delete("a.txt")
    with pytest.raises(PreconditionFailed):
        put(provider, "a.txt", b"ours", LATER, expect=Expect.entry(seen))
    assert listed(provider, "a.txt") is None


def test_without_expect_an_upload_replaces_whatever_is_there(provider: Provider, other: Provider) -> None:
    put(provider, "a.txt", b"one")
    put(other, "a.txt", b"two, longer", LATER)
    put(provider, "a.txt", b"three")  # callers that pass nothing behave as before
    assert content(provider, "a.txt") == b"three"


def _small_parts(harness: Harness) -> tuple[Provider, Provider, int]:
    small = getattr(harness.module, "SMALL_PART_OPTIONS", None)
    if small is None:
        pytest.skip(f"the '{harness.kind}' test server defines no SMALL_PART_OPTIONS")
    mine, theirs = harness.make({**harness.options, **small}), harness.make({**harness.options, **small})
    threshold = mine.capabilities.multipart_threshold
    assert threshold is not None
    return mine, theirs, threshold * 2 + threshold // 2


def test_multipart_uploads_keep_the_condition(harness: Harness) -> None:
    mine, theirs, size = _small_parts(harness)
    body = bytes(range(256)) * (size // 256)
    put(theirs, "big.bin", b"theirs")
    with pytest.raises(PreconditionFailed):
        put(mine, "big.bin", body, expect=Expect.absent())
    assert content(mine, "big.bin") == b"theirs"
    seen = listed(mine, "big.bin")
    assert seen is not None
    put(theirs, "big.bin", b"theirs, edited", LATER)
    with pytest.raises(PreconditionFailed):
        put(mine, "big.bin", body, expect=Expect.entry(seen))
    assert content(mine, "big.bin") == b"theirs, edited"
    fresh = listed(mine, "big.bin")
    assert fresh is not None
    entry = put(mine, "big.bin", body, LATER + 1, expect=Expect.entry(fresh))
    assert same(listed(mine, "big.bin"), entry) and content(mine, "big.bin") == body


class _Meddling(io.RawIOBase):
    """Our upload's source: once `after` bytes were read, another client writes the same name."""

    def __init__(self, data: bytes, after: int, meddle: Callable[[], None]) -> None:
        super().__init__()
        self.data, self.pos, self.after, self.meddle, self.done = data, 0, after, meddle, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.after and not self.done:
            self.done = True
            self.meddle()
        end = len(self.data) if self.pos >= self.after else self.after
        n = min(len(buffer), end - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def meddling(data: bytes, after: int, meddle: Callable[[], None]) -> tuple[io.BufferedReader, _Meddling]:
    """A source that reads like a file (no short reads) over `_Meddling`."""
    raw = _Meddling(data, after, meddle)
    return io.BufferedReader(raw, 64 * 1024), raw


@pytest.mark.parametrize("multipart", [False, True], ids=["single", "multipart"])
def test_a_write_that_lands_during_our_upload_is_not_overwritten(harness: Harness, multipart: bool) -> None:
    """The other client writes while our data is on its way: only a check made as the write is committed (or
    right before, after the data went) can catch that; see `Conditional`."""
    mine, theirs, size = _small_parts(harness) if multipart else (harness.make(), harness.make(), 64 * 1024)
    if mine.capabilities.conditional_writes != Conditional.SERVER:
        pytest.skip(f"'{harness.kind}' re-reads before the write ({mine.capabilities.conditional_writes}): a write "
                    "during the upload is the window its docstring describes")
    if harness.kind in SERVER_LIMITS:
        pytest.skip(SERVER_LIMITS[harness.kind])
    body = bytes(range(256)) * (size // 256)
    put(mine, "x.bin", b"version one")
    seen = listed(mine, "x.bin")
    assert seen is not None
    source, raw = meddling(body, len(body) // 2, lambda: put(theirs, "x.bin", b"written meanwhile", LATER))
    with pytest.raises(PreconditionFailed):
        mine.upload("x.bin", source, len(body), LATER + 1, expect=Expect.entry(seen))
    assert raw.done
    assert content(mine, "x.bin") == b"written meanwhile"


def test_the_local_folder_rechecks_right_before_its_rename(tmp_path: pathlib.Path) -> None:
    """The local provider writes to a temporary name first: a write landing meanwhile is seen at the rename."""
    root = tmp_path / "cloud"
    root.mkdir()
    mine = LocalProvider({"root": str(root)})
    put(mine, "x.bin", b"version one")
    seen = listed(mine, "x.bin")
    assert seen is not None

    def meddle() -> None:
        with open(f"{root}/x.bin", "wb") as f:
            f.write(b"written meanwhile")

    body = b"z" * (3 * MIB)
    source, raw = meddling(body, MIB, meddle)
    with pytest.raises(PreconditionFailed):
        mine.upload("x.bin", source, len(body), LATER, expect=Expect.entry(seen))
    assert raw.done
    assert content(mine, "x.bin") == b"written meanwhile"
    assert os.listdir(root) == ["x.bin"]  # no temporary file left


# -- deletes ---------------------------------------------------------------------------------------------------


def test_a_delete_goes_ahead_when_the_file_is_still_what_was_listed(provider: Provider) -> None:
    put(provider, "d/a.txt", b"one")
    seen = listed(provider, "d/a.txt")
    assert seen is not None
    provider.delete("d/a.txt", expect=Expect.entry(seen))
    assert listed(provider, "d/a.txt") is None


def test_a_file_another_client_changed_since_the_listing_is_not_deleted(provider: Provider, other: Provider) -> None:
    put(provider, "a.txt", b"one")
    seen = listed(provider, "a.txt")
    assert seen is not None
    put(other, "a.txt", b"the other client's edit", LATER)
    with pytest.raises(PreconditionFailed):
        provider.delete("a.txt", expect=Expect.entry(seen))
    assert content(provider, "a.txt") == b"the other client's edit"


def test_a_file_already_gone_is_not_an_error_to_delete(provider: Provider, other: Provider) -> None:
    put(provider, "a.txt", b"one")
    seen = listed(provider, "a.txt")
    assert seen is not None
    other.delete("a.txt")
    provider.delete("a.txt", expect=Expect.entry(seen))
    assert listed(provider, "a.txt") is None


# -- the capability and the encrypted view ---------------------------------------------------------------------


def test_every_provider_declares_how_it_honours_conditions(provider: Provider) -> None:
    caps = provider.capabilities
    assert caps.conditional_writes in (Conditional.SERVER, Conditional.REREAD)
    assert caps.conditional_deletes in (Conditional.SERVER, Conditional.REREAD)


@pytest.fixture(scope="module")
def account() -> AccountKey:
    return AccountKey.create("conditional writes")


def test_the_encrypted_view_passes_conditions_through(harness: Harness, account: AccountKey) -> None:
    enc = EncryptedProvider(harness.make(), account.to_secrets())
    other = EncryptedProvider(harness.make(), account.to_secrets())  # the inner providers close with the harness
    assert enc.capabilities.conditional_writes == enc.inner.capabilities.conditional_writes
    put(enc, "a.txt", b"one", expect=Expect.absent())
    with pytest.raises(PreconditionFailed):
        put(enc, "a.txt", b"again", expect=Expect.absent())
    seen = listed(enc, "a.txt")
    assert seen is not None
    put(other, "a.txt", b"the other client's edit", LATER)
    with pytest.raises(PreconditionFailed):
        put(enc, "a.txt", b"ours", LATER + 1, expect=Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        enc.delete("a.txt", expect=Expect.entry(seen))
    assert content(enc, "a.txt") == b"the other client's edit"
    fresh = listed(enc, "a.txt")
    assert fresh is not None
    enc.delete("a.txt", expect=Expect.entry(fresh))
    assert listed(enc, "a.txt") is None


# -- a retried request must not take our own write for another client's ---------------------------------------


@pytest.fixture
def flaky_s3() -> Iterator[tuple[S3Provider, FaultyProxy, str]]:
    """An s3 provider on moto through a FaultyProxy (faults only where a test injects them)."""
    from .servers import _moto, s3

    with FaultyProxy(_moto.endpoint()) as proxy:
        options = {**s3.options(_moto.new_bucket()), "endpoint": proxy.endpoint, "part_size": "5"}
        provider = S3Provider(options)
        yield provider, proxy, options["bucket"]
        provider.close()


def test_s3_a_write_whose_answer_was_lost_is_not_refused_when_botocore_retries(flaky_s3) -> None:
    """The service stored our PUT but the answer never came back; botocore sends it again, and the condition
    ("no object", then the old ETag) now fails against our own object. That is success, not a conflict."""
    provider, proxy, _ = flaky_s3
    body = os.urandom(1000)
    proxy.inject("drop-after", "PUT")  # the request reaches moto; its answer is lost
    entry = put(provider, "a.bin", body, expect=Expect.absent())
    edit = os.urandom(1000)
    proxy.inject("drop-after", "PUT")
    entry = put(provider, "a.bin", edit, LATER, expect=Expect.entry(entry))
    assert proxy.counts["drop-after"] == 2
    assert content(provider, "a.bin") == edit and same(listed(provider, "a.bin"), entry)


@pytest.mark.parametrize("size,method,query", [(1000, "PUT", ""), (11 * MIB, "POST", "uploadId")],
                         ids=["single-part", "multipart"])
def test_s3_a_write_whose_answer_was_lost_is_not_refused_when_the_engine_retries(
    flaky_s3, size: int, method: str, query: str
) -> None:
    """The write landed, then every answer was lost until botocore gave up: the engine uploads the file again
    with the same condition, which our own object no longer meets. Done, not a conflict; nothing left over."""
    provider, proxy, bucket = flaky_s3
    seen = put(provider, "a.bin", b"version one")
    edit = os.urandom(size)
    proxy.inject("drop-after", method, query)
    for _ in range(MAX_ATTEMPTS - 1):
        proxy.inject("drop-before", method, query)
    with pytest.raises(NetworkError):
        put(provider, "a.bin", edit, LATER, expect=Expect.entry(seen))
    assert content(provider, "a.bin") == edit  # it did land
    entry = put(provider, "a.bin", edit, LATER, expect=Expect.entry(seen))  # the engine's next attempt
    assert same(listed(provider, "a.bin"), entry) and content(provider, "a.bin") == edit
    assert not provider.client.list_multipart_uploads(Bucket=bucket).get("Uploads")
