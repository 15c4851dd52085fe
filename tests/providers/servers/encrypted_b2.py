"""`encrypted-b2`: EncryptedProvider over B2's simulator, whose SDK needs each upload's exact size up front, so
the wrapper spools the container first (`Capabilities.needs_size_before_upload`)."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

from engine.crypto.provider import EncryptedProvider
from engine.providers.b2 import B2Provider
from engine.providers.base import Provider

from . import b2
from .encrypted import _secrets

KIND = "encrypted-b2"


def unavailable() -> str | None:
    check = getattr(b2, "unavailable", None)
    return check() if check is not None else None


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with b2.serve(tmp_path) as options:
        yield options


def make(options: dict[str, str]) -> Provider:
    return EncryptedProvider(B2Provider(options), dict(_secrets()))


def missing_container(options: dict[str, str]) -> dict[str, str] | None:
    return b2.missing_container(options)
