"""`box`: the Box API fake (tests/fakes/box_server.py) on 127.0.0.1, a fresh one (one empty account) per
`serve()`, signed in with a token in the shape `rclone authorize` prints, issued by the fake's own rotating
OAuth server. Upload sessions are allowed from 1 MiB with 512 KiB parts, so a file of a few MiB goes through one
in several parts (Box itself takes sessions from 20 MB, with parts of about 8 MB)."""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import Iterator

from tests.fakes.box_server import BoxFake

KIND = "box"
SMALL_PART_OPTIONS = {"chunk_size": "1"}
EXTRA = {"multipart_hash": "exact"}  # sha1 covers the whole file however it was sent

_fakes: dict[str, BoxFake] = {}  # api_url -> the fake behind it, for populate()


def small_parts(fake: BoxFake) -> BoxFake:
    fake.min_session_size = 1 << 20
    fake.part_size = 512 << 10
    return fake


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    fake = small_parts(BoxFake().start())
    _fakes[fake.api_url] = fake
    try:
        yield fake.options()
    finally:
        _fakes.pop(fake.api_url, None)
        fake.stop()


def populate(options: dict[str, str], paths: list[str]) -> None:
    fake = _fakes[options["api_url"]]
    for path in paths:
        fake.put(path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    # An access token Box refuses, with a refresh token it never issued: nothing can renew it.
    token = {"access_token": "not-a-token", "token_type": "bearer", "refresh_token": "not-a-refresh-token",
             "expiry": "2100-01-01T00:00:00Z"}
    return {**options, "token": json.dumps(token)}


def missing_container(options: dict[str, str]) -> None:
    return None  # a Box connection is the whole account: there is no container


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}/2.0", "upload_url": f"http://{address}/api/2.0"}
