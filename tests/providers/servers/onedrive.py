"""`onedrive`: the Graph fake (tests/fakes/graph_server.py), one for the session; each `serve()` is a fresh
personal drive, signed in with a token valid for an hour (no token endpoint is called while it is fresh).

`onedrive_business.py` and `sharepoint.py` reuse these helpers with their own drive types."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import pathlib
import threading
from collections.abc import Iterator

from tests.fakes.graph_server import Drive, GraphFake

KIND = "onedrive"
CLIENT_ID = "test-client"
SMALL_PART_OPTIONS = {"chunk_size": "320"}  # 320 KiB: a file of a few MiB goes up in an upload session
EXTRA = {"multipart_hash": "exact"}

_lock = threading.Lock()
_fake: list[GraphFake] = []
_drives: dict[str, Drive] = {}  # drive id -> the fake's drive, for populate()


def fake() -> GraphFake:
    """The session's Graph fake, started on first use."""
    with _lock:
        if not _fake:
            _fake.append(GraphFake(CLIENT_ID).start())
            atexit.register(_fake[0].stop)
        return _fake[0]


def token_json(access: str, refresh: str | None = None, lifetime: float = 3600) -> str:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
    token = {"access_token": access, "token_type": "Bearer", "expiry": expiry.isoformat().replace("+00:00", "Z")}
    if refresh:
        token["refresh_token"] = refresh
    return json.dumps(token)


def options_for(server: GraphFake, drive: Drive, token: str | None = None) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "token": token or token_json(server.token()),
        "account_id": server.user,
        "drive_id": drive.id,
        "api_url": server.api_url,
        "auth_url": server.auth_url,
        "ca_file": server.ca_file,
    }


def serve_drive(drive_type: str) -> Iterator[dict[str, str]]:
    server = fake()
    drive = server.new_drive(drive_type)
    _drives[drive.id] = drive
    try:
        yield options_for(server, drive)
    finally:
        _drives.pop(drive.id, None)


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    yield from serve_drive("personal")


def drive_of(options: dict[str, str]) -> Drive:
    return _drives[options["drive_id"]]


def populate(options: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(drive_of(options), path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    return {**options, "token": token_json("at-not-a-token")}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "drive_id": "NO-SUCH-DRIVE"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}/v1.0"}
