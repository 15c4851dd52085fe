"""`gdrive`: Google Drive (My Drive, or one shared drive) through google-api-python-client.

The client is built from the library's bundled discovery document for Drive v3, with its root address replaced
by the `api_url` option, so API calls and uploads (`/drive/v3/...`, `/upload/drive/v3/...`) both go there. Each
thread has its own client and HTTP connection (httplib2 is not thread-safe); every request carries the
connection's bearer token from the token store, and a 401 refreshes it once (it may have been revoked early).

Drive addresses items by id, a folder holds children by parent id, and names are not unique:

- Listings walk folders breadth-first, asking for the children of up to 50 folders in one `files.list` (the
  fewest requests for any shape of tree, and only the fields needed, 1,000 a page). Items in the trash are not
  listed. Shortcuts (never followed), Google Docs/Sheets/Slides/Drawings and other Google types (no size, no
  md5: there is no file content to sync) and names holding `/` are reported to `on_skip` with a reason, so the
  engine leaves those names alone on both sides. Several items with one name in one folder: the oldest
  (creation time, then id) is listed, and `on_skip` is told about the name with the ids of the others.
- The change feed is Drive's own (`changes.getStartPageToken`, `changes.list`, restricted to My Drive or to
  the shared drive): a poll with nothing new is one request. Changes carry the parent id and the name
  (`Change.path` is None; the entry's `path` is its bare name): the engine's remote index places them. An item
  trashed or deleted is a deletion; an item whose name the listing would skip (a Doc, a shortcut, a `/`) is left
  out of the feed, so the engine keeps what it knew until the next full listing reports the skip.
- Paths are resolved from the root one name at a time; folder ids are cached, the cache is rebuilt by each full
  listing and dropped when the feed reports a folder change.

Transfers: files up to one chunk (`chunk_size`, 8 MiB by default, a multiple of 256 KiB) go in one multipart
request; larger ones by a resumable upload in chunks, which after a dropped connection asks the server how much
it holds and goes on from there. `modifiedTime` is set by every upload and read back as the mtime; the hash is
`md5Checksum` (checked against what was sent and what was received), the revision `headRevisionId` (content
only: a rename does not change it). Deletions move items to Drive's trash (recoverable for 30 days).

Conditional writes and deletes (`expect`) are REREAD: Drive has no precondition on content updates, so the item
at the name is read again just before the write. A change another client makes between that read and the
write's last request (for a resumable upload: its last chunk) can still be overwritten; Drive keeps the
overwritten content as an earlier revision.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import mimetypes
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from googleapiclient.http import MediaUpload

from engine.auth.oauth import OAuthSpec
from engine.providers.base import (
    AuthError,
    Capabilities,
    Change,
    Conditional,
    ContainerNotFound,
    ContentUnavailable,
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
    ReauthRequired,
    RemoteEntry,
    TransientError,
    join,
)
from engine.providers.idtree import Child, FolderIds
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider

API_URL = "https://www.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
AUTH_URL = "https://accounts.google.com/o/oauth2/auth"
SCOPES = {"drive": "https://www.googleapis.com/auth/drive", "drive.file": "https://www.googleapis.com/auth/drive.file"}

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
GOOGLE_PREFIX = "application/vnd.google-apps."
DOCS = {"document": "Google Docs document", "spreadsheet": "Google Sheets spreadsheet",
        "presentation": "Google Slides presentation", "drawing": "Google Drawings drawing"}
# Spec note 20: what a download-only task with "Convert Google online documents" makes of each (Google's own
# export formats: developers.google.com/workspace/drive/api/guides/ref-export-formats).
EXPORTS: dict[str, tuple[str, str]] = {
    GOOGLE_PREFIX + "document": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    GOOGLE_PREFIX + "spreadsheet": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    GOOGLE_PREFIX + "presentation": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"),
    GOOGLE_PREFIX + "drawing": ("image/jpeg", ".jpg"),
}
EXPORT_REVISION = "export:"  # + the document's modifiedTime: a new export is due when it changes

ITEM_FIELDS = "id,name,mimeType,size,md5Checksum,modifiedTime,createdTime,parents,headRevisionId"
LIST_FIELDS = f"nextPageToken,files({ITEM_FIELDS})"
CHANGE_FIELDS = f"nextPageToken,newStartPageToken,changes(changeType,fileId,removed,file({ITEM_FIELDS},trashed))"
PAGE_SIZE = 1000
PARENTS_PER_QUERY = 50  # a longer `q` risks Drive's query length limit
CHUNK_UNIT = 256 * 1024  # Drive takes resumable chunks in multiples of this
DEFAULT_CHUNK = 8 << 20
DOWNLOAD_CHUNK = 16 << 20
READ_ATTEMPTS = 3  # a read (listing page, metadata) answered 5xx is tried again this often before failing
UPLOAD_RESUMES = 5  # dropped connections one upload survives, each resumed from the server's offset
SLASH_STAND_IN = "\uff0f"  # how a name holding "/" is shown in a skip (rclone's encoding uses the same)

# Spec note 27, for a Workspace account whose admin turned the Drive SDK off (Drive answers `domainPolicy`).
DRIVE_SDK_DISABLED = (
    "the Workspace administrator has disabled Drive apps for this account: the Drive SDK API must be enabled "
    "on the Google Admin console to allow data synchronization with Google Workspace My Drive"
)
DUPLICATE_REASON = (
    "Google Drive holds {count} items with this name in one folder (ids {ids}); none of them is synced, and none "
    "is changed, until they are renamed apart in Google Drive"
)
EXPORT_CLASH_REASON = (
    "a {what} whose export would be named {name!r}, which another item of this Google Drive folder holds; it is "
    "not exported (the other item is synced, never overwritten) until one of them is renamed"
)
EXPORT_TOO_LARGE = (
    "Google exports documents of at most 10 MB and this {what} is larger; it is not exported (split it, or "
    "download it from Google Docs)"
)
SHORTCUT_REASON = "a Google Drive shortcut (shortcuts are never followed)"
DOC_REASON = "a {what}: it has no file content to sync (a download-only task can convert it)"
GOOGLE_TYPE_REASON = "a Google Drive item of type {kind} with no file content to sync"
SLASH_REASON = "its Google Drive name holds '/' (shown here as '\uff0f'), which no local name can"
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException, socket.timeout)


def parse_chunk_size(text: str | None) -> int:
    """`chunk_size` in MiB ("8"), or with a unit ("256K", "16M"); a multiple of 256 KiB."""
    if not text:
        return DEFAULT_CHUNK
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)i?[bB]?\s*", text)
    if m is None:
        raise InvalidOption(f"option 'chunk_size' must be a size like 8 (MiB) or 256K, not {text!r}")
    value = int(m.group(1)) << (10 if m.group(2).lower() == "k" else 20)
    if value <= 0 or value % CHUNK_UNIT:
        raise InvalidOption("option 'chunk_size' must be a positive multiple of 256 KiB")
    return value


def rfc3339(seconds: float) -> str:
    import datetime as dt

    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: object) -> float | None:
    import datetime as dt

    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def quoted(value: str) -> str:
    """A value as a `q` string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- items: what Drive says about one file or folder, read defensively ------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    name: str
    mime: str
    parent: str | None
    size: int
    md5: str | None
    mtime: float | None
    created: float
    revision: str | None

    @property
    def is_dir(self) -> bool:
        return self.mime == FOLDER

    @property
    def syncable(self) -> bool:
        return self.is_dir or not self.mime.startswith(GOOGLE_PREFIX)

    @property
    def exportable(self) -> bool:
        return self.mime in EXPORTS and "/" not in self.name

    def entry(self, path: str) -> RemoteEntry:
        if self.is_dir:
            return RemoteEntry(path, True, id=self.id, parent_id=self.parent)
        if self.exportable:
            # An exported document: its size is known only once exported, so the listing says 0 and the state
            # records that (the executor records the listed entry), and its revision is its modifiedTime, so
            # the next pass sees no change until the document changes. No md5: an export is made afresh.
            return RemoteEntry(path, False, 0, self.mtime, None, self.revision, self.id, self.parent)
        return RemoteEntry(path, False, self.size, self.mtime, self.md5, self.revision, self.id, self.parent)

    def listed_name(self, exporting: bool) -> str:
        """The name this item is listed under: its own, or for an exported document `<title>.docx` etc."""
        return self.name + EXPORTS[self.mime][1] if exporting and self.exportable else self.name


