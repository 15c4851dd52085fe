"""`yandex`: Yandex Disk through its REST API with the `yadisk` SDK, signed in with Yandex OAuth (device code).

(The WebDAV `yandex` preset of the `webdav` kind stays for those who prefer it; this kind is the native API.)

Paths: the connection's root is the root of the Disk (`disk:/`). Names are compared with case, as rclone's
Yandex backend does. Folders are real and empty ones survive. Entries carry no ids: the service's
`resource_id` would only serve a change feed, and Yandex Disk has none (`changes` is off: the engine polls with
the listing, as the spec's attribute table and the engine's polling period expect).

Listings walk folders breadth-first with `GET /resources` paged by `limit`/`offset` (1,000 a page, the most
the service gives), up to eight folders at once; a folder that vanishes during the walk is reported to
`on_skip`, so nothing below it is taken for deleted. Paging by offset is not a snapshot: an entry added or
removed in the folder while its pages are read can shift the pages, so another entry may be missed or seen
twice; a missed one is simply seen at the next pass, and a duplicate is dropped. (`/resources/files` is not used:
it pages through every file of the whole Disk, without folders, so empty folders would be lost and a task on
a small folder of a big Disk would read all of it.)

Hash: `sha256` (the strongest the API reports; `md5` is there too), checked against the bytes while they are
sent and received. Revision: the resource's `revision` (the Disk's revision at its last change). Modification
time: the service keeps none of its own (the attribute table), so it goes into the file's `custom_properties`
under `rclone_modified` (RFC 3339 with nanoseconds, the key and form rclone uses, so files either tool wrote
keep their times for the other), set by a `PATCH` right after each upload; a file without it (uploaded by the
web interface) shows the service's `modified` time.

Transfers: `GET /resources/upload` hands out the address the bytes are `PUT` to (streamed, one request: the API
has no resumable upload; a large file answered 202 is still being moved into the Disk, and the mtime's `PATCH`
waits for it to appear), `GET /resources/download` the address they are read from. A failed upload leaves
nothing behind on the service (it stores a file only once the whole body arrived).

Conditions: a new name is uploaded with `overwrite=false`, which the service checks (`PreconditionFailed` when
another client created it meanwhile, unless it holds the very bytes being sent: then it is taken as this
upload); a replacement re-reads the name just before the upload link is asked (REREAD: a change in the moment
between the read and the end of the upload can be overwritten). A delete names the content it expects by `md5`,
which the service checks as it deletes (`MD5DifferError`), after a re-read of the revision; deletions go to the
Disk's trash. A move re-reads the source's revision just before moving and never replaces anything at the
destination.

Errors: 429 (too many requests) and 423 (resource locked, or the upload traffic limit) are TransientErrors with
the `Retry-After` the service sent, as are 5xx answers; the SDK's own retries are off so the connection's pacer
decides. 507 and 413 are QuotaExceeded, 403 PermissionDenied. A refused token is refreshed once; a refused
refresh is ReauthRequired ("sign-in needed").

Addresses: `api_url` replaces `https://cloud-api.yandex.net/v1/disk` for every API call (the SDK's requests
session rewrites them; the upload and download addresses the API hands out are used as given), `auth_url`
replaces the OAuth server `https://oauth.yandex.ru` (`/authorize`, `/token`, `/device/code` below it).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, TypeVar

from engine.auth.oauth import OAuthSpec
from engine.providers.base import (
    Capabilities,
    Conditional,
    ContainerNotFound,
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
    retry_after_seconds,
    sane_mtime,
)
from engine.providers.listednames import shown_path, unusable_name
from engine.providers.localwrite import LocalWrite
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider, TokenRefused

T = TypeVar("T")
API_URL = "https://cloud-api.yandex.net/v1/disk"
OAUTH_URL = "https://oauth.yandex.ru"
MTIME_KEY = "rclone_modified"
PAGE = 1000  # the most items one `GET /resources` returns
LIST_THREADS = 8  # folders listed at once during a walk
TIMEOUT = (15.0, 120.0)  # connect, read (between bytes)
PATCH_ATTEMPTS = 7  # a big upload answered 202 shows up a moment later: waits of 0.5 s doubling, ~30 s in all
CHUNK = 1 << 20  # bytes read from the source per write of the upload's body
MAX_FILE_SIZE = 50 * 1024**3  # Yandex Disk's largest file; a smaller account limit is the service's 413


def _disk(path: str) -> str:
    return "disk:/" + path.strip("/")


def rfc3339(seconds: float) -> str:
    """`seconds` as RFC 3339 in UTC with nanoseconds, trailing zeros dropped (Go's RFC3339Nano, as rclone)."""
    whole = int(seconds // 1)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    text = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return text + (f".{fraction}" if fraction else "") + "Z"


def parse_time(value: object) -> float | None:
    """A time kept in custom properties (RFC 3339, any number of fractional digits, or epoch seconds another
    tool wrote) as POSIX seconds; None for anything that is not a plausible time."""
    if isinstance(value, int | float):
        return sane_mtime(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    fraction = ""
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, rest = rest[:digits], rest[digits:]
    try:
        when = dt.datetime.fromisoformat(head + rest)
    except ValueError:
        return sane_mtime(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = when.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
    return sane_mtime(seconds)


def _timestamp(value: object) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return None


def entry_of(res: Any, path: str) -> RemoteEntry:
    """A yadisk resource object as the contract's entry at connection-relative `path`."""
    if res.type == "dir":
        return RemoteEntry(path, True)
    props = res.custom_properties if isinstance(res.custom_properties, dict) else {}
    mtime = parse_time(props.get(MTIME_KEY))
    if mtime is None:
        mtime = _timestamp(res.modified)
    revision = str(res.revision) if res.revision is not None else f"{res.sha256 or res.md5}@{res.modified}"
    return RemoteEntry(path, False, int(res.size or 0), mtime, res.sha256 or None, revision)


# -- errors ------------------------------------------------------------------------------------------------------


class _ParentMissing(ProviderError):
    """The parent folder of the path does not exist (409 DiskPathDoesntExistsError)."""


class _Exists(ProviderError):
    """Something already has the name (409 DiskResourceAlreadyExistsError / ...ExistentDirectoryError)."""

    def __init__(self, message: str, is_dir: bool) -> None:
        super().__init__(message)
        self.is_dir = is_dir


class _NotFolder(ProviderError):
    """A folder was asked for and the path names a file."""


def _header(exc: Exception, name: str) -> str | None:
    response = getattr(getattr(exc, "response", None), "_response", None)
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


def translate(exc: Exception, what: str) -> ProviderError:
    """Any error yadisk raised, as one line for the user (never a token)."""
    from yadisk import exceptions as yx

    if isinstance(exc, ProviderError):
        return exc
    wait = retry_after_seconds(_header(exc, "Retry-After"))
    if isinstance(exc, yx.UploadTrafficLimitExceededError):
        return TransientError(f"{what}: the Yandex Disk upload traffic limit is reached for now", retry_after=wait)
    if isinstance(exc, yx.LockedError):
        return TransientError(f"{what}: Yandex Disk has it locked (another operation on it is running)",
                              retry_after=wait)  # fmt: skip
    if isinstance(exc, yx.TooManyRequestsError):
        return TransientError(f"{what}: Yandex Disk asks to slow down (too many requests)", retry_after=wait)
    if isinstance(exc, yx.UnauthorizedError):
        return TokenRefused(f"{what}: Yandex Disk refused the sign-in")
    if isinstance(exc, yx.ForbiddenError):
        return PermissionDenied(f"{what}: Yandex Disk refused access (does the app have Disk write access?)")
    if isinstance(exc, yx.MD5DifferError):
        return PreconditionFailed(f"{what}: another client changed it since it was listed")
    if isinstance(exc, yx.ParentNotFoundError):
        return _ParentMissing(f"{what}: its folder does not exist")
    if isinstance(exc, yx.PathExistsError):
        return _Exists(f"{what}: something already has that name", isinstance(exc, yx.DirectoryExistsError))
    if isinstance(exc, yx.NotFoundError):
        return NotFound(f"{what}: not found")
    if isinstance(exc, yx.WrongResourceTypeError):
        return _NotFolder(f"{what}: it is a file, not a folder")
    if isinstance(exc, yx.InsufficientStorageError):
        return QuotaExceeded(f"{what}: the Yandex Disk has no space left")
    if isinstance(exc, yx.PayloadTooLargeError):
        return QuotaExceeded(f"{what}: the file is larger than this Yandex Disk account accepts")
    if isinstance(exc, yx.RequestTimeoutError):
        return NetworkError(f"{what}: Yandex Disk did not answer in time")
    if isinstance(exc, yx.RequestError):
        return NetworkError(f"{what}: Yandex Disk could not be reached")
    if isinstance(exc, yx.RetriableYaDiskError):
        status = getattr(getattr(exc, "response", None), "status", "") or "no answer"
        return TransientError(f"{what}: Yandex Disk is busy ({status}), try again later", retry_after=wait)
    if isinstance(exc, yx.YaDiskError):
        status = getattr(getattr(exc, "response", None), "status", "")
        code = str(getattr(exc, "error_type", "") or "")[:80]
        return ProviderError(f"{what}: Yandex Disk refused it ({code or 'HTTP'} {status})".rstrip())
    if isinstance(exc, OSError):
        return NetworkError(f"{what}: Yandex Disk could not be reached")
    raise exc


# -- streams that hash what passes ---------------------------------------------------------------------------


class _HashingReader:
    """`src` as the SDK reads it for the PUT body, hashed on the way (not seekable: the SDK then streams it)."""

    def __init__(self, src: BinaryIO) -> None:
        self.src, self.sha256, self.count = src, hashlib.sha256(), 0

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        data = self.src.read(size)
        self.sha256.update(data)
        self.count += len(data)
        return data


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out, self.sha256 = out, hashlib.sha256()

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.out.write(data) or len(data)


def _session(api_url: str, seen: dict[str, Any]) -> Any:
    """yadisk's requests session with the API's address replaced by `api_url`; `seen` keeps the last answer's
    Date header (the clock check)."""
    from yadisk import settings
    from yadisk.sessions.requests_session import RequestsSession

    class Redirecting(RequestsSession):  # type: ignore[misc]
        def send_request(self, method: Any, url: str, **kwargs: Any) -> Any:
            default = settings.BASE_API_URL + "/v1/disk"
            if url.startswith(default):
                url = api_url + url[len(default):]
            response = super().send_request(method, url, **kwargs)
            seen["date"] = response._response.headers.get("Date")
            return response

    return Redirecting()


class YandexProvider(OAuthProvider):
    kind = "yandex"
    title = "Yandex Disk"
    setup_note = (
        "Register an app of your own at oauth.yandex.com with the Yandex Disk REST API permissions (read, write "
        "and disk info) and give its ClientID and Client secret. You sign in on any computer by entering the code "
        "skysync shows at the address it prints. File times are kept in each file's custom properties."
    )
    option_specs = (
        OptionSpec("client_id", "ClientID of your app at oauth.yandex.com (with Yandex Disk REST API access)",
                   required=True, label="Client ID"),
        OptionSpec("client_secret", "Client secret of that app (Yandex asks for it with every token request)",
                   secret=True, required=True, label="Client secret"),
        TOKEN_OPTION,
        ACCOUNT_OPTION,
        OptionSpec("api_url", f"address replacing {API_URL}", advanced=True, label="API address"),
        OptionSpec("auth_url", f"OAuth server replacing {OAUTH_URL}", advanced=True, label="Sign-in address"),
    )  # fmt: skip
    capabilities = Capabilities(
        hash_kind=HashKind.SHA256,
        mtime_mode=MtimeMode.METADATA,
        max_file_size=MAX_FILE_SIZE,
        server_side_move=True,
        server_side_copy=True,
        conditional_writes=Conditional.REREAD,
        conditional_deletes=Conditional.SERVER,
        list_dir=True,
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self._api = (self.options.get("api_url") or API_URL).rstrip("/")
        self._seen: dict[str, Any] = {}
        self._client_lock = threading.Lock()
        self._client: Any = None

    # -- options and sign-in ---------------------------------------------------------------------------------

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        for key in ("api_url", "auth_url"):
            value = options.get(key)
            if value and not value.startswith(("http://", "https://")):
                raise InvalidOption(f"option '{key}' must be an http:// or https:// address")

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        if not options.get("client_id"):
            raise InvalidOption("option 'client_id' is required for provider 'yandex' (your app's ClientID)")
        base = (options.get("auth_url") or OAUTH_URL).rstrip("/")
        return OAuthSpec(
            client_id=options["client_id"],
            client_secret=options.get("client_secret") or None,
            auth_url=base + "/authorize",
            token_url=base + "/token",
            device_url=base + "/device/code",  # the sign-in needs no browser on this box
            pkce=False,
            redirect="none",
            device_grant="device_code",  # Yandex's names, older than RFC 8628's
            device_code_field="code",
        )

    # -- plumbing --------------------------------------------------------------------------------------------

    def _yadisk(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import yadisk

                # Its request and retry lines (upload addresses included) are not ours to print.
                logging.getLogger("yadisk").setLevel(logging.WARNING)
                self._client = yadisk.Client(session=_session(self._api, self._seen))
            return self._client

    def _call(self, what: str, func: Callable[[Any, dict[str, Any]], T]) -> T:
        """`func(client, kwargs)` with a valid token in `kwargs`, through `authorized` (a refused token is renewed
        once). The SDK's own retries are off: the connection's pacer decides, with the service's Retry-After."""
        client = self._yadisk()

        def attempt(token: str) -> T:
            kwargs = {"headers": {"Authorization": f"OAuth {token}"}, "n_retries": 0, "timeout": TIMEOUT}
            try:
                return func(client, kwargs)
            except Exception as exc:
                raise translate(exc, what) from None

        return self.authorized(what, attempt)

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
            self._client = None

    def account_id(self) -> str:
        info = self._call("reading the Yandex Disk account", lambda c, kw: c.get_disk_info(**kw))
        user = getattr(info, "user", None)
        return str(getattr(user, "uid", "") or "")

    def check(self) -> None:
        self.account_id()

    def keeps_revisions(self) -> str | None:
        # The web interface shows a history for some files, but the REST API can neither list nor restore an
        # earlier version: nothing a conflict could rely on to keep the remote side's edit.
        return "Yandex Disk's API can neither list nor restore earlier versions of a file"

    def server_time(self) -> float | None:
        try:
            self.check()
        except ProviderError:
            pass
        return self.http_date(self._seen.get("date"))

    def _meta(self, path: str, what: str, **extra: Any) -> Any:
        return self._call(what, lambda c, kw: c.get_meta(_disk(path), **extra, **kw))

    def _meta_or_none(self, path: str, what: str) -> Any | None:
        try:
            return self._meta(path, what, limit=0)
        except NotFound:
            return None

    # -- listing ---------------------------------------------------------------------------------------------

    def _children(self, folder: str, what: str) -> list[Any]:
        return self._call(what, lambda c, kw: list(c.listdir(_disk(folder), limit=PAGE, **kw)))

    def _walk(self, folder: str, recursive: bool, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        """Breadth-first; each folder met is listed at once on a small pool, so with no change feed a poll's full
        listing costs the slowest chain of folders rather than the sum of all of them."""
        from concurrent.futures import Future, ThreadPoolExecutor

        folder = folder.strip("/")
        what = f"listing /{folder}"
        try:
            first = self._children(folder, what)
        except (NotFound, _NotFolder):
            raise ContainerNotFound(f"/{folder}: no such folder on Yandex Disk") from None
        done: Future[list[Any]] = Future()
        done.set_result(first)
        pending: collections.deque[tuple[str, Future[list[Any]]]] = collections.deque([("", done)])
        with ThreadPoolExecutor(LIST_THREADS, thread_name_prefix="yandex-list") as pool:
            try:
                while pending:
                    relative, future = pending.popleft()
                    try:
                        items = future.result()
                    except (NotFound, _NotFolder):
                        on_skip(relative, "the folder changed on Yandex Disk while it was listed")
                        continue
                    seen: set[str] = set()
                    for res in items:
                        name = res.name
                        if name in seen:
                            continue  # a page shifted by a change during the listing showed it twice
                        seen.add(name)
                        reason = unusable_name(name)
                        if reason is not None:  # never joined into another item's path (listednames.py)
                            on_skip(shown_path(relative, name), reason)
                            continue
                        path = f"{relative}/{name}" if relative else name
                        yield entry_of(res, path)
                        if res.type == "dir" and recursive:
                            pending.append((path, pool.submit(self._children, f"{folder}/{path}",
                                                              f"listing /{folder}/{path}")))  # fmt: skip
            finally:
                for _, future in pending:  # an abandoned or failed walk lists nothing more
                    future.cancel()

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, on_skip)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, False, lambda path, reason: None)

    # -- transfers -------------------------------------------------------------------------------------------

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        path = path.strip("/")
        what = f"reading /{path}"
        res = self._meta(path, what, limit=0)
        if res.type == "dir":
            raise ProviderError(f"{what}: it is a folder, not a file")
        local = LocalWrite(out)
        writer = _HashingWriter(local)
        try:
            self._call(what, lambda c, kw: c.download(_disk(path), writer, **kw))
        except ProviderError:
            local.raise_if_failed()  # a full disk is the disk's error, not a broken download
            raise
        if res.sha256 and writer.sha256.hexdigest() != res.sha256:
            raise TransientError(f"{what}: the data arrived damaged or changed while read (sha256 mismatch)")
        return entry_of(res, path)

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None) -> RemoteEntry:
        path = path.strip("/")
        what = f"writing /{path}"
        overwrite = expect is None or expect.seen is not None
        if expect is not None and expect.seen is not None:
            current = self._meta_or_none(path, what)
            if not expect.met_by(None if current is None else entry_of(current, path)):
                raise expect.failed(what)
        href = ""
        for attempt in range(2):
            try:
                href = self._call(what, lambda c, kw: c.get_upload_link(_disk(path), overwrite=overwrite,
                                                                        spoof_user_agent=False, **kw))  # fmt: skip
                break
            except _ParentMissing:
                if attempt:
                    raise
                self.mkdir(path.rpartition("/")[0])
            except _Exists as exc:
                if exc.is_dir:
                    raise ProviderError(f"{what}: a folder has that name") from None
                return self._landed(path, src, mtime, what)
        reader = _HashingReader(src)
        self._put(href, reader, what)
        res = self._set_mtime(path, mtime, what)
        if res.sha256 and res.sha256 != reader.sha256.hexdigest():
            raise TransientError(f"{what}: Yandex Disk holds other bytes than were sent (another client wrote "
                                 "at the same moment?)")  # fmt: skip
        return entry_of(res, path)

    def _landed(self, path: str, src: BinaryIO, mtime: float, what: str) -> RemoteEntry:
        """A new name that is taken: ours when it already holds exactly these bytes (an earlier attempt of this
        upload landed before its answer was lost, or the same file came from elsewhere), so the pass records it
        instead of making a conflict copy of identical content; otherwise the condition failed."""
        current = self._meta_or_none(path, what)
        if current is None or current.type == "dir" or not current.sha256 or not src.seekable():
            raise Expect.absent().failed(what)
        start = src.tell()
        digest = hashlib.sha256()
        while chunk := src.read(CHUNK):
            digest.update(chunk)
        src.seek(start)
        if digest.hexdigest() != current.sha256:
            raise Expect.absent().failed(what)
        return entry_of(self._set_mtime(path, mtime, what), path)

    def _put(self, href: str, reader: _HashingReader, what: str) -> None:
        """The bytes, streamed in one PUT to the address the API handed out (it is signed: no token goes there).
        201 is stored; 202 is accepted and still being moved into the Disk (a large file), which `_set_mtime`
        waits for. The SDK's own upload takes only 201 and reads 8 KiB at a time, hence this."""
        from yadisk import exceptions as yx

        def body() -> Iterator[bytes]:
            while chunk := reader.read(CHUNK):
                yield chunk

        session = self._yadisk().session
        try:
            response = session.send_request("PUT", href, data=body(), timeout=TIMEOUT,
                                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        except yx.YaDiskError as exc:
            raise translate(exc, what) from None
        with response:
            if response.status not in (201, 202):
                raise translate(response.get_exception(), what)

    def _set_mtime(self, path: str, mtime: float, what: str) -> Any:
        """PATCH the file's mtime into its custom properties; the answer is the file as listings show it."""
        props = {MTIME_KEY: rfc3339(mtime)}
        for attempt in range(PATCH_ATTEMPTS):
            try:
                return self._call(what, lambda c, kw: c.patch(_disk(path), props, **kw))
            except NotFound:
                if attempt == PATCH_ATTEMPTS - 1:
                    raise TransientError(f"{what}: the uploaded file did not appear on Yandex Disk") from None
                time.sleep(0.5 * 2**attempt)
        raise TransientError(f"{what}: the file's time could not be set")  # not reached

    # -- changes on the service ------------------------------------------------------------------------------

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        path = path.strip("/")
        what = f"deleting /{path}"
        res = self._meta_or_none(path, what)
        if res is None:
            return
        if res.type == "dir":  # a folder took the file's name: not ours to delete
            raise PreconditionFailed(f"{what}: a folder has that name now")
        if expect is not None and not expect.met_by(entry_of(res, path)):
            raise expect.failed(what)
        try:
            self._call(what, lambda c, kw: c.remove(_disk(path), permanently=False, md5=res.md5, **kw))
        except NotFound:
            return

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        if not path:
            return RemoteEntry("", True)
        what = f"creating folder /{path}"
        for attempt in range(2):
            try:
                self._call(what, lambda c, kw: c.mkdir(_disk(path), **kw))
                break
            except _Exists as exc:
                if not exc.is_dir:
                    res = self._meta_or_none(path, what)
                    if res is None or res.type != "dir":
                        raise ProviderError(f"{what}: a file has that name") from None
                break
            except _ParentMissing:
                if attempt:
                    raise
                self.mkdir(path.rpartition("/")[0])
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        try:
            res = self._meta(path, what, limit=1)
        except NotFound:
            return
        if res.type != "dir":
            return  # a file took the name: not a folder to remove
        embedded = getattr(res, "embedded", None)
        if embedded is not None and (embedded.total or embedded.items):
            raise FolderNotEmpty(f"{what}: it is not empty")
        try:
            self._call(what, lambda c, kw: c.remove(_disk(path), permanently=False, **kw))
        except NotFound:
            return

    def _place(self, what: str, dst: str, func: Callable[[Any, dict[str, Any]], object]) -> None:
        """A move or copy to `dst`, never replacing anything there; its folder made when missing."""
        for attempt in range(2):
            try:
                self._call(what, func)
                return
            except _ParentMissing:
                if attempt:
                    raise
                self.mkdir(dst.rpartition("/")[0])
            except _Exists:
                raise PreconditionFailed(f"{what}: another entry has the new name") from None

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"moving /{src} to /{dst}"
        if listed is not None and not listed.is_dir and listed.revision is not None:
            current = self._meta(src, what, limit=0)
            if entry_of(current, src).revision != listed.revision:
                raise PreconditionFailed(f"{what}: another client changed it since it was listed")
        self._place(what, dst, lambda c, kw: c.move(_disk(src), _disk(dst), overwrite=False, wait=True, **kw))
        return entry_of(self._meta(dst, what, limit=0), dst)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        source = self._meta(src, what, limit=0)
        if expect is None or expect.seen is not None:
            self.delete(dst, expect=expect)  # the copy never replaces: what is in the way goes first, if allowed
        self._place(what, dst, lambda c, kw: c.copy(_disk(src), _disk(dst), overwrite=False, wait=True, **kw))
        made = self._meta(dst, what, limit=0)
        kept = (source.custom_properties or {}).get(MTIME_KEY)
        if kept is not None and (made.custom_properties or {}).get(MTIME_KEY) != kept:
            made = self._call(what, lambda c, kw: c.patch(_disk(dst), {MTIME_KEY: kept}, **kw))
        return entry_of(made, dst)
