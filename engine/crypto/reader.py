"""Decrypt a Cloud Sync container written to us piece by piece, in constant memory, verifying it at the end.

`DecryptingWriter` is the download side's sink: the provider writes ciphertext into it as it arrives, the
plaintext goes straight to `out_file`, and `close()` raises unless every check passed (salted hashes, CBC
padding, the LZ4 content checksum and the trailing `file_md5`). Callers write `out_file` under a temporary
name and rename it into place only after `close()` returned.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, NoReturn

import lz4.frame
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from engine.crypto import wire
from engine.crypto.errors import (
    CorruptError,
    CryptoError,
    NotEncryptedError,
    TruncatedError,
    UnsupportedFormatError,
    WrongKeyError,
    WrongPasswordError,
)
from engine.crypto.kdf import check_salted_hash
from engine.crypto.keys import (
    file_key_iv,
    load_private_key,
    public_pem_of,
    unwrap_with_password,
    unwrap_with_private_key,
)

_FEED_SLICE = 64 * 1024  # input handled per step, so one huge write() does not balloon memory
_LZ4_OUT_STEP = 1 << 20  # most plaintext produced per LZ4 call (LZ4 can expand 255:1)
READABLE_MAJORS = (1, 3)  # versions 1.0, 3.0 and 3.1 are known; minors share their major's layout


class DecryptingWriter:
    """A writable sink for container bytes; plaintext is written to `out_file` as it is decoded.

    Give `password`, `private_key` (PEM bytes/str or a loaded RSA key), or both (either may open the file).
    Every failure is a `CryptoError` with a one-line message; after one, the object refuses further use.
    After a successful `close()`, `file_name`, `plain_size` and `plain_md5` describe the plaintext.
    """

    def __init__(
        self,
        out_file: BinaryIO,
        password: str | None = None,
        private_key: bytes | str | rsa.RSAPrivateKey | None = None,
    ) -> None:
        if password is None and private_key is None:
            raise CryptoError("a password or a private key is needed to decrypt")
        self._out = out_file
        self._password = password
        if private_key is None or isinstance(private_key, rsa.RSAPrivateKey):
            self._private_key = private_key
        else:
            self._private_key = load_private_key(private_key)
        self._parser = wire.ObjectParser()
        self._meta: dict[str, wire.Value] | None = None
        self._expected_md5: str | None = None
        self._dec = None  # AES-CBC decryptor, once the session key is known
        self._unpadder = padding.PKCS7(128).unpadder()
        self._lz4: lz4.frame.LZ4FrameDecompressor | None = None
        self._compressed = True
        self._lz4_done = False
        self._md5 = hashlib.md5()
        self._failed = False
        self._closed = False
        self.file_name: str | None = None
        self.version: tuple[int, int] | None = None
        self.plain_size = 0
        self.plain_md5: str | None = None
        self.cipher_size = 0

    # -- public -----------------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._check_usable()
        view = memoryview(data).cast("B")
        try:
            for start in range(0, len(view), _FEED_SLICE):
                piece = view[start : start + _FEED_SLICE]
                self.cipher_size += len(piece)
                for obj in self._parser.feed(piece):
                    self._on_object(obj)
        except Exception as exc:
            self._failed = True
            _reraise(exc)
        return len(view)

    def close(self) -> None:
        """Finish and verify; raises a CryptoError if the container is incomplete or damaged. Idempotent."""
        if self._closed:
            return
        self._check_usable()
        try:
            self._finish()
        except Exception as exc:
            self._failed = True
            _reraise(exc)
        self._closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:  # downloaders (s3transfer...) then write strictly in order
        return False

    def flush(self) -> None:
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()

    @property
    def closed(self) -> bool:
        return self._closed or self._failed

    def __enter__(self) -> DecryptingWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()

    # -- stages -----------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self._failed:
            raise CryptoError("decryption already failed; start again")
        if self._closed:
            raise CryptoError("decryption already finished")

    def _on_object(self, obj: dict[str, wire.Value]) -> None:
        kind = obj.get("type")
        if self._meta is None:
            if kind != "metadata":
                raise CorruptError("damaged container: it does not start with its metadata")
            self._start(obj)
        elif kind == "data":
            if self._expected_md5 is not None:
                raise CorruptError("damaged container: data after the final checksum")
            piece = obj.get("data")
            if not isinstance(piece, bytes):
                raise CorruptError("damaged container: a data piece holds no bytes")
            self._on_cipher(piece)
        elif kind == "metadata":
            md5 = obj.get("file_md5")
            if md5 is not None:
                if not isinstance(md5, str) or self._expected_md5 is not None:
                    raise CorruptError("damaged container: bad or repeated file_md5 record")
                self._expected_md5 = md5.lower()
            # other trailing metadata is tolerated: newer writers may add fields
        else:
            raise CorruptError("damaged container: an object of unknown type")

    def _start(self, meta: dict[str, wire.Value]) -> None:
        """Check the header and recover the session key with whichever credential fits."""
        self._meta = meta
        version = meta.get("version")
        if not isinstance(version, dict) or not isinstance(version.get("major"), int):
            raise CorruptError("damaged container: no version in its metadata")
        major, minor = version["major"], version.get("minor", 0)
        if major not in READABLE_MAJORS or not isinstance(minor, int):
            raise UnsupportedFormatError(f"unsupported Cloud Sync container version {major}.{minor}")
        self.version = (major, minor)
        digest = meta.get("digest", "md5")
        if digest != "md5":
            raise UnsupportedFormatError(f"unsupported container digest {digest!r}")
        name = meta.get("file_name")
        self.file_name = name if isinstance(name, str) else None
        self._compressed = meta.get("compress", 1) != 0
        if meta.get("encrypt", 1) == 0:
            return  # not encrypted: data pieces are the (possibly compressed) plaintext
        session_key = self._session_key(meta, major)
        key, iv = file_key_iv(session_key, major)
        self._dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()

    def _session_key(self, meta: dict[str, wire.Value], major: int) -> str:
        errors: list[CryptoError] = []
        if self._password is not None:
            try:
                return self._session_key_by_password(meta, major)
            except CryptoError as exc:
                errors.append(exc)
        if self._private_key is not None:
            try:
                return self._session_key_by_private_key(meta)
            except CryptoError as exc:
                errors.append(exc)
        raise errors[0]

    def _session_key_by_password(self, meta: dict[str, wire.Value], major: int) -> str:
        assert self._password is not None
        key1_hash, enc_key1 = _text(meta, "key1_hash"), _text(meta, "enc_key1")
        if not check_salted_hash(key1_hash, self._password.encode("utf-8")):
            raise WrongPasswordError("wrong password: it is not the one this file was encrypted with")
        salt = meta.get("salt") if major >= 3 else None
        if major >= 3 and not isinstance(salt, str):
            raise CorruptError("damaged container: no salt in its metadata")
        session_key = unwrap_with_password(enc_key1, self._password, salt)  # type: ignore[arg-type]
        self._check_session_key(meta, session_key)
        return session_key

    def _session_key_by_private_key(self, meta: dict[str, wire.Value]) -> str:
        assert self._private_key is not None
        # key2_hash is only a hint: OAEP itself rejects a wrong key, and the exact PEM text Synology hashes
        # (line endings) is not documented, so a mismatch here is not treated as final.
        key2_hash = meta.get("key2_hash")
        pem = public_pem_of(self._private_key)
        hinted = isinstance(key2_hash, str) and any(
            check_salted_hash(key2_hash, p.encode("ascii")) for p in (pem, pem.rstrip("\n"))
        )
        session_key = unwrap_with_private_key(_text(meta, "enc_key2"), self._private_key)
        try:
            self._check_session_key(meta, session_key)
        except CorruptError:
            if not hinted:
                raise WrongKeyError(
                    "wrong private key: it does not match the key this file was encrypted with"
                ) from None
            raise
        return session_key

    @staticmethod
    def _check_session_key(meta: dict[str, wire.Value], session_key: str) -> None:
        if not check_salted_hash(_text(meta, "session_key_hash"), session_key.encode("ascii")):
            raise CorruptError("damaged container: the session key does not match its hash")

    def _on_cipher(self, piece: bytes) -> None:
        if self._dec is None:
            self._on_compressed(piece)
            return
        # The unpadder holds back the last block until the end, where the PKCS#7 padding sits.
        self._on_compressed(self._unpadder.update(self._dec.update(piece)))

    def _on_compressed(self, data: bytes) -> None:
        if not data:
            return
        if not self._compressed:
            self._emit(data)
            return
        if self._lz4_done:
            raise CorruptError("damaged container: data after the end of the LZ4 frame")
        if self._lz4 is None:
            self._lz4 = lz4.frame.LZ4FrameDecompressor()
        try:
            out = self._lz4.decompress(data, max_length=_LZ4_OUT_STEP)
            self._emit(out)
            while not self._lz4.needs_input and not self._lz4.eof:
                self._emit(self._lz4.decompress(b"", max_length=_LZ4_OUT_STEP))
        except RuntimeError:  # lz4 reports bad frames, blocks and checksums this way
            raise CorruptError("damaged container: the compressed data is invalid") from None
        if self._lz4.eof:
            self._lz4_done = True
            if self._lz4.unused_data:
                raise CorruptError("damaged container: data after the end of the LZ4 frame")

    def _emit(self, plain: bytes) -> None:
        if plain:
            self._md5.update(plain)
            self.plain_size += len(plain)
            try:
                self._out.write(plain)
            except Exception as exc:  # the destination's own failure, not the container's: pass it on as is
                raise _SinkError(exc) from exc

    def _finish(self) -> None:
        if not self._parser.magic_seen:
            if self.cipher_size:
                raise TruncatedError("truncated container: it ends inside the header")
            raise NotEncryptedError("empty file: not a Cloud Sync encrypted container")
        if self._meta is None or self._expected_md5 is None or self._parser.pending:
            raise TruncatedError("truncated container: it ends before its final checksum")
        if self._dec is not None:
            try:
                self._on_compressed(self._unpadder.update(self._dec.finalize()) + self._unpadder.finalize())
            except ValueError:
                raise CorruptError("damaged container: bad padding at the end of the data") from None
        if self._compressed and not self._lz4_done:
            raise CorruptError("damaged container: the compressed data ends early")
        self.plain_md5 = self._md5.hexdigest()
        if self.plain_md5 != self._expected_md5:  # a public checksum: no need for a constant-time compare
            raise CorruptError("damaged container: the decrypted data does not match its MD5")


def _text(meta: dict[str, wire.Value], key: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str):
        raise CorruptError(f"damaged container: no {key} in its metadata")
    return value


class _SinkError(Exception):
    """Wraps an exception raised by `out_file.write`, so it is not mistaken for damage in the container."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def _reraise(exc: Exception) -> NoReturn:
    """Our own errors and the sink's errors pass as they are; anything else means the input made no sense."""
    if isinstance(exc, _SinkError):
        raise exc.original
    if isinstance(exc, CryptoError | OSError | MemoryError):
        raise exc
    raise CorruptError(f"damaged container ({type(exc).__name__})") from exc


def decrypt_stream(
    src: BinaryIO,
    out_file: BinaryIO,
    password: str | None = None,
    private_key: bytes | str | rsa.RSAPrivateKey | None = None,
    chunk_size: int = 1 << 20,
) -> DecryptingWriter:
    """Decrypt all of `src` into `out_file`; returns the closed writer (for file_name, plain_md5...)."""
    writer = DecryptingWriter(out_file, password=password, private_key=private_key)
    while chunk := src.read(chunk_size):
        writer.write(chunk)
    writer.close()
    return writer


def read_metadata(src: BinaryIO, limit: int = 64 * 1024) -> dict[str, wire.Value]:
    """The header metadata of a container (no credentials needed); reads at most `limit` bytes."""
    parser = wire.ObjectParser()
    while parser.consumed + parser.pending < limit:
        chunk = src.read(4096)
        if not chunk:
            break
        objs = parser.feed(chunk)
        if objs:
            return objs[0]
    raise TruncatedError("truncated container: no complete metadata header")