def item_of(res: Mapping[str, Any]) -> Item:
    parents = res.get("parents") or [None]
    try:
        size = int(res.get("size") or 0)
    except (TypeError, ValueError):
        size = 0
    return Item(
        id=str(res.get("id", "")),
        name=str(res.get("name", "")),
        mime=str(res.get("mimeType", "")),
        parent=parents[0],
        size=size,
        md5=res.get("md5Checksum") or None,
        mtime=parse_time(res.get("modifiedTime")),
        created=parse_time(res.get("createdTime")) or 0.0,
        revision=res.get("headRevisionId") or (
            EXPORT_REVISION + str(res.get("modifiedTime") or "") if res.get("mimeType") in EXPORTS else None),
    )


def skip_reason(item: Item, exporting: bool = False) -> str | None:
    """Why an item is not synced, or None. (Duplicates and export clashes are judged among siblings.)"""
    if "/" in item.name:
        return SLASH_REASON
    if item.syncable or (exporting and item.exportable):
        return None
    if item.mime == SHORTCUT:
        return SHORTCUT_REASON
    kind = item.mime.removeprefix(GOOGLE_PREFIX)
    if kind in DOCS:
        return DOC_REASON.format(what=DOCS[kind])
    return GOOGLE_TYPE_REASON.format(kind=kind)


def pick(items: list[Item]) -> tuple[Item, list[Item]]:
    """Of several syncable items with one name in one folder: the one listed (the oldest, so an item uploaded
    later by someone else does not take its place) and the others."""
    ordered = sorted(items, key=lambda i: (i.created, i.id))
    return ordered[0], ordered[1:]


