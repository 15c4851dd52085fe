"""`baidu`: the Baidu Netdisk fake (tests/fakes/baidu_server.py) on 127.0.0.1, one for the session.

Each `serve()` is a fresh account with an empty app folder (`/apps/skysync`, the connection's root), signed in
with a token in the shape `rclone authorize` prints, valid for hours and refreshable (single-use refresh tokens)
at the fake's token endpoint.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import pathlib
import threading
from collections.abc import Iterator

from tests.fakes.baidu_server import BaiduFake

KIND = "baidu"
APP_KEY = "fake-app-key"
SECRET_KEY = "fake-secret-key"
APP_NAME = "skysync"
# Baidu's block is 4 MiB for every account: the suite's multipart file (just over it) goes up in two blocks.
EXTRA = {"multipart_hash": "exact"}

_lock = threading.Lock()
_fake: list[BaiduFake] = []


def fake() -> BaiduFake:
    """The session's fake Baidu, started on first use."""
    with _lock:
        if not _fake:
            _fake.append(BaiduFake(APP_KEY, SECRET_KEY).start())
            atexit.register(_fake[0].stop)
        return _fake[0]


def token_json(access: str, refresh: str | None, lifetime: float = 3 * 3600) -> str:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
    token = {"access_token": access, "token_type": "bearer", "expiry": expiry.isoformat().replace("+00:00", "Z")}
    if refresh:
        token["refresh_token"] = refresh
    return json.dumps(token)


def options_for(server: BaiduFake, uk: int, access: str, refresh: str | None) -> dict[str, str]:
    return {
        "app_key": APP_KEY,
        "secret_key": SECRET_KEY,
        "app_name": APP_NAME,
        "token": token_json(access, refresh),
        "account_id": str(uk),
        "api_url": server.url,
        "content_url": server.url,
        "auth_url": server.url,
    }


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    server = fake()
    uk, access, refresh = server.new_account(APP_NAME)
    yield options_for(server, uk, access, refresh)


def populate(options: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(int(options["account_id"]), path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    # A refused access token with a refresh token the service never issued: nothing can renew it.
    return {**options, "token": token_json("121.not-a-token", "122.not-a-refresh-token")}


def missing_container(options: dict[str, str]) -> None:
    return None  # the connection is the app's folder, which Baidu makes for the app: there is no container


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}", "content_url": f"http://{address}"}
