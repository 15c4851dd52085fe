"""Signing in to, and renewing tokens from, the Microsoft identity platform through MSAL, with MSAL's token cache
kept inside the connection's token store file.

MSAL (`msal.PublicClientApplication`, a public client: no secret) does the protocol: it reads the authority's
OpenID configuration (`{auth_url}/{tenant}/v2.0/.well-known/openid-configuration`), starts the device code flow
at the `device_authorization_endpoint` it names, polls the token endpoint, and renews tokens. We keep what MSAL
cannot know about: the terminal (the device code is shown exactly as every other device sign-in shows it, and
the wait between polls is the console's, so the app's Escape ends it at once), and where the tokens live.

The cache. A `msal.SerializableTokenCache` is made for each sign-in or renewal from the token file's
`msal_cache` field and written back into it, beside the `access_token` / `refresh_token` / `expiry` fields every
other part of skysync reads (`doctor`, "sign-in needed", `connection login`). It is never a file of its own: the
token store's one 0600 file, written atomically under its cross-process lock, is the only place the rotating
refresh token lives, so two processes renewing at once still leave exactly one valid one (`TokenStore.current`
runs `refresh` under that lock, with the cache as the other process just saved it).

Renewal: `acquire_token_silent_with_error(force_refresh=True)` for the account in the cache (the store has
already decided that the access token must be replaced: expiring, or refused by Graph); a token with no account
in the cache (imported from `rclone authorize "onedrive"` or pasted as `token`: a bare refresh token) goes through
`acquire_token_by_refresh_token`, MSAL's documented way to bring a refresh token made elsewhere into its cache;
the silent call cannot use one, as it looks refresh tokens up by account. Either way the next renewal is silent.

Authority checks: `instance_discovery=False`. MSAL would otherwise ask login.microsoftonline.com whether an
authority host it does not know is a Microsoft one (a call to the internet for a test server, and an extra call
for nothing for the default host, which MSAL knows); the authority here is never untrusted input of a web app,
it is the default or the `auth_url` the user set. MSAL still reads the tenant's OpenID configuration, so a
wrong tenant or an address that is not an identity platform fails at once, in one line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msal
import requests

from engine.auth.oauth import TIMEOUT, OAuthSpec
from engine.auth.signin import Console, show_device_code
from engine.auth.tokens import Token, TokenError
from engine.providers.base import AuthError, NetworkError, ProviderError, ReauthRequired, TransientError

CACHE_FIELD = "msal_cache"
# MSAL adds these itself and refuses them when asked for.
_RESERVED = frozenset({"openid", "profile", "offline_access"})
# Token endpoint answers that only a new sign-in mends (MSAL's `interaction_required` family included).
_REAUTH = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required",
                     "invalid_token", "unauthorized_client", "access_denied", "expired_token"})
_T = TypeVar("_T")


class _Session(requests.Session):
    """A requests session with a timeout on every call (MSAL takes a session or a timeout, not both) and the
    session's `verify` passed per call: requests lets REQUESTS_CA_BUNDLE override a session-wide `verify`, which
    would drop the `ca_file` the connection names."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("verify", self.verify)
        return super().request(*args, **kwargs)


def scopes_for(spec: OAuthSpec) -> list[str]:
    return [s for s in spec.scopes if s not in _RESERVED]


def authority_of(spec: OAuthSpec) -> str:
    """The authority (`{auth_url}/{tenant}`): the spec's `msal_authority`."""
    if not spec.msal_authority:
        raise AuthError("this service does not sign in through MSAL")
    return spec.msal_authority


def _guarded(what: str, authority: str, call: Callable[[], _T]) -> _T:
    """Run one MSAL call; what requests or MSAL raise becomes one line of ours (never a token in it)."""
    try:
        return call()
    except requests.exceptions.SSLError:
        raise AuthError(f"{what}: the certificate of the sign-in service at {authority} cannot be verified "
                        "(check ca_file)") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        raise NetworkError(f"{what}: cannot reach the sign-in service at {authority}") from None
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise TransientError(f"{what}: the sign-in service at {authority} is busy (HTTP {status})") from None
    except msal.exceptions.MsalServiceError:  # MSAL's own raise_for_status: a 5xx on discovery
        raise TransientError(f"{what}: the sign-in service at {authority} is busy") from None
    except requests.exceptions.RequestException:  # a cut answer and the like (before OSError: they are OSErrors)
        raise NetworkError(f"{what}: the answer of the sign-in service at {authority} was cut off") from None
    except OSError:  # a ca_file that cannot be read
        raise AuthError(f"{what}: the CA certificate file for {authority} cannot be read (check ca_file)") from None
    except ValueError:  # MSAL: no OpenID configuration for this tenant, or an answer that is not JSON
        raise AuthError(f"{what}: {authority} does not answer as a Microsoft sign-in service (check auth_url "
                        "and tenant)") from None


def _app(spec: OAuthSpec, cache: msal.SerializableTokenCache) -> msal.PublicClientApplication:
    session = _Session()
    if spec.ca_file:
        session.verify = spec.ca_file
    authority = authority_of(spec)
    return _guarded("signing in", authority, lambda: msal.PublicClientApplication(
        spec.client_id, authority=authority, http_client=session, token_cache=cache, instance_discovery=False,
    ))