def siblings(
    children: list[Item], rel: str, on_skip: Callable[[str, str], None] | None, exporting: bool = False
) -> Iterator[tuple[str, Item]]:
    """The children of one folder that are listed, as (listed name, item) in name order; the others go to
    `on_skip`.

    Several items under one listed name: none is listed and the name is reported with all their ids. Any
    item Drive keeps under a name wins over a document whose export would take that name: the document is
    reported under its own title (as it would be without exports), never listed over the other item.
    """
    by_name: dict[str, list[Item]] = {}
    for item in children:
        reason = skip_reason(item, exporting)
        if reason is None:
            by_name.setdefault(item.listed_name(exporting), []).append(item)
        elif on_skip is not None:
            on_skip(join(rel, item.name.replace("/", SLASH_STAND_IN)) or item.name, reason)
    for name in sorted(by_name):
        group = by_name[name]
        own = [i for i in group if i.listed_name(False) == name]  # items Drive itself names so
        if own and len(own) < len(group) and on_skip is not None:
            for doc in group:
                if doc not in own:
                    what = DOCS[doc.mime.removeprefix(GOOGLE_PREFIX)]
                    on_skip(join(rel, doc.name), EXPORT_CLASH_REASON.format(what=what, name=name))
        chosen, others = pick(own or group)
        if others and on_skip is not None:
            # The oldest is listed (the contract: one entry per name), and the name reported, so the engine
            # leaves it alone on both sides: which item a local file stands for cannot be told, and writing
            # either would be a guess (see the README's Google Drive section).
            ids = ", ".join(i.id for i in [chosen, *others])
            on_skip(join(rel, name), DUPLICATE_REASON.format(count=1 + len(others), ids=ids))
        yield name, chosen


# -- errors ----------------------------------------------------------------------------------------------------


def _error_details(exc: Any) -> tuple[int, str, str, str | None]:
    """(status, reason, message, location) of a googleapiclient HttpError."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    reason = message = ""
    location = None
    try:
        data = json.loads(exc.content.decode("utf-8", "replace"))
        error = data.get("error", {}) if isinstance(data, dict) else {}
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        items = error.get("errors") or [] if isinstance(error, dict) else []
        if items and isinstance(items[0], dict):
            reason = str(items[0].get("reason", ""))
            location = items[0].get("location")
    except (ValueError, AttributeError):
        pass
    return status, reason, " ".join(message.split())[:200], location


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.resp.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def translate(exc: BaseException, what: str) -> ProviderError:
    """A one-line ProviderError for anything the client raised (never a secret: tokens are not in messages)."""
    from googleapiclient.errors import HttpError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        status, reason, message, _ = _error_details(exc)
        wait = _retry_after(exc)
        if status == 401:
            return ReauthRequired(f"{what}: Google refused the sign-in; run skysync connection login")
        if reason in ("userRateLimitExceeded", "rateLimitExceeded", "sharingRateLimitExceeded") or status == 429:
            return TransientError(f"{what}: Google Drive asks to slow down ({reason or status})", retry_after=wait)
        if reason in ("storageQuotaExceeded", "quotaExceeded", "teamDriveFileLimitExceeded",
                      "numChildrenInNonRootLimitExceeded"):
            return QuotaExceeded(f"{what}: {message or reason}")
        if reason == "domainPolicy":
            return PermissionDenied(f"{what}: {DRIVE_SDK_DISABLED}")
        if reason == "accessNotConfigured":
            return PermissionDenied(f"{what}: the Google Drive API is not enabled in the Cloud project of this "
                                    "client id (enable it in the Google Cloud console)")
        if status == 404:
            return NotFound(f"{what}: not found")
        if status == 403:
            return PermissionDenied(f"{what}: {message or 'Google Drive refused it'}")
        if status >= 500 or status == 408:
            return TransientError(f"{what}: Google Drive answered {status}, try again later", retry_after=wait)
        return ProviderError(f"{what}: Google Drive answered {status} {message or reason}".rstrip())
    if isinstance(exc, TRANSPORT_ERRORS):
        return NetworkError(f"{what}: Google Drive could not be reached ({type(exc).__name__})")
    import httplib2

    if isinstance(exc, httplib2.HttpLib2Error):
        return NetworkError(f"{what}: Google Drive could not be reached ({type(exc).__name__})")
    raise exc


# -- transport -------------------------------------------------------------------------------------------------


class _BearerHttp:
    """An httplib2.Http that sends the connection's access token; a 401 gets one refreshed token and a retry."""

    def __init__(self, token: Callable[..., str]) -> None:
        from googleapiclient.http import build_http

        self._http = build_http()  # 308 is not a redirect here: it is "Resume Incomplete"
        self._token = token

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Mapping[str, str] | None = None,
                redirections: int = 5, connection_type: Any = None) -> tuple[Any, bytes]:
        sent = self._token()
        resp, content = self._send(uri, method, body, headers, sent, redirections, connection_type)
        if resp.status == 401:
            fresh = self._token(rejected=sent)
            resp, content = self._send(uri, method, body, headers, fresh, redirections, connection_type)
        return resp, content

    def _send(self, uri: str, method: str, body: Any, headers: Mapping[str, str] | None, token: str,
              redirections: int, connection_type: Any) -> tuple[Any, bytes]:
        out = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        out["authorization"] = f"Bearer {token}"
        return self._http.request(uri, method, body=body, headers=out, redirections=redirections,
                                  connection_type=connection_type)

    def close(self) -> None:
        for conn in list(self._http.connections.values()):
            conn.close()


