"""The base of every OAuth provider (Google Drive, Dropbox, OneDrive, Box, Yandex, Baidu).

A drive says how it signs in (`oauth_spec`, built from its options and address overrides) and how it reads the
account's id (`account_id`); this class hands it a valid access token (`access_token()`), refreshed through the
connection's token store by one process at a time. `engine.connect.open_provider` attaches the store; without
one (a wizard's test before the connection is saved) the token comes from the `token` option.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar, TypeVar

from engine.auth import oauth
from engine.auth.oauth import OAuthSpec
from engine.auth.tokens import Token, TokenError, TokenStore
from engine.providers.base import AuthError, InvalidOption, OptionSpec, Provider, ReauthRequired

T = TypeVar("T")

TOKEN_OPTION = OptionSpec(
    "token",
    "OAuth token as JSON (what 'rclone authorize' prints); empty: sign in with 'skysync connection login'",
    secret=True,
    label="OAuth token (JSON)",
)
ACCOUNT_OPTION = OptionSpec(
    "account_id",
    "the account's id, read at sign-in (set by skysync)",
    advanced=True,
    label="Account ID",
)


class TokenRefused(AuthError):
    """The service refused the access token (HTTP 401, or the service's own code for it): `authorized` renews the
    token once and makes the call again."""


class OAuthProvider(Provider):
    """A provider that signs in with OAuth 2.0. Subclasses add `TOKEN_OPTION` and `ACCOUNT_OPTION` to their
    `option_specs`, implement `oauth_spec` and `account_id`, and make their calls through `authorized` (or,
    where a client library sends the requests, send `access_token()` and on a 401 call
    `access_token(rejected=the_token_sent)` once and retry)."""

    oauth: ClassVar[bool] = True
    # Seconds before expiry at which a token is refreshed rather than used.
    refresh_margin: ClassVar[float] = 60.0

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.tokens: TokenStore | None = None
        self._unsaved: Token | None = None
        self._lock = threading.Lock()

    @classmethod
    @abstractmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        """How this service signs in, with the connection's overrides (`auth_url`, `token_url`, `client_id`...)."""

    @abstractmethod
    def account_id(self) -> str:
        """The signed-in account's id, read from the service with the access token (Dropbox account_id, Drive
        permissionId, Graph /me id...). Saved as the plain option `account_id` at sign-in."""

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        # The account, never a hash of token values: a refreshed token is the same credential.
        return f"{cls.kind}:{options.get('account_id', '')}"

    def attach_tokens(self, store: TokenStore) -> None:
        self.tokens = store

    def refresh_token(self, token: Token) -> Token:
        """The token endpoint call `TokenStore.current` makes when a token is about to expire."""
        return oauth.refresh(self.oauth_spec(self.options), token)

    def access_token(self, *, rejected: str | None = None) -> str:
        """A valid access token. `rejected`: the token the service just refused (refresh it even if not expired)."""
        if self.tokens is not None:
            return self.tokens.current(self.refresh_token, self.refresh_margin, rejected=rejected).access_token
        with self._lock:
            if self._unsaved is None:
                text = self.options.get("token", "")
                if not text:
                    raise ReauthRequired("this connection is not signed in: skysync connection login NAME")
                try:
                    self._unsaved = Token.from_json(text)
                except TokenError as exc:
                    raise InvalidOption(f"option 'token' is not a token: {exc}") from None
            token = self._unsaved
            if rejected == token.access_token or token.expires_within(self.refresh_margin):
                if not token.refresh_token:
                    raise ReauthRequired("the token has expired and has no refresh token")
                self._unsaved = token = self.refresh_token(token)
            return token.access_token

    def authorized(self, what: str, call: Callable[[str], T]) -> T:
        """`call(access_token)`. A token the service refuses (`call` raises TokenRefused: it may have been
        revoked before its expiry) is renewed once through the token store, one process at a time, and the call
        made again with the new one; refused again, the sign-in is no longer valid: ReauthRequired, "sign-in
        needed". The call must be safe to make twice (a refusal comes before the service does anything)."""
        token = self.access_token()
        try:
            return call(token)
        except TokenRefused:
            pass
        token = self.access_token(rejected=token)
        try:
            return call(token)
        except TokenRefused:
            raise ReauthRequired(f"{what}: {self.title} no longer accepts this sign-in: sign-in needed") from None

    def unsaved_token(self) -> Token | None:
        """The token read from the `token` option, as refreshed since (a rotating service has already
        invalidated the refresh token in the option): what the connection must save."""
        return self._unsaved

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        text = options.get("token")
        if text:
            try:
                Token.from_json(text)
            except TokenError as exc:
                raise InvalidOption(f"option 'token' is not a token: {exc}") from None
