"""`gdrive`: the Drive protocol fake in tests/fakes/gdrive_server.py, one fresh fake (one empty My Drive) per
`serve()`, with a bearer token valid for an hour given as the `token` option (no token endpoint is called: a
token whose expiry is ahead is used as it is)."""

from __future__ import annotations

import contextlib
import json
import pathlib
import socket
import time
from collections.abc import Iterator

from tests.fakes.gdrive_server import DriveState, running

KIND = "gdrive"
SMALL_PART_OPTIONS = {"chunk_size": "256K"}
EXTRA = {"multipart_hash": "exact", "mtime_tolerance": 0.001}

_states: dict[str, DriveState] = {}  # api_url -> the fake behind it, for populate()


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/token"


def token_json(access_token: str, ttl: float = 3600.0) -> str:
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))
    return json.dumps({"access_token": access_token, "token_type": "Bearer", "expiry": expiry})


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with running() as (url, state):
        _states[url] = state
        try:
            yield {
                "client_id": "test-client",
                "api_url": url,
                "token_url": _closed_url(),  # never called: the token is fresh
                "token": token_json(state.issue_token()),
                "account_id": state.permission_id,
            }
        finally:
            _states.pop(url, None)


def populate(options: dict[str, str], paths: list[str]) -> None:
    _states[options["api_url"]].populate("root", paths)


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    return {**options, "token": token_json("ya29.not-a-valid-token")}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "shared_drive": "no-such-shared-drive"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}"}


def put_duplicate(options: dict[str, str], path: str, data: bytes) -> None:
    """A second file named like `path` in its folder, as another Drive client can make."""
    state = _states[options["api_url"]]
    folder, _, name = path.rpartition("/")
    parent = state.find(folder)
    assert parent is not None, f"no folder /{folder} on the fake"
    state.add_file(parent.id, name, data)
