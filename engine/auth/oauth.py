"""OAuth 2.0 against a service's token endpoint: what a service needs (`OAuthSpec`), refreshing a token, and the
sign-in flows (device code; authorization code with PKCE, loopback redirect or none) as pure steps around a few
HTTP calls. The terminal side (printing, prompting, the loopback listener) is `engine.auth.signin`.

Plain `urllib` on purpose: four form posts need no SDK, and each drive's address overrides (a test server on
`http://127.0.0.1:PORT`, a sovereign cloud) apply to them the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.auth.tokens import Token, TokenError
from engine.providers.base import AuthError, NetworkError, ProviderError, ReauthRequired, TransientError

# Answers of a token endpoint that mean "this refresh token (or sign-in) is dead": only a new sign-in helps.
# Baidu says `expired_token` for a refresh token that was used already or has aged out (ten years).
_REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_token", "unauthorized_client", "access_denied",
                            "expired_token"})
TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class OAuthSpec:
    """What one service (with one connection's overrides) needs for OAuth."""

    client_id: str
    client_secret: str | None
    auth_url: str
    token_url: str
    device_url: str | None = None  # the device authorization endpoint, where the service has one
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    redirect: Literal["loopback", "none"] = "loopback"  # "none": the service shows the code (Dropbox)
    extra_auth_params: Mapping[str, str] = field(default_factory=dict)  # access_type=offline, token_access_type...
    ca_file: str | None = None  # a test's CA for an https override
    # How the device-code poll names its grant and the code: RFC 8628's by default; Yandex (and Baidu) predate
    # it and want `grant_type=device_code` (Baidu: `device_token`) with the code as `code`.
    device_grant: str = "urn:ietf:params:oauth:grant-type:device_code"
    device_code_field: str = "device_code"
    # The Microsoft identity platform's authority (`{auth_url}/{tenant}`): sign-in and renewal go through MSAL
    # (`engine.auth.msal_cache`), with its token cache kept in the token store; None for every other service.
    msal_authority: str | None = None

    def __repr__(self) -> str:  # the client secret stays out of logs and tracebacks
        return f"OAuthSpec(client_id={self.client_id!r}, token_url={self.token_url!r})"


class OAuthError(ProviderError):
    """The token endpoint refused a request; `error` is the OAuth error code ("authorization_pending"...)."""

    def __init__(self, message: str, error: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.error = error


def _context(spec: OAuthSpec) -> ssl.SSLContext | None:
    if spec.ca_file:
        return ssl.create_default_context(cafile=spec.ca_file)
    return None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def post_form(spec: OAuthSpec, url: str, form: Mapping[str, str]) -> dict[str, Any]:
    """POST a form to an OAuth endpoint and return its JSON answer; refusals become OAuthError (with the OAuth
    error code), throttling and 5xx TransientError, no answer NetworkError. No message carries a secret."""
    body = urllib.parse.urlencode({k: v for k, v in form.items() if v is not None}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=_context(spec)) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
        retry_after = _retry_after(exc.headers)
        data = _json_or_empty(raw)
        error = str(data.get("error", "")) if data else ""
        described = str(data.get("error_description", "")) if data else ""
        if status == 429 or status >= 500:
            raise TransientError(
                f"the sign-in service at {host} is busy (HTTP {status})", retry_after=retry_after
            ) from None
        text = f"the sign-in service at {host} refused the request: {error or f'HTTP {status}'}"
        if described:
            text += f" ({described[:200]})"
        raise OAuthError(text, error, retry_after=retry_after) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NetworkError(f"cannot reach the sign-in service at {host}: {reason}") from None
    data = _json_or_empty(raw)
    if data is None:
        raise TransientError(f"the sign-in service at {host} answered something that is not JSON")
    return data


def _json_or_empty(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _client(spec: OAuthSpec) -> dict[str, str]:
    form = {"client_id": spec.client_id}
    if spec.client_secret:
        form["client_secret"] = spec.client_secret
    return form


def _token_from_answer(data: Mapping[str, Any], keep_refresh: str | None = None) -> Token:
    try:
        token = Token.from_dict(data)
    except TokenError as exc:
        raise TransientError(f"the sign-in service answered without a usable token: {exc}") from None
    if token.refresh_token is None and keep_refresh:
        # Services that do not rotate (Google, Dropbox) answer a refresh without a refresh token: keep ours.
        token = Token(token.access_token, token.token_type, keep_refresh, token.expiry, token.extra)
    return token


def refresh(spec: OAuthSpec, token: Token) -> Token:
    """A fresh token for `token`'s refresh token. A refused refresh token (revoked, expired) is ReauthRequired;
    the caller (`TokenStore.current`) saves the result before anyone else may refresh."""
    if not token.refresh_token:
        raise ReauthRequired("the sign-in has expired and has no refresh token")
    form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, **_client(spec)}
    try:
        data = post_form(spec, spec.token_url, form)
    except OAuthError as exc:
        if exc.error in _REAUTH_ERRORS or exc.error == "":
            raise ReauthRequired(f"the service refused the saved sign-in ({exc.error or 'refused'})") from None
        raise AuthError(str(exc)) from None
    return _token_from_answer(data, keep_refresh=token.refresh_token)


# -- authorization code with PKCE ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """One authorization-code sign-in under way: the URL to open and what checks its answer."""

    url: str
    state: str
    verifier: str | None
    redirect_uri: str | None


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) as RFC 7636 defines them."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(48)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def code_request(spec: OAuthSpec, redirect_uri: str | None) -> CodeRequest:
    """The authorization URL (with a fresh state and PKCE challenge); `redirect_uri` None for services that show
    the code instead of redirecting."""
    state = secrets.token_urlsafe(24)
    params: dict[str, str] = {"response_type": "code", "client_id": spec.client_id, "state": state}
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    if spec.scopes:
        params["scope"] = " ".join(spec.scopes)
    verifier = None
    if spec.pkce:
        verifier, challenge = pkce_pair()
        params["code_challenge"] = challenge
        params["code_challenge_method"] = "S256"
    params.update(spec.extra_auth_params)
    sep = "&" if urllib.parse.urlsplit(spec.auth_url).query else "?"
    return CodeRequest(spec.auth_url + sep + urllib.parse.urlencode(params), state, verifier, redirect_uri)


class PastedAnswerError(ValueError):
    """What the user pasted is not the answer of this sign-in (one line, safe to show)."""


def code_from_answer(request: CodeRequest, pasted: str) -> str:
    """The authorization code in what the user pasted: the final address the browser went to (state checked) or
    the bare code. An error the service put in the address (access_denied) is reported as such."""
    text = pasted.strip()
    if not text:
        raise PastedAnswerError("nothing was pasted")
    if "://" in text or text.startswith(("/?", "?")) or ("code=" in text and "=" in text):
        query = urllib.parse.urlsplit(text).query if "://" in text else text.lstrip("/?")
        params = urllib.parse.parse_qs(query)
        if "error" in params:
            raise PastedAnswerError(f"the service refused the sign-in: {params['error'][0][:100]}")
        if params.get("state", [None])[0] != request.state:
            raise PastedAnswerError("that address belongs to another sign-in (its state does not match)")
        code = params.get("code", [""])[0]
        if not code:
            raise PastedAnswerError("that address carries no code")
        return code
    if any(c.isspace() for c in text):
        raise PastedAnswerError("that is not a code (it has spaces)")
    return text


def exchange_code(spec: OAuthSpec, request: CodeRequest, code: str) -> Token:
    form = {"grant_type": "authorization_code", "code": code, **_client(spec)}
    if request.redirect_uri:
        form["redirect_uri"] = request.redirect_uri
    if request.verifier:
        form["code_verifier"] = request.verifier
    try:
        data = post_form(spec, spec.token_url, form)
    except OAuthError as exc:
        raise AuthError(str(exc)) from None
    return _token_from_answer(data)


# -- device code ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: float
    expires_at: float


def device_start(spec: OAuthSpec, now: float | None = None) -> DeviceGrant:
    if not spec.device_url:
        raise AuthError("this service has no device sign-in")
    form = {**_client(spec)}
    if spec.scopes:
        form["scope"] = " ".join(spec.scopes)
    try:
        data = post_form(spec, spec.device_url, form)
    except OAuthError as exc:
        raise AuthError(str(exc)) from None
    try:
        uri = data.get("verification_uri") or data.get("verification_url")  # Google says _url
        return DeviceGrant(
            device_code=str(data["device_code"]),
            user_code=str(data["user_code"]),
            verification_uri=str(uri),
            verification_uri_complete=data.get("verification_uri_complete"),
            interval=float(data.get("interval") or 5),
            expires_at=(time.time() if now is None else now) + float(data.get("expires_in") or 600),
        )
    except (KeyError, TypeError, ValueError):
        raise TransientError("the sign-in service's device answer is incomplete") from None


@dataclass(frozen=True, slots=True)
class DevicePoll:
    """One poll's outcome: a token, or how long to wait before the next poll."""

    token: Token | None
    interval: float


def device_poll(spec: OAuthSpec, grant: DeviceGrant, interval: float) -> DevicePoll:
    """Ask once whether the user has approved. `slow_down` adds 5 seconds to the interval (RFC 8628 §3.5);
    `expired_token` and `access_denied` end the sign-in (AuthError)."""
    form = {"grant_type": spec.device_grant, spec.device_code_field: grant.device_code, **_client(spec)}
    try:
        data = post_form(spec, spec.token_url, form)
    except OAuthError as exc:
        if exc.error == "authorization_pending":
            return DevicePoll(None, interval)
        if exc.error == "slow_down":
            return DevicePoll(None, interval + 5)
        if exc.error == "expired_token":
            raise AuthError("the code expired before the sign-in was approved; run the sign-in again") from None
        if exc.error == "access_denied":
            raise AuthError("the sign-in was refused in the browser") from None
        raise AuthError(str(exc)) from None
    return DevicePoll(_token_from_answer(data), interval)
