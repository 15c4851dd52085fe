"""`dropbox`: the Dropbox API fake (tests/fakes/dropbox_server.py) on 127.0.0.1, one for the session.

Each `serve()` is a fresh account (Dropbox connections have no bucket: an account is the namespace), signed in
with a token in the shape `rclone authorize` prints, valid for hours and refreshable at the fake's token
endpoint.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import pathlib
import threading
from collections.abc import Iterator

from tests.fakes.dropbox_server import DropboxFake

KIND = "dropbox"
APP_KEY = "fake-app-key"
SMALL_PART_OPTIONS = {"chunk_size": "1"}  # 1 MiB: a file of a few MiB goes through an upload session
EXTRA = {"multipart_hash": "exact"}  # the content hash covers the whole file however it was sent

_lock = threading.Lock()
_fake: list[DropboxFake] = []


def fake() -> DropboxFake:
    """The session's fake Dropbox, started on first use."""
    with _lock:
        if not _fake:
            _fake.append(DropboxFake().start())
            atexit.register(_fake[0].stop)
        return _fake[0]


def token_json(access: str, refresh: str | None, lifetime: float = 3 * 3600) -> str:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
    token = {"access_token": access, "token_type": "bearer", "expiry": expiry.isoformat().replace("+00:00", "Z")}
    if refresh:
        token["refresh_token"] = refresh
    return json.dumps(token)


def options_for(server: DropboxFake, account: str, access: str, refresh: str | None) -> dict[str, str]:
    return {
        "app_key": APP_KEY,
        "token": token_json(access, refresh),
        "account_id": account,
        "api_url": server.urls["api"],
        "content_url": server.urls["content"],
        "notify_url": server.urls["notify"],
        "token_url": server.urls["api"] + "/oauth2/token",
        "auth_url": server.urls["api"] + "/oauth2/authorize",
    }


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    server = fake()
    account, access, refresh = server.new_account(APP_KEY)
    yield options_for(server, account, access, refresh)


def populate(options: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(options["account_id"], "/" + path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    # A refused access token with a refresh token the service never issued: nothing can renew it.
    return {**options, "token": token_json("sl.not-a-token", "not-a-refresh-token")}


def missing_container(options: dict[str, str]) -> None:
    return None  # a Dropbox connection is the whole account (or the app's folder): there is no container


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}", "content_url": f"http://{address}",
            "notify_url": f"http://{address}"}  # fmt: skip
