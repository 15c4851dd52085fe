"""`local`: a directory that plays the cloud.

It is what tests, benchmarks and `make demo` sync against, so it behaves like a remote: writes go through a
temporary name and a rename, reads and writes can fail (through the injectable `FileSystem`), mtimes are kept
natively, and md5 hashes are computed on request.

Conditional writes (`expect`): the target is stat()ed again (size and mtime to the nanosecond, or its absence)
after the data is in the temporary file and right before the rename; a write by another program in the
microseconds between that stat and the rename is the window left. Deletes re-check the same way.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO

from engine.localfs import FileSystem, LocalEntry, LocalTree
from engine.owners import folder_owner_filesystem
from engine.providers.base import (
    Capabilities,
    Conditional,
    ContainerNotFound,
    Expect,
    FolderNotEmpty,
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
# A temporary file nobody has written for this long is a killed pass's; a younger one may be another computer's
# upload in progress into the same shared folder (a NAS, a USB disk). The S3 provider waits as long before it
# aborts an unfinished multipart upload.
STALE_TEMP_AGE = 24 * 3600


def abandoned(st: os.stat_result, now: float) -> bool:
    """Whether a temporary file was left, not being written: neither its data nor its metadata changed for a day.
    The change time counts too: a writer sets the temporary file's mtime to the source's (often years old) right
    before its rename, and that sets the change time to now."""
    return now - max(st.st_mtime, st.st_ctime) >= STALE_TEMP_AGE


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
    option_specs = (OptionSpec(
        "root",
        "the local folder (an absolute path) that stands in for cloud storage: for trying skysync out, or syncing "
        "with another disk",
        required=True,
        label="Folder playing the cloud",
    ),)
    capabilities = Capabilities(
        hash_kind=HashKind.MD5,
        mtime_mode=MtimeMode.NATIVE,
        canonical_order=True,
        server_side_move=True,
        hash_in_listing=False,
        network=False,
        conditional_writes=Conditional.REREAD,
        conditional_deletes=Conditional.REREAD,
        server_side_copy=True,  # a copy through a temporary file and a rename, on this disk
        list_dir=True,  # one scandir
        # No ids (an inode is not kept across the rename-into-place of every write). Case-sensitive as the
        # Linux file systems the demo and the tests use; a case-insensitive disk would need its own check.
    )

    clock: Callable[[], float] = staticmethod(time.time)  # what tells a temporary file's age; tests move it on

    def __init__(self, options: Mapping[str, str], fs: FileSystem | None = None) -> None:
        super().__init__(options)
        root = os.path.expanduser(self.options["root"])
        # A system engine (root) writes a user's folder as that user: no root-owned file in it (engine.owners).
        self.tree = LocalTree(root, fs or folder_owner_filesystem(root))
        self._temps: dict[str, list[str]] = {}  # folder -> temporary files seen by its last listing

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        if not os.path.isabs(os.path.expanduser(options["root"])):
            raise InvalidOption("option 'root' must be an absolute path")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        return "local:" + os.path.realpath(os.path.expanduser(options.get("root", "")))

    @classmethod
    def folder_here(cls, options: Mapping[str, str], remote: str) -> str | None:
        root = os.path.expanduser(options.get("root", ""))
        return os.path.realpath(os.path.join(root, remote.strip("/"))) if os.path.isabs(root) else None

    def check(self) -> None:
        if not self.tree.exists():
            raise ContainerNotFound(f"the folder {self.tree.root} does not exist")
        if not os.access(self.tree.root, os.W_OK):
            raise PermissionDenied(f"the folder {self.tree.root} is not writable")

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._listing(folder, lambda path, reason: None, report_errors=False)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        # An entry that cannot be read below the folder (gone since its folder was read, an I/O error) is told as
        # skipped, like the local side's: the engine leaves it and everything below it alone this pass, where
        # failing the whole listing would stall every pass while something keeps changing that folder.
        return self._listing(folder, on_skip, report_errors=True)

    def _listing(self, folder: str, on_skip: Callable[[str, str], None], report_errors: bool) -> Iterator[RemoteEntry]:
        sub = LocalTree(self.tree.abspath(folder), self.tree.fs)
        if not sub.exists():
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        self.tree.pin()  # the pass's writes land on the disk it listed, or nowhere
        return self._scan(folder, sub, on_skip, report_errors)

    def _scan(self, folder: str, sub: LocalTree, on_skip: Callable[[str, str], None],
              report_errors: bool) -> Iterator[RemoteEntry]:
        errors: list[tuple[str, OSError]] = []
        temps: list[str] = []

        def on_error(path: str, exc: OSError) -> None:
            if path and report_errors:
                on_skip(path, f"cannot be read: {exc.strerror or exc}")
            else:
                errors.append((path, exc))

        yield from sub.scan_remote(on_skip=lambda s: on_skip(s.path, s.reason), on_error=on_error,
                                   on_temp=temps.append)
        self._temps[folder] = temps
        if errors:
            path, exc = errors[0]
            raise _translate(exc, f"listing /{folder}/{path}".replace("//", "/"))

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """One scandir of `folder`, with the full listing's rules (links, mount points, non-UTF-8 names and
        temporary files left out): every folder is reported and pruned, so nothing deeper is read."""
        sub = LocalTree(self.tree.abspath(folder), self.tree.fs)
        if not sub.exists():
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        errors: list[tuple[str, OSError]] = []
        yield from sub.scan_remote(on_error=lambda p, exc: errors.append((p, exc)), prune=lambda rel: True)
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

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        def fill(f: BinaryIO) -> None:
            while chunk := src.read(CHUNK):
                f.write(chunk)

        try:
            if expect is None:
                entry = self.tree.write_atomic(path, fill, round(mtime * 1e9), durable=False)
            else:
                entry = self._write_if(path, fill, round(mtime * 1e9), expect, size)
        except InterruptedError:  # a cancelled transfer, not a failure of the folder
            raise
        except OSError as exc:
            raise _translate(exc, f"writing /{path}") from None
        return _entry(entry)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """The bytes of `src` written to `dst` as an upload is (a temporary file renamed into place, `expect`
        checked again right before the rename), with the source's mtime to the nanosecond."""
        what = f"copying /{src} to /{dst}"
        try:
            with self.tree.open_read(src) as source:
                mtime_ns = os.fstat(source.fileno()).st_mtime_ns

                def fill(f: BinaryIO) -> None:
                    while chunk := source.read(CHUNK):
                        f.write(chunk)

                if expect is None:
                    entry = self.tree.write_atomic(dst, fill, mtime_ns, durable=False)
                else:
                    entry = self._write_if(dst, fill, mtime_ns, expect)
        except InterruptedError:
            raise
        except IsADirectoryError:
            raise ProviderError(f"{what}: /{src} is a folder") from None
        except OSError as exc:
            raise _translate(exc, what) from None
        return _entry(entry)

    def _write_if(
        self, path: str, fill: Callable[[BinaryIO], None], mtime_ns: int, expect: Expect, size: int | None = None
    ) -> LocalEntry:
        """`LocalTree.write_atomic` (not durable), with `expect` checked again right before the rename into
        place, and before the copy too unless the file is small (`size` below a chunk: copying it for nothing
        costs less than the extra `stat` every write would pay); the temporary file is removed whatever
        happens."""
        what = f"writing /{path}"
        if size is None or size >= CHUNK:
            self._check(path, expect, what)  # already stale: do not copy for nothing
        return self.tree.write_atomic(path, fill, mtime_ns, durable=False,
                                      before_rename=lambda: self._check(path, expect, what))

    def _check(self, path: str, expect: Expect, what: str) -> None:
        found = self.tree.stat_entry(path)
        if not expect.met_by(None if found is None else _entry(found)):
            raise expect.failed(what)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        try:
            if expect is not None and self.tree.stat_entry(path) is not None:
                self._check(path, expect, f"deleting /{path}")
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
                raise FolderNotEmpty(f"removing folder /{path}: it is not empty")
        except OSError as exc:
            raise _translate(exc, f"removing folder /{path}") from None

    def flush(self) -> None:
        try:
            self.tree.flush()
        except OSError as exc:
            raise _translate(exc, "flushing the folder to disk") from None

    def clean_interrupted(self, folder: str) -> int:
        """Remove the temporary files the last listing of `folder` saw, once they are a day old (`abandoned`):
        other computers may sync with this folder, and a fresh one may be the upload one of them is writing."""
        removed = 0
        now = self.clock()
        base = self.tree.abspath(folder)
        for rel in self._temps.pop(folder, []):
            path = os.path.join(base, *rel.split("/"))
            try:
                if abandoned(self.tree.fs.stat(path), now):
                    self.tree.fs.unlink(path)
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

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        """A rename inside the folder. `src` must still be the listed version (size and mtime to the nanosecond)
        and `dst` must not exist; both are checked right before the rename, so another program writing either
        name in the microseconds between is the window left."""
        what = f"moving /{src} to /{dst}"
        try:
            found = self.tree.stat_entry(src)
            if found is None or found.is_dir:
                raise NotFound(f"{what}: /{src} is not there")
            if listed is not None and (found.size, found.mtime_ns / 1e9) != (listed.size, listed.mtime):
                raise ProviderError(f"{what}: /{src} changed since it was listed")
            if os.path.lexists(self.tree.abspath(dst)):
                raise ProviderError(f"{what}: /{dst} exists")
            moved = self.tree.move_into_place(self.tree.checked_path(src), dst)
        except OSError as exc:
            raise _translate(exc, what) from None
        return _entry(moved)
