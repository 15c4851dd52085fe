"""Encrypt a plain stream into a Cloud Sync container, read as a file object, in constant memory.

Pipeline: plaintext in 4,096-byte blocks -> LZ4 frame (linked blocks, content checksum, 64 KB block-size
byte, one block per 4,096 input bytes, as Cloud Sync writes it) -> one AES-256-CBC stream with PKCS#7 padding
only at the end -> 8,192-byte `data` pieces -> a trailing `file_md5` record. The header goes first, so the
container can be uploaded while the plaintext is still being read.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections import deque
from typing import BinaryIO

import lz4.frame
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from engine.crypto import wire
from engine.crypto.kdf import SALT_LEN, random_letters, salted_hash
from engine.crypto.keys import AccountKey, file_key_iv, wrap_with_password, wrap_with_public_key

LZ4_INPUT_BLOCK = 4096  # Cloud Sync compresses 4,096 input bytes per LZ4 block
PIECE_SIZE = 8192  # ciphertext bytes per data object; Cloud Sync rejects larger pieces
_READ_SIZE = 64 * 1024  # plaintext read per step: 16 LZ4 blocks, one AES update, 8 data pieces
SUPPORTED_VERSIONS = ((1, 0), (3, 0), (3, 1))
WRITE_VERSION = (3, 1)


def new_session_key(major: int) -> str:
    """3.x: 32 random bytes as 64 upper-case hex characters; 1.x: a 32-character ASCII string."""
    if major >= 3:
        return secrets.token_bytes(32).hex().upper()
    return random_letters(32)


def build_header(
    account_key: AccountKey, file_name: str, session_key: str, version: tuple[int, int] = WRITE_VERSION
) -> bytes:
    """Magic plus the metadata dict, for a given session key."""
    major, minor = version
    salt = random_letters(SALT_LEN) if major >= 3 else None
    meta: dict[str, wire.Value] = {
        "compress": 1,
        "digest": "md5",
        "enc_key1": wrap_with_password(session_key, account_key.password, salt),
        "enc_key2": wrap_with_public_key(session_key, account_key.public_key),
        "encrypt": 1,
        "file_name": file_name,
        "key1_hash": salted_hash(account_key.password.encode("utf-8")),
        "key2_hash": salted_hash(account_key.public_pem.encode("ascii")),
        "session_key_hash": salted_hash(session_key.encode("ascii")),
        "type": "metadata",
        "version": {"major": major, "minor": minor},
    }
    if salt is not None:
        meta["salt"] = salt
    return wire.MAGIC + wire.encode(meta)


class EncryptingReader(io.RawIOBase):
    """A readable file object whose bytes are the container of `plain_file`.

    `read(n)` pulls only as much plaintext as it needs, so memory stays bounded whatever the file size; this
    is what a provider's upload reads from. After EOF, `plain_md5`, `plain_size` and `cipher_size` describe
    what was written. `file_name` is the plain base name recorded in the container.
    """

    def __init__(
        self,
        plain_file: BinaryIO,
        account_key: AccountKey,
        file_name: str,
        *,
        version: tuple[int, int] = WRITE_VERSION,
    ) -> None:
        super().__init__()
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported container version {version}")
        self._src = plain_file
        session_key = new_session_key(version[0])
        header = build_header(account_key, os.path.basename(file_name), session_key, version)
        # Output not yet read: whole encoded objects, the first `_head` bytes of the first already handed out.
        self._chunks: deque[bytes] = deque([header])
        self._head = 0
        self._buffered = len(header)
        key, iv = file_key_iv(session_key, version[0])
        self._enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._lz4 = lz4.frame.LZ4FrameCompressor(
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=True,
            content_checksum=True,
            block_checksum=False,
            auto_flush=True,  # one LZ4 block per compress() call, i.e. per 4,096 input bytes
        )
        self._lz4_header = self._lz4.begin()
        self._compressed_total = 0  # LZ4 bytes encrypted so far, for the final PKCS#7 padding
        self._cipher = bytearray()  # ciphertext not yet cut into pieces
        self._md5 = hashlib.md5()
        self._carry = b""  # plaintext shorter than one LZ4 block, waiting for more input
        self._done = False
        self.plain_size = 0
        self.cipher_size = 0
        self.plain_md5: str | None = None

    # -- io.RawIOBase -----------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        n = len(data)
        memoryview(b).cast("B")[:n] = data
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        while self._buffered < size and not self._done:
            self._pump()
        need = min(size, self._buffered)
        parts: list[bytes | memoryview] = []
        while need:
            chunk = self._chunks[0]
            avail = len(chunk) - self._head
            if avail <= need:
                parts.append(memoryview(chunk)[self._head :] if self._head else chunk)
                self._chunks.popleft()
                self._head = 0
                need -= avail
            else:
                parts.append(memoryview(chunk)[self._head : self._head + need])
                self._head += need
                need = 0
        data = parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
        self._buffered -= len(data)
        self.cipher_size += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:  # closes this reader only; the caller owns plain_file
        super().close()

    # -- pipeline ---------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Advance one step: read up to 64 KiB of plaintext and queue the resulting objects for reading."""
        raw = self._src.read(_READ_SIZE)
        final = not raw
        blocks = [self._lz4_header] if self._lz4_header else []
        self._lz4_header = b""
        if raw:
            self._md5.update(raw)
            self.plain_size += len(raw)
            data = self._carry + raw if self._carry else raw
            view = memoryview(data)
            whole = len(data) - len(data) % LZ4_INPUT_BLOCK
            compress = self._lz4.compress
            blocks += [compress(view[i : i + LZ4_INPUT_BLOCK]) for i in range(0, whole, LZ4_INPUT_BLOCK)]
            self._carry = bytes(view[whole:])
        else:
            if self._carry:
                blocks.append(self._lz4.compress(self._carry))
                self._carry = b""
            blocks.append(self._lz4.flush())
        compressed = b"".join(blocks)
        self._compressed_total += len(compressed)
        self._cipher += self._enc.update(compressed)
        if final:
            # One CBC stream over the whole frame: PKCS#7 padding only here, at the very end.
            pad = 16 - self._compressed_total % 16
            self._cipher += self._enc.update(bytes((pad,)) * pad) + self._enc.finalize()
        self._cut_pieces(final)
        if final:
            self.plain_md5 = self._md5.hexdigest()
            self._push(wire.encode({"file_md5": self.plain_md5, "type": "metadata"}))
            self._done = True

    def _cut_pieces(self, final: bool) -> None:
        with memoryview(self._cipher) as view:
            pos = 0
            while len(view) - pos >= PIECE_SIZE or (final and pos < len(view)):
                end = min(pos + PIECE_SIZE, len(view))
                self._push(wire.encode_data_piece(view[pos:end]))
                pos = end
        del self._cipher[:pos]

    def _push(self, obj: bytes) -> None:
        self._chunks.append(obj)
        self._buffered += len(obj)


def encrypt_file(src_path: str, dst_path: str, account_key: AccountKey, file_name: str | None = None) -> str:
    """Encrypt one file into `dst_path` (written directly; the caller owns it). Returns the plain MD5."""
    with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
        reader = EncryptingReader(src, account_key, file_name or os.path.basename(src_path))
        while chunk := reader.read(1 << 20):
            dst.write(chunk)
    assert reader.plain_md5 is not None
    return reader.plain_md5
