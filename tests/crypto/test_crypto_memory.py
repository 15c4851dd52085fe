"""Constant memory both ways: a 64 MiB file streams through encryption and decryption with a small peak."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

from engine.crypto import AccountKey, DecryptingWriter, EncryptingReader

from .conftest import PASSWORD, HashSink, PatternSource

MiB = 1 << 20
PEAK_LIMIT = 6 * MiB  # a few LZ4/AES steps in flight; holding the file would be 64 MiB or more


def test_streaming_64_mib_both_ways_in_constant_memory(account: AccountKey) -> None:
    size = 64 * MiB
    expected = hashlib.md5()
    check = PatternSource(size)
    while chunk := check.read(MiB):
        expected.update(chunk)

    src = PatternSource(size)
    sink = HashSink()
    tracemalloc.start()
    try:
        reader = EncryptingReader(src, account, "big.bin")  # type: ignore[arg-type]
        writer = DecryptingWriter(sink, password=PASSWORD)  # type: ignore[arg-type]
        while chunk := reader.read(256 * 1024):
            writer.write(chunk)
        writer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size == size and sink.md5.hexdigest() == expected.hexdigest() == writer.plain_md5
    assert reader.cipher_size == writer.cipher_size
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.1f} MiB"


def test_highly_compressible_data_decrypts_in_bounded_steps(account: AccountKey) -> None:
    # 64 MiB of zeros is a ~260 KB container: one write() of it must not expand to 64 MiB at once.
    size = 64 * MiB

    class Zeros(io.RawIOBase):
        left = size

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            n = min(self.left, n if n >= 0 else self.left, MiB)
            self.left -= n
            return bytes(n)

    container = EncryptingReader(Zeros(), account, "zeros")  # type: ignore[arg-type]
    blob = container.read()
    assert len(blob) < size // 100
    sink = HashSink()
    tracemalloc.start()
    try:
        writer = DecryptingWriter(sink, password=PASSWORD)  # type: ignore[arg-type]
        writer.write(blob)
        writer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size == size
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.1f} MiB"
