"""`dropbox`: Dropbox through the official SDK, signed in with OAuth (PKCE, no redirect, offline access).

Paths: the connection's root is the root of what the app may see (the whole Dropbox or the app's folder,
chosen when the app was made). Dropbox compares names without case: `A.txt` and `a.txt` are one file
(`case_insensitive`); listings report each name with the case it was created with, a child's path built from
its listed parent's so a folder and its files always agree on the case of the folder.

Identity: every entry has an `id:` that survives renames; `parent_id` is the listed folder's id (Dropbox gives
its root no id, so entries right under the root have none). Hash: Dropbox's `content_hash` (sha256 of the sha256
of each 4 MiB block), computed while uploading and downloading and compared with the service's. Modification
time: `client_modified`, which we set on every upload (whole seconds).

Change feed: `list_folder` recursive with `continue`; `changes_start` is `get_latest_cursor`, a `reset` (or a
cursor the service no longer reads) is `CursorExpired`. Dropbox reports a deletion without an id (its
`DeletedMetadata` has only a path), so a deleted entry's `Change.id` is its relative path, the same as
`Change.path`: the engine matches it by path (without case) and removes everything below it, since a deleted
folder is reported once, without its children. `wait_changes()` is `list_folder/longpoll` (`wait_for_changes`):
it waits for a change without listing anything and passes on the `backoff` Dropbox asks for.

Conditional writes (SERVER): a new name is uploaded with mode `add`, a replacement with `update(rev)`, both with
`strict_conflict`, and a delete carries `parent_rev`; the service checks them as it commits. A folder delete has
no such condition: `rmdir` lists the folder first and refuses one with content, and a file added in the moment
between that listing and the delete goes with the folder. `move` re-reads the source's rev just before the
move (a change in that moment is moved too; nothing is lost, it keeps its content under the new name).

Transfers: up to `chunk_size` (default 48 MiB, at most 150 MiB, Dropbox's limit for one request) in one
`upload`; above it an upload session (`start`, `append_v2`, `finish` with `client_modified`) whose chunks are
resent from the offset the service reports when a connection is cut mid-way, and which is started again from
the beginning when the service has forgotten it (a session lasts 48 hours: spec note 7). The SDK sends request
bodies from memory, so one chunk is held at a time. Downloads are streamed.

Errors: 429 / `too_many_requests` is a TransientError with the `Retry-After` the service asked for (the SDK's
own retries are turned off so the connection's pacer decides); `insufficient_space` is QuotaExceeded;
`disallowed_name` and `restricted_content` are PermissionDenied with Dropbox's reason; files Dropbox cannot
download (cloud documents, symbolic links) are left out of listings with a reason; a token the service refuses
is refreshed once, and a refresh it refuses is ReauthRequired ("sign-in needed").

Addresses: `api_url`, `content_url` and `notify_url` replace Dropbox's three hosts for every request (a test
server, plain http on 127.0.0.1 allowed) through an adapter mounted on the SDK's requests session; `token_url`
and `auth_url` replace the OAuth endpoints.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from engine.auth.oauth import OAuthSpec
from engine.hashing import hasher_for
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
    ReauthRequired,
    RemoteEntry,
    TransientError,
    retry_after_seconds,
)
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider, TokenRefused

if TYPE_CHECKING:
    import dropbox
    import requests

T = TypeVar("T")
MIB = 1 << 20
DEFAULT_CHUNK_MIB = 48
MAX_CHUNK_MIB = 150  # Dropbox refuses a request body over 150 MiB
HOSTS = {
    "api_url": "https://api.dropboxapi.com",
    "content_url": "https://content.dropboxapi.com",
    "notify_url": "https://notify.dropboxapi.com",
}
TOKEN_URL = "https://api.dropboxapi.com/oauth2/token"
AUTH_URL = "https://www.dropbox.com/oauth2/authorize"
SESSION_LIFETIME = 48 * 3600  # spec note 7: an upload session older than this is gone
SESSION_MARGIN = 3600  # start again rather than risk a session expiring under the last chunks
CHUNK_ATTEMPTS = 5  # one chunk of a session is resent this often before the upload fails as a whole
LONGPOLL_TIMEOUT = 30  # seconds; the shortest wait Dropbox accepts
LONGPOLL_MAX = 480  # the longest


def _dbx_path(path: str) -> str:
    """A connection-relative path as Dropbox writes it: "" for the root, "/a/b" otherwise."""
    path = path.strip("/")
    return f"/{path}" if path else ""


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


def _tags(error: object) -> list[str]:
    """The tags of a Dropbox error union, outermost first: UploadError path/reason/conflict/file ->
    ["path", "conflict", "file"]."""
    from dropbox.stone_base import Struct, Union

    tags: list[str] = []
    node: object = error
    while node is not None:
        if isinstance(node, Union):
            tags.append(str(node._tag))
            node = node._value
        elif isinstance(node, Struct) and hasattr(node, "reason"):
            node = node.reason  # UploadWriteFailed wraps the WriteError in `reason`
        else:
            break
    return tags


def _correct_offset(error: object) -> int | None:
    """The offset a session error says the service holds (`incorrect_offset`), else None."""
    from dropbox.stone_base import Union

    node: object = error
    while isinstance(node, Union):
        value = node._value
        if node._tag == "incorrect_offset" and hasattr(value, "correct_offset"):
            return int(value.correct_offset)
        node = value
    return None


_QUOTA = {"insufficient_space", "insufficient_quota", "team_folder_insufficient_space",
          "member_folder_insufficient_space", "team_folder_insufficient_quota", "member_folder_insufficient_quota",
          "upload_traffic_limit_reached"}  # fmt: skip
_DENIED = {
    "disallowed_name": "Dropbox does not allow this name (disallowed_name)",
    "restricted_content": "Dropbox restricts this file (restricted_content: a copyright or abuse claim)",
    "no_write_permission": "no permission to write there",
    "access_restricted": "access is restricted",
    "team_folder": "a team folder cannot be changed this way",
    "cant_move_shared_folder": "a shared folder cannot be moved this way",
    "locked": "the file is locked",
    "unsupported_content_type": "Dropbox cannot download this kind of file",
    "unsupported_file": "Dropbox cannot download this kind of file",
}


def _translate_api(tags: list[str], what: str, summary: str) -> ProviderError:
    """One Dropbox route error as the contract's error."""
    found = set(tags)
    if "reset" in found:
        return CursorExpired(f"{what}: Dropbox reset the change feed; everything is listed again")
    if found & _QUOTA:
        return QuotaExceeded(f"{what}: the Dropbox account has no space left")
    for tag, reason in _DENIED.items():
        if tag in found:
            return PermissionDenied(f"{what}: {reason}")
    if "too_many_write_operations" in found or "too_many_files" in found or "internal_error" in found:
        return TransientError(f"{what}: Dropbox is busy with other writes there, try again later")
    if "not_found" in found:
        return NotFound(f"{what}: not found")
    if "conflict" in found:
        return PreconditionFailed(f"{what}: another entry is in the way (another client wrote there)")
    if "content_hash_mismatch" in found:
        return TransientError(f"{what}: the data arrived damaged (content hash mismatch)")
    if "malformed_path" in found:
        return ProviderError(f"{what}: Dropbox cannot use this path")
    if "not_file" in found:
        return ProviderError(f"{what}: it is a folder, not a file")
    if "not_folder" in found:
        return _NotFolder(f"{what}: it is a file, not a folder")
    return ProviderError(f"{what}: Dropbox refused it ({summary or '/'.join(tags) or 'no reason given'})")