def cache_of(token: Token | None) -> msal.SerializableTokenCache:
    """The MSAL cache kept in a token (empty for a token made elsewhere, or damaged: MSAL's refresh-token
    import then starts it again from the token's refresh token)."""
    cache = msal.SerializableTokenCache()
    saved = token.extra.get(CACHE_FIELD) if token is not None else None
    if isinstance(saved, Mapping):
        try:
            cache.deserialize(json.dumps(saved))
        except (TypeError, ValueError):
            return msal.SerializableTokenCache()
    return cache


def _newest_refresh_token(cache: msal.SerializableTokenCache, client_id: str) -> str | None:
    found = cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN, query={"client_id": client_id})
    secrets = [item.get("secret") for item in found if item.get("secret")]
    return str(secrets[-1]) if secrets else None


def token_from(spec: OAuthSpec, result: Mapping[str, Any], cache: msal.SerializableTokenCache) -> Token:
    """The store's token from an MSAL answer, with MSAL's cache inside it (the refresh token as the cache holds
    it when the answer leaves it out)."""
    data: dict[str, Any] = {k: result[k] for k in ("access_token", "token_type", "expires_in", "refresh_token")
                            if result.get(k) is not None}
    if "refresh_token" not in data:
        refresh = _newest_refresh_token(cache, spec.client_id)
        if refresh:
            data["refresh_token"] = refresh
    data[CACHE_FIELD] = json.loads(cache.serialize())
    try:
        return Token.from_dict(data)
    except TokenError as exc:
        raise TransientError(f"the sign-in service's answer is not a token: {exc}") from None


def _refused(result: Mapping[str, Any]) -> str:
    error = str(result.get("error") or "")
    # error_description is Microsoft's AADSTS text: first line only (it carries trace and correlation ids).
    described = str(result.get("error_description") or "").strip().splitlines()
    return f"{error}: {described[0]}" if described else error


def _raise_for(result: Mapping[str, Any], what: str) -> None:
    error = str(result.get("error") or "")
    if not error:
        return
    if error in _REAUTH:
        raise ReauthRequired(f"{what} was refused ({_refused(result)})")
    if error in ("temporarily_unavailable", "server_error"):
        raise TransientError(f"{what} failed for now ({_refused(result)})")
    raise AuthError(f"{what} failed ({_refused(result)})")


# -- sign-in --------------------------------------------------------------------------------------------------


def device_sign_in(spec: OAuthSpec, console: Console) -> Token:
    """The device code flow through MSAL: show the address and the code, poll (one MSAL poll per wait of the
    console, at the service's interval, slowed down when it asks) until the user approves or the code expires."""
    authority = authority_of(spec)
    cache = msal.SerializableTokenCache()
    app = _app(spec, cache)
    scopes = scopes_for(spec)
    flow = _guarded("signing in", authority, lambda: app.initiate_device_flow(scopes=scopes))
    if "user_code" not in flow:
        raise AuthError(f"the sign-in service would not start a device sign-in ({_refused(flow)})")
    # MSAL's own wait counts whole seconds of `interval` and never polls twice in one; 0 would be a busy loop.
    flow["interval"] = interval = max(1, int(flow.get("interval", 5)))
    show_device_code(console, str(flow.get("verification_uri") or ""), str(flow["user_code"]))
    while True:
        remaining = float(flow["expires_at"]) - time.time()
        if remaining <= 0:
            raise AuthError("the code expired before the sign-in was approved; run the sign-in again")
        console.sleep(min(interval, remaining))
        try:
            result = _guarded("signing in", authority,
                              lambda: app.acquire_token_by_device_flow(flow, exit_condition=lambda _flow: True))
        except ProviderError as exc:
            if not exc.retryable:
                raise
            interval = max(interval, int(exc.retry_after or 0))  # unreachable for a moment: keep polling
            continue
        error = result.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":  # RFC 8628 §3.5: five seconds more from now on
            interval += 5
            flow["interval"] = interval
            continue
        if error == "expired_token":
            raise AuthError("the code expired before the sign-in was approved; run the sign-in again")
        if error in ("access_denied", "authorization_declined"):
            raise AuthError("the sign-in was refused in the browser")
        if error:
            raise AuthError(f"the sign-in failed ({_refused(result)})")
        return token_from(spec, result, cache)


# -- renewal --------------------------------------------------------------------------------------------------


def refresh(spec: OAuthSpec, token: Token) -> Token:
    """A new access token (and the rotated refresh token) through MSAL; `ReauthRequired` when the service
    refuses the refresh token. Called by `TokenStore.current` under the connection's lock."""
    authority = authority_of(spec)
    cache = cache_of(token)
    app = _app(spec, cache)
    scopes = scopes_for(spec)
    result: Mapping[str, Any] | None = None
    accounts = app.get_accounts()
    if accounts:
        account = accounts[0]  # one connection, one account: a sign-in starts a new cache
        result = _guarded("renewing the sign-in", authority, lambda: app.acquire_token_silent_with_error(
            scopes, account, force_refresh=True))
    if result is None:  # no account, or no refresh token of this client for it: import the bare refresh token
        if not token.refresh_token:
            raise ReauthRequired("the sign-in has no refresh token")
        refresh_token = token.refresh_token
        result = _guarded("renewing the sign-in", authority,
                          lambda: app.acquire_token_by_refresh_token(refresh_token, scopes))
    _raise_for(result, "renewing the sign-in")
    return token_from(spec, result, cache)
