"""Microsoft sign-in and renewal through MSAL (engine/auth/msal_cache.py) against the Graph fake's identity
endpoints over TLS: the device code shown as every device sign-in shows it, MSAL's cache kept in the token store's
file, a bare (imported) refresh token brought into the cache, renewals from the cache after that, rotation, and
the refusals that mean "sign-in needed" or a one-line error."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import stat
from collections.abc import Iterator

import pytest

from engine.auth import msal_cache
from engine.auth.oauth import OAuthSpec
from engine.auth.signin import Console, SignInCancelled, sign_in
from engine.auth.tokens import Token, TokenStore
from engine.providers import provider_class
from engine.providers.base import AuthError, ReauthRequired
from tests.fakes.graph_server import GraphFake
from tests.fakes.oauth_server import DEVICE_GRANT


@pytest.fixture(scope="module")
def fake() -> Iterator[GraphFake]:
    server = GraphFake("test-client").start()
    try:
        yield server
    finally:
        server.stop()


def spec_for(fake: GraphFake, kind: str = "onedrive", **extra: str) -> OAuthSpec:
    options = {"client_id": "test-client", "auth_url": fake.auth_url, "ca_file": fake.ca_file, **extra}
    return provider_class(kind).oauth_spec(options)  # type: ignore[attr-defined,no-any-return]


def accounts_in(token: Token) -> list[dict[str, str]]:
    return list((token.extra.get(msal_cache.CACHE_FIELD) or {}).get("Account", {}).values())


class _Approver:
    """The console's wait between polls: approves the printed code after the first poll (as a user at a
    browser would), never really sleeps (the fake's interval is made 0 for this), and records the waits."""

    def __init__(self, fake: GraphFake, out: io.StringIO, *, cancel_at: int | None = None) -> None:
        self.fake, self.out, self.cancel_at, self.waits = fake, out, cancel_at, []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.cancel_at is not None and len(self.waits) >= self.cancel_at:
            raise SignInCancelled("the sign-in was cancelled")
        if len(self.waits) == 2:
            code = re.findall(r"^([A-Z]{4}-[A-Z]{4})$", self.out.getvalue(), re.M)[-1]
            assert self.fake.oauth.approve_device(code)


@pytest.fixture
def quick_device(fake: GraphFake) -> Iterator[None]:
    fake.oauth.device_interval = 0  # the test's console does not sleep; a 0 interval is never "too fast"
    try:
        yield
    finally:
        fake.oauth.device_interval = 1.0


# The test's console does not sleep, so MSAL notices polls closer than the interval; a real wait never is.
@pytest.mark.filterwarnings("ignore:Attempted too soon")
def test_device_sign_in_goes_through_msal_and_keeps_its_cache_with_the_token(fake: GraphFake, quick_device: None,
                                                                          tmp_path: pathlib.Path) -> None:
    out = io.StringIO()
    approver = _Approver(fake, out)
    polls, discoveries = fake.oauth.counts[DEVICE_GRANT], fake.oauth.counts["openid_configuration"]
    token = sign_in(spec_for(fake), Console(io.StringIO(), out, sleep=approver))
    lines = out.getvalue().splitlines()
    assert lines[0] == "Open this address in a browser on any computer:"
    assert lines[2] == f"{fake.auth_url}/device" and lines[4] == "and enter this code:"
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", lines[6]) and lines[8].startswith("Waiting for the sign-in")
    assert fake.oauth.counts[DEVICE_GRANT] - polls == 2  # pending once, then approved
    assert fake.oauth.counts["openid_configuration"] > discoveries  # MSAL read the tenant's configuration
    assert approver.waits == [1, 1]  # a 0 interval would be a busy loop: at least a second between polls
    assert fake.oauth.access_valid(token.access_token) and token.refresh_token in fake.oauth.valid_refresh_tokens()
    assert [a["local_account_id"] for a in accounts_in(token)] == [fake.user]

    store = TokenStore(str(tmp_path), "od")
    store.save(token)
    saved = json.loads(pathlib.Path(store.path).read_text())
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert {"access_token", "refresh_token", "expiry", msal_cache.CACHE_FIELD} <= set(saved)  # readable by doctor
    assert store.load() is not None and accounts_in(store.load()) == accounts_in(token)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Attempted too soon")
def test_a_cancelled_device_sign_in_stops_at_the_wait(fake: GraphFake, quick_device: None) -> None:
    out = io.StringIO()
    with pytest.raises(SignInCancelled):
        sign_in(spec_for(fake), Console(io.StringIO(), out, sleep=_Approver(fake, out, cancel_at=1)))


def test_an_imported_refresh_token_joins_msals_cache_and_later_renewals_come_from_the_cache(
    fake: GraphFake,
) -> None:
    spec = spec_for(fake)
    imported = Token.from_dict(fake.oauth.issue())  # what `rclone authorize "onedrive"` prints: no MSAL cache
    first = msal_cache.refresh(spec, imported)
    assert [a["local_account_id"] for a in accounts_in(first)] == [fake.user]
    assert imported.refresh_token not in fake.oauth.valid_refresh_tokens()  # rotated
    assert fake.oauth.valid_refresh_tokens() >= {first.refresh_token}
    # The next renewal is MSAL's silent one for the cached account: it takes the refresh token from the cache,
    # so a wrong one beside it does not matter.
    beside = Token(first.access_token, first.token_type, "rt-not-this-one", first.expiry, first.extra)
    second = msal_cache.refresh(spec, beside)
    assert fake.oauth.access_valid(second.access_token) and second.refresh_token != first.refresh_token
    assert first.refresh_token not in fake.oauth.valid_refresh_tokens()
    assert second.refresh_token in fake.oauth.valid_refresh_tokens()


def test_a_dead_refresh_token_is_sign_in_needed_in_the_store(fake: GraphFake, tmp_path: pathlib.Path) -> None:
    spec = spec_for(fake, "onedrive-business")
    token = msal_cache.refresh(spec, Token.from_dict(fake.oauth.issue()))
    store = TokenStore(str(tmp_path), "od")
    store.save(Token(token.access_token, token.token_type, token.refresh_token, 0.0, token.extra))  # expired
    fake.oauth.revoke_all()
    with pytest.raises(ReauthRequired, match="connection login od"):
        store.current(lambda t: msal_cache.refresh(spec, t))
    assert store.needs_signin()
    with pytest.raises(ReauthRequired):  # a token with neither a cache nor a refresh token cannot be renewed
        msal_cache.refresh(spec, Token("at-x"))


@pytest.mark.parametrize(("change", "said"), [
    ({"tenant": "no-such-tenant"}, "does not answer as a Microsoft sign-in service"),
    ({"ca_file": os.devnull}, "certificate"),
])  # fmt: skip
def test_a_wrong_tenant_or_certificate_is_one_line(fake: GraphFake, change: dict[str, str], said: str) -> None:
    spec = spec_for(fake, **change)
    with pytest.raises(AuthError, match=said) as info:
        msal_cache.refresh(spec, Token.from_dict(fake.oauth.issue()))
    assert "\n" not in str(info.value) and "rt-" not in str(info.value)
