"""`webdav`: any WebDAV server (presets for Cubby and Yandex Disk) through the webdav4 client.

Folders are real collections. WebDAV has no content hash and, per the spec's attribute table, no settable
modification time in general: we report `getlastmodified` and try to set it where the server allows it, with
the ownCloud/Nextcloud `X-OC-Mtime` header on PUT and otherwise a PROPPATCH of `getlastmodified` (remembered
per connection when the server refuses it). The revision is the ETag (or mtime and size when a server gives
none). Uploads are one PUT to the final name, as rclone and the desktop clients do: ownCloud/Nextcloud and
Yandex store a PUT atomically themselves, and a MOVE from a temporary name breaks on servers that mis-decode
the Destination header (wsgidav cuts names at "?").

Cubby quirk (spec note 5): when a folder *with content* is deleted, Cubby recreates it (possibly with another
letter case), which would make a sync undo the deletion pass after pass. `rmdir` therefore never DELETEs a
collection that still has members: it lists it first and refuses, so the engine removes the files one by one
and only then the empty folder, which Cubby does not resurrect.

Conditional writes (`expect`): the file is re-read (PROPFIND) right before the PUT or DELETE, which then carries
If-Match: <ETag> (or If-None-Match: * for a new name). Servers evaluate these headers when the request arrives
(wsgidav and Apache mod_dav do), before the body is received, and some ignore If-Match on a missing file, so the
window left is the PUT's duration: another client's write that lands while our body is still on its way is
replaced. Servers without ETags are compared by size and modification time in the re-read only.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, urlsplit

from engine.providers.base import (
    AuthError,
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
    Provider,
    ProviderError,
    QuotaExceeded,
    RemoteEntry,
    TransientError,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from webdav4.client import Client

PRESETS = {
    "cubby": "https://webdav.cubby.com",
    "yandex": "https://webdav.yandex.com",
}
CHUNK = 1 << 20
UNLISTABLE_REASON = "the WebDAV server listed this folder in its parent but answered 404 when asked for its content"


def _q(path: str) -> str:
    # httpx keeps "%xx" sequences as they are, so a name containing "%20" must reach it already quoted.
    return quote(path.strip("/"), safe="/")


def _translate(exc: Exception, what: str) -> ProviderError:
    import httpx
    from webdav4 import client as w

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, w.ResourceNotFound):
        return NotFound(f"{what}: not found")
    if isinstance(exc, w.InsufficientStorage):
        return QuotaExceeded(f"{what}: the server has no space left")
    if isinstance(exc, w.ResourceLocked):
        return TransientError(f"{what}: the resource is locked")
    if isinstance(exc, w.BadGatewayError):
        return TransientError(f"{what}: bad gateway")
    if isinstance(exc, w.HTTPError):
        status = exc.status_code
        if status == 401:
            return AuthError(f"{what}: the user name or password was refused")
        if status == 403:
            return PermissionDenied(f"{what}: permission denied")
        if status == 413:
            return QuotaExceeded(f"{what}: the file is too large for the server")
        if status in (408, 423, 429, 500, 502, 503, 504, 509):
            return TransientError(f"{what}: the server is busy ({status}), try again later",
                                  retry_after=retry_after_seconds(exc.response.headers.get("Retry-After")))
        return ProviderError(f"{what}: the server answered {status}")
    if isinstance(exc, w.ForbiddenOperation):
        return PermissionDenied(f"{what}: the server does not allow it")
    if isinstance(exc, w.ClientError):
        return ProviderError(f"{what}: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return NetworkError(f"{what}: the WebDAV server did not answer in time")
    if isinstance(exc, httpx.TransportError | OSError):
        return NetworkError(f"{what}: the WebDAV server could not be reached")
    raise exc


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, dt.datetime) else None


def _revision(info: Mapping[str, Any]) -> str:
    etag = info.get("etag")
    if etag:
        return str(etag).strip('"')
    return f"{_timestamp(info.get('modified'))}:{info.get('content_length') or 0}"


def _proppatch_body(mtime: float) -> bytes:
    root = ET.Element("{DAV:}propertyupdate")
    prop = ET.SubElement(ET.SubElement(root, "{DAV:}set"), "{DAV:}prop")
    when = dt.datetime.fromtimestamp(int(mtime), dt.UTC)
    ET.SubElement(prop, "{DAV:}getlastmodified").text = format_datetime(when, usegmt=True)
    ET.register_namespace("d", "DAV:")
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


class WebDAVProvider(Provider):
    kind = "webdav"
    location_options = ("url", "preset")
    title = "WebDAV (Cubby, Yandex Disk, ownCloud, Nextcloud...)"
    option_specs = (
        OptionSpec(
            "url",
            "the server's WebDAV address, including the folder to use as the root (your service's help or settings "
            "page shows it)",
            label="Server URL",
        ),
        OptionSpec(
            "user",
            "the user you sign in to the WebDAV server with",
            required=True,
            label="User name",
        ),
        OptionSpec(
            "password",
            "that user's password (Nextcloud and ownCloud want an app password: Settings > Security)",
            secret=True,
            required=True,
            label="Password",
        ),
        OptionSpec(
            "preset",
            "fill the server URL for a known service",
            choices=tuple(PRESETS),
            label="Service",
        ),
    )
    capabilities = Capabilities(
        hash_kind=HashKind.NONE,
        mtime_mode=MtimeMode.NONE,
        conditional_writes=Conditional.REREAD,
        conditional_deletes=Conditional.REREAD,
        server_side_copy=True,  # COPY (Depth 0), Overwrite: F for a new name
        list_dir=True,  # PROPFIND, Depth 1
        # No ids: WebDAV names resources by URL (a rename is a new URL). Case: wsgidav on Linux, Apache
        # mod_dav, Nextcloud and Yandex tell "A.txt" from "a.txt"; a server on a case-insensitive disk (IIS on
        # Windows) does not, and would need its own kind.
        needs_size_before_upload=True,  # the PUT is sent with Content-Length: size
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.url = self._url(options)
        self._client: Client | None = None
        self._proppatch_refused = False

    @staticmethod
    def _url(options: Mapping[str, str]) -> str:
        url = options.get("url") or PRESETS.get(options.get("preset") or "", "")
        if not url:
            raise InvalidOption("option 'url' is required (or a 'preset': cubby, yandex)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidOption("option 'url' must be an http:// or https:// address")
        return url.rstrip("/")

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        cls._url(options)

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        try:
            parts = urlsplit(cls._url(options))
            where = parts.netloc.lower()
        except InvalidOption:
            where = ""
        return f"webdav:{options.get('user', '')}@{where}"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _dav(self) -> Client:
        if self._client is None:
            from webdav4.client import Client

            self._client = Client(
                self.url, auth=(self.options["user"], self.options["password"]), timeout=30, retry=True
            )
        return self._client

    def _ls(self, path: str) -> list[dict[str, Any]]:
        """The members of collection `path` (one PROPFIND, Depth 1)."""
        return [e for e in self._dav().ls(_q(path), detail=True) if isinstance(e, dict)]

    def _info(self, path: str) -> dict[str, Any]:
        """The properties of `path` itself (PROPFIND, Depth 0)."""
        # Not webdav4's info(): it looks the answer up by its own spelling of the URL, which misses when the
        # server encodes non-ASCII names differently; with Depth 0 the only response is the one we want.
        result = self._dav().propfind(_q(path), headers={"Depth": "0"})
        for response in result.responses.values():
            return {"name": path, **response.properties.as_dict()}
        raise ProviderError(f"/{path}: the server sent an empty PROPFIND answer")

    def _file_entry(self, rel: str, info: Mapping[str, Any]) -> RemoteEntry:
        return RemoteEntry(
            rel, False, int(info.get("content_length") or 0), _timestamp(info.get("modified")), None, _revision(info)
        )

    # -- the contract ----------------------------------------------------------------------------------------

    def check(self) -> None:
        try:
            info = self._info("")
        except Exception as exc:
            from webdav4.client import ResourceNotFound

            if isinstance(exc, ResourceNotFound):
                raise ContainerNotFound(f"the folder {urlsplit(self.url).path or '/'} does not exist") from None
            raise _translate(exc, "opening the WebDAV folder") from None
        if info.get("type") != "directory":
            raise ContainerNotFound("the WebDAV URL is not a folder")

    def server_time(self) -> float | None:
        """The `Date` of an OPTIONS answer on the root URL (any status: a 401 is dated too)."""
        try:
            return self.http_date(self._dav().http.options(self.url).headers.get("date"))
        except Exception:  # unreachable: no clock to compare; check() reports why
            return None

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, on_skip)

    def _walk(self, folder: str, on_skip: Callable[[str, str], None] | None) -> Iterator[RemoteEntry]:
        """Every entry below `folder`, one PROPFIND (Depth 1) per folder.

        A subfolder its parent reported that answers 404 to its own PROPFIND (removed since, or a server or
        proxy that is briefly wrong) was not looked at: its content is unknown, not gone. It goes to `on_skip`
        so the engine leaves its subtree alone this pass; `list()`, which has nobody to tell, fails instead of
        passing it off as an empty folder (the engine would delete the local files below it).
        """
        from webdav4.client import ResourceNotFound

        folder = folder.strip("/")
        base = folder + "/" if folder else ""
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                members = self._ls(current)
            except ResourceNotFound:
                if current == folder:
                    raise ContainerNotFound(f"the remote folder /{folder} does not exist") from None
                if on_skip is None:
                    raise ProviderError(f"listing /{current}: the server reported the folder but could not list "
                                        "it (not found)") from None
                on_skip(current[len(base) :], UNLISTABLE_REASON)
                continue
            except Exception as exc:
                raise _translate(exc, f"listing /{current}") from None
            for info in members:
                name = str(info["name"]).strip("/")
                if current and not name.startswith(base):
                    continue
                rel = name[len(base) :]
                if not rel:
                    continue
                if info.get("type") == "directory":
                    yield RemoteEntry(rel, True)
                    pending.append(name)
                else:
                    yield self._file_entry(rel, info)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """One PROPFIND with Depth 1 on `folder`."""
        from webdav4.client import ResourceNotFound

        folder = folder.strip("/")
        base = folder + "/" if folder else ""
        try:
            members = self._ls(folder)
        except ResourceNotFound:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist") from None
        except Exception as exc:
            raise _translate(exc, f"listing /{folder}") from None
        for info in members:
            name = str(info["name"]).strip("/")
            if folder and not name.startswith(base):
                continue
            rel = name[len(base) :]
            if not rel or "/" in rel:
                continue
            yield RemoteEntry(rel, True) if info.get("type") == "directory" else self._file_entry(rel, info)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        try:
            info = self._info(path)
            if info.get("type") == "directory":
                raise ProviderError(f"reading /{path}: it is a folder")
            self._get(path, out)
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None
        return self._file_entry(path, info)

    def _get(self, path: str, out: BinaryIO) -> None:
        # A plain streamed GET: webdav4's download_fileobj() first looks the file up the way its info() does.
        from webdav4.client import HTTPError

        dav = self._dav()
        with dav.http.stream("GET", dav.join_url(_q(path))) as response:
            if response.status_code == 404:
                raise NotFound(f"reading /{path}: not found")
            if response.status_code >= 400:
                raise HTTPError(response)
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        from webdav4.client import HTTPError

        path = path.strip("/")
        parent = path.rpartition("/")[0]
        headers = {"Content-Length": str(size), "X-OC-Mtime": str(int(mtime))}
        if expect is not None:
            headers.update(self._condition(path, expect, f"writing /{path}") or {})

        def chunks() -> Iterator[bytes]:
            while chunk := src.read(CHUNK):
                yield chunk

        dav = self._dav()
        start = src.tell() if src.seekable() else None
        try:
            try:
                dav.request("PUT", _q(path), content=chunks(), headers=headers)
            except HTTPError as exc:
                if exc.status_code != 409 or not parent or start is None:  # 409: no parent collection
                    raise
                self.mkdir(parent)
                src.seek(start)
                dav.request("PUT", _q(path), content=chunks(), headers=headers)
            info = self._info(path)
            if _timestamp(info.get("modified")) != float(int(mtime)) and not self._proppatch_refused:
                info = self._set_mtime(path, mtime) or info
        except Exception as exc:
            if expect is not None and isinstance(exc, HTTPError) and exc.status_code == 412:
                raise expect.failed(f"writing /{path}") from None
            raise _translate(exc, f"writing /{path}") from None
        return self._file_entry(path, info)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """COPY with Depth 0; a missing parent collection is made and the COPY sent again. For a new name
        (`Expect.absent()`) the server refuses to replace anything (Overwrite: F, checked as the copy is
        made); another `expect` is a re-read of `dst` first. The source's modification time is then set on
        the copy where the server allows it, as after an upload."""
        from webdav4.client import HTTPError, ResourceNotFound

        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        try:
            source = self._info(src)
        except ResourceNotFound:
            raise NotFound(f"{what}: /{src} is not there") from None
        except Exception as exc:
            raise _translate(exc, what) from None
        if source.get("type") == "directory":
            raise ProviderError(f"{what}: it is a folder")
        if expect is not None:
            self._condition(dst, expect, what)
        dav = self._dav()
        headers = {"Destination": str(dav.join_url(_q(dst))), "Depth": "0",
                   "Overwrite": "F" if expect is not None and expect.seen is None else "T"}
        parent = dst.rpartition("/")[0]
        try:
            try:
                dav.request("COPY", _q(src), headers=headers)
            except HTTPError as exc:
                if exc.status_code != 409 or not parent:  # 409: no parent collection
                    raise
                self.mkdir(parent)
                dav.request("COPY", _q(src), headers=headers)
            info = self._info(dst)
            mtime = _timestamp(source.get("modified"))
            if mtime is not None and _timestamp(info.get("modified")) != mtime and not self._proppatch_refused:
                info = self._set_mtime(dst, mtime) or info
        except HTTPError as exc:
            if exc.status_code == 412 and expect is not None:
                raise expect.failed(what) from None
            if exc.status_code == 404:
                raise NotFound(f"{what}: /{src} is not there") from None
            raise _translate(exc, what) from None
        except Exception as exc:
            raise _translate(exc, what) from None
        return self._file_entry(dst, info)

    def _set_mtime(self, path: str, mtime: float) -> dict[str, Any] | None:
        """PROPPATCH getlastmodified; the new listing entry, or None when the server keeps its own time."""
        try:
            response = self._dav().request(
                "PROPPATCH", _q(path), content=_proppatch_body(mtime), headers={"Content-Type": "application/xml"}
            )
        except Exception:
            self._proppatch_refused = True
            return None
        if response.status_code not in (200, 207):
            self._proppatch_refused = True
            return None
        info = self._info(path)
        if _timestamp(info.get("modified")) != float(int(mtime)):
            self._proppatch_refused = True  # accepted but ignored: do not ask again on this connection
        return info

    def _condition(self, path: str, expect: Expect, what: str, gone_ok: bool = False) -> dict[str, str] | None:
        """Re-read `path` against `expect`; the headers that make the server check it again (None: the file
        is gone and `gone_ok`)."""
        from webdav4.client import ResourceNotFound

        try:
            info: dict[str, Any] | None = self._info(path)
        except ResourceNotFound:
            info = None
        except Exception as exc:
            raise _translate(exc, what) from None
        if info is None:
            if gone_ok:
                return None
            found = None
        elif info.get("type") == "directory":
            found = RemoteEntry(path, True)
        else:
            found = self._file_entry(path, info)
        if not expect.met_by(found):
            raise expect.failed(what)
        if info is None:
            return {"If-None-Match": "*"}
        etag = str(info.get("etag") or "").strip('"')
        return {"If-Match": f'"{etag}"'} if etag else {}

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        from webdav4.client import HTTPError, ResourceNotFound

        what = f"deleting /{path}"
        try:
            if expect is None:
                self._dav().remove(_q(path))
                return
            headers = self._condition(path, expect, what, gone_ok=True)
            if headers is None:
                return  # gone already
            self._dav().request("DELETE", _q(path), headers=headers)
        except ResourceNotFound:
            return
        except HTTPError as exc:
            if expect is not None and exc.status_code == 412:
                raise expect.failed(what) from None
            raise _translate(exc, what) from None
        except Exception as exc:
            raise _translate(exc, what) from None

    def mkdir(self, path: str) -> RemoteEntry:
        from webdav4.client import ResourceAlreadyExists, ResourceConflict

        path = path.strip("/")
        try:
            try:
                self._dav().mkdir(_q(path))
            except ResourceConflict:  # a parent is missing
                parent = path.rpartition("/")[0]
                if not parent:
                    raise
                self.mkdir(parent)
                self._dav().mkdir(_q(path))
        except ResourceAlreadyExists:
            if self._info(path).get("type") != "directory":
                raise ProviderError(f"creating folder /{path}: a file has that name") from None
        except Exception as exc:
            raise _translate(exc, f"creating folder /{path}") from None
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        from webdav4.client import ResourceNotFound

        path = path.strip("/")
        try:
            members = self._ls(path)
        except ResourceNotFound:
            return
        except Exception as exc:
            raise _translate(exc, f"removing folder /{path}") from None
        # Never DELETE a collection with members: servers delete recursively, and Cubby resurrects it.
        if members:
            raise FolderNotEmpty(f"removing folder /{path}: it is not empty")
        try:
            self._dav().remove(_q(path))
        except ResourceNotFound:
            return
        except Exception as exc:
            raise _translate(exc, f"removing folder /{path}") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.http.close()
            self._client = None
