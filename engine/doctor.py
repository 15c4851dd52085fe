"""`skysync doctor`: what in this machine's setup would hurt a sync, each finding one line with what to do.

Checks, in the order they print:

- `home`, `secrets`: the home folder is not writable by group or others; secrets.toml is exactly 0600 and ours.
- `state-database`: `PRAGMA integrity_check` on a read-only open; a missing, a foreign and a damaged file are
  told apart.
- `local-folder`, `device`: every task's local folder exists, is a folder, and sits on the device it was on at
  the last pass (`StateDB.pairing_device`, when the engine records it).
- `free-space`: the disk of every local folder and of the state database.
- `inotify`: the kernel's watch limit against the folders the tasks' watchers need (one watch per folder), and
  whether a running engine has actually run out of watches (it leaves `<home>/.run/inotify-exhausted` while
  some task has folders without a watch; see `engine.runtime.watch`).
- `connection`, `clock`: each connection answers its check, and the service's clock (its `Date` header) is
  within a minute of ours.
- `conflicts`: for each connection that answers, how a file changed on both sides is kept (a revision in the
  cloud, or conflict copies) and why (`engine.revisions`: the bucket's versioning, the setting).

`collect()` returns the findings and takes its probes (the /proc paths, statvfs, the provider factory, the
clock) as arguments, so tests provoke each finding without root or a real disk; `run_doctor()` prints them.
It changes nothing: the integrity check opens the state database read-only, and only a database that passed it
is opened through `StateDB` to read the recorded devices.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from engine.config import Home, Task
from engine.errors import SkysyncError
from engine.names import shown

OK, WARN, FAIL = "ok", "warn", "fail"

GIB = 1 << 30
LOW_FREE_BYTES = 1 * GIB
LOW_FREE_FRACTION = 0.05
SKEW_WARN_SECONDS = 60.0
SKEW_FAIL_SECONDS = 15 * 60.0  # S3 (and the services that copy its signatures) refuse requests past this
INOTIFY_SHARE = 0.8  # other programs of the same user share the limit: warn above this part of it
WALK_LIMIT = 1_000_000  # folders counted at most, over all tasks (the count is then a lower bound)
CONNECTION_THREADS = 8

INOTIFY_PATH = "/proc/sys/fs/inotify/max_user_watches"
MOUNTINFO_PATH = "/proc/self/mountinfo"
SYSCTL_FILE = "/etc/sysctl.d/60-skysync.conf"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # home, secrets, state-database, local-folder, device, free-space, inotify, connection, clock
    status: str  # ok, warn, fail
    message: str  # one line: what was found and, when it is not ok, what to do
    subject: str = ""  # the task, connection or file the finding is about

    def line(self) -> str:
        return f"{self.status:<4}  {self.check}: {self.message}"


def _finding(check: str, status: str, message: str, subject: str = "") -> Finding:
    # Paths and service messages may hold control characters or undecodable bytes: one line, always printable.
    return Finding(check, status, shown(message), shown(subject))


@dataclass(frozen=True)
class Probes:
    """Where the doctor looks; tests replace any of them."""

    inotify_path: str = INOTIFY_PATH
    mountinfo_path: str = MOUNTINFO_PATH
    statvfs: Callable[[str], Any] = os.statvfs
    open_provider: Callable[[Home, str], Any] | None = None  # default: engine.connect.open_provider
    clock: Callable[[], float] = time.time
    uid: int = field(default_factory=os.geteuid)
    walk_limit: int = WALK_LIMIT


# -- permissions -----------------------------------------------------------------------------------------------


def check_permissions(home: Home, probes: Probes) -> Iterator[Finding]:
    try:
        st = os.stat(home.path)
    except FileNotFoundError:
        yield _finding("home", OK, f"no home folder yet at {home.path}: nothing is configured", home.path)
        return
    mode = stat.S_IMODE(st.st_mode)
    where = shlex.quote(home.path)
    if mode & 0o022:
        yield _finding(
            "home",
            FAIL,
            f"the home folder {home.path} is writable by {_who(mode)} (mode {mode:04o}), so they could replace "
            f"its config or secrets: run chmod go-w {where}",
            home.path,
        )
    else:
        yield _finding("home", OK, f"the home folder {home.path} is writable only by its owner", home.path)

    path = home.secrets_path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        yield _finding("secrets", OK, "no secrets.toml: no connection keeps a secret", path)
        return
    mode = stat.S_IMODE(st.st_mode)
    problems = []
    fixes = []
    if st.st_uid != probes.uid:
        problems.append(f"it belongs to uid {st.st_uid}, not to you (uid {probes.uid})")
        fixes.append(f"sudo chown {probes.uid} {shlex.quote(path)}")
    if mode != 0o600:
        problems.append(f"its mode is {mode:04o}, not 0600")
        fixes.append(f"chmod 600 {shlex.quote(path)}")
    if problems:
        yield _finding(
            "secrets",
            FAIL,
            f"{path} holds the connections' secrets but {' and '.join(problems)}: run " + " && ".join(fixes),
            path,
        )
    else:
        yield _finding("secrets", OK, f"{path} is private (0600, yours)", path)


def _who(mode: int) -> str:
    return " and ".join(w for bit, w in ((0o020, "its group"), (0o002, "everyone")) if mode & bit)


# -- the state database ----------------------------------------------------------------------------------------


def _database_path(home: Home) -> str:
    return str(home.setting("database-path"))


def check_database(home: Home) -> tuple[Finding, bool]:
    """The finding, and whether the database can be read (the device check needs it)."""
    path = _database_path(home)

    def found(status: str, text: str, readable: bool = False) -> tuple[Finding, bool]:
        return _finding("state-database", status, text, path), readable

    aside = (
        f"stop skysync and move it aside (mv {shlex.quote(path)} {shlex.quote(path + '.damaged')}): the next pass "
        "of every task is then a first pass, which compares both sides and deletes nothing"
    )
    unreadable = "check its permissions and the disk under it"
    if not os.path.exists(path):
        return found(OK, f"no state database at {path} yet: the first pass creates it")
    if not os.path.isfile(path):
        return found(FAIL, f"{path} is not a file: skysync settings set database-path FILE")
    try:
        db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return found(FAIL, f"the state database {path} cannot be opened ({exc}): {unreadable}")
    try:
        rows = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text:
            return found(FAIL, f"{path} is not an SQLite database (another file at that path?): {aside}")
        if "locked" in text or "busy" in text:
            return found(WARN, f"the state database {path} is busy: run skysync doctor again in a moment")
        if isinstance(exc, sqlite3.OperationalError) and "malformed" not in text:
            return found(FAIL, f"the state database {path} cannot be read ({text}): {unreadable}")
        return found(FAIL, f"the state database {path} is damaged ({text}): {aside}")
    finally:
        db.close()
    if rows != ["ok"]:
        more = f" and {len(rows) - 1} more problems" if len(rows) > 1 else ""
        first = rows[0] if rows else "no answer"
        return found(FAIL, f"the state database {path} is damaged (integrity check: {first}{more}): {aside}")
    return found(OK, f"the state database {path} passes its integrity check", readable=True)


# -- local folders and their devices ---------------------------------------------------------------------------


def _unescape_mount(written: str) -> str:
    """/proc/self/mountinfo writes space, tab, newline and backslash as octal escapes (\\040...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), written)


