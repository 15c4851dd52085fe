"""The digest walks of a quiet task, started the moment `skysync sync TASK` starts, while the interpreter is still
importing the engine and reading the configuration.

On a quiet tree the fast path (engine.settled) is two digest walks and nothing else; run one after the other
behind ~0.2 s of imports, they are most of a pass. After a pass records its digests it also leaves a walk hint
(`<home>/walks/<task>.json`: each side's folder, its mount points, the folders the local walk left out), and the
next `sync` of that task starts a child process per side from the hint before anything else is loaded.

The hint only says where to walk; it decides nothing. The engine takes a child's digest only when the hint's
folder and mount points are exactly what it computes itself once the configuration is read; else it stops the
children and walks as before. The folders left out need no such check: the digest tells a folder left out from
one entered (engine.treedigest), so a walk that left out other folders than the sync would cannot give the
recorded digest. A stale or forged hint can therefore cost a walk, never a decision.

Standard library only: imported before the configuration (and pydantic) are.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field

from engine import treedigest

FOLDER = "walks"
MAX_HINT = 16 * 1024 * 1024  # bytes; a hint we write is a few hundred (more with many excluded folders)


@dataclass(frozen=True)
class Side:
    """One tree as its digest walk sees it: the folder (links at the root followed), its mount points below it, and
    the folders (relative, "/"-separated) the walk does not enter."""

    root: str
    mounts: tuple[str, ...]
    prune: tuple[str, ...] = ()

    def where(self) -> tuple[str, tuple[str, ...]]:
        return self.root, self.mounts


def hint_path(home_path: str, task: str) -> str:
    return os.path.join(home_path, FOLDER, f"{task}.json")


def save(home_path: str, task: str, local: Side, remote: Side) -> None:
    """Leave the hint for the next `sync` of `task` (best effort: without it the next pass walks later)."""
    path = hint_path(home_path, task)
    data = {"local": _side_dict(local), "remote": _side_dict(remote)}
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            json.dump(data, f, ensure_ascii=True)
        os.replace(tmp, path)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def forget(home_path: str, task: str) -> None:
    """No hint for `task`: its trees are not known to be quiet, so walking them early would be wasted work."""
    with contextlib.suppress(OSError):
        os.unlink(hint_path(home_path, task))


def load(home_path: str, task: str) -> tuple[Side, Side] | None:
    """The task's hint; None when there is none, or the file is anything but a plain, small hint (a FIFO, a link
    to a device, garbage): a bad hint must never stop or slow down a sync."""
    try:
        fd = os.open(hint_path(home_path, task), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_HINT:
            return None
        text = os.read(fd, st.st_size + 1)  # the file's own size: no 16 MiB buffer on every start
        data = json.loads(text.decode("ascii")) if len(text) <= MAX_HINT else None
        return None if data is None else (_side(data["local"]), _side(data["remote"]))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    finally:
        os.close(fd)


@dataclass
class PreWalk:
    """The two digest walks of one task, running in child processes since the start of the command."""

    task: str
    local: Side
    remote: Side
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    taken: bool = False  # a pass took the digests

    @classmethod
    def start(cls, home_path: str, task: str) -> PreWalk | None:
        """Start both walks from the task's hint; None without a hint (or without a process to spare)."""
        if task in ("", ".", "..") or os.path.basename(task) != task:
            return None  # not a task name (the configuration refuses it later): no hint to look for
        sides = load(home_path, task)
        if sides is None:
            return None
        walk = cls(task, *sides)
        try:
            for side in sides:
                walk.children.append(start_child(side))
        except OSError:
            walk.stop()
            return None
        except BaseException:
            walk.stop()  # an interrupt (Ctrl+C) between the two starts leaves no walker behind
            raise
        return walk

    def claim(self, local: Side, remote: Side) -> tuple[str | None, str | None] | None:
        """The digests (None for a side that is not a folder now), when the walks were of `local` and `remote`
        as the engine sees them now (folders and mount points); else None, and the walks are stopped."""
        if (self.local.where(), self.remote.where()) != (local.where(), remote.where()) or len(self.children) != 2:
            self.stop()
            return None
        try:
            digests = (child_digest(self.children[0]), child_digest(self.children[1]))
        finally:
            self.stop()
        self.taken = True
        return digests

    def stop(self) -> None:
        for child in self.children:
            stop_child(child)
        self.children = []


def start_child(side: Side) -> subprocess.Popen[bytes]:
    """A digest walk of `side` in a child process (`python -I -S treedigest.py`: standard library only, no site
    packages, ~10 ms to start). Its arguments go through stdin: a long list of folders left out fits there."""
    child = subprocess.Popen([sys.executable, "-I", "-S", treedigest.__file__], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # "parent": the walk stops as soon as this process is gone (killed, say), whatever folder it was told to walk.
    args = {**_side_dict(side), "parent": os.getpid()}
    try:
        assert child.stdin is not None
        child.stdin.write(json.dumps(args, ensure_ascii=True).encode("ascii"))
        child.stdin.close()
        child.stdin = None  # sent: communicate() then only reads the digest
    except OSError:
        stop_child(child)
        raise
    return child


def child_digest(child: subprocess.Popen[bytes]) -> str | None:
    """The child's digest; None when it found no folder or failed (the full pass then decides)."""
    try:
        out, _ = child.communicate()
    except BaseException:
        stop_child(child)  # an interrupt (Ctrl+C) leaves no walker behind
        raise
    text = out.decode("ascii", "replace").strip()
    if child.returncode != 0 or len(text) != 40:
        return None
    return text


def stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.returncode is None:
        with contextlib.suppress(OSError):
            child.kill()
    with contextlib.suppress(OSError, ValueError):
        child.communicate()


def _side_dict(side: Side) -> dict[str, object]:
    return {"root": side.root, "mounts": list(side.mounts), "prune": list(side.prune)}


def _side(data: dict[str, object]) -> Side:
    root, mounts, prune = data["root"], data["mounts"], data["prune"]
    if not isinstance(root, str) or not isinstance(mounts, list) or not isinstance(prune, list):
        raise TypeError("not a walk hint")
    if not all(isinstance(p, str) for p in (*mounts, *prune)):
        raise TypeError("not a walk hint")
    return Side(root, tuple(mounts), tuple(prune))
