"""The thin I/O adapter for local folders: walking, atomic writes, deletes.

Everything the engine does to a disk goes through a `FileSystem`, so tests can inject the failures root cannot
provoke with chmod (permission denied, disk full, a file vanishing mid-read) by subclassing it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import operator
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from engine.hashing import hash_file
from engine.names import is_valid_utf8
from engine.providers.base import HashKind, RemoteEntry

TEMP_PREFIX = ".skysync-tmp-"
# A file bind-mounted over a name in the tree (`mount --bind /elsewhere/f tree/f`): its content belongs to another
# place, like a mounted folder's.
FILE_MOUNT = "mount point (a file mounted from elsewhere)"
BUFFER = 64 * 1024  # bytes buffered per open file (reads and writes of a chunk or more bypass it)


# Exactly what `_temp_name` makes (a tag of 8 hex digits, then a hex counter), or what skysync made before the tag
# (12 random hex digits): only those are removed as a killed pass's leftovers. Any other name that starts with the
# prefix ("notes" after it, say) is a user's file and syncs like any other.
_temp_match = re.compile(r"\.skysync-tmp-[0-9a-f]{9,24}\Z").match


def is_temp_name(name: str) -> bool:
    # The prefix test first: the walk asks this of every name, and only a name with the prefix pays for the regex.
    return name.startswith(TEMP_PREFIX) and _temp_match(name) is not None


# Temporary names: a random tag drawn once per process and a counter, instead of 48 random bits per file (a
# getrandom call and a token each: 3 % of an initial pass of 50,000 small files). O_EXCL still refuses a name
# that exists, so a clash could only fail one write, never overwrite anything.
_TEMP_TAG = secrets.token_hex(4)
_temp_ids = itertools.count()


def _temp_name() -> str:
    return f"{TEMP_PREFIX}{_TEMP_TAG}{next(_temp_ids):x}"


_name = operator.attrgetter("name")


class LocalEntry(NamedTuple):
    """A file or folder of a local tree (a named tuple: a walk makes one per file).

    `ino` and `ctime_ns` (st_ino, st_ctime_ns) tell which file a path holds, as Unison's fast check does: a file
    replaced by another of the same size and mtime (two files swapped within one clock tick) has another inode
    number and a new ctime. None means unknown (an entry made by hand, a folder): not used for comparisons.
    """

    path: str  # relative, "/"-separated
    is_dir: bool
    size: int
    mtime_ns: int
    ino: int | None = None
    ctime_ns: int | None = None

    def signature(self) -> tuple[object, ...]:
        """What must stay the same for the file to count as untouched during a pass (size, mtime, inode)."""
        return (True,) if self.is_dir else (False, self.size, self.mtime_ns, self.ino)


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    reason: str


_syncfs_loaded = False
_libc_syncfs = None


def _load_syncfs():
    """libc's syncfs, looked up at the first flush: a pass that writes nothing (and `--help`) never loads ctypes."""
    global _syncfs_loaded, _libc_syncfs
    if not _syncfs_loaded:
        _syncfs_loaded = True
        try:
            import ctypes
            import ctypes.util

            _libc_syncfs = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).syncfs
        except (OSError, AttributeError):
            _libc_syncfs = None
    return _libc_syncfs


class OutsideRoot(PermissionError):
    """A path that would resolve outside the folder being synced."""


class NotARegularFile(OSError):
    """A name that held a file when it was walked holds something else now: a link, a FIFO, a device."""