def _mounts(mountinfo_path: str) -> list[tuple[str, str]]:
    """(mount point as written, source) of every mount, in the file's order; [] when it cannot be read."""
    try:
        with open(mountinfo_path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        # id parent major:minor root mount-point options [optional fields...] - fstype source super-options
        fields = line.split(" ")
        if "-" in fields[6:]:
            sep = fields.index("-", 6)
            if len(fields) > sep + 2:
                mounts.append((fields[4], fields[sep + 2]))
    return mounts


def local_device_id(path: str, mountinfo_path: str = MOUNTINFO_PATH) -> str:
    """A stable identity of the device holding `path`: "major:minor mount-point source" ("8:17 /mnt/usb /dev/sdb1").

    `path` is resolved first (a task root that is a symlink is followed). The mount point is the longest one
    containing the path (the last mounted wins on a tie, as the kernel stacks them) and is kept as
    /proc/self/mountinfo writes it, octal escapes included, so the three fields never hold a space. Without a
    readable mountinfo (not Linux) the mount point and source are "?". Raises OSError when `path` is missing.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    devno = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    best, best_len = ("?", "?"), -1
    for mount, source in _mounts(mountinfo_path):
        point = _unescape_mount(mount)
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best_len:
            best, best_len = (mount, source), len(point)
    return f"{devno} {best[0]} {best[1]}"


def same_device(recorded: str, current: str) -> bool:
    """Whether two device identities name the same place.

    Both are `local_device_id` values, or the recorded one is a bare "major:minor" (then only that is compared).
    A disk's major:minor may change from one plug to the next while its mount point and source stay; an
    unmounted disk, or a bind mount of another folder, changes the mount point.
    """
    a, b = recorded.split(" ", 2), current.split(" ", 2)
    if len(a) == 3 and len(b) == 3:
        return a[1] == b[1] and (a[0] == b[0] or a[2] == b[2])
    return a[0] == b[0]


def check_local_folder(task: Task) -> Finding:
    path = task.local
    unmounted = (
        f"task '{task.name}': its local folder {path} does not exist: if it lives on a disk that is not mounted, "
        "mount it (no pass of the task runs until it is back); if it moved, point the task at it: "
        f"skysync task edit {shlex.quote(task.name)} --local PATH"
    )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _finding("local-folder", FAIL, unmounted, task.name)
    except OSError as exc:
        return _finding(
            "local-folder",
            FAIL,
            f"task '{task.name}': its local folder {path} cannot be read "
            f"({exc.strerror}): check its permissions and the disk",
            task.name,
        )
    if not stat.S_ISDIR(st.st_mode):
        return _finding(
            "local-folder",
            FAIL,
            f"task '{task.name}': its local folder {path} is not a folder: "
            f"skysync task edit {shlex.quote(task.name)} --local PATH",
            task.name,
        )
    return _finding("local-folder", OK, f"task '{task.name}': its local folder {path} is there", task.name)


def check_devices(home: Home, tasks: list[Task], db_readable: bool, probes: Probes) -> Iterator[Finding]:
    from engine.state import StateDB

    recorded: Callable[[str], str | None] | None = None
    db = None
    if db_readable and callable(getattr(StateDB, "pairing_device", None)):
        try:
            db = StateDB(_database_path(home))
            recorded = db.pairing_device  # type: ignore[attr-defined]
        except Exception:
            db = None
    try:
        for task in tasks:
            if not os.path.isdir(task.local):
                continue  # check_local_folder said so
            try:
                current = local_device_id(task.local, probes.mountinfo_path)
            except OSError as exc:
                yield _finding(
                    "device",
                    FAIL,
                    f"task '{task.name}': the device of {task.local} cannot be read ({exc.strerror})",
                    task.name,
                )
                continue
            try:
                earlier = recorded(task.name) if recorded is not None else None
            except Exception:  # an older schema, a database busy with a pass: nothing to compare
                earlier = None
            if earlier is None:
                yield _finding(
                    "device", OK, f"task '{task.name}': no earlier pass recorded its device (now {current})", task.name
                )
            elif same_device(earlier, current):
                yield _finding(
                    "device",
                    OK,
                    f"task '{task.name}': {task.local} is on the device of its last pass ({current})",
                    task.name,
                )
            else:
                yield _finding(
                    "device",
                    FAIL,
                    f"task '{task.name}': {task.local} is now on {current} but was on {earlier} at the last pass: "
                    "if that disk is not mounted, mount it before the next pass; if you moved the folder on "
                    f"purpose, link it again (skysync task edit {shlex.quote(task.name)} --local PATH)",
                    task.name,
                )
    finally:
        if db is not None:
            db.close()


# -- free space ------------------------------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def free_space(what: str, path: str, probes: Probes, advice: str) -> Finding:
    try:
        vfs = probes.statvfs(path)
    except OSError as exc:
        return _finding("free-space", WARN, f"{what}: the free space of {path} cannot be read ({exc.strerror})", path)
    free = vfs.f_bavail * vfs.f_frsize
    total = vfs.f_blocks * vfs.f_frsize
    share = free / total if total else 1.0
    text = f"{_size(free)} free ({share:.0%}) on the disk of {path}"
    if free < LOW_FREE_BYTES or share < LOW_FREE_FRACTION:
        return _finding("free-space", WARN, f"{what}: only {text}: {advice}", path)
    return _finding("free-space", OK, f"{what}: {text}", path)


def check_free_space(home: Home, tasks: list[Task], probes: Probes) -> Iterator[Finding]:
    for task in tasks:
        if os.path.isdir(task.local):
            yield free_space(
                f"task '{task.name}'",
                task.local,
                probes,
                "free some space; downloads and conflict copies need room, and a full disk fails them",
            )
    folder = os.path.dirname(_database_path(home)) or "."
    if os.path.isdir(folder):
        yield free_space(
            "state database",
            folder,
            probes,
            "free some space; the state database is written after every completed action",
        )


# -- inotify ---------------------------------------------------------------------------------------------------


def count_folders(root: str, limit: int) -> int:
    """Folders at and below `root` (symlinks not followed, unreadable ones skipped), counting at most `limit`."""
    count = 0
    stack = [root]
    while stack and count < limit:
        folder = stack.pop()
        count += 1
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return min(count, limit)


def check_inotify(tasks: list[Task], probes: Probes) -> Finding:
    try:
        with open(probes.inotify_path, encoding="ascii") as f:
            limit = int(f.read().strip())
    except (OSError, ValueError):
        return _finding(
            "inotify",
            OK,
            "no inotify watch limit to check on this system (changes are still found by the periodic rescan)",
        )
    # The engine watches the local folder of every task that uploads (not download-only ones), one watch a folder.
    watched = [t for t in tasks if t.direction != "download" and os.path.isdir(t.local)]
    if not watched:
        return _finding("inotify", OK, f"no task folder to watch (limit {limit:,} watches)")
    needed = 0
    for task in watched:
        needed += count_folders(task.local, max(probes.walk_limit - needed, 1))
        if needed >= probes.walk_limit:
            break
    at_least = "at least " if needed >= probes.walk_limit else ""
    text = f"the tasks watch {at_least}{needed:,} folders and the limit is {limit:,} watches"
    if needed <= limit * INOTIFY_SHARE:
        return _finding("inotify", OK, text)
    target = _suggested_limit(needed)
    how = (
        f"raise it with: sudo sysctl fs.inotify.max_user_watches={target}, and keep it after a reboot with the "
        f"line fs.inotify.max_user_watches={target} in {SYSCTL_FILE}"
    )
    if needed > limit:
        return _finding("inotify", FAIL, f"{text}: changes in the rest are only seen by the 10-minute rescan; {how}")
    return _finding("inotify", WARN, f"{text}, which it shares with the user's other programs: {how}")


def check_inotify_reported(home: Home, probes: Probes) -> Iterator[Finding]:
    """What the engine itself found: the tasks whose folders could not all get a watch (its marker file)."""
    from engine.runtime.control import inotify_marker_path

    try:
        with open(inotify_marker_path(home.path), encoding="utf-8") as f:
            data = json.load(f)
        tasks = dict(data["tasks"])
        pid = int(data.get("pid") or 0)
        limit = data.get("limit")
        every = float(data.get("rescan_every") or 30)
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as exc:
        yield _finding("inotify", WARN, f"the engine's inotify report cannot be read ({exc}); it is rewritten "
                       "when the engine next runs short of watches")
        return
    if not tasks:
        return
    running = pid > 0 and _alive(pid)
    names = ", ".join(sorted(tasks))
    since = min(float(t.get("since") or 0) for t in tasks.values())
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(since)) if since else "an unknown time"
    shown_limit = f"{int(limit):,}" if isinstance(limit, int) else "unknown"
    target = _suggested_limit(int(limit) if isinstance(limit, int) else 0)
    how = (
        f"raise it with: sudo sysctl fs.inotify.max_user_watches={target}, and keep it after a reboot with the "
        f"line fs.inotify.max_user_watches={target} in {SYSCTL_FILE}"
    )
    if running:
        yield _finding(
            "inotify",
            FAIL,
            f"the running engine (pid {pid}) ran out of inotify watches (limit {shown_limit}) on {when} for "
            f"task(s) {names}: changes in folders without a watch are found by a rescan every {every:g} s instead "
            f"of at once; {how} (the engine watches them all as soon as there is room)",
        )
    else:
        yield _finding(
            "inotify",
            WARN,
            f"the last engine run (pid {pid}, no longer running) ran out of inotify watches (limit {shown_limit}) "
            f"on {when} for task(s) {names}; {how}",
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _suggested_limit(needed: int) -> int:
    """Twice the need, rounded up to a power of two, and never below the common 524,288."""
    target = 524_288
    while target < needed * 2:
        target *= 2
    return target


# -- connections -----------------------------------------------------------------------------------------------


def _advice(exc: Exception, name: str) -> str:
    from engine.providers import base

    who = shlex.quote(name)
    if isinstance(exc, base.ReauthRequired):
        return f"sign-in needed: skysync connection login {who} (its tasks and state are kept)"
    if isinstance(exc, base.AuthError):
        return f"fix the credentials: skysync connection edit {who} --option KEY=-"
    if isinstance(exc, base.ContainerNotFound):
        return f"create it, or point the connection at one that exists: skysync connection edit {who}"
    if isinstance(exc, base.NetworkError | base.TransientError):
        return "check the network, the endpoint and any proxy; the engine keeps retrying meanwhile"
    if isinstance(exc, base.PermissionDenied):
        return "give these credentials access, or use another bucket or folder"
    if isinstance(exc, base.InvalidOption):
        return f"fix the option: skysync connection edit {who} --option KEY=VALUE"
    return f"skysync connection test {who} tells more"


def _redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text.splitlines()[0] if text else text


def _duration(seconds: float) -> str:
    seconds = round(abs(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {s} s"
    return f"{minutes // 60} h {minutes % 60} min"


def check_connection(home: Home, name: str, probes: Probes) -> list[Finding]:
    """Whether the connection answers its check, and how far its service's clock is from ours."""
    from engine.providers.base import NetworkError, ProviderError

    opener = probes.open_provider
    if opener is None:
        from engine.connect import open_provider as opener
    secrets = list(home.secrets(name).values())
    more = f"skysync connection test {shlex.quote(name)} tells more"
    signin = _signin_needed(home, name)
    if signin is not None:  # asking the service would only be refused again (and cost a refresh attempt)
        return [signin]

    def failed(what: str, exc: Exception) -> Finding:
        if isinstance(exc, ProviderError | SkysyncError):  # their messages are written for the user, secret-free
            text = f"connection '{name}' {what}: {_redact(str(exc), secrets)}: {_advice(exc, name)}"
        else:  # a provider bug: its message might hold anything, so only its kind is shown
            text = f"connection '{name}' {what} ({type(exc).__name__}): {more}"
        return _finding("connection", FAIL, text, name)

    try:
        provider = opener(home, name)
    except Exception as exc:  # one connection's trouble never stops the other checks
        return [failed("cannot be opened", exc)]
    try:
        try:
            provider.check()
        except Exception as exc:
            found = failed("does not answer its check", exc)
            if isinstance(exc, NetworkError):  # nobody to ask the time (and asking would wait out the retries)
                return [found, _finding("clock", OK, f"connection '{name}': no clock to compare (no answer)", name)]
        else:
            found = _finding("connection", OK, f"connection '{name}' answers", name)
            return [found, _clock(provider, name, probes), _conflict_mode(home, provider, name)]
        return [found, _clock(provider, name, probes)]
    finally:
        try:
            provider.close()
        except Exception:
            pass


def _signin_needed(home: Home, name: str) -> Finding | None:
    """The "sign-in needed" finding of an OAuth connection whose token store says so (a refresh was refused, or
    it never signed in), read from the store without a call to the service."""
    from engine.auth.tokens import TokenStore
    from engine.connect import provider_kind
    from engine.providers.oauth import OAuthProvider

    try:
        if not issubclass(provider_kind(home.connection(name).provider), OAuthProvider):
            return None
    except SkysyncError:
        return None  # an unknown kind: opening it reports that
    store = TokenStore(home.path, name)
    if store.exists() and not store.needs_signin():
        return None
    why = "its sign-in is no longer valid" if store.exists() else "it has never signed in"
    who = shlex.quote(name)
    return _finding(
        "connection", FAIL,
        f"connection '{name}': sign-in needed ({why}); its passes wait: run skysync connection login {who} "
        "from a terminal (its tasks and state are kept)",
        name,
    )


def _conflict_mode(home: Home, provider: Any, name: str) -> Finding:
    """Which conflict mode the connection's passes use, and why (engine.revisions): said, never a failure."""
    from engine import revisions

    try:
        mode, why = revisions.resolve(provider, home.connection(name).conflict_mode)
    except Exception as exc:  # a provider's surprise: the pass would not get revisions either
        mode, why = revisions.COPY, f"the check failed ({type(exc).__name__})"
    kept = "as revisions in the cloud" if mode == revisions.REVISION else "as conflict copies"
    return _finding("conflicts", OK, f"connection '{name}': files changed on both sides are kept {kept}: {why}",
                    name)


def _clock(provider: Any, name: str, probes: Probes) -> Finding:
    before = probes.clock()
    try:
        theirs = provider.server_time()
    except Exception:
        theirs = None
    after = probes.clock()
    if theirs is None:
        return _finding("clock", OK, f"connection '{name}': the service shows no clock to compare", name)
    skew = theirs - (before + after) / 2  # > 0: our clock is behind
    if abs(skew) <= SKEW_WARN_SECONDS:
        return _finding(
            "clock", OK, f"connection '{name}': this machine's clock is within {_duration(skew)} of the service's", name
        )
    side = "behind" if skew > 0 else "ahead of"
    status = FAIL if abs(skew) > SKEW_FAIL_SECONDS else WARN
    return _finding(
        "clock",
        status,
        f"connection '{name}': this machine's clock is {_duration(skew)} {side} the service's: turn on time "
        "synchronisation (sudo timedatectl set-ntp true); S3 and the services that sign requests like it refuse "
        "every request once the skew passes 15 minutes",
        name,
    )


def check_connections(home: Home, probes: Probes) -> list[Finding]:
    names = [c.name for c in home.connections()]
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(CONNECTION_THREADS, len(names))) as pool:
        results = list(pool.map(lambda n: check_connection(home, n, probes), names))
    return [f for found in results for f in found]


