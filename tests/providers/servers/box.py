"""`box`: the Box API fake (tests/fakes/box_server.py) on 127.0.0.1, one for the session, emptied for each
`serve()` (a Box connection is a whole account: there is no bucket to make fresh), signed in with a new token in
the shape `rclone authorize` prints, issued by the fake's own rotating OAuth server. Upload sessions are allowed
from 1 MiB with 512 KiB parts, so a file of a few MiB goes through one in several parts (Box itself takes
sessions from 20 MB, with parts of about 8 MB)."""

from __future__ import annotations

import atexit
import contextlib
import json
import pathlib
import threading
from collections.abc import Iterator

from tests.fakes.box_server import BoxFake

KIND = "box"
SMALL_PART_OPTIONS = {"chunk_size": "1"}
EXTRA = {"multipart_hash": "exact"}  # sha1 covers the whole file however it was sent

_lock = threading.Lock()
_fake: list[BoxFake] = []


def small_parts(fake: BoxFake) -> BoxFake:
    fake.min_session_size = 1 << 20
    fake.part_size = 512 << 10
    return fake


def fake() -> BoxFake:
    """The session's fake Box, started on first use."""
    with _lock:
        if not _fake:
            _fake.append(BoxFake().start())
            atexit.register(_fake[0].stop)
        return _fake[0]


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    box = fake()
    box.reset()
    small_parts(box)
    yield box.options()


def populate(options: dict[str, str], paths: list[str]) -> None:
    box = fake()
    for path in paths:
        box.put(path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    # An access token Box refuses, with a refresh token it never issued: nothing can renew it.
    token = {"access_token": "not-a-token", "token_type": "bearer", "refresh_token": "not-a-refresh-token",
             "expiry": "2100-01-01T00:00:00Z"}
    return {**options, "token": json.dumps(token)}


def missing_container(options: dict[str, str]) -> None:
    return None  # a Box connection is the whole account: there is no container


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}/2.0", "upload_url": f"http://{address}/api/2.0"}
