"""`encrypted`: EncryptedProvider (Cloud Sync containers) over a local folder, through the whole contract suite.

The inner provider streams the container in (its upload ignores `size`); `encrypted_b2.py` covers the other
path, where the container is spooled so the inner provider gets its exact size.
"""

from __future__ import annotations

import contextlib
import functools
import pathlib
from collections.abc import Iterator

from engine.crypto import AccountKey
from engine.crypto.provider import EncryptedProvider
from engine.providers.base import Provider
from engine.providers.local import LocalProvider

from . import local

KIND = "encrypted"
SECRETS_KEY = "_test_encryption_key_"  # not an option of the inner provider: make() takes it out


@functools.cache
def _secrets() -> tuple[tuple[str, str], ...]:
    # RSA key generation is the slow part: one account key for the session.
    return tuple(AccountKey.create("contract suite password").to_secrets().items())


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with local.serve(tmp_path) as options:
        yield options


def make(options: dict[str, str]) -> Provider:
    return EncryptedProvider(LocalProvider(options), dict(_secrets()))


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return local.missing_container(options)
