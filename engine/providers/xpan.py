"""The HTTP side of Baidu Netdisk's open-platform `xpan` API: one call, its `errno`, the contract's error.

No SDK: Baidu publishes none worth its dependencies (a generated OpenAPI client for a few form posts), and every
call is a GET or a form POST with the access token in the query. This module knows the wire (which host a call
goes to, how an answer says it failed) and nothing about paths, tasks or the app folder, which are
`engine.providers.baidu`'s.

Answers are JSON with an `errno` (0: done) on `pan.baidu.com`, and `error_code`/`error_msg` on the upload host
(`d.pcs.baidu.com`); both usually come with HTTP 200, so the status alone says little. What each number means
is the table `_ERRNO` (Baidu's published codes; the ones a sync meets).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.providers.base import (
    NetworkError,
    NotFound,
    PermissionDenied,
    ProviderError,
    QuotaExceeded,
    TransientError,
    retry_after_seconds,
)
from engine.providers.oauth import TokenRefused  # errno -6 / 111: the provider renews the token once, tries again

if TYPE_CHECKING:
    import requests

API_URL = "https://pan.baidu.com"
CONTENT_URL = "https://d.pcs.baidu.com"
# Baidu serves downloads (dlink) only to this User-Agent; anything else gets 403.
USER_AGENT = "pan.baidu.com"
TIMEOUT = 60.0

# errno values that mean the access token is refused: refresh it once, then "sign-in needed".
TOKEN_REFUSED = frozenset({-6, 111, 110, 31045})
EXISTS = frozenset({-8, 31061})
MISSING = frozenset({-9, 31066, -3})


class Exists(ProviderError):
    """The name is taken (errno -8 / 31061): a create with rtype=0, a move or copy with ondup=fail."""


def _describe(code: int) -> str:
    return {
        -7: "Baidu refused the name or the place (a name it does not allow, or a path outside the app folder)",
        -10: "the Baidu storage space is full",
        2: "Baidu could not read the request's parameters",
        31023: "Baidu could not read the request's parameters",
        31064: "Baidu does not let this app write there (only under its folder in /apps)",
        31363: "a part of the upload is missing on Baidu's side",
        31299: "the first part of the upload did not arrive whole",
        42211: "Baidu could not process the file",
    }.get(code, f"Baidu refused it (errno {code})")


def error_for(code: int, what: str) -> ProviderError:
    """Baidu's `errno` (or the upload host's `error_code`) as the contract's error, one line for the user."""
    if code in TOKEN_REFUSED:
        return TokenRefused(f"{what}: Baidu no longer accepts this sign-in (errno {code})")
    if code == 31034 or code == 31218:  # the API's rate limit, the upload host's traffic limit
        return TransientError(f"{what}: Baidu asks to slow down (too many requests, errno {code})")
    if code in MISSING:
        return NotFound(f"{what}: not found on Baidu")
    if code in EXISTS:
        return Exists(f"{what}: the name is taken on Baidu")
    if code == -10 or code == 31112:
        return QuotaExceeded(f"{what}: {_describe(-10)}")
    if code in (-7, 31064, 6, 31024):
        return PermissionDenied(f"{what}: {_describe(code)}")
    if code in (31299, 31363, -1, 9019, 31326):
        return TransientError(f"{what}: {_describe(code)}")
    return ProviderError(f"{what}: {_describe(code)}")


@dataclass
class Answer:
    """A decoded JSON answer and the headers worth keeping (the `Date`, for the clock check)."""

    data: dict[str, Any]
    date: str | None


class XpanClient:
    """Calls to `api_url` (pan.baidu.com) and `content_url` (d.pcs.baidu.com) with one requests session.

    The access token is passed per call (the provider gets it from the token store); it travels in the query
    string, as Baidu wants, so no URL is ever put in a message.
    """

    def __init__(self, api_url: str | None, content_url: str | None) -> None:
        self.api_url = (api_url or API_URL).rstrip("/")
        self.content_url = (content_url or CONTENT_URL).rstrip("/")
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.last_date: str | None = None

    def _session(self) -> requests.Session:
        """One session per thread: requests' sessions are not promised to be thread-safe."""
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions = []
        self._local = threading.local()

    # -- one request -------------------------------------------------------------------------------------------
    def request(
        self, what: str, method: str, url: str, *, params: Mapping[str, Any], data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None, stream: bool = False,
    ) -> requests.Response:
        """The raw answer of one call; an unreachable host is NetworkError, 429/5xx TransientError with the
        service's Retry-After. Other statuses are left to the caller (Baidu puts its reason in the body)."""
        import requests

        try:
            response = self._session().request(
                method, url, params=dict(params), data=data, files=files, stream=stream, timeout=TIMEOUT,
            )
        except requests.exceptions.Timeout:
            raise NetworkError(f"{what}: Baidu did not answer in time") from None
        except (requests.exceptions.RequestException, OSError):
            raise NetworkError(f"{what}: Baidu could not be reached") from None
        self.last_date = response.headers.get("Date") or self.last_date
        if response.status_code == 429 or response.status_code >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            code = self._code(response)
            response.close()
            if code in TOKEN_REFUSED:
                raise error_for(code, what)
            raise TransientError(f"{what}: Baidu is busy (HTTP {response.status_code}), try again later",
                                 retry_after=wait)
        return response

    @staticmethod
    def _code(response: requests.Response) -> int | None:
        try:
            data = response.json()
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        for key in ("errno", "error_code"):
            value = data.get(key)
            if isinstance(value, int) and value != 0:
                return value
        return None

    def call(
        self, what: str, method: str, path: str, token: str, params: Mapping[str, Any],
        data: Mapping[str, Any] | None = None, *, host: str = "api", files: Mapping[str, Any] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> Answer:
        """One API call answered with JSON; a non-zero `errno`/`error_code` raises its error (see `error_for`),
        except the codes in `accept`, whose answer the caller reads."""
        base = self.api_url if host == "api" else self.content_url
        response = self.request(what, method, base + path, params={**params, "access_token": token}, data=data,
                                files=files)
        with response:
            try:
                body = response.json()
            except ValueError:
                body = None
        if not isinstance(body, dict):
            if response.status_code in (401, 403):
                raise TokenRefused(f"{what}: Baidu refused the request (HTTP {response.status_code})")
            raise TransientError(f"{what}: Baidu answered something that is not JSON (HTTP {response.status_code})")
        code = body.get("errno", body.get("error_code", 0))
        if not isinstance(code, int):
            try:
                code = int(code)
            except (TypeError, ValueError):
                code = 0
        if code != 0 and code not in accept:
            raise error_for(code, what)
        if response.status_code >= 400:
            raise ProviderError(f"{what}: Baidu answered HTTP {response.status_code}")
        return Answer(body, response.headers.get("Date"))


def encode_list(items: list[Any]) -> str:
    """A JSON array in the compact form Baidu's form fields take (`block_list`, `filelist`, `fsids`)."""
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))
