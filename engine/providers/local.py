"""`local`: a directory that plays the cloud.

It is what tests, benchmarks and `make demo` sync against, so it behaves like a remote: writes go through a
temporary name and a rename, reads and writes can fail (through the injectable `FileSystem`), mtimes are kept
natively, and md5 hashes are computed on request.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO

from engine.localfs import FileSystem, LocalEntry, LocalTree
from engine.providers.base import (
    Capabilities,
    ContainerNotFound,
    HashKind,
    InvalidOption,
    MtimeMode,
    NotFound,
    OptionSpec,
    PermissionDenied,
    Provider,
    ProviderError,
    QuotaExceeded,
    RemoteEntry,
)

CHUNK = 1 << 20


def _entry(e: LocalEntry) -> RemoteEntry:
    if e.is_dir:
        return RemoteEntry(e.path, True)
    # No revision: size and mtime (kept to the nanosecond) are what tell a change here.
    return RemoteEntry(e.path, False, e.size, e.mtime_ns / 1e9)


def _translate(exc: OSError, what: str) -> ProviderError:
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{what}: not found")
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"{what}: permission denied")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return QuotaExceeded(f"{what}: no space left on the device")
    return ProviderError(f"{what}: {exc.strerror or exc}")


class LocalProvider(Provider):
    kind = "local"
    title = "Local folder (acts as the cloud)"
    option_specs = (OptionSpec("root", "the directory that plays the cloud", required=True),)
    capabilities = Capabilities(
        hash_kind=HashKind.MD5,
        mtime_mode=MtimeMode.NATIVE,
        canonical_order=True,
        hash_in_listing=False,
        network=False,
    )

    def __init__(self, options: Mapping[str, str], fs: FileSystem | None = None) -> None:
        super().__init__(options)
        self.tree = LocalTree(os.path.expanduser(self.options["root"]), fs)
        self._temps: dict[str, list[str]] = {}  # folder -> temporary files seen by its last listing

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        if not os.path.isabs(os.path.expanduser(options["root"])):
            raise InvalidOption("option 'root' must be an absolute path")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        return "local:" + os.path.realpath(os.path.expanduser(options.get("root", "")))

    def check(self) -> None:
        if not self.tree.exists():
            raise ContainerNotFound(f"the folder {self.tree.root} does not exist")
        if not os.access(self.tree.root, os.W_OK):
            raise PermissionDenied(f"the folder {self.tree.root} is not writable")

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self.list_reporting(folder, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        sub = LocalTree(self.tree.abspath(folder), self.tree.fs)
        if not sub.exists():
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        return self._scan(folder, sub, on_skip)

    def _scan(self, folder: str, sub: LocalTree, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        errors: list[tuple[str, OSError]] = []
        temps: list[str] = []
        for e in sub.scan(on_skip=lambda s: on_skip(s.path, s.reason),
                          on_error=lambda p, exc: errors.append((p, exc)), on_temp=temps.append):
            yield _entry(e)
        self._temps[folder] = temps
        if errors:
            path, exc = errors[0]
            raise _translate(exc, f"listing /{folder}/{path}".replace("//", "/"))

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        try:
            with self.tree.open_read(path) as f:
                st = os.fstat(f.fileno())
                while chunk := f.read(CHUNK):
                    out.write(chunk)
        except InterruptedError:
            raise
        except OSError as exc:
            raise _translate(exc, f"reading /{path}") from None
        return RemoteEntry(path, False, st.st_size, st.st_mtime_ns / 1e9)

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float) -> RemoteEntry:
        def fill(f: BinaryIO) -> None:
            while chunk := src.read(CHUNK):
                f.write(chunk)

        try:
            entry = self.tree.write_atomic(path, fill, round(mtime * 1e9), durable=False)
        except InterruptedError:  # a cancelled transfer, not a failure of the folder
            raise
        except OSError as exc:
            raise _translate(exc, f"writing /{path}") from None
        return _entry(entry)

    def delete(self, path: str) -> None:
        try:
            self.tree.delete_file(path)
        except IsADirectoryError:
            raise ProviderError(f"deleting /{path}: it is a folder") from None
        except OSError as exc:
            raise _translate(exc, f"deleting /{path}") from None

    def mkdir(self, path: str) -> RemoteEntry:
        try:
            if os.path.isfile(self.tree.abspath(path)):
                raise ProviderError(f"creating folder /{path}: a file has that name")
            self.tree.make_dir(path)
        except OSError as exc:
            raise _translate(exc, f"creating folder /{path}") from None
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        try:
            if not self.tree.remove_dir(path):
                raise ProviderError(f"removing folder /{path}: it is not empty")
        except OSError as exc:
            raise _translate(exc, f"removing folder /{path}") from None

    def flush(self) -> None:
        try:
            self.tree.flush()
        except OSError as exc:
            raise _translate(exc, "flushing the folder to disk") from None

    def clean_interrupted(self, folder: str) -> int:
        removed = 0
        for rel in self._temps.pop(folder, []):
            try:
                os.unlink(os.path.join(self.tree.abspath(folder), *rel.split("/")))
                removed += 1
            except OSError:
                pass
        return removed

    def file_hash(self, path: str) -> str | None:
        h = hashlib.md5()
        try:
            with self.tree.open_read(path) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except OSError as exc:
            raise _translate(exc, f"reading /{path}") from None
        return h.hexdigest()
