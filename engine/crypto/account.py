"""One encryption key per cloud account (spec note 18): set by the first encrypted task, shared by the rest.

The password and the RSA key pair live only in the connection's section of the secrets store, under the
names `AccountKey.to_secrets()` uses; the caller saves the home.

A connection that has no key yet may still point at a cloud account that holds containers already (written
by a Synology NAS or by skysync on another computer). Before a new key is made, the header of one such
container is read and its `key1_hash` checked, so a mistyped password is refused at once instead of failing
every download and, worse, encrypting new uploads under a password the other devices do not know.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from engine.config import Home
from engine.crypto import wire
from engine.crypto.errors import CryptoError
from engine.crypto.keys import (
    SECRET_PASSWORD,
    SECRET_PRIVATE_KEY,
    SECRET_PUBLIC_KEY,
    AccountKey,
    verify_password,
)
from engine.crypto.recovery import SYSTEM_FOLDER
from engine.errors import UsageError
from engine.providers.base import Provider, ProviderError, RemoteEntry, join

_KEY_SECRETS = (SECRET_PASSWORD, SECRET_PRIVATE_KEY, SECRET_PUBLIC_KEY)
_HEADER_LIMIT = 64 * 1024  # a container's metadata fits well within this; more means it is not one
MISMATCH = "the encryption password does not match the one this connection already uses"
REMOTE_MISMATCH = (
    "the encryption password does not match the one the files already in this cloud account were encrypted "
    "with (/{path})"
)


def has_encryption(home: Home, connection: str) -> bool:
    """True once an encrypted task has given this connection its key."""
    secrets = home.secrets(connection)
    return any(name in secrets for name in _KEY_SECRETS)


def enable_encryption(home: Home, connection: str, password: str, *, check_remote: bool = True) -> AccountKey:
    """The connection's account key: the existing one, provided `password` is the one it was made with;
    otherwise a new one made from `password` and a fresh 2048-bit RSA pair, stored in the secrets store.

    Before a new key is made (and when `check_remote`), a container already in the cloud account, if there
    is one, must open with `password` too (see the module notes); a service that cannot be reached skips that
    check, since the first pass reports a wrong password per file anyway. Raises UsageError (one line, no
    secret in it) for an empty or different password, or a damaged key.
    """
    home.connection(connection)  # a clear error for an unknown connection
    if not password:
        raise UsageError("the encryption password must not be empty")
    if has_encryption(home, connection):
        try:
            key = AccountKey.from_secrets(home.secrets(connection))
        except CryptoError:
            raise UsageError(
                f"the encryption key of connection '{connection}' is incomplete in the secrets store; "
                "restore secrets.toml from a backup"
            ) from None
        if not hmac.compare_digest(key.password.encode("utf-8"), password.encode("utf-8")):
            raise UsageError(MISMATCH)
        return key
    if check_remote:
        _check_remote(home, connection, password)
    try:
        key = AccountKey.create(password)
    except CryptoError as exc:
        raise UsageError(str(exc)) from None
    for name, value in key.to_secrets().items():
        home.set_secret(connection, name, value)
    return key


def _check_remote(home: Home, connection: str, password: str) -> None:
    from engine.connect import open_provider

    try:
        provider = open_provider(home, connection)
    except (UsageError, ProviderError):
        return  # the task cannot sync either; its pass will say why
    try:
        verify_remote_password(provider, password)
    except ProviderError:
        pass  # offline or refused: nothing to compare with now
    finally:
        provider.close()


def verify_remote_password(
    provider: Provider, password: str, folder: str = "", *, max_reads: int = 3, max_entries: int = 1000
) -> bool | None:
    """Check `password` against the first container found below `folder` of a plain (unwrapped) provider.

    Returns True when a container opened with it, None when none was found (an empty or unencrypted account,
    within `max_entries` listed entries and `max_reads` header reads); raises UsageError when a container
    was made with another password, and ProviderError when the service fails.
    """
    reads = 0
    for entry in _files(provider, folder, max_entries):
        if reads >= max_reads:
            return None
        reads += 1
        meta = _read_header(provider, join(folder, entry.path))
        if meta is None:
            continue  # not a container: a plain file the user keeps there
        key1_hash = meta.get("key1_hash")
        if not isinstance(key1_hash, str):
            continue
        if not verify_password(password, key1_hash):
            raise UsageError(REMOTE_MISMATCH.format(path=entry.path))
        return True
    return None


def _files(provider: Provider, folder: str, max_entries: int) -> Iterator[RemoteEntry]:
    at_root = not folder.strip("/")
    listing = iter(provider.list(folder))
    try:
        for n, entry in enumerate(listing):
            if n >= max_entries:
                return
            if entry.is_dir or entry.size == 0:
                continue
            if at_root and (entry.path == SYSTEM_FOLDER or entry.path.startswith(SYSTEM_FOLDER + "/")):
                continue
            yield entry
    finally:
        close = getattr(listing, "close", None)
        if close is not None:
            close()


class _HeaderRead(Exception):
    """Raised from the sink to stop a download once the header has arrived."""


class _HeaderSink:
    def __init__(self) -> None:
        self._parser = wire.ObjectParser()
        self._seen = 0
        self.meta: dict[str, wire.Value] | None = None
        self.not_container = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._seen += len(data)
        try:
            objects = self._parser.feed(data)
        except CryptoError:
            self.not_container = True
            raise _HeaderRead from None
        if objects:
            self.meta = objects[0]
            raise _HeaderRead
        if self._seen > _HEADER_LIMIT:
            self.not_container = True
            raise _HeaderRead
        return len(data)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _read_header(provider: Provider, path: str) -> dict[str, wire.Value] | None:
    """The metadata dict at the start of file `path`, read without downloading the rest; None if none."""
    sink = _HeaderSink()
    try:
        provider.download(path, sink)  # type: ignore[arg-type]
    except Exception:
        # The provider may wrap our stop signal in an error of its own; what the sink saw decides.
        if sink.meta is None and not sink.not_container:
            raise
    if sink.meta is None or sink.meta.get("type") != "metadata":
        return None  # a file shorter than a header, or not a container
    return sink.meta