def open_regular(path: str, dir_fd: int | None = None) -> int:
    """A descriptor of the regular file at `path`, opened for reading without following a link at its name and
    without blocking (a FIFO put in a file's place since the walk would wait for a writer forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile(errno.ELOOP, "a symbolic link now has this name", path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotARegularFile(errno.EINVAL, "not a regular file any more", path)
    return fd


class FileSystem:
    """Plain os calls; subclass to inject faults."""

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        with os.scandir(path) as it:
            return list(it)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path, follow_symlinks=False)

    # Buffered files of a given buffer size: left to choose, `open` asks whether the file is a terminal (one
    # ioctl per file opened, two per small file copied).
    def open_read(self, path: str) -> BinaryIO:
        return os.fdopen(open_regular(path), "rb", buffering=BUFFER)

    def fstat(self, f: BinaryIO) -> os.stat_result:
        """The open file's own status: which file was really opened, whatever its name holds since."""
        return os.fstat(f.fileno())

    def open_new(self, path: str) -> BinaryIO:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        return os.fdopen(fd, "wb", buffering=BUFFER)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def mount_points_below(self, root: str) -> frozenset[str]:
        return mount_points_below(root)

    def utime(self, path: str, mtime_ns: int) -> None:
        os.utime(path, ns=(mtime_ns, mtime_ns))

    def fsync(self, f: BinaryIO) -> None:
        f.flush()
        os.fsync(f.fileno())

    def syncfs(self, path: str) -> None:
        """Flush everything written to the file system that holds `path` (one call for many files)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            syncfs = _load_syncfs()
            if syncfs is not None and syncfs(fd) == 0:
                return
            os.sync()
        finally:
            os.close(fd)


def _unescape_mountinfo(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as three-digit octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points_below(root: str, mountinfo: str = "/proc/self/mountinfo") -> frozenset[str]:
    """Mount points strictly inside `root` (a resolved path), bind mounts included.

    A bind mount of a folder of the same disk keeps the device number, so comparing `st_dev` misses it; the
    kernel's mount table names it (spec note 6). An unreadable table (not Linux) leaves device numbers only.
    """
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.readlines()
    except OSError:
        return frozenset()
    prefix = root.rstrip("/") + "/"
    found = set()
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            point = _unescape_mountinfo(fields[4])
            if point.startswith(prefix):
                found.add(point)
    return frozenset(found)


def _beside(path: str, name: str) -> str:
    """`name` in the folder of absolute `path` (os.path.join(os.path.dirname(path), name), for paths without
    trailing slashes)."""
    return f"{path[: path.rfind('/')]}/{name}"


def device_of(path: str) -> str | None:
    """`major:minor` of the file system holding `path` (None when it cannot be read)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    return f"{os.major(dev)}:{os.minor(dev)}"


