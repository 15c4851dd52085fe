"""`jdcloud`: JD Cloud OSS speaks the S3 API, so it is tested on the same moto server with its own options."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

from . import _moto

KIND = "jdcloud"
SMALL_PART_OPTIONS = {"part_size": "5"}
EXTRA = {"multipart_hash": "none"}


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    yield {
        "endpoint": _moto.endpoint(),
        "region": "cn-north-1",
        "bucket": _moto.new_bucket("jd"),
        "access_key_id": _moto.ACCESS_KEY_ID,
        "secret_access_key": _moto.SECRET_ACCESS_KEY,
    }


def populate(opts: dict[str, str], paths: list[str]) -> None:
    _moto.populate(opts["bucket"], paths)


def bad_credentials(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "access_key_id": "not-the-key", "secret_access_key": "wrong-secret-value-42"}


def missing_container(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "bucket": opts["bucket"] + "-missing"}


def unreachable(opts: dict[str, str], address: str) -> dict[str, str]:
    return {**opts, "endpoint": f"http://{address}"}
