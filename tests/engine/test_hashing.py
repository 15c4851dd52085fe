"""Each hash kind's streaming hasher against values published by the services (or by independent
implementations checked against them), and the one local hashing function."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.hashing import hash_file, hasher_for, normalised, same_hash
from engine.providers.base import HashKind

# quickXorHash: (content in base64, digest) as rclone's port of Microsoft's C# snippet checks them, and
# "hello world" as the flowerysong C library and the quickxorhash crate document it.
QUICKXOR = [
    ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
    ("tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
    ("/aNzzCFPS/A=", "/RjFHJgRgicsAR4ACAAAAAAAAAA="),
    ("2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="),
    ("NbYXsp5/K6mR+NmHwExjvWeWDJFnXTKWVlzYHoesp2E=", "wjuAuWDiq04qDt1R8hHWDDcwVoQ="),
    (base64.b64encode(b"hello world").decode(), "aCgDG9jwBhDc4Q1yawMZAAAAAAA="),
]

# Dropbox content hash of n bytes of b"A" (rclone's dbhash tests), across the 4 MiB block edges.
DROPBOX = [
    (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (1, "1cd6ef71e6e0ff46ad2609d403dc3fee244417089aa4461245a4e4fe23a55e42"),
    (4096, "8620913d33852befe09f16fff8fd75f77a83160d29f76f07e0276e9690903035"),
    (4194303, "647c8627d70f7a7d13ce96b1e7710a771a55d41a62c3da490d92e56044d311fa"),
    (4194304, "d4d63bac5b866c71620185392a8a6218ac1092454a2d16f820363b69852befa3"),
    (4194305, "8f553da8d00d0bf509d8470e242888be33019c20c0544811f5b2b89e98360b92"),
    (8388609, "02c8a4aefc2bfc9036f89a7098001865885938ca580e5c9e5db672385edd303c"),
]


def digest(kind: HashKind, data: bytes, chunks: list[int] | None = None) -> str:
    h = hasher_for(kind)
    pos = 0
    for size in chunks or []:
        h.update(data[pos : pos + size])
        pos += size
    h.update(data[pos:])
    return h.text()


@pytest.mark.parametrize(("content", "expected"), QUICKXOR)
def test_quickxor_known_values(content, expected):
    assert digest(HashKind.QUICKXOR, base64.b64decode(content)) == expected


@pytest.mark.parametrize(("n", "expected"), DROPBOX)
def test_dropbox_content_hash_known_values(n, expected):
    assert digest(HashKind.DROPBOX, b"A" * n) == expected


def _quickxor_by_the_book(data: bytes) -> str:
    """Microsoft's description, one byte at a time: slow, obviously right."""
    register = 0
    for i, b in enumerate(data):
        shift = (11 * i) % 160
        v = b << shift
        register ^= (v | (v >> 160)) & ((1 << 160) - 1)
    out = bytearray(register.to_bytes(20, "little"))
    for i, b in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= b
    return base64.b64encode(bytes(out)).decode()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000))
def test_quickxor_matches_the_byte_by_byte_definition(data):
    assert digest(HashKind.QUICKXOR, data) == _quickxor_by_the_book(data)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from([HashKind.MD5, HashKind.SHA1, HashKind.SHA256, HashKind.DROPBOX, HashKind.QUICKXOR]),
    data=st.binary(max_size=3000),
    chunks=st.lists(st.integers(min_value=0, max_value=700), max_size=12),
)
def test_any_chunking_gives_the_same_digest(kind, data, chunks):
    assert digest(kind, data, chunks) == digest(kind, data)


def test_dropbox_chunking_across_blocks():
    data = os.urandom(9 * 1024 * 1024 + 5)
    whole = digest(HashKind.DROPBOX, data)
    assert digest(HashKind.DROPBOX, data, [3, 4 * 1024 * 1024, 1, 4 * 1024 * 1024 - 7]) == whole
    blocks = [data[i : i + 4 * 1024 * 1024] for i in range(0, len(data), 4 * 1024 * 1024)]
    assert whole == hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()


def test_hex_kinds_are_hashlib():
    data = b"some content"
    assert digest(HashKind.MD5, data) == hashlib.md5(data).hexdigest()
    assert digest(HashKind.SHA1, data) == hashlib.sha1(data).hexdigest()
    assert digest(HashKind.SHA256, data) == hashlib.sha256(data).hexdigest()


def test_no_hasher_for_none():
    with pytest.raises(ValueError):
        hasher_for(HashKind.NONE)


def test_comparison_lowercases_hex_but_not_base64():
    assert same_hash(HashKind.MD5, "abcdef", "ABCDEF ")
    assert not same_hash(HashKind.QUICKXOR, "aCgDG9jwBhDc4Q1yawMZAAAAAAA=", "ACGDG9JWBHDC4Q1YAWMZAAAAAAA=")
    assert normalised(HashKind.QUICKXOR, "aCgD=") == "aCgD="


def test_hash_file_from_a_path_a_descriptor_and_a_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for kind in (HashKind.MD5, HashKind.QUICKXOR, HashKind.DROPBOX):
        expected = digest(kind, data)
        assert hash_file(str(path), kind) == expected
        with open(path, "rb") as f:
            f.read(10)  # a descriptor is read from its start and its offset is left alone
            assert hash_file(f.fileno(), kind) == expected
            assert f.tell() == 10
            f.seek(0)
            assert hash_file(f, kind) == expected


def test_quickxor_is_fast_enough():
    data = os.urandom(64 * 1024 * 1024)
    h = hasher_for(HashKind.QUICKXOR)
    start = time.perf_counter()
    view = memoryview(data)
    for i in range(0, len(data), 1 << 20):
        h.update(view[i : i + (1 << 20)])  # 1 MiB reads: not multiples of the 160-byte row
    h.text()
    rate = len(data) / (time.perf_counter() - start) / 1e6
    assert rate >= 50, f"{rate:.0f} MB/s"


@pytest.mark.parametrize("size", [100_000, 9 * 1024 * 1024])  # inline, and on a thread of its own
def test_hashing_reader_and_writer(size):
    import io
    import threading

    from engine.hashing import HashingReader, HashingWriter

    data = os.urandom(size)
    reader = HashingReader(io.BytesIO(data), HashKind.MD5, size)
    reader.read(1000)
    reader.seek(0)  # an SDK's retry from the start: the hash starts again
    while reader.read(1 << 20):
        pass
    assert reader.text(size) == hashlib.md5(data).hexdigest()
    assert reader.text(size + 1) is None  # not the length stored

    out = io.BytesIO()
    writer = HashingWriter(out, HashKind.SHA1, size)
    view = memoryview(data)
    for i in range(0, size, 300_001):
        writer.write(view[i : i + 300_001])
    assert writer.text(size) == hashlib.sha1(data).hexdigest() and out.getvalue() == data

    jumpy = HashingWriter(io.BytesIO(), HashKind.MD5, size)
    jumpy.write(data[:10])
    jumpy.seek(5000)  # parts written at offsets: no hash can be known on the way
    jumpy.write(data[5000:])
    assert jumpy.text(size) is None
    jumpy.close()

    abandoned = HashingReader(io.BytesIO(data), HashKind.MD5, size)
    abandoned.read(1 << 20)
    abandoned.close()  # a failed transfer: its hashing thread ends
    assert not [t for t in threading.enumerate() if t.name == "skysync-hash"]
