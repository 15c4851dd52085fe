"""`box`: Box through the official `boxsdk` (3.x), signed in with OAuth 2.0 (authorization code, loopback redirect
pasted back: Box has no device flow), refresh tokens single-use.

The SDK's `Client` runs on a session of ours: the API and upload addresses come from the `api_url` and
`upload_url` options (plain http on 127.0.0.1 for a test server), every request carries the token store's access
token, a 401 refreshes it once through the store (one process at a time: Box kills a refresh token as it is used,
so two processes refreshing at once would otherwise leave neither a valid one), and nothing else is retried by
the SDK: a 429's or 5xx's `Retry-After` reaches the connection's pacer as a TransientError.

Box addresses items by id (root folder "0"), names are unique in a folder without regard to case
(`case_insensitive`):

- Listings walk folders one `GET /folders/{id}/items` at a time (1,000 a page with markers, only the fields
  needed). Web links
  (Box's bookmarks) and Box Notes (`.boxnote`: an online document, no file content to sync) are reported to
  `on_skip` with the spec's reason ("the type of the file is bookmark") and left alone on both sides.
- Paths are resolved from the root one name at a time; folder ids are cached, the cache is rebuilt by each full
  listing and dropped when the feed reports a folder event or an id turns out stale (404).
- Entries: `sha1` as hash (`HashKind.SHA1`), `content_modified_at` as mtime (set by every upload, whole
  seconds), the revision `file_version.id` (content only: a rename keeps it), `id` and `parent.id`.

Change feed: the `/events` stream. `changes_start` asks `stream_position=now`; `changes` reads the `changes`
stream from the saved position until a page comes back empty. Each event carries its item as it was then, with its
parent and name (`Change.path` is None: the engine's remote index places it); an item trashed or deleted is a
deletion, a folder event drops the folder cache. A position Box refuses (400) is CursorExpired. `wait_changes`
is Box's long poll (`OPTIONS /events` names a real-time server that answers `new_change` or `reconnect`), so a
running engine hears of a change in Box within seconds.

Transfers: up to `chunk_size` MiB (default 20) in one multipart upload, with its sha1 for Box to check; larger
files through an upload session with the part size the service returns (each part's sha1 in its `Digest`, a part
cut mid-way sent again, the commit carrying the whole file's sha1 and `content_modified_at`). The account's
largest file (`/users/me` `max_upload_size`) is read once and a larger file is refused before a byte is sent:
"exceeds your account limit" (spec note 7). Downloads are streamed and checked against the listed sha1.

Conditional writes and deletes are SERVER: a new name is created with Box's own name check (409 when taken), and
a replacement, delete or move re-reads the item's version, compares it with what the plan saw and sends the
etag it read as `If-Match`, which Box checks as it commits. Deleted items go to Box's trash.

Addresses: `api_url` <- https://api.box.com/2.0, `upload_url` <- https://upload.box.com/api/2.0, `token_url`
<- https://api.box.com/oauth2/token, `auth_url` <- https://account.box.com/api/oauth2/authorize.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from engine.auth.oauth import OAuthSpec
from engine.providers.base import (
    AuthError,
    Capabilities,
    Change,
    ChangeWait,
    Conditional,
    ContainerNotFound,
    CursorExpired,
    Expect,
    FolderNotEmpty,
    HashKind,
    InvalidOption,
    MtimeMode,
    NetworkError,
    NotFound,
    OptionSpec,
    PermissionDenied,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    RemoteEntry,
    TransientError,
    join,
    retry_after_seconds,
)
from engine.providers.idtree import Child, FolderIds
from engine.providers.listednames import shown_path, unusable_name
from engine.providers.localwrite import LocalWrite
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider, TokenRefused

MIB = 1 << 20
API_URL = "https://api.box.com/2.0"
UPLOAD_URL = "https://upload.box.com/api/2.0"
TOKEN_URL = "https://api.box.com/oauth2/token"
AUTH_URL = "https://account.box.com/api/oauth2/authorize"
DEFAULT_CHUNK_MIB = 20  # Box takes upload sessions for files of 20 MB and more
MAX_CHUNK_MIB = 50  # Box advises sessions above 50 MB
ROOT_ID = "0"
PAGE = 1000  # the most items Box returns in one page
EMPTY_PAGES = 50  # empty pages in a row that a listing takes before it gives up (see _items)
EVENTS_PAGE = 500
LONGPOLL_TIMEOUT = 30  # seconds a wait lasts unless asked otherwise (Box's server would hold it 610 s)
WAIT_MARGIN = 2.0  # seconds beyond the wait before the read times out: an answer on its way still arrives
FIELDS = "type,id,name,size,sha1,etag,content_modified_at,file_version,parent,extension,item_status"
PART_ATTEMPTS = 5  # one part of a session is sent this often before the upload fails
BOOKMARK = "the type of the file is bookmark (a Box web link), which is not a file"
BOXNOTE = "the type of the file is bookmark (a Box Note, an online document with no file content)"
_GONE = {"trashed", "deleted"}


def rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Item:
    """One Box item as the API reports it (the fields of `FIELDS`)."""

    type: str
    id: str
    name: str
    parent: str | None
    size: int = 0
    sha1: str | None = None
    etag: str | None = None
    version: str | None = None
    mtime: float | None = None
    status: str = "active"
    extension: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == "folder"

    def entry(self, path: str) -> RemoteEntry:
        if self.is_dir:
            return RemoteEntry(path, True, id=self.id, parent_id=self.parent)
        return RemoteEntry(path, False, self.size, self.mtime, self.sha1, self.version, self.id, self.parent)


def item_of(res: Mapping[str, Any]) -> Item:
    parent = res.get("parent") if isinstance(res.get("parent"), Mapping) else None
    version = res.get("file_version") if isinstance(res.get("file_version"), Mapping) else None
    name = str(res.get("name") or "")
    return Item(
        type=str(res.get("type", "")), id=str(res.get("id", "")), name=name,
        parent=str(parent["id"]) if parent and parent.get("id") is not None else None,
        size=int(res.get("size") or 0), sha1=res.get("sha1") or None, etag=res.get("etag"),
        version=str(version["id"]) if version and version.get("id") is not None else None,
        mtime=parse_time(res.get("content_modified_at")), status=str(res.get("item_status") or "active"),
        extension=str(res.get("extension") or (name.rpartition(".")[2] if "." in name else "")).lower(),
    )  # fmt: skip


def skip_reason(item: Item) -> str | None:
    """Why an item is left out of listings and the feed (spec note 7: "The type of the file is bookmark")."""
    if item.type == "web_link":
        return BOOKMARK
    if item.type == "file" and item.extension == "boxnote":
        return BOXNOTE
    if item.type not in ("file", "folder"):
        return f"a Box item of type {item.type!r}, which is not a file"
    return None


def same_name(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def translate(exc: BaseException, what: str) -> ProviderError:
    """An error of the SDK or of requests as one line for the user (never a token)."""
    import requests
    from boxsdk.exception import BoxAPIException

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, BoxAPIException):
        status, code = int(exc.status or 0), str(exc.code or "")
        wait = retry_after_seconds((exc.headers or {}).get("Retry-After"))
        if code == "file_size_limit_exceeded" or status == 413:
            return QuotaExceeded(f"{what}: the size of the file exceeds your account limit (Box refused it)")
        if code == "storage_limit_exceeded" or status == 507:
            return QuotaExceeded(f"{what}: the Box account has no space left")
        if status == 429:
            return TransientError(f"{what}: Box asks to slow down (too many requests)", retry_after=wait)
        if status >= 500 or status == 202:
            return TransientError(f"{what}: Box is busy ({status}), try again later", retry_after=wait)
        if status == 401:
            return TokenRefused(f"{what}: Box refused the sign-in")
        if status == 404 or code in ("not_found", "trashed"):
            return NotFound(f"{what}: not found")
        if status == 412 or code == "precondition_failed":
            return PreconditionFailed(f"{what}: another client changed or deleted it since it was listed")
        if status == 409 or code == "item_name_in_use":
            return _NameInUse(f"{what}: another item holds that name", conflict=_conflict(exc.context_info))
        if code == "folder_not_empty":
            return FolderNotEmpty(f"{what}: it is not empty")
        if status == 403:
            return PermissionDenied(f"{what}: Box denied it ({code or 'forbidden'})")
        if status == 400 and code in ("item_name_invalid", "item_name_too_long"):
            return PermissionDenied(f"{what}: Box does not allow this name ({code})")
        if status == 400:
            return _BadRequest(f"{what}: Box refused the request ({code or 'bad request'})")
        return ProviderError(f"{what}: Box answered HTTP {status} ({code or 'no reason given'})")
    if isinstance(exc, requests.exceptions.Timeout):
        return NetworkError(f"{what}: Box did not answer in time")
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        return NetworkError(f"{what}: Box could not be reached")
    import urllib3

    if isinstance(exc, urllib3.exceptions.HTTPError):  # a download streamed from urllib3 that broke off
        return NetworkError(f"{what}: the connection to Box broke off")
    raise exc


def _conflict(context: object) -> Item | None:
    """The item that holds the name, from a 409's `context_info.conflicts` (one item or a list of them)."""
    if not isinstance(context, Mapping):
        return None
    found = context.get("conflicts")
    if isinstance(found, list):
        found = found[0] if found else None
    return item_of(found) if isinstance(found, Mapping) else None


