"""`OAuthProvider.authorized`, the one place a drive's call meets a refused token: renewed once through the token
store and the call made again; refused after that, "sign-in needed"; any other error passes untouched."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from engine.auth.tokens import Token, TokenStore
from engine.providers.base import NotFound, ReauthRequired
from engine.providers.oauth import TokenRefused
from tests.auth.oauth_kind import OAuthTestProvider


class Renewing(OAuthTestProvider):
    """The test kind with a token endpoint that hands out access-2, access-3... and counts its calls."""

    renewals = 0

    def refresh_token(self, token: Token) -> Token:
        self.renewals += 1
        return Token(f"access-{self.renewals + 1}", refresh_token="refresh", expiry=time.time() + 3600)


@pytest.fixture
def provider(tmp_path: pathlib.Path) -> Renewing:
    p = Renewing({"client_id": "c", "server": "http://127.0.0.1:9"})
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_json(json.dumps({"access_token": "access-1", "refresh_token": "refresh",
                                           "expiry": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime(time.time() + 3600))})))
    p.attach_tokens(store)
    return p


def test_a_refused_token_is_renewed_once_and_the_call_made_again(provider: Renewing) -> None:
    sent: list[str] = []

    def call(token: str) -> str:
        sent.append(token)
        if token == "access-1":
            raise TokenRefused("revoked early")
        return "done"

    assert provider.authorized("reading", call) == "done"
    assert sent == ["access-1", "access-2"] and provider.renewals == 1
    assert provider.tokens is not None and provider.tokens.load().access_token == "access-2"  # saved for all


def test_a_renewed_token_refused_again_is_sign_in_needed(provider: Renewing) -> None:
    def call(token: str) -> str:
        raise TokenRefused(f"refused {token}")

    with pytest.raises(ReauthRequired) as failed:
        provider.authorized("reading", call)
    assert str(failed.value) == "reading: OAuth test service no longer accepts this sign-in: sign-in needed"
    assert provider.renewals == 1


def test_other_errors_pass_without_a_renewal(provider: Renewing) -> None:
    def call(token: str) -> str:
        raise NotFound("reading: not found")

    with pytest.raises(NotFound):
        provider.authorized("reading", call)
    assert provider.renewals == 0
