"""A digest of a folder tree's metadata: whether anything in it moved since the last time it was taken.

Every entry below the root is `lstat`ed, links are not followed, and the digest covers, per folder in a fixed
order, each entry's name (raw bytes), mode, size, mtime and ctime to the nanosecond and inode; a folder or entry
that cannot be read is covered by its error number. A write, a rename, a `touch`, a `chmod`, a new file, a
deleted one, a folder swapped for another or a disk mounted in place all change it: the kernel moves a ctime on
every one of them, and a ctime cannot be set back. The walk does not enter another device, a mount point named
by the caller, or a folder `prune` names (the sync does not look inside those either), but it covers the entry
itself (a pruned folder by its name and mode only: files coming and going inside it move its mtime).

It is the cheap half of the no-change fast path (engine.settled): comparing two digests says "nothing moved"
without building one Python object per file. This module imports the standard library only, so that it can
also run as a script (`python -I -S treedigest.py '<json>'`) and walk a second tree in a child process while
the engine walks the first: two walks in two threads of one process take longer than one after the other
(the per-entry work holds the GIL), two processes take as long as one.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import stat
import sys
from collections.abc import Callable, Iterable

FORMAT = b"skysync-tree-digest 1"


def tree_digest(
    root: str,
    mounts: Iterable[str] = (),
    prune: Callable[[str], bool] | None = None,
    pruned: list[str] | None = None,
    alive: Callable[[], bool] | None = None,
) -> str | None:
    """The hex digest of `root`'s tree, or None when `root` is not a folder that can be read.

    `mounts`: absolute paths of mount points below `root` (same device as the root, so the device number alone
    misses them); `prune(rel)`: a relative folder path (str, "/"-separated) the walk must not enter; `pruned`,
    when given, receives each folder `prune` left out; `alive()`, asked before each folder: False ends the walk
    (None is returned).
    """
    broot = os.fsencode(root)
    try:
        top = os.stat(broot)
    except OSError:
        return None
    if not stat.S_ISDIR(top.st_mode):
        return None
    h = hashlib.blake2b(FORMAT, digest_size=20)
    h.update(marshal.dumps((top.st_dev, top.st_ino)))
    root_dev = top.st_dev
    bmounts = {os.fsencode(m) for m in mounts}
    S_ISDIR = stat.S_ISDIR
    folders: list[bytes] = [b""]
    while folders:
        if alive is not None and not alive():
            return None
        rel = folders.pop()
        rows: list[tuple[object, ...]] = []
        subs: list[bytes] = []
        try:
            with os.scandir(broot + b"/" + rel if rel else broot) as it:
                for child in it:
                    name = child.name
                    try:
                        st = child.stat(follow_symlinks=False)
                    except OSError as exc:
                        rows.append((name, -(exc.errno or 1)))
                        continue
                    mode = st.st_mode
                    if S_ISDIR(mode) and st.st_dev == root_dev and child.path not in bmounts:
                        sub = rel + b"/" + name if rel else name
                        if prune is not None and prune(os.fsdecode(sub)):
                            if pruned is not None:
                                pruned.append(os.fsdecode(sub))
                            rows.append((name, mode))  # a folder the sync leaves out: only that it is there counts
                            continue
                        subs.append(sub)
                    rows.append((name, mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        except OSError as exc:
            h.update(marshal.dumps((rel, "unreadable", exc.errno)))
            continue
        rows.sort()  # names are unique within a folder: the first items decide, compared in C
        h.update(marshal.dumps((rel, rows)))
        subs.sort(reverse=True)  # a fixed order of folders, whatever order the directory lists them in
        folders.extend(subs)
    return h.hexdigest()


def main(argv: list[str]) -> int:
    """`treedigest.py '{"root": ..., "mounts": [...], "prune": [...]}'` (or that JSON on stdin): print the digest,
    or nothing (exit 1) for no folder. `prune` lists the relative folders not to enter."""
    args = json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())
    left_out = frozenset(args.get("prune", ()))
    parent = args.get("parent")
    alive = (lambda: os.getppid() == parent) if parent else None  # the walk dies with the process that wanted it
    digest = tree_digest(args["root"], args.get("mounts", ()), left_out.__contains__ if left_out else None,
                         alive=alive)
    if digest is None:
        return 1
    sys.stdout.write(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
