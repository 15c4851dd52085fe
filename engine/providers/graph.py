"""Microsoft Graph over plain HTTP (requests): one session per connection, the bearer token (a refused one renewed
once by the provider's `authorized`), `@odata.nextLink` paging, and Graph's error answers translated into the
contract's errors.

Kept apart from `onedrive.py` so the provider reads as what it does with OneDrive, not how Graph answers. The
generated Graph SDK is async and pulls in Kiota; five verbs over JSON need none of it, and the `api_url`
override (a test server on http://127.0.0.1, a national cloud) applies to every call the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from engine.providers.base import (
    ContainerNotFound,
    CursorExpired,
    NetworkError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    TransientError,
    retry_after_seconds,
)
from engine.providers.oauth import TokenRefused

if TYPE_CHECKING:
    import requests

TIMEOUT = (30, 300)  # connect, read: a fragment of 60 MiB on a slow line takes minutes
R = TypeVar("R")


class Authorized(Protocol):
    """`OAuthProvider.authorized`: a call with a valid token, renewed once when refused."""

    def __call__(self, what: str, call: Callable[[str], R]) -> R: ...


class NameTaken(PreconditionFailed):
    """409 nameAlreadyExists: the name holds an item already (a write with conflictBehavior=fail)."""


class Resync(CursorExpired):
    """410 resyncRequired: the service forgot the delta token."""


def item_address(drive_id: str, path: str) -> str:
    """The Graph address of the item at a connection-relative path of a drive (its root for "")."""
    path = path.strip("/")
    if not path:
        return f"/drives/{drive_id}/root"
    return f"/drives/{drive_id}/root:/{quote(path, safe='/')}:"


def translate(status: int, code: str, message: str, what: str, retry_after: float | None) -> ProviderError:
    """One Graph error answer as the contract's error; the text is one line without secrets."""
    detail = f"{what}: {code or f'HTTP {status}'}"
    if message and message != code:
        detail += f" ({message[:160]})"
    detail = " ".join(detail.split())
    if status == 429 or status in (500, 502, 503, 504) or code in ("activityLimitReached", "serviceNotAvailable"):
        return TransientError(f"{detail}; OneDrive asks to slow down", retry_after=retry_after)
    if status == 507 or code in ("quotaLimitReached", "insufficientStorage"):
        return QuotaExceeded(f"{what}: the OneDrive is full (quotaLimitReached): free some space or raise the quota")
    if status == 401:
        return TokenRefused(f"{what}: Microsoft refused the sign-in ({code or 'HTTP 401'})")
    if status == 403:
        return PermissionDenied(detail)
    if status == 404:
        return NotFound(detail)
    if status == 409 and code == "nameAlreadyExists":
        return NameTaken(detail)
    if status == 412:
        return PreconditionFailed(f"{what}: another client changed it since it was listed")
    if status == 410:
        return Resync(f"{what}: OneDrive no longer knows the change-feed cursor")
    return ProviderError(detail)


class Graph:
    """Calls to one Graph endpoint with one connection's token."""

    def __init__(self, base: str, authorized: Authorized, ca_file: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.host = urlsplit(self.base).netloc or self.base
        self._authorized = authorized
        self._ca_file = ca_file
        self._local = threading.local()  # a requests.Session is not safe across threads
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.last_date: str | None = None

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            if self._ca_file:
                session.verify = self._ca_file
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def send(self, method: str, path: str, what: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """One request (a path under the base, or an absolute address the service gave); an error answer raises.

        With `auth`, it goes through `authorized`: a refused token is renewed once and the request sent again."""
        if auth:
            response = self._authorized(what, lambda token: self._refused(self._raw(method, path, what, token,
                                                                                    **kwargs), what))
        else:
            response = self._raw(method, path, what, None, **kwargs)
        if response.status_code >= 400:
            raise self.error(response, what)
        return response

    def _refused(self, response: requests.Response, what: str) -> requests.Response:
        if response.status_code == 401:
            raise self.error(response, what)  # TokenRefused (see `translate`), after the answer is read and closed
        return response

    def _raw(self, method: str, path: str, what: str, token: str | None, **kwargs: Any) -> requests.Response:
        import requests

        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._session().request(method, self.url(path), headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise NetworkError(f"{what}: the TLS certificate of {self.host} was refused ({type(exc).__name__})") \
                from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError) as exc:
            raise NetworkError(f"{what}: cannot reach {self.host} ({type(exc).__name__})") from None
        self.last_date = response.headers.get("Date") or self.last_date
        return response

    def error(self, response: requests.Response, what: str) -> ProviderError:
        code = message = ""
        try:
            body = response.json()
            error = body.get("error", {}) if isinstance(body, dict) else {}
            if isinstance(error, dict):
                code, message = str(error.get("code", "")), str(error.get("message", ""))
        except ValueError:
            pass
        finally:
            response.close()
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        return translate(response.status_code, code, message, what, wait)

    def json(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response = self.send(method, path, what, **kwargs)
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise TransientError(f"{what}: {self.host} answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise TransientError(f"{what}: {self.host} answered something that is not an object")
        return data

    def pages(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following `@odata.nextLink`; the last page carries any deltaLink."""
        page = self.json("GET", path, what, params=dict(params or {}))
        yield page
        while page.get("@odata.nextLink"):
            page = self.json("GET", str(page["@odata.nextLink"]), what)
            yield page

    def folder(self, drive_id: str, path: str, what: str) -> dict[str, Any]:
        """The folder item at `path`; ContainerNotFound when nothing or a file is there."""
        try:
            item = self.json("GET", item_address(drive_id, path), what)
        except NotFound:
            raise ContainerNotFound(f"/{path.strip('/')}: no such folder in OneDrive") from None
        if "folder" not in item and "root" not in item:
            raise ContainerNotFound(f"/{path.strip('/')}: not a folder in OneDrive")
        return item
