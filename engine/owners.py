"""Who owns a connection of a system-wide engine (`skysync run --system`), and how its files are written.

A system engine runs as root and serves several Unix users from one home. Each connection carries its owner's
uid (`owner` in config.toml; none means root's). Three rules keep one user from reaching another's files
through the engine's root powers:

- a user sees and manages only the connections they own (engine.runtime.system checks the peer's uid);
- a task's local folder, and any file or folder an option makes the engine read (a `local` connection's root,
  a credentials file, a CA file), must belong to the connection's owner: root's or another user's folder is
  refused when the task is added *and* again at every pass (a folder can change hands after it was added);
- every file and folder the engine writes there is handed to the owner (uid and primary gid) before it gets its
  final name, so no root-owned file ever appears in a user's folder (`OwnedFileSystem`).

The decisions are pure functions over stat results; the I/O around them is thin.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from engine.errors import GuardError, UsageError
from engine.localfs import FileSystem, OutsideRoot, open_regular
from engine.names import shown

if TYPE_CHECKING:
    from engine.config import Connection, Home, Task

ROOT_UID = 0
# Options whose value is a path the engine opens as root on the owner's behalf: a folder it syncs (the `local`
# kind's root) or a file it reads once (copied into the secrets store, or trusted as a CA).
FOLDER_OPTIONS = ("root",)
FILE_OPTIONS = ("credentials_file", "ca_file")


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    name: str
    groups: frozenset[int] = frozenset()


def owner_of(uid: int) -> Owner:
    """The Unix user `uid`, with the groups it belongs to; an unknown uid is a one-line error."""
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        raise UsageError(f"no Unix user has uid {uid}") from None
    return Owner(pw.pw_uid, pw.pw_gid, pw.pw_name, frozenset(os.getgrouplist(pw.pw_name, pw.pw_gid)))


def owner_named(text: str) -> Owner:
    """A user given by name or by uid (`connection add --owner`)."""
    try:
        return owner_of(pwd.getpwnam(text).pw_uid)
    except KeyError:
        pass
    if text.isdigit():
        return owner_of(int(text))
    raise UsageError(f"no Unix user named '{shown(text)}'")


def user_name(uid: int | None) -> str:
    """A uid as a name for lists ("root" for none); a uid with no user left is shown as the number."""
    try:
        return pwd.getpwuid(ROOT_UID if uid is None else uid).pw_name
    except KeyError:
        return str(uid)


def may_manage(peer_uid: int, owner_uid: int | None) -> bool:
    """Root manages everything; anyone else only the connections they own (no owner = root's)."""
    return peer_uid == ROOT_UID or (owner_uid if owner_uid is not None else ROOT_UID) == peer_uid


# -- pure decisions ------------------------------------------------------------------------------------------


def folder_refusal(st: os.stat_result, owner: Owner) -> str | None:
    """Why `owner` may not have this folder synced by a root engine, or None when they may.

    Their own folder is fine. A folder of someone else is fine only when the owner could write it themselves
    through a group, and it is neither sticky nor writable by everyone: in a sticky folder (/tmp) a user may not
    delete others' files, but the engine as root could, on the user's word.
    """
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if st.st_uid == owner.uid:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX or mode & stat.S_IWOTH:
        return f"belongs to {user_name(st.st_uid)} and is shared by everyone (sticky or world-writable)"
    if st.st_gid in owner.groups and mode & stat.S_IWGRP and mode & stat.S_IXGRP:
        return None
    return f"belongs to {user_name(st.st_uid)}, not to {owner.name}"


def file_refusal(st: os.stat_result, owner: Owner) -> str | None:
    """Why the engine may not read this file for `owner`: it must be theirs, or readable by everyone."""
    if not stat.S_ISREG(st.st_mode):
        return "is not a file"
    if st.st_uid == owner.uid or st.st_mode & stat.S_IROTH:
        return None
    if st.st_gid in owner.groups and st.st_mode & stat.S_IRGRP:
        return None
    return f"belongs to {user_name(st.st_uid)} and {owner.name} may not read it"


# -- checks on disk ------------------------------------------------------------------------------------------


def check_folder(path: str, owner: Owner, what: str = "the local folder") -> None:
    """Refuse (one line) a folder `owner` may not sync through the system engine. The real path is checked,
    so a link in the user's folder to root's folder is refused as root's folder."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise UsageError(f"{what} {shown(path)} does not exist") from None
    why = folder_refusal(st, owner)
    if why:
        raise UsageError(f"{what} {shown(path)} {why}; the system engine syncs only folders of the connection's owner")


def check_option_paths(options: dict[str, str], owner: Owner) -> None:
    """The path options of a connection `owner` adds: folders theirs, files readable by them."""
    for key in FOLDER_OPTIONS:
        if options.get(key):
            check_folder(os.path.expanduser(options[key]), owner, f"option '{key}':")
    for key in FILE_OPTIONS:
        if options.get(key):
            real = os.path.realpath(os.path.expanduser(options[key]))
            try:
                st = os.stat(real)
            except FileNotFoundError:
                raise UsageError(f"option '{key}': {shown(options[key])} does not exist") from None
            why = file_refusal(st, owner)
            if why:
                raise UsageError(f"option '{key}': {shown(options[key])} {why}")


# -- writing as the owner ------------------------------------------------------------------------------------


class OwnedFileSystem(FileSystem):
    """The file system of a folder `root` owned by `uid`:`gid`, for a root engine: confined and written as them.

    Confined: every call first opens the folder holding its path (O_PATH) and asks the kernel where that folder
    really is (/proc/self/fd); outside `root` (a user swapped a folder for a link to /etc mid-pass) the call is
    refused, and the work is then done relative to that open folder with the final name never followed, so
    no later swap can redirect it. A file is read only when its owner could read it (its mode says so).
    Written as the owner: a new file is chowned through its descriptor as soon as it is created, so its
    temporary name already belongs to the owner long before the rename gives it its final name; a folder is
    made one level at a time and each level made is chowned.
    """

    def __init__(self, uid: int, gid: int, root: str, groups: frozenset[int] = frozenset()) -> None:
        self.uid = uid
        self.gid = gid
        self.root = os.path.realpath(root)
        self.owner = Owner(uid, gid, user_name(uid), groups or frozenset({gid}))

    @contextlib.contextmanager
    def _parent(self, path: str) -> Iterator[tuple[int, str]]:
        """An open descriptor of `path`'s folder, checked to be inside the root, and the final name."""
        folder, name = os.path.split(os.path.abspath(path))
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
            if real != self.root and not real.startswith(self.root.rstrip("/") + "/"):
                raise OutsideRoot(
                    f"refusing {shown(path)}: its folder is really {shown(real)}, outside {shown(self.root)}")
            yield fd, name
        finally:
            os.close(fd)

    def open_read(self, path: str) -> BinaryIO:
        with self._parent(path) as (dir_fd, name):
            fd = open_regular(name, dir_fd)
        try:
            why = file_refusal(os.fstat(fd), self.owner)
            if why:
                raise PermissionError(f"refusing to read {shown(path)} for {self.owner.name}: it {why}")
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def open_new(self, path: str) -> BinaryIO:
        with self._parent(path) as (dir_fd, name):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=dir_fd)
            try:
                os.fchown(fd, self.uid, self.gid)
            except BaseException:
                os.close(fd)
                os.unlink(name, dir_fd=dir_fd)
                raise
        return os.fdopen(fd, "wb")

    def replace(self, src: str, dst: str) -> None:
        with self._parent(src) as (src_fd, src_name), self._parent(dst) as (dst_fd, dst_name):
            os.replace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)

    def unlink(self, path: str) -> None:
        with self._parent(path) as (dir_fd, name):
            os.unlink(name, dir_fd=dir_fd)

    def rmdir(self, path: str) -> None:
        with self._parent(path) as (dir_fd, name):
            os.rmdir(name, dir_fd=dir_fd)

    def utime(self, path: str, mtime_ns: int) -> None:
        with self._parent(path) as (dir_fd, name):
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=dir_fd, follow_symlinks=False)

    def mkdir(self, path: str) -> None:
        for level in _missing_levels(path):
            with self._parent(level) as (dir_fd, name):
                try:
                    os.mkdir(name, 0o777, dir_fd=dir_fd)  # less the umask, as makedirs
                except FileExistsError:
                    continue  # made by someone else meanwhile: theirs, not ours to chown
                os.chown(name, self.uid, self.gid, dir_fd=dir_fd, follow_symlinks=False)


