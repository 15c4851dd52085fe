"""One encryption key per cloud account (spec note 18): set by the first encrypted task, shared by the rest.

The password and the RSA key pair live only in the connection's section of the secrets store, under the
names `AccountKey.to_secrets()` uses; the caller saves the home.
"""

from __future__ import annotations

import hmac

from engine.config import Home
from engine.crypto.errors import CryptoError
from engine.crypto.keys import SECRET_PASSWORD, SECRET_PRIVATE_KEY, SECRET_PUBLIC_KEY, AccountKey
from engine.errors import UsageError

_KEY_SECRETS = (SECRET_PASSWORD, SECRET_PRIVATE_KEY, SECRET_PUBLIC_KEY)


def has_encryption(home: Home, connection: str) -> bool:
    """True once an encrypted task has given this connection its key."""
    secrets = home.secrets(connection)
    return any(name in secrets for name in _KEY_SECRETS)


def enable_encryption(home: Home, connection: str, password: str) -> AccountKey:
    """The connection's account key: made now from `password` (with a new 2048-bit RSA pair) if it has none,
    otherwise the existing one, provided `password` is the one it was made with.

    Raises UsageError (one line, no secret in it) for an empty or different password, or a damaged key.
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
            raise UsageError("the encryption password does not match the one this connection already uses")
        return key
    try:
        key = AccountKey.create(password)
    except CryptoError as exc:
        raise UsageError(str(exc)) from None
    for name, value in key.to_secrets().items():
        home.set_secret(connection, name, value)
    return key
