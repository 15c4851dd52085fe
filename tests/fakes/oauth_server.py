"""A fake OAuth 2.0 authorization server on 127.0.0.1 (port 0), for the sign-in flows and token refreshes.

What it speaks:

- `GET /authorize` (RFC 6749 §4.1 with PKCE, RFC 7636): checks `client_id`, `response_type=code` and, when
  `require_pkce`, an S256 `code_challenge`; auto-approves the configured test user (`approve = False` answers
  `error=access_denied` instead). With a `redirect_uri` it answers 302 to it with `code` and `state`; without one
  (Dropbox's "no redirect" apps) it shows the code on a text page (`Code: ...`).
- `POST /token`, form-encoded, client authenticated by `client_id` (+ `client_secret` when one is configured):
  - `authorization_code`: a code is used once, expires after `code_ttl`, must come with the same `redirect_uri`
    and a `code_verifier` whose S256 matches the challenge;
  - `refresh_token`: with `rotate` (the default) every refresh answers a new refresh token and invalidates the
    one used (Box, Microsoft, Baidu); without it the answer carries no refresh token (Google, Dropbox);
  - `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628): `authorization_pending` until the user code is
    approved (`approve_device` or `GET /device?user_code=...`), `slow_down` when polled faster than the interval
    (the interval then grows by 5 s, as the RFC says), `expired_token` after `device_ttl`.
  Errors are RFC 6749 JSON (`{"error": "invalid_grant", ...}`, HTTP 400; `invalid_client` 401).
- `POST /device/code`: `device_code`, `user_code`, `verification_uri`, `interval`, `expires_in`.
- `POST /revoke` (RFC 7009) and `revoke_all()`: every token issued so far stops working; later sign-ins work.
- `GET /userinfo` with `Authorization: Bearer ...`: `{"account_id": ...}` of the test user, or 401 — enough for
  a provider's `account_id()`; `access_valid(token)` lets other fakes check a bearer token.
- Counters (`counts`: requests per grant type and endpoint) and `valid_refresh_tokens()`.

What it does not cover: scopes (recorded, never enforced), consent screens and real users, the implicit and
password grants, client authentication by HTTP Basic or JWT, `plain` PKCE, OpenID Connect (id tokens, discovery),
token introspection, refresh-token expiry by age, and rotation grace periods (a used refresh token is dead at once,
which is the strictest a service can be).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.httpserver import QuietServer

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class _Code:
    client_id: str
    redirect_uri: str | None
    challenge: str | None
    expires_at: float


@dataclass
class _Device:
    user_code: str
    expires_at: float
    interval: float
    approved: bool = False
    used: bool = False
    last_poll: float | None = None


@dataclass
class FakeOAuthServer:
    client_id: str = "test-client"
    client_secret: str | None = None
    account_id: str = "dbid:test-user-1"
    rotate: bool = True
    require_pkce: bool = True
    approve: bool = True
    access_ttl: float = 3600.0
    code_ttl: float = 600.0
    device_interval: float = 1.0
    device_ttl: float = 600.0
    # A pause inside the refresh grant, so a test can make two refreshes overlap on the server.
    refresh_delay: float = 0.0
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}
        self._refresh: set[str] = set()
        self._access: dict[str, float] = {}
        self._httpd: QuietServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> FakeOAuthServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def auth_url(self) -> str:
        return self.url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def device_url(self) -> str:
        return self.url + "/device/code"

    # -- what tests look at or do --------------------------------------------------------------------------
    def issue(self, access_ttl: float | None = None) -> dict[str, object]:
        """A token issued as if a sign-in had just happened (what `rclone authorize` would print)."""
        with self._lock:
            return self._new_tokens(with_refresh=True, ttl=access_ttl)

    def valid_refresh_tokens(self) -> set[str]:
        with self._lock:
            return set(self._refresh)

    def access_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._access.get(token)
            return expires is not None and expires > time.time()

    def revoke_all(self) -> None:
        with self._lock:
            self._refresh.clear()
            self._access.clear()

    def approve_device(self, user_code: str) -> bool:
        with self._lock:
            for device in self._devices.values():
                if device.user_code == user_code:
                    device.approved = True
                    return True
            return False

    # -- grants (under the lock) ---------------------------------------------------------------------------
    def _new_tokens(self, *, with_refresh: bool, ttl: float | None = None) -> dict[str, object]:
        ttl = self.access_ttl if ttl is None else ttl
        access = "at-" + secrets.token_urlsafe(16)
        self._access[access] = time.time() + ttl
        answer: dict[str, object] = {"access_token": access, "token_type": "Bearer", "expires_in": int(ttl)}
        if with_refresh:
            refresh = "rt-" + secrets.token_urlsafe(16)
            self._refresh.add(refresh)
            answer["refresh_token"] = refresh
        return answer

    def token_grant(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        grant = form.get("grant_type", "")
        self.counts[grant or "(none)"] += 1
        if form.get("client_id") != self.client_id or (
            self.client_secret is not None and form.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        if grant == "refresh_token":
            if self.refresh_delay:
                time.sleep(self.refresh_delay)  # outside the lock: two refreshes can overlap here
            with self._lock:
                used = form.get("refresh_token", "")
                if used not in self._refresh:
                    self.counts["refresh_refused"] += 1
                    return 400, {"error": "invalid_grant", "error_description": "refresh token is not valid"}
                if self.rotate:
                    self._refresh.discard(used)
                return 200, self._new_tokens(with_refresh=self.rotate)
        if grant == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
                if code is None or code.expires_at < time.time() or code.client_id != form.get("client_id"):
                    return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
                if code.redirect_uri != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant", "error_description": "redirect_uri does not match"}
                if code.challenge is not None:
                    verifier = form.get("code_verifier", "")
                    digest = hashlib.sha256(verifier.encode()).digest()
                    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
                        return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                return 200, self._new_tokens(with_refresh=True)
        if grant == DEVICE_GRANT:
            with self._lock:
                device = self._devices.get(form.get("device_code", ""))
                now = time.time()
                if device is None or device.used:
                    return 400, {"error": "invalid_grant"}
                if device.expires_at < now:
                    return 400, {"error": "expired_token"}
                too_fast = device.last_poll is not None and now - device.last_poll < device.interval - 0.05
                device.last_poll = now
                if too_fast:
                    device.interval += 5
                    self.counts["slow_down"] += 1
                    return 400, {"error": "slow_down"}
                if not device.approved:
                    return 400, {"error": "authorization_pending"}
                device.used = True
                return 200, self._new_tokens(with_refresh=True)
        return 400, {"error": "unsupported_grant_type"}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) for GET /authorize."""
        self.counts["authorize"] += 1
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, "unknown client or response type"
        challenge = query.get("code_challenge")
        if self.require_pkce and (not challenge or query.get("code_challenge_method") != "S256"):
            return 400, {}, "PKCE with S256 is required"
        redirect = query.get("redirect_uri")
        state = query.get("state", "")
        if not self.approve:
            if redirect:
                return 302, {"Location": f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"}, ""
            return 403, {}, "access denied"
        code = "code-" + secrets.token_urlsafe(12)
        with self._lock:
            self._codes[code] = _Code(query["client_id"], redirect, challenge, time.time() + self.code_ttl)
        if redirect:
            return 302, {"Location": f"{redirect}?{urlencode({'code': code, 'state': state})}"}, ""
        return 200, {}, f"Code: {code}\n"

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        self.counts["device_code"] += 1
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        device_code = secrets.token_urlsafe(16)
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(8))
        user_code = user_code[:4] + "-" + user_code[4:]
        with self._lock:
            self._devices[device_code] = _Device(user_code, time.time() + self.device_ttl, self.device_interval)
        return 200, {
            "device_code": device_code, "user_code": user_code, "verification_uri": self.url + "/device",
            "interval": self.device_interval, "expires_in": self.device_ttl,
        }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOAuthServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: str | dict, headers: dict[str, str] | None = None) -> None:
        raw = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        ctype = "application/json" if isinstance(body, dict) else "text/plain; charset=utf-8"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/authorize":
            status, headers, body = self.fake.authorize(query)
            self._send(status, body, headers)
        elif parts.path == "/device":
            ok = self.fake.approve_device(query.get("user_code", ""))
            self._send(200 if ok else 404, "approved\n" if ok else "unknown code\n")
        elif parts.path == "/userinfo":
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip()
            self.fake.counts["userinfo"] += 1
            if not auth.startswith("Bearer ") or not self.fake.access_valid(token):
                self._send(401, {"error": "invalid_token"})
            else:
                self._send(200, {"account_id": self.fake.account_id})
        else:
            self._send(404, "not found\n")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        if path == "/token":
            status, body = self.fake.token_grant(form)
            self._send(status, body)
        elif path == "/device/code":
            status, body = self.fake.device_code(form)
            self._send(status, body)
        elif path == "/revoke":
            self.fake.revoke_all()
            self._send(200, {})
        else:
            self._send(404, "not found\n")