# -- all together ----------------------------------------------------------------------------------------------


def _guarded(check: str, run: Callable[[], Iterable[Finding]]) -> list[Finding]:
    """One check's findings; a check that fails is itself a finding and the others still run."""
    try:
        return list(run())
    except SkysyncError as exc:
        return [_finding(check, FAIL, str(exc))]
    except Exception as exc:
        return [_finding(check, FAIL, f"the check itself failed ({type(exc).__name__}: {exc})")]


def collect(home: Home, probes: Probes | None = None) -> list[Finding]:
    """Every finding about `home` and this machine, in a fixed order; nothing is changed."""
    probes = probes or Probes()
    findings = _guarded("home", lambda: check_permissions(home, probes))
    readable: list[bool] = []

    def database() -> list[Finding]:
        finding, ok = check_database(home)
        readable.append(ok)
        return [finding]

    findings += _guarded("state-database", database)
    tasks = home.tasks()
    findings += _guarded("local-folder", lambda: [check_local_folder(t) for t in tasks])
    findings += _guarded("device", lambda: check_devices(home, tasks, bool(readable and readable[0]), probes))
    findings += _guarded("free-space", lambda: check_free_space(home, tasks, probes))
    findings += _guarded("inotify", lambda: [check_inotify(tasks, probes), *check_inotify_reported(home, probes)])
    findings += _guarded("connection", lambda: check_connections(home, probes))
    return findings


def report(findings: list[Finding]) -> dict[str, Any]:
    """The `--json` shape: {"ok": bool, "findings": [{"check", "status", "subject", "message"}...]}."""
    return {"ok": all(f.status == OK for f in findings), "findings": [asdict(f) for f in findings]}


def run_doctor(home: Home, as_json: bool, probes: Probes | None = None) -> int:
    """Print the findings (one line each, or one JSON object); 1 when any is not ok, else 0."""
    findings = collect(home, probes)
    if as_json:
        print(json.dumps(report(findings), indent=2, sort_keys=True))
    else:
        for f in findings:
            print(f.line())
        bad = sum(f.status != OK for f in findings)
        print(f"{bad} problem{'s' if bad != 1 else ''} found" if bad else "everything looks fine")
    return 0 if all(f.status == OK for f in findings) else 1
