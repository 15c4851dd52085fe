"""`onedrive-business`: the Graph fake's Business drive (no mtime kept, no hash used: the spec's table)."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

from .onedrive import SMALL_PART_OPTIONS, bad_credentials, missing_container, populate, serve_drive, unreachable

KIND = "onedrive-business"
EXTRA = {"multipart_hash": "none"}
__all__ = ["SMALL_PART_OPTIONS", "bad_credentials", "missing_container", "populate", "unreachable"]


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    yield from serve_drive("business")
