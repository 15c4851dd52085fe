"""The exclusive lock a change of a home's configuration holds: `<home>/config.lock`.

A change is a read-modify-write of config.toml and secrets.toml. Two commands changing the same home at once (20
parallel `task add`, the app and a script) would each write back their own copy and all but one change would be
lost, while each command reported success. Holding this lock from the read to the write serialises them. It is an
flock: the kernel drops it when the process ends, so a crash never leaves the home locked.

Re-entrant within one thread (a command that holds it calls Home.save, which takes it too); another thread of the
same process waits like another process does, since flock locks belong to each open file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator

from engine.errors import UsageError
from engine.names import shown

LOCK_NAME = "config.lock"
# How long a change waits for another one to finish: far longer than any plain change takes, short enough that a
# command waiting behind a sign-in in another terminal says so instead of hanging.
WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.02

_held = threading.local()  # the home paths whose lock this thread holds, each with its descriptor


def _holdings() -> dict[str, int]:
    if not hasattr(_held, "homes"):
        _held.homes = {}
    return _held.homes


def _open(home_path: str) -> int:
    try:
        os.makedirs(home_path, mode=0o700, exist_ok=True)
        return os.open(os.path.join(home_path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsageError(f"the configuration in {shown(home_path)} cannot be changed: "
                         f"{exc.strerror or exc}") from None


def _wait(fd: int, home_path: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise UsageError(f"another skysync command has been changing the configuration in "
                                 f"{shown(home_path)} for {wait:.0f} s; try again when it has finished") from None
            time.sleep(_POLL_SECONDS)


@contextlib.contextmanager
def config_lock(home_path: str, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the home's configuration lock for the block (waiting up to `wait` seconds for it)."""
    key = os.path.abspath(home_path)
    homes = _holdings()
    if key in homes:  # taken by an outer block of this thread, which releases it
        yield
        return
    fd = _open(key)
    _wait(fd, key, wait)
    homes[key] = fd
    try:
        yield
    finally:
        del homes[key]
        os.close(fd)  # closing the only descriptor of the open file releases the flock

