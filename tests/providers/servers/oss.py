"""`oss`: the OSS protocol fake from tests/fakes/oss_server.py, shared by the session; a new bucket per test."""

from __future__ import annotations

import atexit
import contextlib
import pathlib
import threading
import uuid
from collections.abc import Iterator

from tests.fakes.oss_server import OSSFake

KIND = "oss"
SMALL_PART_OPTIONS = {"part_size": "1"}
EXTRA = {"multipart_hash": "none"}
ACCESS_KEY_ID = "oss-test-key"
ACCESS_KEY_SECRET = "oss-test-secret-0123456789"

_fake: OSSFake | None = None
_lock = threading.Lock()


def fake() -> OSSFake:
    global _fake
    with _lock:
        if _fake is None:
            _fake = OSSFake(ACCESS_KEY_ID)
            atexit.register(_fake.stop)
        return _fake


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    bucket = f"t-{uuid.uuid4().hex[:20]}"
    fake().create_bucket(bucket)
    yield {
        "endpoint": f"http://{fake().address}",
        "bucket": bucket,
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
    }
    with fake().store.lock:
        fake().store.buckets.pop(bucket, None)  # the fake keeps everything in memory


def bad_credentials(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "access_key_id": "not-the-key", "access_key_secret": "wrong-secret-value-42"}


def missing_container(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "bucket": opts["bucket"] + "-missing"}


def unreachable(opts: dict[str, str], address: str) -> dict[str, str]:
    return {**opts, "endpoint": f"http://{address}"}


def populate(opts: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(opts["bucket"], path, b"x")