def _missing_levels(path: str) -> Iterable[str]:
    """The folders from the highest missing one down to `path` itself (none when it exists)."""
    missing: list[str] = []
    level = os.path.abspath(path)
    while not os.path.lexists(level):
        missing.append(level)
        parent = os.path.dirname(level)
        if parent == level:
            break
        level = parent
    return reversed(missing)


def filesystem_for(home: Home, task: Task) -> FileSystem | None:
    """The file system a pass of `task` writes through: the owner's when a root engine syncs an owned
    connection (its folder checked again, before anything is read or written), else None (plain)."""
    conn: Connection = home.connection(task.connection)
    if conn.owner is None or os.geteuid() != ROOT_UID:
        return None
    owner = owner_of(conn.owner)
    try:
        check_folder(task.local, owner)
        # The connection's own folders and files too (a `local` connection's root): a user who made theirs a
        # link to root's folder after adding it would otherwise have the root engine sync root's folder.
        check_option_paths(home.all_options(task.connection), owner)
    except UsageError as exc:
        # The pass stops before it changes anything (exit 2), like a missing folder.
        raise GuardError(str(exc)) from None
    return OwnedFileSystem(owner.uid, owner.gid, task.local, owner.groups)


def folder_owner_filesystem(path: str) -> FileSystem | None:
    """For a root process writing into a folder another user owns (a `local` connection's root, the folder
    playing the cloud): a file system that writes as that folder's owner and group, else None (plain)."""
    if os.geteuid() != ROOT_UID:
        return None
    try:
        st = os.stat(os.path.realpath(path))
    except OSError:
        return None  # a missing root is the provider's own error to report
    if st.st_uid == ROOT_UID:
        return None
    return OwnedFileSystem(st.st_uid, st.st_gid, path)