def _translate(exc: Exception, what: str) -> ProviderError:
    """Any error the SDK or requests raised, as one line for the user (never a token)."""
    import requests
    from dropbox import exceptions as dx

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, dx.ApiError):
        summary = str(getattr(exc, "error", "")) if not _tags(exc.error) else ""
        return _translate_api(_tags(exc.error), what, summary)
    if isinstance(exc, dx.RateLimitError):
        wait = float(exc.backoff) if exc.backoff is not None else None
        return TransientError(f"{what}: Dropbox asks to slow down (too many requests)", retry_after=wait)
    if isinstance(exc, dx.AuthError):
        tags = _tags(exc.error)
        if {"invalid_access_token", "expired_access_token"} & set(tags):
            return ReauthRequired(f"{what}: Dropbox no longer accepts this sign-in: sign-in needed")
        if "missing_scope" in tags:
            return AuthError(f"{what}: the Dropbox app lacks a permission it needs (missing scope)")
        return AuthError(f"{what}: Dropbox refused the sign-in ({'/'.join(tags) or 'unknown reason'})")
    if isinstance(exc, dx.InternalServerError):
        return TransientError(f"{what}: Dropbox had an internal error ({exc.status_code}), try again later")
    if isinstance(exc, dx.BadInputError):
        first = (exc.message or "").strip().splitlines()[0][:200] if exc.message else "bad request"
        return _BadInput(f"{what}: Dropbox refused the request: {first}")
    if isinstance(exc, dx.HttpError):
        if exc.status_code in (408, 502, 503, 504):
            return TransientError(f"{what}: Dropbox is busy ({exc.status_code}), try again later")
        return ProviderError(f"{what}: Dropbox answered HTTP {exc.status_code}")
    if isinstance(exc, requests.exceptions.Timeout):
        return NetworkError(f"{what}: Dropbox did not answer in time")
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        return NetworkError(f"{what}: Dropbox could not be reached")
    raise exc


