"""`swift`: OpenStack Swift (and compatible services) through the official python-swiftclient.

Objects are flat names in a container; an empty folder is a zero-byte "folder/" object of type
application/directory (the convention of the swift CLI and Horizon). Files larger than `segment_size` MiB are
uploaded as Dynamic Large Objects (spec note 15): segments named "<path>/<mtime>/<size>/<segment size>/<n>"
in the "<container>_segments" container (the swift CLI's layout), then a manifest. A DLO has no limit on the
count of its segments (the 1,000-segment limit is the Static Large Object's), so the configured segment size
serves every file and Swift has no largest object here (`max_object_size` None): the account's quota, if any,
is the limit, reported by the service. Swift reports no usable
hash for those (spec note 3), so they are listed without one and their revision is the manifest's ETag. The
mtime is kept in `X-Object-Meta-Mtime`: container listings carry no metadata, so listings show the upload
time and downloads return the stored mtime.

swiftclient's Connection is not thread-safe, so each thread gets its own (authenticated once).

Conditional writes (`expect`): Swift only takes `If-None-Match: *` on a PUT (a new name, checked by the service);
a replace is checked by re-reading the object (HEAD) just before the PUT, and for a large object again just
before its manifest is written. The window left is the duration of the object's PUT (for a large object, the
manifest's); deletes re-read the object right before the DELETE, a window of one round trip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, unquote

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
    PreconditionFailed,
    Provider,
    ProviderError,
    QuotaExceeded,
    RemoteEntry,
    TransientError,
    retry_after_seconds,
    sane_mtime,
)

if TYPE_CHECKING:
    from swiftclient.client import Connection

MIB = 1 << 20
DEFAULT_SEGMENT_MIB = 1024
MAX_SEGMENT_MIB = 5 * 1024  # Swift's largest single object (5 GiB)
DIR_TYPE = "application/directory"
MTIME_HEADER = "x-object-meta-mtime"
CHUNK = 1 << 20


def _translate(exc: Exception, what: str) -> ProviderError:
    import requests
    from swiftclient.exceptions import ClientException

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ClientException):
        status = exc.http_status or 0
        if status == 401:
            return AuthError(f"{what}: the user name or key was refused")
        if status == 403:
            return PermissionDenied(f"{what}: permission denied")
        if status == 404:
            return NotFound(f"{what}: not found")
        if status == 413:
            return QuotaExceeded(f"{what}: the object is too large or the quota is exceeded")
        if status in (408, 429, 498, 500, 502, 503, 504):
            headers = {k.lower(): v for k, v in (exc.http_response_headers or {}).items()}
            return TransientError(f"{what}: Swift is busy ({status}), try again later",
                                  retry_after=retry_after_seconds(headers.get("retry-after")))
        if status == 422:
            return TransientError(f"{what}: the data was corrupted in transit")
        if status == 0:
            return NetworkError(f"{what}: Swift could not be reached")
        return ProviderError(f"{what}: Swift answered {status}")
    keystone = _keystone_error(exc, what)
    if keystone is not None:
        return keystone
    if isinstance(exc, requests.RequestException | OSError):
        return NetworkError(f"{what}: Swift could not be reached")
    raise exc


def _keystone_error(exc: Exception, what: str) -> ProviderError | None:
    try:
        from keystoneauth1 import exceptions as ks
    except ImportError:
        return None
    if not isinstance(exc, ks.ClientException):
        return None
    if isinstance(exc, ks.Unauthorized):
        return AuthError(f"{what}: Keystone refused the user name or password")
    if isinstance(exc, ks.Forbidden):
        return PermissionDenied(f"{what}: Keystone denied access to the project")
    if isinstance(exc, ks.EndpointNotFound):
        return ProviderError(f"{what}: Keystone lists no object storage (Swift) for this project in that region")
    if isinstance(exc, ks.ConnectionError):
        return NetworkError(f"{what}: Keystone could not be reached")
    status = getattr(exc, "http_status", None) or 0
    if status >= 500 or status == 429:
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        return TransientError(f"{what}: Keystone is busy ({status}), try again later",
                              retry_after=retry_after_seconds(headers.get("Retry-After")))
    return ProviderError(f"{what}: Keystone answered {status or type(exc).__name__}")


def _parents(rel: str) -> Iterator[str]:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _listing_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


class _Hashing:
    """Reads from `src` at most `limit` bytes, keeping the MD5 of what was read."""

    def __init__(self, src: BinaryIO, limit: int) -> None:
        self.src, self.left, self.md5, self.count = src, limit, hashlib.md5(), 0

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.src.read(size)
        self.left -= len(data)
        self.count += len(data)
        self.md5.update(data)
        return data


class SwiftProvider(Provider):
    kind = "swift"
    location_options = ("container", "region")
    title = "OpenStack Swift"
    option_specs = (
        OptionSpec(
            "auth_url",
            "authentication URL: https://host/auth/v1.0 (TempAuth) or a Keystone one ending in /v3 or /v2.0",
            required=True,
            label="Authentication URL",
        ),
        OptionSpec(
            "user",
            "the user you sign in with (your provider's dashboard, API access; OpenStack RC file: OS_USERNAME)",
            required=True,
            label="User name",
        ),
        OptionSpec(
            "key",
            "the user's API key or password (OpenStack RC file: OS_PASSWORD)",
            secret=True,
            required=True,
            label="Key or password",
        ),
        OptionSpec(
            "tenant",
            "the tenant or project (account) name (OpenStack RC file: OS_PROJECT_NAME)",
            label="Tenant / project",
        ),
        OptionSpec(
            "region",
            "the region's name (OpenStack RC file: OS_REGION_NAME)",
            label="Region",
        ),
        OptionSpec(
            "domain",
            "Keystone v3 domain of the user and the project (OpenStack RC file: OS_USER_DOMAIN_NAME)",
            default="Default",
            label="Domain",
        ),
        OptionSpec(
            "container",
            "the container to sync with (your provider's dashboard: Object Store > Containers)",
            required=True,
            label="Container",
        ),
        OptionSpec(
            "segment_size",
            "files above this many MiB are uploaded as segments of that size",
            default="1024",
            advanced=True,
            label="Segment size (MiB)",
        ),
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.segment_size = self._segment_size(options)
        self.capabilities = Capabilities(
            hash_kind=HashKind.MD5,
            mtime_mode=MtimeMode.METADATA,
            multipart_threshold=self.segment_size,
            conditional_writes=Conditional.REREAD,
            conditional_deletes=Conditional.REREAD,
            server_side_copy=True,  # PUT with X-Copy-From (not for large objects: see `copy`)
            list_dir=True,  # a container listing with delimiter "/"
            # No ids: an object is its name, and a rename is a copy to a new name.
            needs_size_before_upload=True,  # objects are PUT with Content-Length, large ones cut by `size`
        )
        self.container = options["container"]
        self.segments_container = self.container + "_segments"
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()

    @staticmethod
    def _segment_size(options: Mapping[str, str]) -> int:
        raw = options.get("segment_size") or str(DEFAULT_SEGMENT_MIB)
        try:
            size = round(float(raw) * MIB)
        except ValueError:
            raise InvalidOption("option 'segment_size' must be a number of MiB") from None
        if not 1 <= size <= MAX_SEGMENT_MIB * MIB:
            raise InvalidOption(f"option 'segment_size' must be at most {MAX_SEGMENT_MIB} MiB")
        return size

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        container = options["container"]
        try:
            from engine.policy import validate_bucket

            problem = validate_bucket("swift", container)
        except ImportError:
            problem = None
        if problem:
            raise InvalidOption(problem)
        if len(container.encode()) > 255 or "/" in container:  # spec note 16 (and Swift's limit is in bytes)
            raise InvalidOption("a Swift container name cannot exceed 255 characters or include '/'")
        cls._segment_size(options)
        auth = options["auth_url"].rstrip("/")
        if not auth.endswith(("/v1.0", "/v1", "/v2.0", "/v3")):
            raise InvalidOption(
                "option 'auth_url' must end in /v1.0 (TempAuth), /v3 or /v2.0 (Keystone), as the service documents it"
            )

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        tenant = options.get("tenant", "")
        user = f"{tenant}:{options.get('user', '')}" if tenant else options.get("user", "")
        return f"swift:{user}@{options.get('auth_url', '')}"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            from swiftclient.client import Connection

            auth_url = self.options["auth_url"].rstrip("/")
            tenant = self.options.get("tenant") or ""
            os_options = {"region_name": self.options.get("region") or None}
            if auth_url.endswith(("/v1.0", "/v1")):
                user = f"{tenant}:{self.options['user']}" if tenant else self.options["user"]
                conn = Connection(
                    auth_url, user, self.options["key"], auth_version="1", os_options=os_options,
                    retries=2, starting_backoff=0.5, max_backoff=2, timeout=30,
                )  # fmt: skip
            else:
                # Keystone through keystoneauth1's session: swiftclient takes the token and the object-store
                # endpoint of the region from it (and asks for a new token when one expires).
                conn = Connection(
                    session=self._keystone_session(auth_url, tenant),
                    os_options={**os_options, "service_type": "object-store", "interface": "public"},
                    retries=2, starting_backoff=0.5, max_backoff=2, timeout=30,
                )  # fmt: skip
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _keystone_session(self, auth_url: str, tenant: str) -> Any:
        from keystoneauth1 import session
        from keystoneauth1.identity import v2, v3

        user, key = self.options["user"], self.options["key"]
        if auth_url.endswith("/v2.0"):
            auth = v2.Password(auth_url=auth_url, username=user, password=key, tenant_name=tenant or None)
        else:
            domain = self.options.get("domain") or "Default"
            auth = v3.Password(
                auth_url=auth_url, username=user, password=key, project_name=tenant or None,
                user_domain_name=domain, project_domain_name=domain,
            )  # fmt: skip
        return session.Session(auth=auth, timeout=30)

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._conn(), method)(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, what) from None

    def _head(self, path: str) -> dict[str, str] | None:
        from swiftclient.exceptions import ClientException

        try:
            return self._conn().head_object(self.container, path)
        except ClientException as exc:
            if exc.http_status == 404:
                return None
            raise _translate(exc, f"reading /{path}") from None
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None

    def _objects(self, prefix: str, container: str | None = None) -> list[dict[str, Any]]:
        from swiftclient.exceptions import ClientException

        container = container or self.container
        try:
            _, objects = self._conn().get_container(container, prefix=prefix or None, full_listing=True)
        except ClientException as exc:
            if exc.http_status == 404:
                raise ContainerNotFound(f"the container {container} does not exist") from None
            raise _translate(exc, f"listing /{prefix}") from None
        except Exception as exc:
            raise _translate(exc, f"listing /{prefix}") from None
        return objects

    @staticmethod
    def _is_dir_marker(obj: Mapping[str, Any]) -> bool:
        return str(obj["name"]).endswith("/") or (
            obj.get("bytes") == 0 and str(obj.get("content_type", "")).split(";")[0] == DIR_TYPE
        )

    def _entry_from_headers(self, path: str, headers: Mapping[str, str]) -> RemoteEntry:
        manifest = headers.get("x-object-manifest")
        mtime = sane_mtime(headers.get(MTIME_HEADER))
        return RemoteEntry(
            path,
            False,
            int(headers.get("content-length") or 0),
            mtime,
            None if manifest else _etag(headers.get("etag")),  # spec note 3: no hash for DLOs
            _etag(headers.get("etag")),
        )

    # -- the contract ----------------------------------------------------------------------------------------

    def check(self) -> None:
        from swiftclient.exceptions import ClientException

        try:
            self._conn().head_container(self.container)
        except ClientException as exc:
            if exc.http_status == 404:
                raise ContainerNotFound(f"the container {self.container} does not exist") from None
            raise _translate(exc, f"opening container {self.container}") from None
        except Exception as exc:
            raise _translate(exc, f"opening container {self.container}") from None

    def server_time(self) -> float | None:
        """The `Date` of a HEAD Container answer, refused or not."""
        from swiftclient.exceptions import ClientException

        try:
            headers = self._conn().head_container(self.container)
        except ClientException as exc:
            headers = exc.http_response_headers or {}
        except Exception:  # unreachable (or no token): no clock to compare; check() reports why
            return None
        return self.http_date(next((v for k, v in headers.items() if k.lower() == "date"), None))

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        objects = self._objects(prefix)
        if folder and not objects:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        seen_dirs: set[str] = set()
        for obj in objects:
            rel = str(obj["name"])[len(prefix) :]
            if not rel:
                continue  # the listed folder's own marker
            is_dir = self._is_dir_marker(obj)
            for parent in _parents(rel.rstrip("/") + ("/" if is_dir else "")):
                if parent not in seen_dirs:
                    seen_dirs.add(parent)
                    yield RemoteEntry(parent, True)
            if is_dir:
                continue
            if obj.get("bytes") == 0:
                # A zero-byte listing entry may be a DLO manifest: only a HEAD tells its real size and ETag.
                headers = self._head(str(obj["name"]))
                if headers is None:
                    continue  # deleted meanwhile
                if headers.get("x-object-manifest"):
                    entry = self._entry_from_headers(rel, headers)
                    listed = _listing_time(obj.get("last_modified"))
                    yield RemoteEntry(rel, False, entry.size, listed, None, entry.revision)
                    continue
            yield RemoteEntry(
                rel,
                False,
                int(obj.get("bytes") or 0),
                _listing_time(obj.get("last_modified")),
                obj.get("hash"),
                obj.get("hash"),
            )

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """A container listing with delimiter "/": the objects right inside `folder` and its subfolders
        ("subdir" items). A zero-byte object may be a large object's manifest: a HEAD tells its real size."""
        from swiftclient.exceptions import ClientException

        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        try:
            _, items = self._conn().get_container(self.container, prefix=prefix or None, delimiter="/",
                                                  full_listing=True)
        except ClientException as exc:
            if exc.http_status == 404:
                raise ContainerNotFound(f"the container {self.container} does not exist") from None
            raise _translate(exc, f"listing /{folder}") from None
        except Exception as exc:
            raise _translate(exc, f"listing /{folder}") from None
        if folder and not items:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        folders: list[str] = []
        files: list[dict[str, Any]] = []
        for item in items:
            name = str(item.get("subdir") or item["name"])[len(prefix) :]
            if "subdir" in item or self._is_dir_marker(item):
                name = name.rstrip("/")
                if name and "/" not in name and name not in folders:
                    folders.append(name)
            elif name and "/" not in name:
                files.append(item)
        yield from (RemoteEntry(name, True) for name in folders)
        for obj in files:
            name = str(obj["name"])[len(prefix) :]
            if name in folders:
                continue  # an object "x" beside a folder "x/": browsing shows the folder
            entry = RemoteEntry(name, False, int(obj.get("bytes") or 0), _listing_time(obj.get("last_modified")),
                                obj.get("hash"), obj.get("hash"))
            if obj.get("bytes") == 0:
                headers = self._head(str(obj["name"]))
                if headers is None:
                    continue  # deleted meanwhile
                if headers.get("x-object-manifest"):
                    whole = self._entry_from_headers(name, headers)
                    entry = RemoteEntry(name, False, whole.size, entry.mtime, None, whole.revision)
            yield entry

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        headers, body = self._call(f"reading /{path}", "get_object", self.container, path, resp_chunk_size=CHUNK)
        try:
            for chunk in body:
                out.write(chunk)
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None
        return self._entry_from_headers(path, headers)

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        meta = {"X-Object-Meta-Mtime": repr(float(mtime))}
        old = self._head(path)
        self._check(path, expect, old)
        old_manifest = unquote((old or {}).get("x-object-manifest") or "") or None
        new_manifest: str | None = None
        if size <= self.segment_size:
            reader = _Hashing(src, size)
            etag = self._put(path, expect, reader, content_length=size, headers=meta)
            if _etag(etag) != reader.md5.hexdigest() or reader.count != size:
                raise TransientError(f"writing /{path}: the upload was corrupted in transit")
            md5 = reader.md5.hexdigest()
            entry = RemoteEntry(path, False, size, float(mtime), md5, md5)
        else:
            entry, new_manifest = self._upload_dlo(path, src, size, mtime, meta, expect)
        if old_manifest and old_manifest != new_manifest:
            self._delete_segments(old_manifest)
        return entry

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """PUT `dst` with X-Copy-From: the object's data and metadata (the mtime) copied by the service. `expect`
        as for uploads: re-read first, and If-None-Match: * for a new name. A large object (a DLO manifest) is
        refused: a copy of its manifest would share the segments that deleting either one removes, and a
        copy of its content is limited to Swift's largest single object; the engine copies it through this
        computer instead."""
        what = f"copying /{src} to /{dst}"
        headers = self._head(src)
        if headers is None:
            raise NotFound(f"{what}: /{src} is not there")
        if headers.get("x-object-manifest"):
            raise ProviderError(f"{what}: a large (segmented) object is not copied on the service")
        source = self._entry_from_headers(src, headers)
        self._check(dst, expect, self._head(dst))
        etag = self._put(dst, expect, b"", content_length=0,
                         headers={"X-Copy-From": quote(f"/{self.container}/{src}")})
        return RemoteEntry(dst, False, source.size, source.mtime, _etag(etag), _etag(etag))

    def _check(self, path: str, expect: Expect | None, headers: Mapping[str, str] | None) -> None:
        """`expect` against the object as a HEAD just reported it (None: there is none)."""
        if expect is not None and not expect.met_by(
            None if headers is None else self._entry_from_headers(path, headers)
        ):
            raise expect.failed(f"writing /{path}")

    def _put(self, path: str, expect: Expect | None, contents: Any, **kwargs: Any) -> Any:
        """PUT the object `path`; a new name (`Expect.absent()`) with If-None-Match: *."""
        from swiftclient.exceptions import ClientException

        if expect is not None and expect.seen is None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "If-None-Match": "*"}
        try:
            return self._conn().put_object(self.container, path, contents, **kwargs)
        except ClientException as exc:
            if expect is not None and exc.http_status == 412:
                raise expect.failed(f"writing /{path}") from None
            raise _translate(exc, f"writing /{path}") from None
        except Exception as exc:
            raise _translate(exc, f"writing /{path}") from None

    def _upload_dlo(
        self, path: str, src: BinaryIO, size: int, mtime: float, meta: dict[str, str], expect: Expect | None = None
    ) -> tuple[RemoteEntry, str]:
        """Upload segments, then the manifest; (entry, decoded "container/prefix" of the segments)."""
        self._call("creating the segments container", "put_container", self.segments_container)
        prefix = f"{path}/{mtime:.6f}/{size}/{self.segment_size}/"
        index = 0
        sent = 0
        while sent < size:
            length = min(self.segment_size, size - sent)
            reader = _Hashing(src, length)
            name = f"{prefix}{index:08d}"
            etag = self._call(
                f"writing /{path}", "put_object", self.segments_container, name, reader, content_length=length
            )
            if _etag(etag) != reader.md5.hexdigest() or reader.count != length:
                raise TransientError(f"writing /{path}: a segment was corrupted in transit")
            sent += length
            index += 1
        manifest = f"{quote(self.segments_container)}/{quote(prefix)}"
        try:
            if expect is not None:
                self._check(path, expect, self._head(path))  # the segments took a while: look again
            self._put(path, expect, b"", content_length=0, headers={**meta, "X-Object-Manifest": manifest})
        except PreconditionFailed:
            self._delete_segments(unquote(manifest))  # ours, and now nobody's
            raise
        headers = self._head(path)
        if headers is None:
            raise TransientError(f"writing /{path}: the manifest vanished right after upload")
        entry = self._entry_from_headers(path, headers)
        return RemoteEntry(path, False, entry.size, float(mtime), None, entry.revision), unquote(manifest)

    def _delete_segments(self, manifest: str) -> None:
        """Delete the segments of a replaced or deleted DLO (manifest: decoded "container/prefix")."""
        from swiftclient.exceptions import ClientException

        container, _, prefix = manifest.partition("/")
        if not prefix:
            return
        try:
            _, objects = self._conn().get_container(container, prefix=prefix, full_listing=True)
            for obj in objects:
                try:
                    self._conn().delete_object(container, obj["name"])
                except ClientException as exc:
                    if exc.http_status != 404:
                        raise
        except Exception:
            pass  # leftover segments waste space but never show up as files

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        from swiftclient.exceptions import ClientException

        headers = self._head(path)
        if headers is None:
            return
        if expect is not None and not expect.met_by(self._entry_from_headers(path, headers)):
            raise expect.failed(f"deleting /{path}")
        try:
            self._conn().delete_object(self.container, path)
        except ClientException as exc:
            if exc.http_status != 404:
                raise _translate(exc, f"deleting /{path}") from None
        except Exception as exc:
            raise _translate(exc, f"deleting /{path}") from None
        if headers.get("x-object-manifest"):
            self._delete_segments(unquote(headers["x-object-manifest"]))

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        if self._objects(path + "/"):
            return RemoteEntry(path, True)  # the folder already has content (or its marker)
        self._call(
            f"creating folder /{path}", "put_object", self.container, path + "/", b"",
            content_length=0, content_type=DIR_TYPE,
        )  # fmt: skip
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        from swiftclient.exceptions import ClientException

        path = path.strip("/")
        for obj in self._objects(path + "/"):
            if obj["name"] != path + "/":
                raise FolderNotEmpty(f"removing folder /{path}: it is not empty")
        try:
            self._conn().delete_object(self.container, path + "/")
        except ClientException as exc:
            if exc.http_status != 404:
                raise _translate(exc, f"removing folder /{path}") from None
        except Exception as exc:
            raise _translate(exc, f"removing folder /{path}") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
