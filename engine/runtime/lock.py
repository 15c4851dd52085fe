"""One engine per home: the exclusive lock on `<home>/engine.lock` (a pass's own lock is engine.sync.TaskLock)."""

from __future__ import annotations

import contextlib
import fcntl
import os

from engine.errors import LockedError

LOCK_NAME = "engine.lock"


class EngineLock:
    """An exclusive flock on <home>/engine.lock; the kernel drops it if we crash, so a restart is clean."""

    def __init__(self, home_path: str) -> None:
        self.path = os.path.join(home_path, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            raise LockedError(
                f"another skysync engine is already running for this home{holder}; use `skysync status` to talk to it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def held(self) -> bool:
        """Whether `<home>/engine.lock` is still the file this engine locked. An flock belongs to a file, not to a
        path: once the file is deleted or replaced (the home removed and made again, say) another engine can lock
        the new one and sync the same home."""
        if self._fd is None:
            return False
        try:
            here, ours = os.stat(self.path), os.fstat(self._fd)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (ours.st_dev, ours.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None