class _BadRequest(ProviderError):
    """A 400 with no more specific meaning (for the change feed: a stream position Box does not know)."""


class _NameInUse(PreconditionFailed):
    """Box refused a name that another item (`conflict`) holds."""

    def __init__(self, message: str, conflict: Item | None) -> None:
        super().__init__(message)
        self.conflict = conflict


def _sdk_session(provider: BoxProvider, seen: dict[str, Any]) -> Any:
    """The SDK's authorized session with Box's addresses replaced, our tokens, and no retries of its own."""
    from boxsdk.config import API
    from boxsdk.network.default_network import DefaultNetwork
    from boxsdk.session.session import AuthorizedSession

    class Addresses(API):
        BASE_API_URL = provider.api
        UPLOAD_URL = provider.upload_api
        OAUTH2_API_URL = (provider.options.get("token_url") or TOKEN_URL).rpartition("/")[0]
        OAUTH2_AUTHORIZE_URL = provider.options.get("auth_url") or AUTH_URL

    class Network(DefaultNetwork):
        def request(self, method: str, url: str, access_token: str, **kwargs: Any) -> Any:
            response = super().request(method, url, access_token, **kwargs)
            seen["date"] = response.headers.get("Date")
            return response

    class Tokens:
        """What the session asks the SDK's OAuth2 for: the token `authorized` gave this thread's call (renewing a
        refused one is `authorized`'s, not the SDK's)."""

        @property
        def access_token(self) -> str:
            return getattr(provider.sending, "token", None) or provider.access_token()

    class Session(AuthorizedSession):  # type: ignore[misc]
        def _get_retry_request_callable(self, network_response: Any, attempt_number: int, request: Any,
                                        skip_retry_codes: Any, session_renewal_needed: bool = False,
                                        **kwargs: Any) -> Any:
            if network_response is not None and network_response.status_code == 202 and attempt_number < 10:
                # "Not ready yet" (a commit still assembling its parts), not throttling: ask again shortly.
                wait = retry_after_seconds(network_response.headers.get("Retry-After")) or 1.0
                return lambda req, **kw: (time.sleep(min(wait, 30)), self._send_request(req, **kw))[1]
            return None  # 429 and 5xx go to the connection's pacer, with their Retry-After; a 401 to `authorized`

    logging.getLogger("boxsdk").setLevel(logging.CRITICAL)  # its request log would print URLs and headers
    return Session(Tokens(), network_layer=Network(), api_config=Addresses(),
                   default_network_request_kwargs={"timeout": (15, 120)})  # fmt: skip


