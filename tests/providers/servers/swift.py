"""`swift`: the protocol fake in tests/fakes/swift_server.py (TempAuth v1, listings with paging, DLOs).

A real Swift from Debian's packages needs rings, rsync and several daemons: far more than the suite's time
budget allows, so python-swiftclient talks to the fake instead. One fake for the session; every `serve()`
gets a fresh container.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.fakes.swift_server import SwiftState, running

KIND = "swift"
TENANT, USER, KEY = "test", "tester", "testing-key"
SMALL_PART_OPTIONS = {"segment_size": "1"}  # MiB
EXTRA = {"multipart_hash": "none"}  # spec note 3: no hash for Dynamic Large Objects

_lock = threading.Lock()
_state: dict[str, Any] = {}
_counter = itertools.count()


def server() -> tuple[str, SwiftState]:
    with _lock:
        if "url" not in _state:
            stack = contextlib.ExitStack()
            url, state = stack.enter_context(running({f"{TENANT}:{USER}": KEY}))
            _state.update(url=url, state=state, stack=stack)
            atexit.register(stack.close)
        return _state["url"], _state["state"]


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    url, state = server()
    name = f"skysync-{next(_counter)}"
    state.create_container("AUTH_" + TENANT, name)
    yield {"auth_url": url, "user": USER, "key": KEY, "tenant": TENANT, "container": name}


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    return {**options, "key": "wrong-" + options["key"]}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "container": "no-such-container"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "auth_url": f"http://{address}/auth/v1.0"}
