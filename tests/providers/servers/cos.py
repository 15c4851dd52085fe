"""`cos`: the COS protocol fake from tests/fakes/cos_server.py, shared by the session; a new bucket per test."""

from __future__ import annotations

import atexit
import contextlib
import pathlib
import threading
import uuid
from collections.abc import Iterator

from tests.fakes.cos_server import COSFake

KIND = "cos"
SMALL_PART_OPTIONS = {"part_size": "1"}
EXTRA = {"multipart_hash": "none"}
SECRET_ID = "cos-test-secret-id"
SECRET_KEY = "cos-test-secret-key-0123456789"

_fake: COSFake | None = None
_lock = threading.Lock()


def fake() -> COSFake:
    global _fake
    with _lock:
        if _fake is None:
            _fake = COSFake(SECRET_ID)
            atexit.register(_fake.stop)
        return _fake


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    bucket = f"t{uuid.uuid4().hex[:16]}-1250000000"
    fake().create_bucket(bucket)
    yield {
        "region": "ap-guangzhou",
        "endpoint": f"http://{fake().address}",
        "bucket": bucket,
        "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY,
    }
    with fake().store.lock:
        fake().store.buckets.pop(bucket, None)  # the fake keeps everything in memory


def populate(opts: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(opts["bucket"], path, b"x")


def bad_credentials(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "secret_id": "not-the-id", "secret_key": "wrong-secret-value-42"}


def missing_container(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "bucket": "missing" + opts["bucket"]}


def unreachable(opts: dict[str, str], address: str) -> dict[str, str]:
    return {**opts, "endpoint": f"http://{address}"}
