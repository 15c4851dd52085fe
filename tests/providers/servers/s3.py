"""`s3`: moto's threaded S3 server on 127.0.0.1 (shared by the session; a new bucket per test)."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

from . import _moto

KIND = "s3"
SMALL_PART_OPTIONS = {"part_size": "5"}  # S3's smallest part
EXTRA = {"multipart_hash": "none"}  # multipart ETags carry no MD5 (spec, attribute table note 2)


def options(bucket: str) -> dict[str, str]:
    return {
        "preset": "other",
        "endpoint": _moto.endpoint(),
        "region": "us-east-1",
        "bucket": bucket,
        "access_key_id": _moto.ACCESS_KEY_ID,
        "secret_access_key": _moto.SECRET_ACCESS_KEY,
    }


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    yield options(_moto.new_bucket())


def populate(opts: dict[str, str], paths: list[str]) -> None:
    _moto.populate(opts["bucket"], paths)


def bad_credentials(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "access_key_id": "not-the-key", "secret_access_key": "wrong-secret-value-42"}


def missing_container(opts: dict[str, str]) -> dict[str, str]:
    return {**opts, "bucket": opts["bucket"] + "-missing"}


def unreachable(opts: dict[str, str], address: str) -> dict[str, str]:
    return {**opts, "endpoint": f"http://{address}"}