class LocalTree:
    """A folder on disk addressed by relative paths; used for a task's local side and by the local provider.

    The root is resolved once, when the tree is made: a root that is a symbolic link (a synced folder moved to
    a bigger disk, a link left behind) is followed, and its device and mounts are those of the real folder.
    """

    def __init__(self, root: str, fs: FileSystem | None = None) -> None:
        self.root = os.path.realpath(os.path.abspath(root))
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        self.fs = fs or FileSystem()
        # Folders already found inside the root, with the identity (device, inode) they had then: a folder
        # swapped for a link mid-pass has another, and the check is made again.
        self._inside: dict[str, tuple[int, int]] = {}
        self._pinned: tuple[int, int] | None = None
        self.pin()

    def pin(self) -> None:
        """Take the root folder as it is now (device, inode) as the one every write must land in until the next
        `pin` (a walk pins it as it starts). A disk unmounted mid-pass leaves its bare mount point, and a folder
        moved away mid-pass may leave a new one under its name: nothing is written there, since a next pass would
        find it not empty and take everything missing from it for deletions."""
        try:
            st = os.stat(self.root)
        except OSError:
            self._pinned = None
        else:
            self._pinned = (st.st_dev, st.st_ino)

    def abspath(self, rel: str) -> str:
        if not rel:
            return self.root
        if "//" in rel or rel[0] == "/" or rel[-1] == "/":
            return os.path.join(self.root, *rel.split("/"))  # empty parts, folded as os.path.join folds them
        return self._prefix + rel  # the same string, without a join per part (several calls per file written)

    def checked_path(self, rel: str) -> str:
        """The absolute path for `rel`, refusing anything that would land outside the root.

        Remote names are validated before they get here; this is the last line of defence, and it also
        catches a folder inside the root that a user replaced with a symbolic link to somewhere else.
        """
        # An empty, "." or ".." part shows as "//", "/./" or "/../" once the path is framed by slashes.
        framed = f"/{rel}/"
        if not rel or "//" in framed or "/./" in framed or "/../" in framed or "\\" in rel or "\x00" in rel:
            raise OutsideRoot(f"refusing unsafe path {rel!r}")
        target = self._prefix + rel
        parent = target[: target.rfind("/")] or "/"
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            return target  # nothing can be written there; a write that makes the folder checks it (ensure_folder)
        known = self._inside.get(parent)
        if known is not None and known == (st.st_dev, st.st_ino):
            return target
        self._check_folder(parent, st, rel)
        if len(self._inside) < 10_000:  # cleared at every flush
            self._inside[parent] = (st.st_dev, st.st_ino)
        return target

    def _check_folder(self, folder: str, st: os.stat_result, rel: str) -> None:
        """Refuse a folder that is really outside the root, or on another device than the root was pinned on."""
        real_root = self.root
        real = os.path.realpath(folder)
        if real != real_root and not real.startswith(self._prefix):
            raise OutsideRoot(f"refusing to write {rel!r}: it would land outside {self.root}")
        if self._pinned is None:
            self.pin()
        try:
            root = st if folder == real_root else os.stat(real_root)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "the folder is gone", real_root) from None
        if (root.st_dev, root.st_ino) != self._pinned:
            raise OutsideRoot(f"refusing to write {rel!r}: {self.root} is not the folder it was when the pass "
                              "began (unmounted, moved or replaced?)")
        if st.st_dev != root.st_dev:
            raise OutsideRoot(f"refusing to write {rel!r}: {folder} is on another disk than {self.root}")

    def ensure_folder(self, folder: str) -> None:
        """Make the absolute `folder` and whatever is missing above it, but only below a folder that exists
        inside the root, on its device: a root that is gone (deleted, or a disk unmounted mid-pass) is never
        made again by a write into it."""
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            pass
        else:
            if self._inside.get(folder) != (st.st_dev, st.st_ino):
                self._check_folder(folder, st, os.path.relpath(folder, self.root))
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", folder)
            return
        top = folder
        while not os.path.lexists(top):
            above = os.path.dirname(top)
            if above == top:
                break
            top = above
        if top != self.root and not top.startswith(self._prefix):
            raise FileNotFoundError(errno.ENOENT, f"the folder {self.root} is gone", folder)
        try:
            st = os.stat(top)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "the folder was removed", folder) from None
        self._check_folder(top, st, os.path.relpath(folder, self.root))
        self.fs.mkdir(folder)

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    def scan(
        self,
        on_skip: Callable[[Skipped], None] | None = None,
        on_temp: Callable[[str], None] | None = None,
        on_error: Callable[[str, OSError], None] | None = None,
        prune: Callable[[str], bool] | None = None,
        below: str = "",
        devices: tuple[int, frozenset[str]] | None = None,
    ) -> Iterator[LocalEntry]:
        """Every file and folder below the root in canonical order (depth first, siblings sorted by name).

        Symbolic links, special files, names that are not UTF-8 and folders that are mount points (another
        device, or a bind mount of the same one) are reported to `on_skip` and not entered; the engine's own
        temporary files to `on_temp`; unreadable entries to `on_error`. A folder for which `prune(path)` is
        true is reported but not entered.

        `below` walks only the subtree of that folder (not the folder itself), with the same rules: an
        incremental pass walks the folders it was told about (`look` tells whether `below` may be entered).
        `devices` is `self.devices()` when the caller has it already.
        """
        return self._walk(on_skip, on_temp, on_error, prune, below, devices, remote=False)

    def scan_remote(
        self,
        on_skip: Callable[[Skipped], None] | None = None,
        on_temp: Callable[[str], None] | None = None,
        on_error: Callable[[str, OSError], None] | None = None,
        prune: Callable[[str], bool] | None = None,
    ) -> Iterator[RemoteEntry]:
        """`scan` as the `local` provider lists it: a `RemoteEntry` made straight from each `stat` (size, mtime in
        seconds from the nanoseconds), with no `LocalEntry` to convert: the listing of a no-change pass's other
        side costs one tuple per entry, as the local walk does."""
        return self._walk(on_skip, on_temp, on_error, prune, "", None, remote=True)

    def _walk(
        self,
        on_skip: Callable[[Skipped], None] | None,
        on_temp: Callable[[str], None] | None,
        on_error: Callable[[str, OSError], None] | None,
        prune: Callable[[str], bool] | None,
        below: str,
        devices: tuple[int, frozenset[str]] | None,
        remote: bool,
    ) -> Iterator[LocalEntry | RemoteEntry]:
        # A generator apart from `scan`: the devices are read at the first entry asked for, as before.
        root_dev, mounts = devices or self.devices()
        # Depth first with one sorted iterator per open folder: a folder is followed directly by its subtree.
        # The loop runs once per entry, so it is kept flat: a `for` over a folder's children that breaks out to
        # enter a subfolder and takes up the same iterator when that subtree is done.
        stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = [(below, iter(self._children(below, on_error)))]
        S_ISREG, S_ISDIR = stat.S_ISREG, stat.S_ISDIR
        while stack:
            rel_dir, children = stack[-1]
            prefix = rel_dir + "/" if rel_dir else ""
            for child in children:
                name = child.name
                rel = prefix + name
                if name.startswith(TEMP_PREFIX) and _temp_match(name):
                    if on_temp:
                        on_temp(rel)
                    continue
                if not name.isascii() and not is_valid_utf8(name):
                    if on_skip:
                        on_skip(Skipped(rel, "the name is not valid UTF-8; rename it to sync it"))
                    continue
                try:
                    st = child.stat(follow_symlinks=False)
                except OSError as exc:
                    if on_error:
                        on_error(rel, exc)
                    continue
                mode = st.st_mode
                if S_ISREG(mode):
                    if mounts and child.path in mounts:
                        if on_skip:
                            on_skip(Skipped(rel, FILE_MOUNT))
                        continue
                    if remote:  # no revision: size and mtime (to the nanosecond) tell a change
                        yield RemoteEntry(rel, False, st.st_size, st.st_mtime_ns / 1e9)
                    else:
                        yield LocalEntry(rel, False, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
                elif S_ISDIR(mode):
                    if st.st_dev != root_dev or (mounts and child.path in mounts):
                        if on_skip:
                            on_skip(Skipped(rel, "mount point or another device"))
                        continue
                    yield RemoteEntry(rel, True) if remote else LocalEntry(rel, True, 0, 0)
                    if prune and prune(rel):
                        continue
                    stack.append((rel, iter(self._children(rel, on_error))))
                    break  # into the subfolder; this folder's iterator goes on after it
                elif on_skip:
                    on_skip(Skipped(rel, "symbolic link" if stat.S_ISLNK(mode) else "special file"))
            else:
                stack.pop()

    def devices(self) -> tuple[int, frozenset[str]]:
        """The root's device and the mount points below it: what a walk does not enter. The device is pinned:
        writes until the next walk land on it or nowhere."""
        st = self.fs.stat(self.root)
        self._pinned = (st.st_dev, st.st_ino)
        return st.st_dev, self.fs.mount_points_below(self.root)

    def look(
        self,
        rel: str,
        devices: tuple[int, frozenset[str]],
        on_skip: Callable[[Skipped], None] | None = None,
        on_temp: Callable[[str], None] | None = None,
        on_error: Callable[[str, OSError], None] | None = None,
    ) -> LocalEntry | None:
        """One path as the walk would report it (one lstat), or None when the walk would report nothing for it
        (absent, or told to a callback: a link, a mount point, a temporary file...). Its folders are assumed to be
        entered by the walk: the caller checks them with `look` too."""
        name = rel.rpartition("/")[2]
        if is_temp_name(name):
            if on_temp and os.path.lexists(self.abspath(rel)):
                on_temp(rel)
            return None
        if not is_valid_utf8(name):
            if on_skip and os.path.lexists(self.abspath(rel)):
                on_skip(Skipped(rel, "the name is not valid UTF-8; rename it to sync it"))
            return None
        path = self.abspath(rel)
        try:
            st = self.fs.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if on_error:
                on_error(rel, exc)
            return None
        mode = st.st_mode
        if stat.S_ISREG(mode):
            if devices[1] and path in devices[1]:
                if on_skip:
                    on_skip(Skipped(rel, FILE_MOUNT))
                return None
            return LocalEntry(rel, False, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        if stat.S_ISDIR(mode):
            root_dev, mounts = devices
            if st.st_dev != root_dev or (mounts and path in mounts):
                if on_skip:
                    on_skip(Skipped(rel, "mount point or another device"))
                return None
            return LocalEntry(rel, True, 0, 0)
        if on_skip:
            on_skip(Skipped(rel, "symbolic link" if stat.S_ISLNK(mode) else "special file"))
        return None

    def _children(self, rel: str, on_error: Callable[[str, OSError], None] | None) -> list[os.DirEntry[str]]:
        try:
            children = self.fs.scandir(self.abspath(rel))
        except OSError as exc:
            if on_error:
                on_error(rel, exc)
            return []
        children.sort(key=_name)
        return children

    def stat_entry(self, rel: str) -> LocalEntry | None:
        try:
            st = self.fs.stat(self.abspath(rel))
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return LocalEntry(rel, True, 0, 0)
        if stat.S_ISREG(st.st_mode):
            return LocalEntry(rel, False, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        return None

    def open_temp(self, target: str) -> tuple[str, BinaryIO]:
        """A new temporary file beside `target` (a `checked_path`), and its path. Its folder is made only when
        it is missing (rare: the executor makes folders first; os.makedirs costs three system calls even when
        the folder exists), and only inside the root (`ensure_folder`)."""
        tmp = _beside(target, _temp_name())
        try:
            return tmp, self.fs.open_new(tmp)
        except FileNotFoundError:
            self.ensure_folder(os.path.dirname(target))
            return tmp, self.fs.open_new(tmp)

    def write_atomic(
        self,
        rel: str,
        fill: Callable[[BinaryIO], None],
        mtime_ns: int | None,
        durable: bool = True,
        before_rename: Callable[[], None] | None = None,
    ) -> LocalEntry:
        """Write through a temporary name in the same folder, set the mtime, then rename into place.

        No partial file is ever visible under `rel`; on any failure the temporary file is removed. With
        `durable` the data is fsynced before the rename; without, the caller must call `flush()` before it
        records the write as done (the executor does, once per batch). `before_rename` runs last before the
        rename (a conditional write checks the target there) and may raise to leave the target untouched.
        """
        target = self.checked_path(rel)
        tmp, f = self.open_temp(target)
        try:
            with f:
                fill(f)
                if durable:
                    self.fs.fsync(f)
            if mtime_ns is not None:
                self.fs.utime(tmp, mtime_ns)
            if before_rename is not None:
                before_rename()
            self.fs.replace(tmp, target)  # the same folder: no need to make or check it again
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.unlink(tmp)
            raise
        entry = self.stat_entry(rel)
        assert entry is not None
        return entry

    def flush(self) -> None:
        """Make every write so far durable (syncfs on the root's file system)."""
        self.fs.syncfs(self.root)
        self._inside.clear()

    def move_into_place(self, tmp: str, rel: str) -> LocalEntry:
        target = self.checked_path(rel)
        self.ensure_folder(os.path.dirname(target))
        self.fs.replace(tmp, target)
        entry = self.stat_entry(rel)
        assert entry is not None
        return entry

    def delete_file(self, rel: str) -> None:
        try:
            self.fs.unlink(self.checked_path(rel))
        except FileNotFoundError:
            pass

    def remove_dir(self, rel: str) -> bool:
        """Remove an empty folder; False (and nothing removed) when it still holds something."""
        try:
            self.fs.rmdir(self.checked_path(rel))
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
        return True

    def make_dir(self, rel: str) -> None:
        self.ensure_folder(self.checked_path(rel))

    def open_read(self, rel: str) -> BinaryIO:
        return self.fs.open_read(self.abspath(rel))

    def file_hash(self, rel: str, kind: HashKind) -> str:
        """The `kind` hash of file `rel` (`engine.hashing.hash_file`), read through this tree's file system."""
        with self.open_read(rel) as f:
            return hash_file(f, kind)
