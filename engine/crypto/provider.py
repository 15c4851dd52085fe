"""An encrypted view of any provider: uploads become Cloud Sync containers, downloads come back plain.

The wrapper sits between the engine and the connection's real provider when a task has encryption on. The
engine keeps seeing the remote as the service reports it: listed sizes and revisions are those of the
ciphertext, and `upload()` returns exactly what the next `list()` reports, which is all the change detection
needs (`RemoteEntry.signature()` compares size and revision with the state). What cannot work on ciphertext
is switched off in the capabilities: no hash of the plaintext (`hash_kind` NONE), no size comparison
(`plain_sizes` False), so "is it the same content?" falls back to the mtime or to a decrypted download.

Names stay plain, as Cloud Sync keeps them. `@SynologyCloudSync` at the connection root is Cloud Sync's
bookkeeping folder: it is created on the first write (spec note 18) and never listed as user files. Nothing
is written inside it: the content of Cloud Sync's `cloudsync_encrypt.info` is not documented, and a made-up
file there could mislead Synology's own tools.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO, cast

from engine.crypto.errors import CryptoError
from engine.crypto.keys import AccountKey
from engine.crypto.reader import DecryptingWriter
from engine.crypto.recovery import SYSTEM_FOLDER
from engine.crypto.writer import EncryptingReader
from engine.errors import UsageError
from engine.providers.base import (
    ContainerNotFound,
    Expect,
    HashKind,
    Provider,
    ProviderError,
    RemoteEntry,
)

# The size given to an inner provider that reads the source to EOF and ignores `size` (its capabilities say
# `needs_size_before_upload` False): the container streams straight in. A provider that needs the size gets
# the container spooled to a temporary file first, so it can be given its exact size.
UNKNOWN_SIZE = -1
_SPOOL_IN_MEMORY = 8 << 20  # containers up to this size are spooled in memory, larger ones on disk
_COPY_CHUNK = 1 << 20


class DecryptionFailed(ProviderError):
    """A downloaded file could not be decrypted or verified: wrong key, damaged or not encrypted at all.

    Not retryable: the same bytes would fail the same way. The engine writes downloads to a temporary file,
    so nothing appears under the real name.
    """


class EncryptedProvider(Provider):
    """Wraps `inner`; encrypts on upload and decrypts (verifying `file_md5`) on download."""

    kind = "encrypted"  # replaced per instance by the inner provider's kind
    title = "encrypted"

    def __init__(self, inner: Provider, secrets: Mapping[str, str]) -> None:
        # The options are the inner provider's: the policy reads them by kind, and nothing here adds any.
        super().__init__(inner.options)
        self.inner = inner
        self.kind = inner.kind  # type: ignore[misc]  # the per-kind policy tables must see the real service
        self.title = inner.title  # type: ignore[misc]
        self.option_specs = inner.option_specs  # type: ignore[misc]
        self.identity = inner.identity  # type: ignore[method-assign]
        try:
            self.key = AccountKey.from_secrets(secrets)
        except CryptoError:
            inner.close()  # the caller never gets a provider to close
            raise UsageError(
                "the task is encrypted but the connection's encryption key is missing from the secrets store "
                "(restore secrets.toml from a backup)"
            ) from None
        self.capabilities = dataclasses.replace(
            inner.capabilities,
            hash_kind=HashKind.NONE,  # listed hashes are those of the ciphertext
            hash_in_listing=True,  # so the engine never asks file_hash() for one
            plain_sizes=False,  # listed sizes are those of the ciphertext
        )
        self._streaming = not inner.capabilities.needs_size_before_upload
        self._system_ready = False
        self._system_lock = threading.Lock()

    # -- passthrough ------------------------------------------------------------------------------
    def check(self) -> None:
        self.inner.check()

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        self.inner.delete(path, expect=expect)

    def mkdir(self, path: str) -> RemoteEntry:
        self._ensure_system_folder()
        return self.inner.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)

    def clean_interrupted(self, folder: str) -> int:
        return self.inner.clean_interrupted(folder)

    def flush(self) -> None:
        self.inner.flush()

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        # The container is the same bytes under any name: the name inside it is not checked on the way back
        # (Cloud Sync renames encrypted files on the service too), so the service copies it as it is.
        self._ensure_system_folder()
        return self.inner.copy(src, dst, expect=expect)

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        return self.inner.move(src, dst, listed)

    def keeps_revisions(self) -> str | None:
        # The service keeps the encrypted container it replaces; `skysync decrypt` reads an earlier version.
        return self.inner.keeps_revisions()

    def replaced_version(self, path: str, listed: RemoteEntry) -> tuple[str, float | None]:
        return self.inner.replaced_version(path, listed)

    def file_hash(self, path: str) -> str | None:
        return None  # the service could only hash the ciphertext

    def close(self) -> None:
        self.inner.close()

    # -- listing ----------------------------------------------------------------------------------
    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self.list_reporting(folder, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._visible(folder, self.inner.list_reporting(folder, on_skip))

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        # Names are plain (Cloud Sync encrypts contents only), so the inner provider's one level is the answer.
        return self._visible(folder, self.inner.list_dir(folder))

    def _visible(self, folder: str, listing: Iterator[RemoteEntry]) -> Iterator[RemoteEntry]:
        at_root = not folder.strip("/")
        hidden = SYSTEM_FOLDER + "/"
        for entry in listing:
            if at_root and (entry.path == SYSTEM_FOLDER or entry.path.startswith(hidden)):
                if entry.path == SYSTEM_FOLDER:
                    self._system_ready = True  # seen: no need to check for it before the first write
                continue
            yield entry

    # -- transfers --------------------------------------------------------------------------------
    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        # `expect` passes as it is: listed revisions are the inner provider's (those of the ciphertext).
        self._ensure_system_folder()
        container = EncryptingReader(src, self.key, path.rpartition("/")[2])
        if self._streaming:
            return self.inner.upload(path, cast(BinaryIO, container), UNKNOWN_SIZE, mtime, expect=expect)
        # The container's size is known only once it is written (LZ4 compresses by content).
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            shutil.copyfileobj(container, spool, _COPY_CHUNK)
            spool.seek(0)
            return self.inner.upload(path, cast(BinaryIO, spool), container.cipher_size, mtime, expect=expect)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        sink = _Sink(DecryptingWriter(out, password=self.key.password, private_key=self.key.private_pem))
        try:
            entry = self.inner.download(path, cast(BinaryIO, sink))
            sink.finish()
        except Exception as exc:
            # The inner provider may have wrapped our error in one of its own (or none): what the
            # container said is the true reason, and it is not worth a retry.
            if sink.error is not None:
                raise DecryptionFailed(f"cannot decrypt /{path}: {sink.error}") from None
            if isinstance(exc, CryptoError):
                raise DecryptionFailed(f"cannot decrypt /{path}: {exc}") from None
            raise
        return entry

    # -- bookkeeping folder ------------------------------------------------------------------------
    def _ensure_system_folder(self) -> None:
        """Make `@SynologyCloudSync` at the connection root once, before the first write of this provider."""
        if self._system_ready:
            return
        with self._system_lock:
            if self._system_ready:
                return
            try:
                listing = iter(self.inner.list(SYSTEM_FOLDER))
                next(listing, None)  # one entry (or none) is enough to know the folder is there
                close = getattr(listing, "close", None)
                if close is not None:
                    close()
            except ContainerNotFound:
                self.inner.mkdir(SYSTEM_FOLDER)
            self._system_ready = True


class _Sink:
    """The writable the inner provider downloads into: ciphertext in, plaintext out to the real file.

    It remembers the first CryptoError, so the wrapper can report it even when the inner provider turned it
    into an error of its own; anything else (the destination's own failure, a cancellation) passes as is.
    """

    def __init__(self, writer: DecryptingWriter) -> None:
        self._writer = writer
        self.error: CryptoError | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            return self._writer.write(data)
        except CryptoError as exc:
            self.error = self.error or exc
            raise

    def finish(self) -> None:
        try:
            self._writer.close()
        except CryptoError as exc:
            self.error = self.error or exc
            raise

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:  # SDK downloaders then write strictly in order
        return False

    def flush(self) -> None:
        self._writer.flush()