class _NotFolder(ProviderError):
    """The path names a file where a folder was asked for."""


class _BadInput(ProviderError):
    """Dropbox could not read an argument (for the change feed: a cursor it no longer knows)."""


def _is_token_refusal(exc: Exception) -> bool:
    from dropbox import exceptions as dx

    return isinstance(exc, dx.AuthError) and bool(
        {"invalid_access_token", "expired_access_token"} & set(_tags(exc.error))
    )


def _timestamp(value: object) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return None


def _redirecting_session(options: Mapping[str, str]) -> tuple[requests.Session, dict[str, Any]]:
    """The SDK's requests session, with Dropbox's hosts sent to the overriding addresses; and a record of the
    last answer's `Date` header (for the clock check)."""
    import dropbox
    from requests.adapters import HTTPAdapter

    seen: dict[str, Any] = {}
    last = threading.local()  # this thread's last answer: its Retry-After, which the SDK drops for 5xx

    class Redirect(HTTPAdapter):
        def __init__(self, prefix: str, target: str) -> None:
            super().__init__(pool_maxsize=16)
            self.prefix, self.target = prefix, target.rstrip("/")

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if request.url.startswith(self.prefix):
                request.url = self.target + request.url[len(self.prefix) :]
            response = super().send(request, *args, **kwargs)
            seen["date"] = response.headers.get("Date")
            last.retry_after = response.headers.get("Retry-After")
            return response

    session = dropbox.create_session(max_connections=16)
    for option, host in HOSTS.items():
        target = options.get(option) or ""
        session.mount(host + "/", Redirect(host, target or host))
    seen["last"] = last
    return session, seen