class _StreamMedia(MediaUpload):  # type: ignore[misc]
    """The upload's bytes read once from a stream, keeping the chunk not yet acknowledged, so a resumable upload
    can go on from any offset the server reports after a cut (Drive never reports less than it acknowledged)."""

    def __init__(self, src: BinaryIO, size: int, chunk: int, resumable: bool, mime: str) -> None:
        self._src, self._size, self._chunk, self._resumable, self._mime = src, size, chunk, resumable, mime
        self._buf = b""
        self._start = 0  # offset of self._buf[0]
        self.md5 = hashlib.md5()
        self.read = 0

    def chunksize(self) -> int:
        return self._chunk

    def mimetype(self) -> str:
        return self._mime

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return self._resumable

    def has_stream(self) -> bool:
        return False

    def getbytes(self, begin: int, length: int) -> bytes:
        if begin < self._start or begin > self._start + len(self._buf):
            raise TransientError("the upload cannot go back to an offset it no longer holds")
        self._buf = self._buf[begin - self._start :]
        self._start = begin
        want = max(0, min(length, self._size - begin))
        while len(self._buf) < want:
            data = self._src.read(min(want - len(self._buf), 1 << 20))
            if not data:
                raise ProviderError("the file became shorter while it was uploaded")
            self.md5.update(data)
            self.read += len(data)
            self._buf += data
        return self._buf[:want]


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out, self.md5, self.size = out, hashlib.md5(), 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        return self.out.write(data)


# -- the provider ----------------------------------------------------------------------------------------------


