"""Each hash kind a service reports, as a streaming hasher, and the one way the engine hashes a local file.

`hasher_for(kind)` gives an object with `update(bytes)` and `text()`, the digest in exactly the textual form
the service lists it (lowercase hex; base64 for OneDrive's quickXorHash), so a local file and a listed entry are
compared with `same_hash`, never by hand: a base64 digest must not be lowercased like a hex one.

Encryption's container format keeps digests of its own (`engine/crypto`: an MD5 of the plaintext inside the
file, key fingerprints); those are fields of that format, not a service's view of a file, and stay there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import threading
from typing import BinaryIO, Protocol

from engine.providers.base import HashKind

READ_SIZE = 160 * 6554  # ≈ 1 MiB, a whole number of quickXorHash rows (see `_QuickXor`)
DROPBOX_BLOCK = 4 * 1024 * 1024


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def text(self) -> str:
        """The digest as the service writes it; the hasher is not updated afterwards."""
        ...


class _Hashlib:
    """md5, sha1, sha256: lowercase hex, as every service that lists them writes them."""

    def __init__(self, name: str) -> None:
        self._h = hashlib.new(name)

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._h.update(data)

    def text(self) -> str:
        return self._h.hexdigest()


class _DropboxContentHash:
    """Dropbox's `content_hash`: the SHA-256 of the concatenated SHA-256 digests of each 4 MiB block (the last
    one shorter), in hex (https://www.dropbox.com/developers/reference/content-hash). An empty file has no block,
    so its hash is the SHA-256 of nothing."""

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        view = memoryview(data)
        while len(view):
            take = min(len(view), DROPBOX_BLOCK - self._filled)
            self._block.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == DROPBOX_BLOCK:
                self._overall.update(self._block.digest())
                self._block = hashlib.sha256()
                self._filled = 0

    def text(self) -> str:
        overall = self._overall.copy()
        if self._filled:
            overall.update(self._block.digest())
        return overall.hexdigest()


_WIDTH = 160  # bits in the quickXorHash register
_ROW = _WIDTH  # bytes after which the shift pattern repeats: byte i lands at bit 11*i mod 160
_ROW_BITS = _ROW * 8
_ROW_MASK = (1 << _ROW_BITS) - 1
_REGISTER = (1 << _WIDTH) - 1
_SHIFTS = tuple((11 * i) % _WIDTH for i in range(_ROW))


def _fold_rows(x: int, rows: int) -> int:
    """XOR of the `rows` 160-byte rows packed little-endian in `x`, as one 160-byte integer.

    Halving the number in C big-integer operations instead of a byte loop: byte i and byte i+160 are XORed
    into the same bit position, so the rows can be XORed column-wise first and spread over the register once.
    """
    acc = 0
    while rows > 1:
        if rows & 1:
            acc ^= x & _ROW_MASK
            x >>= _ROW_BITS
            rows -= 1
        half = (rows >> 1) * _ROW_BITS
        x = (x >> half) ^ (x & ((1 << half) - 1))
        rows >>= 1
    return acc ^ x


class _QuickXor:
    """OneDrive's quickXorHash: byte i of the content is XORed into a 160-bit register at bit 11*i, rotating
    (wrapping) past the top; the length as a little-endian 64-bit number is XORed into the last 8 of the 20
    digest bytes; the digest is the register little-endian, in base64
    (https://learn.microsoft.com/onedrive/developer/code-snippets/quickxorhash).

    The content is kept as the column-wise XOR of its 160-byte rows (`_columns`, aligned on the stream's start),
    and spread over the register only in `text()`: about 300 MB/s in CPython, where a byte loop manages 5.
    """

    def __init__(self) -> None:
        self._columns = 0
        self._tail = b""  # the bytes of an unfinished row
        self._length = 0

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        view = memoryview(data).cast("B")
        self._length += len(view)
        if self._tail:
            take = min(len(view), _ROW - len(self._tail))
            self._tail += bytes(view[:take])
            view = view[take:]
            if len(self._tail) < _ROW:
                return
            self._columns ^= int.from_bytes(self._tail, "little")
            self._tail = b""
        whole = len(view) - len(view) % _ROW
        if whole:
            self._columns ^= _fold_rows(int.from_bytes(view[:whole], "little"), whole // _ROW)
        if whole < len(view):
            self._tail = bytes(view[whole:])

    def text(self) -> str:
        columns = self._columns ^ int.from_bytes(self._tail, "little")  # the short row as if padded with zeros
        register = 0
        for i, shift in enumerate(_SHIFTS):
            byte = (columns >> (8 * i)) & 0xFF
            if byte:
                spread = byte << shift
                register ^= (spread | (spread >> _WIDTH)) & _REGISTER
        digest = bytearray(register.to_bytes(_WIDTH // 8, "little"))
        for i, b in enumerate((self._length & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")):
            digest[_WIDTH // 8 - 8 + i] ^= b
        return base64.b64encode(bytes(digest)).decode("ascii")


def hasher_for(kind: HashKind) -> Hasher:
    """A fresh streaming hasher for `kind`; ValueError for `HashKind.NONE` (there is nothing to compute)."""
    if kind in (HashKind.MD5, HashKind.SHA1, HashKind.SHA256):
        return _Hashlib(kind.value)
    if kind == HashKind.DROPBOX:
        return _DropboxContentHash()
    if kind == HashKind.QUICKXOR:
        return _QuickXor()
    raise ValueError(f"no hasher for hash kind {kind!s}")


def normalised(kind: HashKind, value: str) -> str:
    """A listed hash in the form `text()` produces: hex is case-insensitive, base64 is not."""
    value = value.strip()
    return value if kind == HashKind.QUICKXOR else value.lower()


def same_hash(kind: HashKind, computed: str, listed: str) -> bool:
    return computed == normalised(kind, listed)


def hash_file(source: str | int | BinaryIO, kind: HashKind) -> str:
    """The `kind` hash of a local file: a path, an open descriptor (read from its start, its offset left as it
    was), or a binary file object (read from where it stands to its end)."""
    h = hasher_for(kind)
    if isinstance(source, str):
        with open(source, "rb") as f:
            return hash_file(f, kind)
    if isinstance(source, int):
        offset = 0
        while chunk := os.pread(source, READ_SIZE, offset):
            h.update(chunk)
            offset += len(chunk)
        return h.text()
    while chunk := source.read(READ_SIZE):
        h.update(chunk)
    return h.text()


class _Background:
    """A hasher fed through a short queue and run on a thread of its own, so hashing a big file overlaps with
    reading and writing it: hashlib releases the GIL on large updates, and a transfer between two disks would
    otherwise spend as long hashing as copying. `close()` ends the thread (also when the transfer failed)."""

    def __init__(self, inner: Hasher) -> None:
        self._inner = inner
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="skysync-hash", daemon=True)
        self._thread.start()
        self._text: str | None = None

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._inner.update(chunk)

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._queue.put(bytes(data))  # a bytes object is passed as it is; a view is copied, its buffer moves on

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def text(self) -> str:
        if self._text is None:
            self.close()
            self._text = self._inner.text()
        return self._text


BACKGROUND_FROM = 8 * 1024 * 1024  # bytes: below this, a thread costs more than the hashing it would overlap


class _Hashing:
    """What the hashing file wrappers share: the hasher of the bytes passed in order from the start, and a
    flag that turns false when the caller jumped elsewhere (an SDK reading parts in parallel, writing chunks out
    of order); a seek back to the start (an SDK's own retry) starts the hash again. `size` is the expected
    length: a big transfer is hashed on a thread of its own. Call `close()` when the transfer is over."""

    def __init__(self, f: BinaryIO, kind: HashKind, size: int = 0) -> None:
        self._f = f
        self._kind = kind
        self._background = size >= BACKGROUND_FROM
        self._h = self._hasher()
        self._start = _tell(f)
        self._pos = 0  # bytes hashed, i.e. the position relative to the start while in order
        self._in_order = True

    def _hasher(self) -> Hasher:
        h = hasher_for(self._kind)
        return _Background(h) if self._background else h

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        new = self._f.seek(offset, whence)
        rel = new - self._start if self._start is not None else None
        if rel == 0:
            self.close()
            self._h, self._pos, self._in_order = self._hasher(), 0, True
        elif rel != self._pos:
            self._in_order = False
        return new

    def text(self, size: int) -> str | None:
        """The hash of the `size` bytes passed, or None when they did not pass exactly once and in order."""
        return self._h.text() if self._in_order and self._pos == size else None

    def close(self) -> None:
        if isinstance(self._h, _Background):
            self._h.close()

    def __getattr__(self, name: str):  # tell/fileno/flush/seekable for SDKs that need them
        return getattr(self._f, name)


class HashingReader(_Hashing):
    """A readable file whose bytes are hashed as they are read (an upload reads them anyway)."""

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if self._in_order and data:
            self._h.update(data)
            self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)


class HashingWriter(_Hashing):
    """A writable file whose bytes are hashed as they are written (a download writes them anyway)."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self._f.write(data)
        if self._in_order:
            written = n if n is not None else len(data)
            self._h.update(memoryview(data)[:written])
            self._pos += written
        return n


def _tell(f: BinaryIO) -> int | None:
    try:
        return f.tell()
    except (OSError, AttributeError, ValueError):
        return None