class BoxProvider(OAuthProvider):
    kind = "box"
    title = "Box"
    setup_note = (
        "Use a Box app of your own (developer.box.com, Platform App with 'User Authentication (OAuth 2.0)'), "
        "with http://127.0.0.1 as a redirect URI and 'Read and write all files and folders' allowed; give its "
        "client ID and secret. You sign in on any computer and paste back the final 127.0.0.1 address."
    )
    option_specs = (
        OptionSpec("client_id", "client ID of your Box app (developer.box.com, Configuration tab)", required=True,
                   label="Client ID"),
        OptionSpec("client_secret", "client secret of your Box app (Box requires it at every sign-in and refresh)",
                   secret=True, required=True, label="Client secret"),
        TOKEN_OPTION,
        OptionSpec("chunk_size", f"files above this many MiB go through an upload session ({DEFAULT_CHUNK_MIB}.."
                   f"{MAX_CHUNK_MIB}; Box takes sessions only for files of 20 MB and more)",
                   default=str(DEFAULT_CHUNK_MIB), advanced=True, label="Upload session threshold (MiB)"),
        ACCOUNT_OPTION,
        OptionSpec("api_url", f"address replacing {API_URL}", advanced=True, label="API address"),
        OptionSpec("upload_url", f"address replacing {UPLOAD_URL}", advanced=True, label="Upload address"),
        OptionSpec("token_url", f"address replacing {TOKEN_URL}", advanced=True, label="Token endpoint"),
        OptionSpec("auth_url", f"address replacing {AUTH_URL}", advanced=True, label="Sign-in address"),
    )  # fmt: skip

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.chunk_size = self._chunk_mib(options) * MIB
        self.api = (options.get("api_url") or API_URL).rstrip("/")
        self.upload_api = (options.get("upload_url") or UPLOAD_URL).rstrip("/")
        self.capabilities = Capabilities(
            hash_kind=HashKind.SHA1,
            mtime_mode=MtimeMode.NATIVE,
            multipart_threshold=self.chunk_size,
            server_side_move=True,
            conditional_writes=Conditional.SERVER,
            conditional_deletes=Conditional.SERVER,
            ids=True,
            case_insensitive=True,
            server_side_copy=True,
            list_dir=True,
            changes=True,
            wait_for_changes=True,
            # Box wants the size first: a small file's form upload is checked against it, a session is opened
            # with it, and the account limit is enforced on it before a byte leaves.
            needs_size_before_upload=True,
        )
        self._state_lock = threading.Lock()
        self._session: Any = None
        self.sending = threading.local()  # the token of the call this thread is making
        self._seen: dict[str, Any] = {}
        # Box compares names without case: so does the cache of folder ids.
        self._folders = FolderIds(lambda: ROOT_ID, self._found, self._make_folder, fold=str.casefold)
        self._max_upload: int | None = None

    # -- options and sign-in ---------------------------------------------------------------------------------

    @staticmethod
    def _chunk_mib(options: Mapping[str, str]) -> int:
        raw = options.get("chunk_size") or str(DEFAULT_CHUNK_MIB)
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_CHUNK_MIB:
            raise InvalidOption(f"option 'chunk_size' must be a whole number of MiB, 1..{MAX_CHUNK_MIB}")
        return int(raw)

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        cls._chunk_mib(options)
        for option in ("api_url", "upload_url", "token_url", "auth_url"):
            value = options.get(option)
            if value and not value.startswith(("http://", "https://")):
                raise InvalidOption(f"option '{option}' must be an http:// or https:// address")

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        return OAuthSpec(
            client_id=options.get("client_id", ""),
            client_secret=options.get("client_secret") or None,
            auth_url=options.get("auth_url") or AUTH_URL,
            token_url=options.get("token_url") or TOKEN_URL,
            pkce=False,  # Box authenticates the client by its secret and takes no PKCE challenge
            redirect="loopback",
        )

    # -- plumbing --------------------------------------------------------------------------------------------

    def _client(self) -> Any:
        with self._state_lock:
            if self._session is None:
                from boxsdk import Client

                session = _sdk_session(self, self._seen)
                with warnings.catch_warnings():  # the SDK announces its successor on every client
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self._session = Client(session._oauth, session=session)
            return self._session

    def _call(self, what: str, func: Callable[[Any], Any]) -> Any:
        """`func(client)` through `authorized`: a token Box refuses is renewed once and the call made again."""

        def attempt(token: str) -> Any:
            self.sending.token = token  # what the SDK's session sends (its Tokens)
            try:
                return func(self._client())
            except Exception as exc:
                raise translate(exc, what) from None
            finally:
                self.sending.token = None

        return self.authorized(what, attempt)

    def _get(self, url: str, what: str, **params: Any) -> dict[str, Any]:
        return self._call(what, lambda c: c.session.get(url, params=params or None).json())

    def _json(self, method: str, url: str, what: str, body: Mapping[str, Any], *, etag: str | None = None,
              **params: Any) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else None
        return self._call(what, lambda c: c.session.request(
            method, url, data=json.dumps(body), headers=headers, params=params or None).json())  # fmt: skip

    def close(self) -> None:
        with self._state_lock:
            session, self._session = self._session, None
        if session is not None:
            session.session._network_layer._session.close()

    def _me(self) -> dict[str, Any]:
        return self._get(f"{self.api}/users/me", "reading the Box account", fields="id,max_upload_size")

    def account_id(self) -> str:
        return str(self._me().get("id", ""))

    def check(self) -> None:
        me = self._me()
        if not me.get("id"):
            raise AuthError("Box did not say which account this is")
        if me.get("max_upload_size"):
            self._max_upload = int(me["max_upload_size"])

    def server_time(self) -> float | None:
        try:
            self.check()
        except ProviderError:
            pass
        return self.http_date(self._seen.get("date"))

    def max_upload_size(self) -> int | None:
        """The account's largest file (Box's `max_upload_size`: 250 MB on a free account), read once."""
        if self._max_upload is None:
            size = self._me().get("max_upload_size")
            self._max_upload = int(size) if size else 0
        return self._max_upload or None

    # -- items and paths -------------------------------------------------------------------------------------

    def _items(self, folder_id: str, what: str, limit: int = PAGE) -> Iterator[Item]:
        """The items of a folder, page by page with markers (Box caps offset paging; markers have no limit)."""
        marker = ""
        empty = 0
        while True:
            params: dict[str, Any] = {"fields": FIELDS, "limit": limit, "usemarker": "true"}
            if marker:
                params["marker"] = marker
            page = self._get(f"{self.api}/folders/{folder_id}/items", what, **params)
            entries = page.get("entries") or []
            for res in entries:
                yield item_of(res)
            marker = str(page.get("next_marker") or "")
            # Only the end of the markers ends a listing: Box drops items the caller may not see after paging, so
            # a page can come back empty with more behind it (stopping there read the rest as deleted).
            if not marker or (entries and limit < PAGE):
                return
            empty = 0 if entries else empty + 1
            if empty >= EMPTY_PAGES:
                raise TransientError(f"{what}: Box answered {empty} empty pages in a row; the listing is retried")

    def _child(self, parent: str, name: str, what: str) -> Item | None:
        for item in self._items(parent, what):
            if same_name(item.name, name):
                return item
        return None

    def _found(self, parent: str, name: str, what: str) -> Child | None:
        item = self._child(parent, name, what)
        return None if item is None else Child(item.id, item.is_dir)

    def _make_folder(self, parent: str, path: str, what: str) -> str:
        name = path.rpartition("/")[2]
        try:
            res = self._json("POST", f"{self.api}/folders", what, {"name": name, "parent": {"id": parent}},
                             fields=FIELDS)  # fmt: skip
        except _NameInUse as exc:  # made by another client a moment ago
            if exc.conflict is None or not exc.conflict.is_dir:
                raise ProviderError(f"{what}: a file holds that name") from None
            return exc.conflict.id
        return str(res["id"])

    def _lookup(self, path: str, what: str) -> Item | None:
        parent_path, _, name = path.strip("/").rpartition("/")
        parent = self._folders.lookup(parent_path)
        return None if parent is None else self._child(parent, name, what)

    def _file(self, path: str, what: str) -> Item | None:
        """The file at `path` (a Note or a folder there is no file), None when there is none."""
        item = self._lookup(path, what)
        return item if item is not None and item.type == "file" and skip_reason(item) is None else None

    # -- listings --------------------------------------------------------------------------------------------

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, on_skip)

    def _walk(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        self._folders.forget()  # rebuilt from this listing: others may have moved folders since
        root = self._folders.lookup(folder)
        if root is None:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in Box")
        pending: list[tuple[str, str]] = [(root, "")]
        while pending:
            folder_id, rel = pending.pop(0)
            for item in self._items(folder_id, f"listing /{join(folder, rel)}"):
                reason = unusable_name(item.name)
                if reason is not None:  # never joined into another item's path (listednames.py)
                    on_skip(shown_path(rel, item.name), reason)
                    continue
                path = join(rel, item.name)
                reason = skip_reason(item)
                if reason is not None:
                    on_skip(path, reason)
                    continue
                if item.is_dir:
                    self._folders.remember(join(folder, path), item.id)
                    pending.append((item.id, path))
                yield item.entry(path)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        folder_id = self._folders.lookup(folder)
        if folder_id is None:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in Box")
        for item in self._items(folder_id, f"listing /{folder}"):
            if skip_reason(item) is None and unusable_name(item.name) is None:
                yield item.entry(item.name)

    def folder_id(self, folder: str) -> str | None:
        found = self._folders.lookup(folder)
        if found is None:
            raise ContainerNotFound(f"the remote folder /{folder.strip('/')} does not exist in Box")
        return found

    # -- transfers -------------------------------------------------------------------------------------------

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        path = path.strip("/")
        what = f"reading /{path}"
        item = self._file(path, what)
        if item is None:
            raise NotFound(f"{what}: not found")
        hasher = hashlib.sha1()
        local = LocalWrite(out)

        def fetch(client: Any) -> None:
            response = client.session.get(f"{self.api}/files/{item.id}/content", expect_json_response=False,
                                          stream=True)  # fmt: skip
            for chunk in response.network_response.response_as_stream.stream(MIB, decode_content=True):
                local.write(chunk)
                hasher.update(chunk)

        try:
            self._call(what, fetch)
        except ProviderError:
            local.raise_if_failed()  # a full disk is the disk's error, not a broken download
            raise
        if item.sha1 and hasher.hexdigest() != item.sha1:
            raise TransientError(f"{what}: the data arrived damaged (sha1 mismatch)")
        return item.entry(path)

    def _current(self, item_id: str, what: str) -> Item | None:
        try:
            return item_of(self._get(f"{self.api}/files/{item_id}", what, fields=FIELDS))
        except NotFound:
            return None

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None) -> RemoteEntry:
        path = path.strip("/")
        what = f"writing /{path}"
        limit = self.max_upload_size()
        if limit is not None and size > limit:
            raise QuotaExceeded(f"{what}: the file ({size} bytes) exceeds your account limit ({limit} bytes per "
                                "file on this Box account)")  # fmt: skip
        parent_path, _, name = path.rpartition("/")
        parent = self._folders.ensure(parent_path)
        target: Item | None = None  # the file to replace, with the etag it must still have
        if expect is not None and expect.seen is not None:
            target = self._file(path, what)
            if not expect.met_by(target.entry(path) if target is not None else None):
                raise expect.failed(what)
        start = src.tell() if src.seekable() else None
        if expect is None and start is None:
            target = self._file(path, what)  # the bytes cannot be read twice: find the file to replace first
        attributes = {"content_modified_at": rfc3339(mtime)}
        for _attempt in range(2):
            try:
                res = self._send(parent, name, target, src, size, attributes, what)
            except _NameInUse as exc:
                if exc.conflict is None or exc.conflict.type != "file":
                    raise ProviderError(f"{what}: a folder or another item holds that name") from None
                if expect is not None:
                    return self._landed(path, exc.conflict.id, src, start, size, expect, what)
                if start is None:
                    raise
                target = exc.conflict  # no condition: the file there (another client's, just made) gets a new version
                src.seek(start)
                continue
            return item_of(res).entry(path)
        raise ProviderError(f"{what}: Box kept refusing the name")

    def _landed(self, path: str, item_id: str, src: BinaryIO, start: int | None, size: int, expect: Expect,
                what: str) -> RemoteEntry:
        """After Box refused a new name: the file is ours when it holds exactly what we sent (an earlier attempt
        of this upload landed before its answer was lost); otherwise the condition failed."""
        current = self._current(item_id, what)
        if current is not None and start is not None and current.size == size:
            src.seek(start)
            digest = hashlib.sha1()
            while chunk := src.read(MIB):
                digest.update(chunk)
            if digest.hexdigest() == current.sha1:
                return current.entry(path)
        raise expect.failed(what)

    def _send(self, parent: str, name: str, target: Item | None, src: BinaryIO, size: int,
              attributes: dict[str, str], what: str) -> dict[str, Any]:
        if size <= self.chunk_size:
            data = _read_full(src, size + 1)
            if len(data) != size:
                raise ProviderError(f"{what}: the file changed size while it was read")
            sha1 = hashlib.sha1(data).hexdigest()

            def one(client: Any) -> dict[str, Any]:
                if target is None:
                    file = client.folder(parent).upload_stream(io.BytesIO(data), name, sha1=sha1,
                                                               content_modified_at=attributes["content_modified_at"])
                else:
                    file = client.file(target.id).update_contents_with_stream(
                        io.BytesIO(data), etag=target.etag, sha1=sha1,
                        content_modified_at=attributes["content_modified_at"])
                return dict(file.response_object)

            res = self._call(what, one)
            if res.get("sha1") and res["sha1"] != sha1:
                raise TransientError(f"{what}: Box stored other bytes than were sent (sha1 mismatch)")
            return res
        return self._session_upload(parent, name, target, src, size, attributes, what)

    def _session_upload(self, parent: str, name: str, target: Item | None, src: BinaryIO, size: int,
                        attributes: dict[str, str], what: str) -> dict[str, Any]:
        """An upload session: parts of the size Box chose, each with its sha1, then the commit."""
        if target is None:
            session = self._call(what, lambda c: c.folder(parent).create_upload_session(size, name))
        else:
            session = self._call(what, lambda c: c.file(target.id).create_upload_session(size))
        part_size = int(session.part_size)
        whole = hashlib.sha1()
        parts: list[dict[str, Any]] = []
        offset = 0
        while offset < size:
            data = _read_full(src, min(part_size, size - offset))
            if not data:
                raise ProviderError(f"{what}: the file ended early while it was read")
            whole.update(data)
            parts.append(self._part(session, data, offset, size, what))
            offset += len(data)
        digest = whole.digest()
        etag = target.etag if target is not None else None
        file = self._call(what, lambda c: session.commit(digest, parts=parts, file_attributes=attributes,
                                                         etag=etag))  # fmt: skip
        if file is None:
            raise TransientError(f"{what}: Box is still assembling the upload")
        res = dict(file.response_object)
        if res.get("sha1") and res["sha1"] != whole.hexdigest():
            raise TransientError(f"{what}: Box stored other bytes than were sent (sha1 mismatch)")
        return res

    def _part(self, session: Any, data: bytes, offset: int, size: int, what: str) -> dict[str, Any]:
        """One part, sent again when its connection is cut or Box is busy (a part is idempotent by offset), so
        a long upload is not lost to one failed request."""
        sha1 = hashlib.sha1(data).digest()
        for attempt in range(PART_ATTEMPTS):
            try:
                return dict(self._call(what, lambda c: session.upload_part_bytes(data, offset, size, sha1)))
            except ProviderError as exc:
                if not exc.retryable or attempt == PART_ATTEMPTS - 1:
                    raise
                time.sleep(min(exc.retry_after or 2**attempt * 0.1, 60))
        raise TransientError(f"{what}: a part of the upload session could not be sent")  # not reached

    # -- changes on the service ------------------------------------------------------------------------------

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        path = path.strip("/")
        what = f"deleting /{path}"
        item = self._lookup(path, what)
        if item is None:
            return
        if item.type != "file" or skip_reason(item) is not None or (
                expect is not None and not expect.met_by(item.entry(path))):  # fmt: skip
            raise PreconditionFailed(f"{what}: another client changed or deleted it since it was listed")
        headers = {"If-Match": item.etag} if item.etag else None  # Box checks it as it deletes
        try:
            self._call(what, lambda c: c.session.delete(f"{self.api}/files/{item.id}", headers=headers))
        except NotFound:
            return

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        folder_id = self._folders.ensure(path)
        parent = self._folders.lookup(path.rpartition("/")[0])
        return RemoteEntry(path, True, id=folder_id, parent_id=parent)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        folder_id = self._folders.lookup(path)
        if folder_id is None or folder_id == ROOT_ID:
            return
        if next(self._items(folder_id, what, limit=1), None) is not None:
            raise FolderNotEmpty(f"{what}: it is not empty")
        try:
            self._call(what, lambda c: c.session.delete(f"{self.api}/folders/{folder_id}",
                                                        params={"recursive": "false"}))  # fmt: skip
        except NotFound:
            pass
        self._folders.forget(path)

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"moving /{src} to /{dst}"
        item = self._lookup(src, what)
        if item is None or skip_reason(item) is not None:
            raise NotFound(f"{what}: not found")
        if listed is not None and (listed.is_dir != item.is_dir or (listed.id is not None and listed.id != item.id)
                                   or (not item.is_dir and listed.revision is not None
                                       and item.version != listed.revision)):  # fmt: skip
            raise PreconditionFailed(f"{what}: another client changed it since it was listed")
        parent_path, _, name = dst.rpartition("/")
        parent = self._folders.ensure(parent_path)
        # A folder moves with everything in it, in one request (a case-only rename of a folder included).
        kind = "folders" if item.is_dir else "files"
        res = self._json("PUT", f"{self.api}/{kind}/{item.id}", what, {"name": name, "parent": {"id": parent}},
                         etag=item.etag, fields=FIELDS)  # fmt: skip
        if item.is_dir:
            self._folders.forget()
        return item_of(res).entry(dst)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        item = self._file(src, what)
        if item is None:
            raise NotFound(f"{what}: not found")
        if expect is None or expect.seen is not None:
            self.delete(dst, expect=expect)  # a copy never replaces: the file in the way goes first, conditionally
        parent_path, _, name = dst.rpartition("/")
        parent = self._folders.ensure(parent_path)
        res = self._json("POST", f"{self.api}/files/{item.id}/copy", what, {"name": name, "parent": {"id": parent}},
                         fields=FIELDS)  # fmt: skip
        return item_of(res).entry(dst)

    # -- change feed -----------------------------------------------------------------------------------------

    def changes_start(self, folder: str) -> str:
        self.folder_id(folder)
        page = self._get(f"{self.api}/events", "starting the change feed", stream_position="now")
        return str(page["next_stream_position"])

    def changes(self, folder: str, cursor: str) -> tuple[Iterator[Change], str]:
        what = "reading the Box change feed"
        out: list[Change] = []
        seen: set[str] = set()  # Box delivers an event at least once
        position = cursor
        while True:
            try:
                page = self._get(f"{self.api}/events", what, stream_position=position, stream_type="changes",
                                 limit=EVENTS_PAGE)  # fmt: skip
            except _BadRequest:
                raise CursorExpired(f"{what}: Box no longer knows the stream position") from None
            entries = page.get("entries") or []
            for event in entries:
                event_id = str(event.get("event_id", ""))
                if event_id and event_id in seen:
                    continue
                seen.add(event_id)
                made = self._change(event)
                if made is not None:
                    out.append(made)
            position = str(page.get("next_stream_position") or position)
            if not entries:
                return iter(out), position

    def wait_changes(self, cursor: str, timeout: float = LONGPOLL_TIMEOUT) -> ChangeWait:
        """Box's long poll: `OPTIONS /events` names a real-time server, which holds a request with the stream
        position until something happens in the account (`new_change`) or its `retry_timeout` passes
        (`reconnect`). Nothing is listed; the server's address is the one Box hands out (another host, outside
        the `api_url` override, as Box intends)."""
        what = "waiting for Box changes"
        servers = self._call(what, lambda c: c.session.options(f"{self.api}/events").json()).get("entries") or []
        server = next((s for s in servers if isinstance(s, Mapping) and s.get("url")), None)
        if server is None:
            raise TransientError(f"{what}: Box named no real-time server")
        # Box holds the request up to its retry_timeout (610 s); we end the wait ourselves after `timeout` (the
        # read timeout), which is "nothing new" and keeps a stopping engine from waiting ten minutes.
        hold = max(1.0, min(timeout, float(server.get("retry_timeout") or timeout)))
        url = str(server["url"])

        def wait(client: Any) -> Any:
            import requests

            try:
                return client.session.get(url, params={"stream_position": cursor},
                                          timeout=(15, hold + WAIT_MARGIN)).json()  # fmt: skip
            except requests.exceptions.ReadTimeout:
                return None

        answer = self._call(what, wait)
        if answer is None:
            return ChangeWait(False, 0.0)
        return ChangeWait(str(answer.get("message", "")) == "new_change", 0.0)

    def _change(self, event: Mapping[str, Any]) -> Change | None:
        source = event.get("source")
        if not isinstance(source, Mapping) or source.get("type") not in ("file", "folder", "web_link"):
            return None  # a collaboration, a comment, a task...
        item = item_of(source)
        if item.is_dir:
            self._folders.forget()  # a folder renamed, moved, made or trashed: cached paths may be wrong
        if item.status in _GONE or str(event.get("event_type", "")) in ("ITEM_TRASH", "ITEM_DELETE"):
            return Change(item.id, None)
        if skip_reason(item) is not None:
            return None  # left out of listings too
        return Change(item.id, item.entry(item.name), item.parent, item.name, None)


def _read_full(src: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, fewer only at EOF (a pipe or a throttled reader returns short reads)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        data = src.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)

