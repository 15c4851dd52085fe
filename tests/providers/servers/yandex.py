"""`yandex`: the Yandex Disk fake (tests/fakes/yandex_server.py) on 127.0.0.1, one for the session.

Each `serve()` is a fresh, empty Disk (Yandex connections have no bucket: the Disk is the namespace): the
fake's files are cleared and a new token issued, in the shape `rclone authorize` prints, valid for hours and
refreshable at the fake's OAuth endpoints. The contract suite runs one test at a time per process, so sharing
one fake is safe.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import pathlib
import threading
import time
from collections.abc import Iterator

from tests.fakes.yandex_server import Node, YandexFake

KIND = "yandex"
EXTRA = {"multipart_hash": "exact", "mtime_tolerance": 0.001}

_lock = threading.Lock()
_fake: list[YandexFake] = []


def fake() -> YandexFake:
    with _lock:
        if not _fake:
            _fake.append(YandexFake().start())
            atexit.register(_fake[0].stop)
        return _fake[0]


def token_json(access: str, refresh: str | None, lifetime: float = 3 * 3600) -> str:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
    token = {"access_token": access, "token_type": "bearer", "expiry": expiry.isoformat().replace("+00:00", "Z")}
    if refresh:
        token["refresh_token"] = refresh
    return json.dumps(token)


def options_for(server: YandexFake) -> dict[str, str]:
    issued = server.issue_token()
    return {
        "client_id": server.oauth.client_id,
        "client_secret": server.oauth.client_secret or "",
        "token": token_json(str(issued["access_token"]), str(issued["refresh_token"])),
        "account_id": server.uid,
        "api_url": server.api_url,
        "auth_url": server.url,
    }


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    server = fake()
    with server._lock:
        server.nodes = {"": Node(True, time.time(), time.time())}
        server.trash.clear()
        server.locked.clear()
        server._faults.clear()
    yield options_for(server)


def populate(options: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    # A refused access token with a refresh token the service never issued: nothing can renew it.
    return {**options, "token": token_json("y0_not-a-token", "not-a-refresh-token")}


def missing_container(options: dict[str, str]) -> None:
    return None  # the connection is the whole Disk: there is no container


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "api_url": f"http://{address}/v1/disk", "auth_url": f"http://{address}"}
