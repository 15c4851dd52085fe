"""Shared fixtures of the crypto tests: account keys (RSA generation is the slow part) and test data."""

from __future__ import annotations

import io
import os
import random

import pytest

from engine.crypto import AccountKey

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def account() -> AccountKey:
    return AccountKey.create(PASSWORD)


@pytest.fixture(scope="session")
def other_account() -> AccountKey:
    return AccountKey.create("another password")


def sample(n: int, seed: int | None = None) -> bytes:
    """Half incompressible, half repetitive text: exercises both LZ4 literal runs and matches.

    Random unless `seed` is given, in which case the same bytes come back every time.
    """
    noise = os.urandom(n // 2) if seed is None else random.Random(seed).randbytes(n // 2)
    text = (b"The quick brown fox jumps over the lazy dog. " * (n // 45 + 1))[: n - len(noise)]
    return noise + text


class PatternSource(io.RawIOBase):
    """A large plaintext generated on the fly (constant memory), cycling one 1 MiB block of mixed data."""

    def __init__(self, size: int, chunk_limit: int | None = None) -> None:
        self._block = sample(1 << 20, seed=1)
        self._left = size
        self._pos = 0
        self._chunk_limit = chunk_limit

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self._left
        n = min(n, self._left, len(self._block) - self._pos)
        if self._chunk_limit:
            n = min(n, self._chunk_limit)
        data = self._block[self._pos : self._pos + n]
        self._pos = (self._pos + n) % len(self._block)
        self._left -= n
        return data


class HashSink:
    """A write-only file that keeps only the MD5 and the size of what it was given."""

    def __init__(self) -> None:
        import hashlib

        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        return len(data)