class DropboxProvider(OAuthProvider):
    kind = "dropbox"
    title = "Dropbox"
    setup_note = (
        "Use an app of your own (dropbox.com/developers/apps) and give its app key. 'App folder' access lets "
        "skysync see only Apps/<app name>; 'Full Dropbox' lets it reach every folder. No app secret is needed: "
        "the sign-in uses PKCE and you paste the code Dropbox shows."
    )
    option_specs = (
        OptionSpec(
            "app_key",
            "app key of your Dropbox app (dropbox.com/developers/apps)",
            required=True,
            label="App key",
        ),
        OptionSpec(
            "app_secret",
            "app secret of that app (dropbox.com/developers/apps, Settings tab); not needed with PKCE sign-in",
            secret=True,
            label="App secret",
        ),
        TOKEN_OPTION,
        OptionSpec(
            "chunk_size",
            f"upload chunk in MiB, 1..{MAX_CHUNK_MIB}",
            default=str(DEFAULT_CHUNK_MIB),
            advanced=True,
            label="Upload chunk (MiB)",
        ),
        ACCOUNT_OPTION,
        OptionSpec("api_url", f"address replacing {HOSTS['api_url']}", advanced=True, label="API address"),
        OptionSpec("content_url", f"address replacing {HOSTS['content_url']}", advanced=True, label="Content address"),
        OptionSpec(
            "notify_url",
            f"address replacing {HOSTS['notify_url']}",
            advanced=True,
            label="Notification address",
        ),
        OptionSpec("token_url", f"address replacing {TOKEN_URL}", advanced=True, label="Token endpoint"),
        OptionSpec("auth_url", f"address replacing {AUTH_URL}", advanced=True, label="Sign-in address"),
    )  # fmt: skip

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.chunk_size = self._chunk_mib(options) * MIB
        self.capabilities = Capabilities(
            hash_kind=HashKind.DROPBOX,
            mtime_mode=MtimeMode.NATIVE,
            multipart_threshold=self.chunk_size,
            max_file_size=350 * 1024**3,  # Dropbox's limit for a file uploaded through the API
            server_side_move=True,
            conditional_writes=Conditional.SERVER,
            conditional_deletes=Conditional.SERVER,
            ids=True,
            case_insensitive=True,
            server_side_copy=True,
            list_dir=True,
            changes=True,
            wait_for_changes=True,
        )
        self._session: requests.Session | None = None
        self._dates: dict[str, Any] = {}
        self._client_lock = threading.Lock()
        self._clients: dict[str, dropbox.Dropbox] = {}

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
        for option in (*HOSTS, "token_url", "auth_url"):
            value = options.get(option)
            if value and not value.startswith(("http://", "https://")):
                raise InvalidOption(f"option '{option}' must be an http:// or https:// address")

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        app_key = options.get("app_key")
        if not app_key:
            raise InvalidOption("option 'app_key' is required for provider 'dropbox' (your Dropbox app's key)")
        return OAuthSpec(
            client_id=app_key,
            client_secret=options.get("app_secret") or None,
            auth_url=options.get("auth_url") or AUTH_URL,
            token_url=options.get("token_url") or TOKEN_URL,
            pkce=True,
            redirect="none",  # Dropbox shows the code to paste; no redirect address is needed
            extra_auth_params={"token_access_type": "offline"},
        )

    # -- plumbing --------------------------------------------------------------------------------------------

    def _client(self, token: str) -> dropbox.Dropbox:
        import dropbox

        with self._client_lock:
            if self._session is None:
                self._session, self._dates = _redirecting_session(self.options)
                # On a refused token the SDK tries a refresh of its own, which we do instead (through the token
                # store), and says so as a WARNING that would reach stderr outside our log's format.
                logging.getLogger("dropbox").setLevel(logging.ERROR)
            client = self._clients.get(token)
            if client is None:
                # Retries are the engine's (its pacer honours Retry-After); the SDK would sleep on its own.
                client = dropbox.Dropbox(
                    oauth2_access_token=token, session=self._session, max_retries_on_error=0,
                    max_retries_on_rate_limit=0, timeout=100, user_agent="skysync",
                )  # fmt: skip
                self._clients = {token: client}  # older tokens are not used again
            return client

    def _call(self, what: str, func: Callable[[dropbox.Dropbox], T]) -> T:
        """`func(client)` through `authorized`: a token Dropbox refuses is renewed once and the call made again."""

        def attempt(token: str) -> T:
            try:
                return func(self._client(token))
            except Exception as exc:
                if _is_token_refusal(exc):
                    raise TokenRefused(f"{what}: Dropbox refused the access token") from None
                raise self._error(exc, what) from None

        return self.authorized(what, attempt)

    def _error(self, exc: Exception, what: str) -> ProviderError:
        """`exc` translated, with the wait the service asked for where the SDK did not keep it (a 503's
        Retry-After header)."""
        error = _translate(exc, what)
        if error.retryable and error.retry_after is None:
            last = self._dates.get("last")
            error.retry_after = retry_after_seconds(getattr(last, "retry_after", None))
        return error

    def close(self) -> None:
        with self._client_lock:
            if self._session is not None:
                self._session.close()
            self._session, self._clients = None, {}

    def account_id(self) -> str:
        return str(self._call("reading the Dropbox account", lambda c: c.users_get_current_account()).account_id)

    def check(self) -> None:
        self.account_id()

    def keeps_revisions(self) -> str | None:
        """Dropbox keeps every file's version history (30 days at least, longer on paid plans), for every
        account: an upload over a file leaves the replaced `rev` restorable. The log names that rev and its
        time, both from the listing (the default `replaced_version`)."""
        return None

    def server_time(self) -> float | None:
        try:
            self.check()
        except ProviderError:
            pass
        return self.http_date(self._dates.get("date"))

    # -- entries ---------------------------------------------------------------------------------------------

    def _entry(self, meta: Any, path: str, parent_id: str | None) -> RemoteEntry:
        from dropbox import files

        if isinstance(meta, files.FolderMetadata):
            return RemoteEntry(path, True, id=meta.id, parent_id=parent_id)
        return RemoteEntry(
            path, False, int(meta.size), _timestamp(meta.client_modified), meta.content_hash, meta.rev,
            meta.id, parent_id,
        )  # fmt: skip

    def folder_id(self, folder: str) -> str | None:
        """The folder's `id:`; None for the root, to which Dropbox gives no metadata."""
        if not folder.strip("/"):
            return None
        meta = self._call(f"reading /{folder}", lambda c: c.files_get_metadata(_dbx_path(folder)))
        return str(meta.id)

    def _pages(self, folder: str, recursive: bool) -> Iterator[list[Any]]:
        """The entries of `folder`, page by page; ContainerNotFound when it is missing or a file."""
        what = f"listing /{folder}"
        try:
            page = self._call(what, lambda c: c.files_list_folder(_dbx_path(folder), recursive=recursive))
        except (NotFound, _NotFolder):
            raise ContainerNotFound(f"/{folder}: no such folder in Dropbox") from None
        yield page.entries
        while page.has_more:
            cursor = page.cursor
            page = self._call(what, lambda c, cur=cursor: c.files_list_folder_continue(cur))
            yield page.entries

    def _walk(self, folder: str, recursive: bool, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        from dropbox import files

        depth = len([p for p in folder.strip("/").split("/") if p])
        root: list[str | None] = []  # the listed folder's id, read once its listing has shown it exists
        folders: dict[str, tuple[str, str | None]] = {}  # path_lower -> (relative display path, id)
        base = _dbx_path(folder).lower()
        waiting: list[Any] = []  # entries listed before their folder (Dropbox does not promise the order)

        def relative(meta: Any) -> tuple[str, str | None] | None:
            parent = meta.path_lower.rpartition("/")[0]
            if parent == base:
                if not root:
                    root.append(self.folder_id(folder))
                return meta.name, root[0]
            known = folders.get(parent)
            return (f"{known[0]}/{meta.name}", known[1]) if known else None

        def emit(meta: Any) -> Iterator[RemoteEntry]:
            found = relative(meta)
            if found is None:
                # Its folder never showed up: the path Dropbox displays, from the listed folder down.
                found = ("/".join(meta.path_display.split("/")[depth + 1 :]), None)
            path, parent_id = found
            if isinstance(meta, files.FolderMetadata):
                folders[meta.path_lower] = (path, meta.id)
            elif not meta.is_downloadable:
                on_skip(path, "Dropbox cannot download it (a cloud document, e.g. Paper or Google Docs)")
                return
            elif meta.symlink_info is not None:
                on_skip(path, "a symbolic link kept by Dropbox")
                return
            yield self._entry(meta, path, parent_id)

        for entries in self._pages(folder, recursive):
            for meta in entries:
                if isinstance(meta, files.DeletedMetadata):
                    continue
                if relative(meta) is None:
                    waiting.append(meta)
                    continue
                yield from emit(meta)
        # Parents first, so each child finds its folder's path.
        for meta in sorted(waiting, key=lambda m: m.path_lower.count("/")):
            yield from emit(meta)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, on_skip)

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, lambda path, reason: None)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, False, lambda path, reason: None)

    # -- change feed -----------------------------------------------------------------------------------------

    def changes_start(self, folder: str) -> str:
        what = f"starting the change feed of /{folder}"
        try:
            result = self._call(
                what, lambda c: c.files_list_folder_get_latest_cursor(_dbx_path(folder), recursive=True)
            )
        except NotFound:
            raise ContainerNotFound(f"/{folder}: no such folder in Dropbox") from None
        return str(result.cursor)

    def changes(self, folder: str, cursor: str) -> tuple[Iterator[Change], str]:
        from dropbox import files

        what = f"reading the changes of /{folder}"
        base = _dbx_path(folder).lower()
        depth = len([p for p in folder.strip("/").split("/") if p])
        root_id: list[str | None] = []
        seen_folders: dict[str, str] = {}  # path_lower -> relative display path, within this batch
        out: list[Change] = []
        while True:
            try:
                page = self._call(what, lambda c, cur=cursor: c.files_list_folder_continue(cur))
            except _BadInput:  # a cursor the service cannot read (any more)
                raise CursorExpired(f"{what}: Dropbox no longer knows the cursor") from None
            for meta in page.entries:
                if meta.path_lower == base:
                    if isinstance(meta, files.DeletedMetadata):
                        raise ContainerNotFound(f"/{folder}: the folder was deleted in Dropbox")
                    continue
                parent = meta.path_lower.rpartition("/")[0]
                if parent in seen_folders:
                    path = f"{seen_folders[parent]}/{meta.name}"
                else:
                    path = "/".join(meta.path_display.split("/")[depth + 1 :])
                if isinstance(meta, files.DeletedMetadata):
                    # No id for a deletion: the path stands for it (see the module's docstring).
                    out.append(Change(path, None, None, meta.name, path))
                    continue
                if isinstance(meta, files.FolderMetadata):
                    seen_folders[meta.path_lower] = path
                elif not meta.is_downloadable or meta.symlink_info is not None:
                    continue  # left out of listings too
                if parent == base:
                    if not root_id:
                        root_id.append(self.folder_id(folder))
                    parent_id = root_id[0]
                else:
                    parent_id = None  # Dropbox reports paths, not parents; the path places the entry
                out.append(Change(meta.id, self._entry(meta, path, parent_id), parent_id, meta.name, path))
            cursor = page.cursor
            if not page.has_more:
                return iter(out), cursor

    def wait_changes(self, cursor: str, timeout: float = LONGPOLL_TIMEOUT) -> ChangeWait:
        """`list_folder/longpoll`: wait until something changes after `cursor` (or `timeout` seconds pass, kept
        within the 30..480 Dropbox accepts; it may add up to 90 s of its own) without listing anything."""
        import dropbox

        with self._client_lock:
            if self._session is None:
                self._session, self._dates = _redirecting_session(self.options)
            # The notify host takes no token (Dropbox's longpoll route has no auth).
            client = dropbox.Dropbox(oauth2_access_token="none", session=self._session, max_retries_on_error=0,
                                     max_retries_on_rate_limit=0, timeout=LONGPOLL_MAX + 120)  # fmt: skip
        wait = int(max(LONGPOLL_TIMEOUT, min(LONGPOLL_MAX, timeout)))
        what = "waiting for Dropbox changes"
        try:
            result = client.files_list_folder_longpoll(cursor, timeout=wait)
        except Exception as exc:
            error = self._error(exc, what)
            if isinstance(error, _BadInput):  # a cursor the service cannot read (any more)
                raise CursorExpired(f"{what}: Dropbox no longer knows the cursor") from None
            raise error from None
        return ChangeWait(bool(result.changes), float(result.backoff or 0))

    # -- transfers -------------------------------------------------------------------------------------------

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        what = f"reading /{path}"
        meta, response = self._call(what, lambda c: c.files_download(_dbx_path(path)))
        hasher = hasher_for(HashKind.DROPBOX)
        try:
            for chunk in response.iter_content(MIB):
                out.write(chunk)
                hasher.update(chunk)
        except Exception as exc:
            raise _translate(exc, what) from None
        finally:
            response.close()
        if meta.content_hash and hasher.text() != meta.content_hash:
            raise TransientError(f"{what}: the data arrived damaged (content hash mismatch)")
        return self._entry(meta, path.strip("/"), None)

    def _mode(self, expect: Expect | None) -> Any:
        from dropbox import files

        if expect is None:
            return files.WriteMode.overwrite
        if expect.seen is None:
            return files.WriteMode.add
        if expect.seen.revision is None:
            return files.WriteMode.overwrite
        return files.WriteMode.update(expect.seen.revision)

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None) -> RemoteEntry:
        from dropbox import files

        path = path.strip("/")
        what = f"writing /{path}"
        commit = files.CommitInfo(
            path=_dbx_path(path), mode=self._mode(expect), autorename=False,
            client_modified=dt.datetime.fromtimestamp(int(mtime), dt.UTC).replace(tzinfo=None),
            mute=True, strict_conflict=True,
        )  # fmt: skip
        start = src.tell() if src.seekable() else None
        first = _read_full(src, self.chunk_size + 1) if size <= self.chunk_size else b""
        hashers = [hasher_for(HashKind.DROPBOX)]  # a restarted session starts a new one
        try:
            if size <= self.chunk_size and len(first) <= self.chunk_size:
                hashers[0].update(first)
                meta = self._call(what, lambda c: c.files_upload(
                    first, commit.path, mode=commit.mode, autorename=False, client_modified=commit.client_modified,
                    mute=True, strict_conflict=True,
                ))  # fmt: skip
            else:
                meta = self._session_upload(src, first, commit, hashers, start, what)
        except PreconditionFailed as exc:
            if expect is None:  # not a condition of ours: a file where a parent folder should be, or a folder
                raise ProviderError(f"{what}: a file or folder is in the way (names differ only by case?)") from exc
            return self._landed(path, hashers[-1].text(), expect, what)
        if meta.content_hash != hashers[-1].text():
            raise TransientError(f"{what}: Dropbox stored other bytes than were sent (content hash mismatch)")
        return self._entry(meta, path, None)

    def _landed(self, path: str, digest: str, expect: Expect | None, what: str) -> RemoteEntry:
        """After a refused conditional write: the file is ours when it holds exactly what we sent (an earlier
        attempt of this upload landed before its answer was lost); otherwise the condition failed."""
        try:
            meta = self._call(what, lambda c: c.files_get_metadata(_dbx_path(path)))
        except NotFound:
            meta = None
        from dropbox import files

        if isinstance(meta, files.FileMetadata) and meta.content_hash == digest:
            return self._entry(meta, path, None)
        raise (expect or Expect.absent()).failed(what)

    def _session_upload(
        self, src: BinaryIO, first: bytes, commit: Any, hashers: list[Any], start: int | None, what: str
    ) -> Any:
        """An upload session: chunks appended at the offsets the service confirms, then `finish`."""
        from dropbox import files

        for restart in range(2):
            if restart:  # the service forgot the session (over 48 hours old): send everything again
                if start is None:
                    raise TransientError(f"{what}: the upload session expired and the source cannot be re-read")
                src.seek(start)
                first = b""
                hashers.append(hasher_for(HashKind.DROPBOX))
            hasher = hashers[-1]
            started = time.monotonic()
            session_id: str | None = None
            offset = 0
            pending = first
            try:
                while True:
                    chunk = pending + _read_full(src, self.chunk_size - len(pending))
                    pending = b""
                    if not chunk and session_id is not None:
                        break
                    hasher.update(chunk)
                    if time.monotonic() - started > SESSION_LIFETIME - SESSION_MARGIN:
                        raise _SessionGone()
                    if session_id is None:
                        session_id = self._chunk(what, lambda c, b=chunk: c.files_upload_session_start(b).session_id)
                    else:
                        self._append(session_id, offset, chunk, what)
                    offset += len(chunk)
                    if len(chunk) < self.chunk_size:
                        break
                return self._finish(files.UploadSessionCursor(session_id, offset), commit, hasher.text(), what)
            except _SessionGone:
                continue
        raise TransientError(f"{what}: the upload session was lost twice")

    def _finish(self, cursor: Any, commit: Any, digest: str, what: str) -> Any:
        """`finish`, resent when its connection is cut; a resend that finds the session consumed checks
        whether the first one landed (the file holds what was sent)."""
        for attempt in range(CHUNK_ATTEMPTS):
            try:
                return self._call(what, lambda c: c.files_upload_session_finish(b"", cursor, commit))
            except NotFound:
                try:
                    meta = self._call(what, lambda c: c.files_get_metadata(commit.path))
                except NotFound:
                    raise _SessionGone() from None
                if getattr(meta, "content_hash", None) == digest:
                    return meta
                raise _SessionGone() from None
            except ProviderError as exc:
                if not exc.retryable or attempt == CHUNK_ATTEMPTS - 1:
                    raise
                time.sleep(min(exc.retry_after or 2**attempt, 60))
        raise TransientError(f"{what}: the upload session could not be finished")

    def _append(self, session_id: str, offset: int, chunk: bytes, what: str) -> None:
        """One chunk at `offset`; a resend after a cut connection continues from where the service is."""
        from dropbox import exceptions as dx
        from dropbox import files

        sent = 0  # how much of `chunk` the service already holds
        for attempt in range(CHUNK_ATTEMPTS):
            cursor = files.UploadSessionCursor(session_id, offset + sent)
            body = chunk[sent:]
            try:
                self._call(what, _raw(lambda c, b=body, cur=cursor: c.files_upload_session_append_v2(b, cur)))
                return
            except _Raw as raw:
                exc = raw.exc
                correct = _correct_offset(exc.error) if isinstance(exc, dx.ApiError) else None
                if correct is not None and offset <= correct <= offset + len(chunk):
                    if correct == offset + len(chunk):
                        return  # the service stored it; only its answer was lost
                    sent = correct - offset
                    continue
                error = _translate(exc, what)
                if isinstance(error, NotFound):
                    raise _SessionGone() from None
                if not error.retryable or attempt == CHUNK_ATTEMPTS - 1:
                    raise error from None
                time.sleep(min(error.retry_after or 2**attempt, 60))
        raise TransientError(f"{what}: a chunk of the upload session could not be sent")

    def _chunk(self, what: str, func: Callable[[dropbox.Dropbox], T]) -> T:
        """A session call retried in place on a cut connection or throttling, so hours of upload are not lost
        to one failed request."""
        for attempt in range(CHUNK_ATTEMPTS):
            try:
                return self._call(what, func)
            except NotFound:
                raise _SessionGone() from None
            except ProviderError as exc:
                if not exc.retryable or attempt == CHUNK_ATTEMPTS - 1:
                    raise
                time.sleep(min(exc.retry_after or 2**attempt, 60))
        raise TransientError(f"{what}: the upload session could not be continued")

    # -- changes on the service ------------------------------------------------------------------------------

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        from dropbox import files

        path = path.strip("/")
        what = f"deleting /{path}"
        changed = PreconditionFailed(f"{what}: another client changed or deleted it since it was listed")
        rev = expect.seen.revision if expect is not None and expect.seen is not None else None
        if rev is None:
            # A delete without parent_rev would take a folder (and all inside) that took the file's name, so
            # the name is read first and only the file found there is deleted.
            try:
                meta = self._call(what, lambda c: c.files_get_metadata(_dbx_path(path)))
            except NotFound:
                return
            if not isinstance(meta, files.FileMetadata) or (expect is not None and not expect.met_by(
                    self._entry(meta, path, None))):  # fmt: skip
                raise changed
            rev = meta.rev
        try:
            self._call(what, lambda c: c.files_delete_v2(_dbx_path(path), parent_rev=rev))
        except NotFound:
            # Gone already; unless the service reports a stale parent_rev this way and the file is there.
            try:
                self._call(what, lambda c: c.files_get_metadata(_dbx_path(path)))
            except NotFound:
                return
            raise changed from None
        except PreconditionFailed:
            raise changed from None

    def mkdir(self, path: str) -> RemoteEntry:
        from dropbox import files

        path = path.strip("/")
        what = f"creating folder /{path}"
        try:
            meta = self._call(what, lambda c: c.files_create_folder_v2(_dbx_path(path), autorename=False)).metadata
        except PreconditionFailed:
            meta = self._call(what, lambda c: c.files_get_metadata(_dbx_path(path)))
            if not isinstance(meta, files.FolderMetadata):
                raise ProviderError(f"{what}: a file has that name") from None
        return RemoteEntry(path, True, id=meta.id)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        try:
            page = self._call(what, lambda c: c.files_list_folder(_dbx_path(path), limit=1))
        except (NotFound, _NotFolder):
            return  # gone, or a file took the name: not a folder to remove
        if page.entries:
            raise FolderNotEmpty(f"{what}: it is not empty")
        try:
            self._call(what, lambda c: c.files_delete_v2(_dbx_path(path)))
        except NotFound:
            return

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"moving /{src} to /{dst}"
        if listed is not None and not listed.is_dir and listed.revision is not None:
            current = self._call(what, lambda c: c.files_get_metadata(_dbx_path(src)))
            if getattr(current, "rev", None) != listed.revision:
                raise PreconditionFailed(f"{what}: another client changed it since it was listed")
        result = self._call(what, lambda c: c.files_move_v2(_dbx_path(src), _dbx_path(dst), autorename=False))
        return self._entry(result.metadata, dst, None)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        if expect is None or expect.seen is not None:
            # copy_v2 never replaces: the file in the way goes first, on the condition given.
            self.delete(dst, expect=expect)
        result = self._call(what, lambda c: c.files_copy_v2(_dbx_path(src), _dbx_path(dst), autorename=False))
        return self._entry(result.metadata, dst, None)


class _SessionGone(Exception):
    """The service no longer knows the upload session (expired or consumed): start a new one."""


class _Raw(Exception):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc


def _raw(func: Callable[[Any], T]) -> Callable[[Any], T]:
    """`func` with its session errors passed through untranslated (`incorrect_offset` carries the offset)."""
    from dropbox import exceptions as dx

    def call(client: Any) -> T:
        try:
            return func(client)
        except dx.ApiError as exc:
            raise _Raw(exc) from None
        except Exception as exc:
            if _is_token_refusal(exc):
                raise
            raise _Raw(exc) from None

    return call
