"""OAuth tokens and the per-connection token store.

A token lives in its own file, `<home>/tokens/<connection>.json` (0600 in a 0700 folder), not in `secrets.toml`:
the running engine reloads everything when that file changes, and a token changes every hour. The file holds the
token in the shape `rclone authorize` prints, plus `"needs_signin": true` once the service refused a refresh (the
connection then waits for `skysync connection login NAME`).

Refreshing happens under an exclusive lock across processes (the running engine, a CLI `sync`, the TUI), and the
refreshed token is saved before the lock is released: a service that rotates refresh tokens on every use (Box,
Baidu, Microsoft) invalidates the old one the moment it answers, so two processes refreshing from one file without
the lock would leave one of them holding a dead refresh token, and a process that released the lock before saving
could lose the only valid one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.providers.base import ReauthRequired

TOKENS_DIR = "tokens"
_KNOWN = ("access_token", "token_type", "refresh_token", "expiry", "expires_in")
# rclone (Go) writes nanoseconds; datetime reads at most microseconds.
_FRACTION = re.compile(r"(\.\d{6})\d+")


class TokenError(ValueError):
    """A token text that is not a token (the message is one line and never shows the text)."""


def _parse_expiry(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TokenError("its 'expiry' is not a time")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise TokenError("its 'expiry' is not a time")
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise TokenError("its 'expiry' is not an RFC 3339 time") from None
    if when.year <= 1:  # Go's zero time: the token does not expire
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _format_expiry(value: float | None) -> str:
    if value is None:
        return "0001-01-01T00:00:00Z"
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    expiry: float | None = None  # POSIX seconds; None: does not expire (or the service did not say)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # a token in a traceback or a log line is a leaked credential
        return f"Token(token_type={self.token_type!r}, expiry={self.expiry!r})"

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        if self.expiry is None:
            return False
        return self.expiry - (time.time() if now is None else now) <= seconds

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], now: float | None = None) -> Token:
        """A token from the JSON fields `rclone authorize` prints, or a token endpoint's answer (`expires_in`)."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise TokenError("it has no 'access_token'")
        refresh = data.get("refresh_token")
        if refresh is not None and not isinstance(refresh, str):
            raise TokenError("its 'refresh_token' is not text")
        token_type = data.get("token_type") or "Bearer"
        if not isinstance(token_type, str):
            raise TokenError("its 'token_type' is not text")
        expiry = _parse_expiry(data.get("expiry"))
        if expiry is None and data.get("expires_in") not in (None, ""):
            try:
                expiry = (time.time() if now is None else now) + float(data["expires_in"])
            except (TypeError, ValueError):
                raise TokenError("its 'expires_in' is not a number") from None
        extra = {k: v for k, v in data.items() if k not in _KNOWN and k != "needs_signin"}
        return cls(access, token_type, refresh or None, expiry, extra)

    @classmethod
    def from_json(cls, text: str) -> Token:
        """A token from its JSON, or from the whole of what `rclone authorize` prints (its notices and the
        "Paste the following ... --->" / "<---End paste" lines around the JSON), so its output can be piped."""
        try:
            data = json.loads(_pasted_json(text))
        except (ValueError, RecursionError):
            raise TokenError("it is not JSON (expected what 'rclone authorize' prints)") from None
        if not isinstance(data, dict):
            raise TokenError("it is not a JSON object (expected what 'rclone authorize' prints)")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.extra, "access_token": self.access_token, "token_type": self.token_type}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        out["expiry"] = _format_expiry(self.expiry)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _pasted_json(text: str) -> str:
    """The JSON object in `text`: all of it when it is bare, else the part between rclone's paste markers or,
    failing those, from the first "{" to the last "}"."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return stripped
    _, _, rest = stripped.partition("--->")
    if rest:
        stripped = rest.partition("<---")[0].strip()
    first, last = stripped.find("{"), stripped.rfind("}")
    return stripped[first : last + 1] if 0 <= first < last else stripped


def tokens_dir(home_path: str) -> str:
    return os.path.join(home_path, TOKENS_DIR)


class TokenStore:
    """The token of one connection: `<home>/tokens/<connection>.json`, refreshed under `<connection>.lock`."""

    def __init__(self, home_path: str, connection: str) -> None:
        self.connection = connection
        self.folder = tokens_dir(home_path)
        self.path = os.path.join(self.folder, f"{connection}.json")
        self.lock_path = os.path.join(self.folder, f"{connection}.lock")

    # -- the file --------------------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any] | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A damaged token file is a sign-in that no longer works, not a crash of every pass.
            raise ReauthRequired(f"the saved sign-in of connection '{self.connection}' cannot be read") from None
        return data if isinstance(data, dict) else None

    def _write(self, data: Mapping[str, Any]) -> None:
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        os.chmod(self.folder, 0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.connection}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash: a rotated refresh token is the only one
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The connection's token lock, held across processes (and across threads: each holder opens the lock
        file itself, and flock locks belong to the open file)."""
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @property
    def _fix(self) -> str:
        # "sign-in needed" is the state's name everywhere (status, doctor, the app): the one line says it too.
        return f"sign-in needed, sign in again with: skysync connection login {self.connection}"

    # -- the token -------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return os.path.exists(self.path)

    def load(self) -> Token | None:
        data = self._read()
        if data is None:
            return None
        try:
            return Token.from_dict(data)
        except TokenError as exc:
            raise ReauthRequired(f"the saved sign-in of connection '{self.connection}' is not valid: {exc}") from None

    def save(self, token: Token) -> None:
        """Save a token (a sign-in or an import): it clears "sign-in needed"."""
        with self.locked():
            self._write(token.to_dict())

    def needs_signin(self) -> bool:
        """True once the service refused this connection's refresh token (until the next sign-in)."""
        try:
            data = self._read()
        except ReauthRequired:
            return True
        return bool(data and data.get("needs_signin"))

    def mark_needs_signin(self) -> None:
        with self.locked():
            data = self._read() or {}
            if not data.get("needs_signin"):
                self._write({**data, "needs_signin": True})

    def remove(self) -> None:
        for path in (self.path, self.lock_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def current(
        self, refresh: Callable[[Token], Token], margin: float = 60, *, rejected: str | None = None
    ) -> Token:
        """A token that is good for at least `margin` more seconds, refreshed (and saved) when needed.

        `rejected` is an access token the service just refused: when the file still holds it, it is refreshed
        even though its expiry is ahead (it may have been revoked). A refusal of the refresh (`ReauthRequired`
        from `refresh`) is recorded in the file, so every process sees "sign-in needed" until a new sign-in.
        """
        with self.locked():
            data = self._read()
            if data is None:
                raise ReauthRequired(f"connection '{self.connection}' is not signed in; {self._fix}")
            if data.get("needs_signin"):
                raise ReauthRequired(f"the sign-in of connection '{self.connection}' is no longer valid; {self._fix}")
            try:
                token = Token.from_dict(data)
            except TokenError as exc:
                raise ReauthRequired(
                    f"the saved sign-in of connection '{self.connection}' is not valid: {exc}"
                ) from None
            stale = rejected is not None and rejected == token.access_token
            if not stale and not token.expires_within(margin):
                return token
            if not token.refresh_token:
                if stale or token.expires_within(0):
                    self._write({**data, "needs_signin": True})
                    raise ReauthRequired(
                        f"the sign-in of connection '{self.connection}' has expired and cannot be renewed; {self._fix}"
                    )
                return token
            try:
                fresh = refresh(token)
            except ReauthRequired as exc:
                self._write({**data, "needs_signin": True})
                raise ReauthRequired(f"{exc}; {self._fix}") from None
            self._write(fresh.to_dict())
            return fresh