class GDriveProvider(OAuthProvider):
    kind = "gdrive"
    title = "Google Drive"
    setup_note = (
        "Use an OAuth client of your own (Google Cloud console, APIs & Services, Credentials, 'Desktop app') with "
        "the Drive API enabled. An app left in 'testing' mode loses its sign-in after 7 days: publish it. You sign "
        "in on any computer and paste back the final 127.0.0.1 address."
    )
    location_options = ("shared_drive",)
    option_specs = (
        OptionSpec(
            "client_id",
            "OAuth client ID of a 'Desktop app' you create in the Google Cloud console (APIs & Services > "
            "Credentials, with the Google Drive API enabled); no shared ID is shipped, as Google throttles those. "
            "An app left in 'Testing' mode loses its sign-in after 7 days: publish it",
            required=True,
            label="OAuth client ID",
        ),
        OptionSpec(
            "client_secret",
            "the OAuth client's secret (Google Cloud console: APIs & Services > Credentials, the client)",
            secret=True,
            label="OAuth client secret",
        ),
        TOKEN_OPTION,
        OptionSpec(
            "shared_drive",
            "a shared drive's name or id (empty: My Drive); 'Shared with me' is not offered",
            label="Shared drive",
        ),
        OptionSpec(
            "scope",
            "drive: the whole Drive; drive.file: only what skysync created",
            default="drive",
            choices=tuple(SCOPES),
            label="Access scope",
        ),
        OptionSpec(
            "chunk_size",
            "upload chunk size in MiB (a multiple of 256 KiB, e.g. 8 or 256K)",
            default="8",
            advanced=True,
            label="Upload chunk (MiB)",
        ),
        OptionSpec("api_url", f"API address (default {API_URL})", advanced=True, label="API address"),
        OptionSpec("token_url", f"token endpoint (default {TOKEN_URL})", advanced=True, label="Token endpoint"),
        OptionSpec("auth_url", f"sign-in address (default {AUTH_URL})", advanced=True, label="Sign-in address"),
        ACCOUNT_OPTION,
    )
    capabilities = Capabilities(
        document_export=True,
        hash_kind=HashKind.MD5,
        mtime_mode=MtimeMode.NATIVE,
        max_file_size=5 * 1024**4,  # spec note 7
        multipart_threshold=DEFAULT_CHUNK,
        server_side_move=True,
        conditional_writes=Conditional.REREAD,
        conditional_deletes=Conditional.REREAD,
        ids=True,
        duplicate_names=True,
        server_side_copy=True,
        list_dir=True,
        changes=True,
        needs_size_before_upload=True,  # the upload is told its exact length
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self._chunk = parse_chunk_size(self.options.get("chunk_size"))
        self.capabilities = replace(type(self).capabilities, multipart_threshold=self._chunk)
        self._api = (self.options.get("api_url") or API_URL).rstrip("/")
        self._local = threading.local()
        self._https: list[_BearerHttp] = []
        self._state_lock = threading.Lock()
        self._drive_id: str | None = None
        self._root: str | None = None
        self._folders = FolderIds(self._root_id, self._found, self._make_folder)  # connection-relative paths
        self._export = False  # list Google Docs as exported files (a download-only task's option)

    # -- options and sign-in ---------------------------------------------------------------------------------

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        parse_chunk_size(options.get("chunk_size"))
        for key in ("api_url", "token_url", "auth_url"):
            value = options.get(key)
            if value and not re.match(r"https?://[^/\s]+", value):
                raise InvalidOption(f"option '{key}' must be an http(s) address")

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        scope = options.get("scope") or "drive"
        return OAuthSpec(
            client_id=options.get("client_id", ""),
            client_secret=options.get("client_secret") or None,
            auth_url=options.get("auth_url") or AUTH_URL,
            token_url=options.get("token_url") or TOKEN_URL,
            scopes=(SCOPES.get(scope, SCOPES["drive"]),),
            pkce=True,
            redirect="loopback",
            # offline + consent: Google sends a refresh token only then (and again on a repeated sign-in).
            extra_auth_params={"access_type": "offline", "prompt": "consent"},
        )

    # -- plumbing --------------------------------------------------------------------------------------------

    def _service(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            from googleapiclient.discovery import build_from_document
            from googleapiclient.discovery_cache import get_static_doc

            doc = json.loads(get_static_doc("drive", "v3"))
            doc["rootUrl"] = self._api + "/"  # API calls and uploads alike (GUIDE §1's api_url)
            http = _BearerHttp(self.access_token)
            with self._state_lock:
                self._https.append(http)
            service = build_from_document(doc, http=http)
            self._local.service = service
        return service

    def _execute(self, request: Any, what: str, *, read: bool = True) -> Any:
        """Run one request; a read answered 5xx (or cut) is tried again a few times before it fails."""
        from googleapiclient.errors import HttpError

        for attempt in range(READ_ATTEMPTS if read else 1):
            try:
                return request.execute(num_retries=0)
            except HttpError as exc:
                if not (read and int(exc.resp.status) >= 500 and attempt + 1 < READ_ATTEMPTS):
                    raise translate(exc, what) from None
            except ProviderError:
                raise
            except Exception as exc:
                if not (read and isinstance(exc, TRANSPORT_ERRORS) and attempt + 1 < READ_ATTEMPTS):
                    raise translate(exc, what) from None
            time.sleep(0.2 * 2**attempt)
        raise TransientError(f"{what}: Google Drive did not answer")  # not reached

    def _drive_args(self) -> dict[str, Any]:
        return {"supportsAllDrives": True}

    def _list_args(self) -> dict[str, Any]:
        drive = self._shared_drive()
        if drive is None:
            return {"spaces": "drive", "corpora": "user"}
        return {"corpora": "drive", "driveId": drive, "includeItemsFromAllDrives": True, "supportsAllDrives": True}

    def _shared_drive(self) -> str | None:
        wanted = (self.options.get("shared_drive") or "").strip()
        if not wanted:
            return None
        if self._drive_id is None:
            found: list[str] = []
            token = None
            while True:
                page = self._execute(self._service().drives().list(
                    pageSize=100, pageToken=token, fields="nextPageToken,drives(id,name)"), "listing shared drives")
                for drive in page.get("drives", []):
                    if drive.get("id") == wanted:
                        found = [wanted]
                        break
                    if drive.get("name") == wanted:
                        found.append(drive["id"])
                token = page.get("nextPageToken")
                if not token or found == [wanted]:
                    break
            if not found:
                raise ContainerNotFound(f"the shared drive {wanted!r} does not exist or is not shared with you")
            if len(found) > 1:
                raise InvalidOption(f"several shared drives are named {wanted!r}: give its id ({', '.join(found)})")
            self._drive_id = found[0]
        return self._drive_id

    def location_choices(self) -> tuple[str, list[tuple[str, str]]] | None:
        return "shared_drive", self.shared_drives()

    def shared_drives(self) -> list[tuple[str, str]]:
        """(id, name) of every shared drive the account can see: what the wizard offers for `shared_drive`."""
        drives: list[tuple[str, str]] = []
        token = None
        while True:
            page = self._execute(self._service().drives().list(
                pageSize=100, pageToken=token, fields="nextPageToken,drives(id,name)"), "listing shared drives")
            drives += [(str(d["id"]), str(d.get("name", ""))) for d in page.get("drives", []) if d.get("id")]
            token = page.get("nextPageToken")
            if not token:
                return drives

    def _root_id(self) -> str:
        if self._root is None:
            drive = self._shared_drive()
            if drive is not None:
                self._root = drive  # a shared drive's root folder has the drive's id
            else:
                res = self._execute(self._service().files().get(fileId="root", fields="id"), "reading My Drive")
                self._root = str(res["id"])
        return self._root

    def _pages(self, q: str, what: str, fields: str = LIST_FIELDS, page_size: int = PAGE_SIZE) -> Iterator[Item]:
        token = None
        while True:
            request = self._service().files().list(q=q, pageSize=page_size, pageToken=token, fields=fields,
                                                   **self._list_args())
            page = self._execute(request, what)
            for res in page.get("files", []):
                yield item_of(res)
            token = page.get("nextPageToken")
            if not token:
                return

    def _children(self, parent: str, what: str) -> list[Item]:
        return list(self._pages(f"{quoted(parent)} in parents and trashed = false", what))

    def _child(self, parent: str, name: str, what: str) -> Item | None:
        """The syncable item listed under `name` in folder `parent` (see `pick`), or None."""
        q = f"{quoted(parent)} in parents and name = {quoted(name)} and trashed = false"
        usable = [i for i in self._pages(q, what) if i.name == name and skip_reason(i) is None]
        return pick(usable)[0] if usable else None

    def _found(self, parent: str, name: str, what: str) -> Child | None:
        item = self._child(parent, name, what)
        return None if item is None else Child(item.id, item.is_dir)

    def _make_folder(self, parent: str, path: str, what: str) -> str:
        name = path.rpartition("/")[2]
        body = {"name": name, "mimeType": FOLDER, "parents": [parent]}
        res = self._execute(self._service().files().create(body=body, fields="id", **self._drive_args()), what,
                            read=False)
        return str(res["id"])

    def _lookup(self, path: str, what: str) -> Item | None:
        path = path.strip("/")
        parent_path, _, name = path.rpartition("/")
        parent = self._folders.lookup(parent_path)
        return None if parent is None else self._child(parent, name, what)

    # -- the contract ----------------------------------------------------------------------------------------

    def export_documents(self) -> None:
        self._export = True

    def account_id(self) -> str:
        res = self._execute(self._service().about().get(fields="user(permissionId)"), "reading the account")
        return str((res.get("user") or {}).get("permissionId", ""))

    def check(self) -> None:
        if not self.account_id():
            raise AuthError("Google Drive did not say which account this is")
        self._root_id()

    def keeps_revisions(self) -> str | None:
        """Drive keeps the replaced content of a file as an earlier revision (30 days or 100 revisions, in My
        Drive and shared drives alike): the log names its `headRevisionId` and time, both from the listing
        (the default `replaced_version`)."""
        return None

    def server_time(self) -> float | None:
        """The `Date` of an unauthenticated request: Google dates its 401 too."""
        try:
            from googleapiclient.http import build_http

            resp, _ = build_http().request(f"{self._api}/drive/v3/about?fields=kind", "GET")
        except Exception:  # unreachable: no clock to compare; check() says why
            return None
        return self.http_date(resp.get("date"))

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, on_skip)

    def _walk(self, folder: str, on_skip: Callable[[str, str], None] | None) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        self._folders.forget()  # rebuilt from this listing: others may have moved folders since
        root = self._folders.lookup(folder)
        if root is None:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        pending: list[tuple[str, str]] = [(root, "")]
        while pending:
            batch, pending = pending[:PARENTS_PER_QUERY], pending[PARENTS_PER_QUERY:]
            children: dict[str, list[Item]] = {fid: [] for fid, _ in batch}
            q = "(" + " or ".join(f"{quoted(fid)} in parents" for fid, _ in batch) + ") and trashed = false"
            for item in self._pages(q, f"listing /{folder}"):
                if item.parent in children:
                    children[item.parent].append(item)
            for fid, rel in batch:
                for name, item in siblings(children[fid], rel, on_skip, self._export):
                    path = join(rel, name)
                    if item.is_dir:
                        self._folders.remember(join(folder, path), item.id)
                        pending.append((item.id, path))
                    yield item.entry(path)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        fid = self._folders.lookup(folder)
        if fid is None:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        for name, item in siblings(self._children(fid, f"listing /{folder}"), "", None, self._export):
            yield item.entry(name)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        from googleapiclient.errors import HttpError
        from googleapiclient.http import MediaIoBaseDownload

        path = path.strip("/")
        what = f"reading /{path}"
        item = self._lookup(path, what)
        if item is None and self._export:
            return self._download_export(path, out, what)
        if item is None or item.is_dir:
            raise NotFound(f"{what}: not found")
        sink = _HashingWriter(out)
        request = self._service().files().get_media(fileId=item.id, **self._drive_args())
        loader = MediaIoBaseDownload(sink, request, chunksize=DOWNLOAD_CHUNK)
        done = False
        try:
            while not done:
                _, done = loader.next_chunk(num_retries=READ_ATTEMPTS - 1)
        except HttpError as exc:
            raise translate(exc, what) from None
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(exc, what) from None
        if (item.md5 is not None and sink.md5.hexdigest() != item.md5) or sink.size != item.size:
            raise TransientError(f"{what}: it changed while it was downloaded")
        return item.entry(path)

    def _document(self, path: str, what: str) -> Item | None:
        """The Google document whose export is listed as `path` (`<title>.docx`...), as the listing picks it."""
        parent_path, _, name = path.rpartition("/")
        candidates = [(mime, name[: -len(ext)]) for mime, (_, ext) in EXPORTS.items() if name.endswith(ext)]
        parent = self._folders.lookup(parent_path) if candidates else None
        if parent is None:
            return None
        mime, title = candidates[0]
        q = f"{quoted(parent)} in parents and name = {quoted(title)} and mimeType = {quoted(mime)} and trashed = false"
        docs = [i for i in self._pages(q, what) if i.name == title and i.exportable]
        return pick(docs)[0] if docs else None

    def _download_export(self, path: str, out: BinaryIO, what: str) -> RemoteEntry:
        """Export a Google document through files.export (Google stops it at 10 MB: ContentUnavailable)."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import MediaIoBaseDownload

        doc = self._document(path, what)
        if doc is None:
            raise NotFound(f"{what}: not found")
        export_mime = EXPORTS[doc.mime][0]
        sink = _HashingWriter(out)
        request = self._service().files().export_media(fileId=doc.id, mimeType=export_mime)
        loader = MediaIoBaseDownload(sink, request, chunksize=DOWNLOAD_CHUNK)
        done = False
        try:
            while not done:
                _, done = loader.next_chunk(num_retries=READ_ATTEMPTS - 1)
        except HttpError as exc:
            _, reason, _, _ = _error_details(exc)
            if reason == "exportSizeLimitExceeded":
                what_doc = DOCS[doc.mime.removeprefix(GOOGLE_PREFIX)]
                raise ContentUnavailable(EXPORT_TOO_LARGE.format(what=what_doc)) from None
            raise translate(exc, what) from None
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(exc, what) from None
        # The export's own size (the listing could not know it); the revision is the document's modifiedTime.
        return doc.entry(path)._replace(size=sink.size)

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        path = path.strip("/")
        what = f"writing /{path}"
        if self.capabilities.max_file_size is not None and size > self.capabilities.max_file_size:
            raise QuotaExceeded(f"{what}: Google Drive stores files of at most 5 TB")
        parent_path, _, name = path.rpartition("/")
        parent = self._folders.ensure(parent_path)
        current = self._child(parent, name, what)
        if current is not None and current.is_dir:
            raise ProviderError(f"{what}: a folder has that name")
        if expect is not None and not expect.met_by(None if current is None else current.entry(path)):
            raise expect.failed(what)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        media = _StreamMedia(src, size, self._chunk, size > self._chunk, mime)
        files = self._service().files()
        body: dict[str, Any] = {"modifiedTime": rfc3339(mtime)}
        if current is None:
            body.update(name=name, parents=[parent])
            request = files.create(body=body, media_body=media, fields=ITEM_FIELDS, **self._drive_args())
        else:
            request = files.update(fileId=current.id, body=body, media_body=media, fields=ITEM_FIELDS,
                                   **self._drive_args())
        res = self._send(request, media, what)
        item = item_of(res)
        if media.read != size:
            raise ProviderError(f"{what}: the file changed size while it was uploaded")
        if item.md5 is not None and item.md5 != media.md5.hexdigest():
            raise TransientError(f"{what}: Google Drive holds other bytes than were sent")
        return item.entry(path)

    def _send(self, request: Any, media: _StreamMedia, what: str) -> Any:
        """One multipart request, or the chunks of a resumable upload, resumed after cuts."""
        from googleapiclient.errors import HttpError

        if not media.resumable():
            return self._execute(request, what, read=False)
        cuts = 0
        while True:
            try:
                _, response = request.next_chunk(num_retries=0)
            except HttpError as exc:
                err = translate(exc, what)
                if not (isinstance(err, TransientError) and err.retry_after is None and cuts < UPLOAD_RESUMES):
                    raise err from None
                cuts += 1  # a 5xx: the next call asks the server what it holds, then goes on
                time.sleep(0.2 * cuts)
                continue
            except ProviderError:
                raise
            except Exception as exc:
                err = translate(exc, what)
                if not isinstance(err, NetworkError) or cuts >= UPLOAD_RESUMES:
                    raise err from None
                cuts += 1
                time.sleep(0.2 * cuts)
                continue
            if response is not None:
                return response

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        path = path.strip("/")
        what = f"deleting /{path}"
        item = self._lookup(path, what)
        if item is None:
            return
        if item.is_dir:
            raise ProviderError(f"{what}: it is a folder")
        if expect is not None and not expect.met_by(item.entry(path)):
            raise expect.failed(what)
        self._trash(item.id, what)

    def _trash(self, file_id: str, what: str) -> None:
        request = self._service().files().update(fileId=file_id, body={"trashed": True}, fields="id",
                                                 **self._drive_args())
        try:
            self._execute(request, what, read=False)
        except NotFound:
            return  # gone already

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        folder_id = self._folders.ensure(path)
        return RemoteEntry(path, True, id=folder_id)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        if not path:
            return
        item = self._lookup(path, what)
        if item is None or not item.is_dir:
            return
        q = f"{quoted(item.id)} in parents and trashed = false"
        for _ in self._pages(q, what, fields="files(id)", page_size=1):
            raise FolderNotEmpty(f"{what}: it is not empty")
        self._trash(item.id, what)
        self._folders.forget(path)

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"moving /{src} to /{dst}"
        item = self._lookup(src, what)
        if item is None:
            raise NotFound(f"{what}: /{src} is gone")
        if listed is not None and (
            (listed.id is not None and listed.id != item.id) or not Expect.entry(listed).met_by(item.entry(src))
        ):
            raise PreconditionFailed(f"{what}: it changed since it was listed")
        parent_path, _, name = dst.rpartition("/")
        parent = self._folders.ensure(parent_path)
        if self._child(parent, name, what) is not None:
            raise PreconditionFailed(f"{what}: another item has that name")
        args: dict[str, Any] = {}
        if parent != item.parent:
            args = {"addParents": parent, "removeParents": item.parent}
        request = self._service().files().update(fileId=item.id, body={"name": name}, fields=ITEM_FIELDS,
                                                 **args, **self._drive_args())
        res = self._execute(request, what, read=False)
        if item.is_dir:
            self._folders.forget(src)
        return item_of(res).entry(dst)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        item = self._lookup(src, what)
        if item is None or item.is_dir:
            raise NotFound(f"{what}: /{src} is not a file")
        parent_path, _, name = dst.rpartition("/")
        parent = self._folders.ensure(parent_path)
        current = self._child(parent, name, what)
        if current is not None and current.is_dir:
            raise ProviderError(f"{what}: a folder has that name")
        if expect is not None and not expect.met_by(None if current is None else current.entry(dst)):
            raise expect.failed(what)
        body: dict[str, Any] = {"name": name, "parents": [parent]}
        if item.mtime is not None:
            body["modifiedTime"] = rfc3339(item.mtime)
        request = self._service().files().copy(fileId=item.id, body=body, fields=ITEM_FIELDS, **self._drive_args())
        res = self._execute(request, what, read=False)
        if current is not None:  # the copy replaces it: one name, one file
            self._trash(current.id, what)
        return item_of(res).entry(dst)

    # -- change feed -----------------------------------------------------------------------------------------

    def folder_id(self, folder: str) -> str | None:
        fid = self._folders.lookup(folder)
        if fid is None:
            raise ContainerNotFound(f"the remote folder /{folder.strip('/')} does not exist")
        return fid

    def _feed_args(self) -> dict[str, Any]:
        drive = self._shared_drive()
        if drive is None:
            return {"restrictToMyDrive": True, "spaces": "drive"}  # spec note 28: not "Shared with me"
        return {"driveId": drive, "includeItemsFromAllDrives": True, "supportsAllDrives": True}

    def changes_start(self, folder: str) -> str:
        args = {"driveId": self._shared_drive(), "supportsAllDrives": True} if self._shared_drive() else {}
        res = self._execute(self._service().changes().getStartPageToken(**args), "starting the change feed")
        return str(res["startPageToken"])

    def changes(self, folder: str, cursor: str) -> tuple[Iterator[Change], str]:
        from googleapiclient.errors import HttpError

        out: list[Change] = []
        token = cursor
        while True:
            request = self._service().changes().list(pageToken=token, pageSize=PAGE_SIZE, includeRemoved=True,
                                                     fields=CHANGE_FIELDS, **self._feed_args())
            try:
                page = request.execute(num_retries=0)
            except HttpError as exc:
                status, _, _, location = _error_details(exc)
                if status == 410 or (status == 400 and location == "pageToken"):
                    raise CursorExpired("Google Drive no longer knows the change-feed cursor") from None
                raise translate(exc, "reading the change feed") from None
            except ProviderError:
                raise
            except Exception as exc:
                raise translate(exc, "reading the change feed") from None
            for change in page.get("changes", []):
                made = self._change(change)
                if made is not None:
                    out.append(made)
            if page.get("newStartPageToken"):
                return iter(out), str(page["newStartPageToken"])
            token = page.get("nextPageToken")
            if not token:
                raise TransientError("reading the change feed: Google Drive gave no cursor to go on from")

    def _change(self, change: Mapping[str, Any]) -> Change | None:
        if change.get("changeType", "file") != "file":
            return None  # a shared drive's own settings
        file_id = str(change.get("fileId", ""))
        res = change.get("file")
        if change.get("removed") or not isinstance(res, Mapping) or res.get("trashed"):
            return Change(file_id, None)
        item = item_of(res)
        if item.is_dir:
            self._folders.forget()  # a folder renamed, moved or made: cached paths may now be wrong
        if skip_reason(item, self._export) is not None:
            return None
        # An exported document under its export's name; should another item hold that name, the remote index
        # sees two entries there and leaves the name alone until a full listing tells them apart.
        name = item.listed_name(self._export)
        return Change(item.id, item.entry(name), item.parent, name, None)

    def close(self) -> None:
        with self._state_lock:
            https, self._https = self._https, []
        for transport in https:
            transport.close()

