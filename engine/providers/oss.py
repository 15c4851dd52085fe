"""`oss`: Alibaba Cloud Object Storage Service, through the official oss2 SDK.

The same layout as the S3 family: one object per file, zero-byte "dir/" markers for folders, folders implied by
deeper keys reported too, the mtime in user metadata (x-oss-meta-mtime), and a listing that is one paginated
ListObjects walk with no request per object. OSS ETags are upper-case MD5s for single-part ("Normal") objects;
multipart objects carry no hash (spec, attribute table note 2). oss2's CRC-64 checks stay on, so a corrupted
transfer is caught both ways.

Conditional writes (`expect`): OSS has no If-Match on writes, so the object is re-read (HEAD) just before the
PutObject or, for a multipart upload, just before CompleteMultipartUpload; a new name also carries
`x-oss-forbid-overwrite: true`, which the service checks as it commits. The window left for a replace is the
PutObject's duration (at most one part's worth of data) or the CompleteMultipartUpload round trip. Deletes
re-read the object just before the DELETE: a window of one round trip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from engine.providers import objectstore
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
from engine.providers.paging import PageTrail

MIB = 1 << 20
MIN_PART_MIB = 1  # OSS accepts parts down to 100 KiB; whole MiB keep the setting simple
MAX_PART_MIB = 5 * 1024
# Spec note 7: "exceeds 48.8 TB" -- 10,000 parts of 5 GiB (read as TiB, like the policy table).
MAX_OBJECT = int(48.8 * (1 << 40))
CHUNK = MIB
MTIME_HEADER = "x-oss-meta-mtime"
COPY_OBJECT_LIMIT = 1 << 30  # the largest object one CopyObject copies (UploadPartCopy above)
DEFAULT_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
STORAGE_CLASSES = ("Standard", "IA")
REFUSED_CLASSES = ("archive", "coldarchive", "deepcoldarchive", "glacier")

_AUTH_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "SecurityTokenExpired"})
_TRANSIENT_CODES = frozenset({"InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"})


def normalise_storage_class(value: str) -> str:
    name = value.strip().replace("_", "").replace(" ", "").lower()
    if name in REFUSED_CLASSES:
        raise objectstore.archive_class_refused(value, STORAGE_CLASSES)
    aliases = {"standard": "Standard", "ia": "IA", "infrequentaccess": "IA"}
    if name not in aliases:
        raise objectstore.unknown_class(STORAGE_CLASSES)
    return aliases[name]


def _forbid(expect: Expect | None) -> dict[str, str]:
    """A new name is created with x-oss-forbid-overwrite, which the service itself checks."""
    return {"x-oss-forbid-overwrite": "true"} if expect is not None and expect.seen is None else {}


def _md5_of(etag: str, object_type: str | None) -> str | None:
    etag = etag.strip('"').lower()
    if object_type not in (None, "Normal") or len(etag) != 32 or "-" in etag:
        return None
    return etag


class OSSProvider(Provider):
    kind = "oss"
    location_options = ("bucket",)
    title = "Alibaba Cloud OSS"
    DEFAULT_PART_MIB = 16
    option_specs = (
        OptionSpec(
            "endpoint",
            f"the region's endpoint (default {DEFAULT_ENDPOINT})",
            default=DEFAULT_ENDPOINT,
            label="Endpoint URL",
        ),
        OptionSpec(
            "bucket",
            "the bucket's name, as the OSS console lists it (Object Storage Service > Buckets)",
            required=True,
            label="Bucket",
        ),
        OptionSpec(
            "access_key_id",
            "the AccessKey ID (Alibaba Cloud console: your avatar > AccessKey Management)",
            required=True,
            label="AccessKey ID",
        ),
        OptionSpec(
            "access_key_secret",
            "the AccessKey secret, shown once when the AccessKey is created (AccessKey Management)",
            secret=True,
            required=True,
            label="AccessKey secret",
        ),
        OptionSpec(
            "storage_class",
            "storage class of uploads: Standard or IA",
            default="Standard",
            advanced=True,
            label="Storage class",
        ),
        OptionSpec(
            "part_size",
            f"multipart part size in MiB ({MIN_PART_MIB}..{MAX_PART_MIB}); a file too large for 10,000 such "
            "parts gets larger ones",
            default=str(DEFAULT_PART_MIB),
            advanced=True,
            label="Part size (MiB)",
        ),
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.validate_options(self.options)
        self.bucket_name = self.options["bucket"]
        self.endpoint = self.resolve_endpoint(self.options)
        self.storage_class = normalise_storage_class(self.options.get("storage_class") or "Standard")
        part_mib = objectstore.part_size_mib(self.options, self.DEFAULT_PART_MIB, MIN_PART_MIB, MAX_PART_MIB)
        self.part_size = part_mib * MIB
        self.capabilities = Capabilities(
            hash_kind=HashKind.MD5,
            mtime_mode=MtimeMode.METADATA,
            canonical_order=False,
            max_file_size=self.max_object_size(self.options),
            multipart_threshold=self.part_size,
            conditional_writes=Conditional.REREAD,
            conditional_deletes=Conditional.REREAD,
            server_side_copy=True,  # CopyObject (x-oss-copy-source), metadata kept
            list_dir=True,  # ListObjects with delimiter "/"
            # No ids: an object is its key, and a rename is a copy to a new key.
        )
        self._bucket: Any = None
        self._client_lock = threading.Lock()

    @staticmethod
    def resolve_endpoint(options: Mapping[str, str]) -> str:
        endpoint = (options.get("endpoint") or DEFAULT_ENDPOINT).strip().rstrip("/")
        return endpoint if "://" in endpoint else "https://" + endpoint

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return MAX_OBJECT

    @classmethod
    def part_limits(cls, options: Mapping[str, str]) -> objectstore.PartLimits:
        """The service's multipart limits (objectstore.MAX_PARTS is read now, so a test can lower it)."""
        return objectstore.PartLimits(objectstore.MAX_PARTS, MAX_PART_MIB * MIB, cls.max_object_size(options))

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        if options.get("bucket"):  # before any network call, with every rule the name breaks (note 22)
            from engine.policy import validate_bucket

            problem = validate_bucket(cls.kind, options["bucket"])
            if problem:
                raise InvalidOption(problem)
        normalise_storage_class(options.get("storage_class") or "Standard")
        objectstore.part_size_mib(options, cls.DEFAULT_PART_MIB, MIN_PART_MIB, MAX_PART_MIB)
        if not cls.resolve_endpoint(options).startswith(("http://", "https://")):
            raise InvalidOption("option 'endpoint' must be an http:// or https:// URL or a host name")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        return f"{cls.kind}:{cls.resolve_endpoint(options)}:{options.get('access_key_id', '')}"

    # -- plumbing ---------------------------------------------------------------------------------------------

    @property
    def bucket(self) -> Any:
        with self._client_lock:  # the executor's threads share this provider
            if self._bucket is None:
                import oss2  # slow to import: only when a connection of this kind is used

                auth = oss2.Auth(self.options["access_key_id"], self.options["access_key_secret"])
                self._bucket = oss2.Bucket(
                    auth,
                    self.endpoint,
                    self.bucket_name,
                    session=oss2.Session(pool_size=32),
                    connect_timeout=30,
                    enable_crc=True,
                )
        return self._bucket

    def _translate(self, exc: Exception, what: str) -> ProviderError:
        from oss2 import exceptions as ox

        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, ox.InconsistentError):
            return TransientError(f"{what}: the checksum of the transfer did not match; it will be retried")
        if isinstance(exc, ox.RequestError):
            return NetworkError(f"cannot reach Alibaba Cloud OSS at {self.endpoint}")
        if isinstance(exc, ox.ServerError):
            code, status = str(exc.code or ""), int(exc.status or 0)
            if code in _AUTH_CODES:
                return AuthError(f"Alibaba Cloud OSS at {self.endpoint} refused the AccessKey ({code})")
            if code == "NoSuchBucket":
                return ContainerNotFound(f"the bucket '{self.bucket_name}' does not exist at {self.endpoint}")
            if code in ("NoSuchKey", "NoSuchUpload") or status == 404:
                return NotFound(f"{what}: not found")
            if code == "InvalidObjectState":
                return ProviderError(f"{what}: the file is in archive storage and cannot be downloaded")
            if code in ("AccessDenied", "UserDisable") or status == 403:
                return PermissionDenied(f"{what}: access denied by Alibaba Cloud OSS")
            if code in ("EntityTooLarge", "QuotaExceeded", "TooManyBuckets"):
                return QuotaExceeded(f"{what}: {code}")
            if code in _TRANSIENT_CODES or status >= 500 or status == 429:
                return TransientError(f"{what}: Alibaba Cloud OSS is busy or failing ({code or status})",
                                      retry_after=retry_after_seconds((exc.headers or {}).get("Retry-After")))
            return ProviderError(f"{what}: {code or status}")
        if isinstance(exc, ox.OssError):
            return ProviderError(f"{what}: {type(exc).__name__}")
        if isinstance(exc, OSError):
            return NetworkError(f"{what}: network error talking to {self.endpoint}")
        raise exc

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.bucket, method)(*args, **kwargs)
        except Exception as exc:  # oss2 raises its own tree and requests' errors; see _translate
            raise self._translate(exc, what) from None

    # -- the contract -----------------------------------------------------------------------------------------

    def check(self) -> None:
        self._call("checking the bucket", "list_objects", max_keys=1)

    def server_time(self) -> float | None:
        """The `Date` of a one-key listing's answer, refused or not."""
        import oss2

        try:
            headers = self.bucket.list_objects(max_keys=1).headers
        except oss2.exceptions.OssError as exc:
            headers = exc.headers
        except Exception:  # unreachable: no clock to compare; check() reports why
            return None
        return self.http_date((headers or {}).get("date"))

    def _objects(self, prefix: str) -> Iterator[Any]:
        marker: str | None = ""
        trail = PageTrail(f"listing /{prefix}")
        while True:
            page = self._call(f"listing /{prefix}", "list_objects", prefix=prefix, marker=marker, max_keys=1000)
            yield from page.object_list
            marker = trail.next(bool(page.is_truncated), page.next_marker)
            if marker is None:
                return

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self.list_reporting(folder, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        seen_any = False

        def keys() -> Iterator[tuple[str, Any]]:
            nonlocal seen_any
            for obj in self._objects(prefix):
                seen_any = True
                yield obj.key, obj

        for path, is_dir, obj in objectstore.walk_keys(keys(), prefix, lambda obj: int(obj.size), on_skip):
            if is_dir:
                yield RemoteEntry(path, True)
                continue
            etag = obj.etag.strip('"')
            yield RemoteEntry(path, False, int(obj.size), float(obj.last_modified), _md5_of(etag, obj.type), etag)
        if folder and not seen_any:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in bucket '{self.bucket_name}'")

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """ListObjects with delimiter "/": the keys right inside `folder` and its subfolders' prefixes."""
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        files: list[tuple[str, Any]] = []
        folders: list[str] = []
        marker: str | None = ""
        trail = PageTrail(f"listing /{folder}")
        while True:
            page = self._call(f"listing /{folder}", "list_objects", prefix=prefix, delimiter="/", marker=marker,
                              max_keys=1000)
            files.extend((obj.key, obj) for obj in page.object_list)
            folders.extend(page.prefix_list)
            marker = trail.next(bool(page.is_truncated), page.next_marker)
            if marker is None:
                break
        if folder and not files and not folders:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in bucket '{self.bucket_name}'")
        for name, is_dir, obj in objectstore.one_level(files, folders, prefix):
            if is_dir:
                yield RemoteEntry(name, True)
            else:
                etag = obj.etag.strip('"')
                yield RemoteEntry(name, False, int(obj.size), float(obj.last_modified), _md5_of(etag, obj.type), etag)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        what = f"reading /{path}"
        result = self._call(what, "get_object", path)
        try:
            while chunk := result.read(CHUNK):
                out.write(chunk)
        except Exception as exc:
            raise self._translate(exc, what) from None
        finally:
            result.close()
        if result.client_crc is not None and result.server_crc is not None and result.client_crc != result.server_crc:
            raise TransientError(f"{what}: the checksum of the transfer did not match; it will be retried")
        headers = result.headers
        etag = str(result.etag or "").strip('"')
        mtime = objectstore.parse_mtime(headers.get(MTIME_HEADER))
        if mtime is None:
            mtime = float(result.last_modified) if result.last_modified else None
        object_type = headers.get("x-oss-object-type")
        return RemoteEntry(path, False, int(result.content_length or 0), mtime, _md5_of(etag, object_type), etag)

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        """Single PUT up to one part size, multipart above; the returned mtime is the one kept in metadata."""
        what = f"writing /{path}"
        objectstore.refuse_too_large(size, self.capabilities.max_file_size, what)
        headers = {MTIME_HEADER: objectstore.format_mtime(mtime), "x-oss-storage-class": self.storage_class}
        first = objectstore.read_full(src, self.part_size + 1)
        if len(first) <= self.part_size:
            self._check(path, expect, what)
            result = self._write(what, expect, "put_object", path, first, headers={**headers, **_forbid(expect)})
            etag = str(result.etag or "").strip('"')  # oss2 has compared the CRC-64 of what was stored
            return RemoteEntry(path, False, len(first), mtime, _md5_of(etag, "Normal"), etag)
        parts = objectstore.part_schedule(size, self.part_size, self.part_limits(self.options))
        return self._multipart(path, src, first, headers, what, mtime, expect, parts)

    def _head(self, path: str, what: str) -> RemoteEntry | None:
        """The object `path` as HEAD reports it (size, ETag), or None when there is none."""
        try:
            head = self._call(what, "head_object", path)
        except NotFound:
            return None
        return RemoteEntry(path, False, int(head.content_length or 0), None, None, str(head.etag or "").strip('"'))

    def _check(self, path: str, expect: Expect | None, what: str) -> None:
        if expect is not None and not expect.met_by(self._head(path, what)):
            raise expect.failed(what)

    def _write(self, what: str, expect: Expect | None, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.bucket, method)(*args, **kwargs)
        except Exception as exc:
            if expect is not None and getattr(exc, "code", None) in ("FileAlreadyExists", "PreconditionFailed"):
                raise expect.failed(what) from None  # x-oss-forbid-overwrite refused the write
            raise self._translate(exc, what) from None

    def _multipart(
        self, path: str, src: BinaryIO, first: bytes, headers: dict[str, str], what: str, mtime: float,
        expect: Expect | None, part_size: Callable[[int], int],
    ) -> RemoteEntry:
        from oss2.models import PartInfo

        upload_id = self._call(what, "init_multipart_upload", path, headers=headers).upload_id

        def upload_part(number: int, body: bytes) -> Any:
            result = self._call(what, "upload_part", path, upload_id, number, body)
            return PartInfo(number, result.etag, size=len(body), part_crc=result.crc)

        result, total = objectstore.multipart(
            src,
            first,
            part_size,
            what,
            upload_part,
            lambda done: self._complete(what, expect, path, upload_id, done),
            lambda: self.bucket.abort_multipart_upload(path, upload_id),
        )
        etag = str(result.etag or "").strip('"')
        return RemoteEntry(path, False, total, mtime, _md5_of(etag, "Multipart"), etag)

    def _complete(self, what: str, expect: Expect | None, path: str, upload_id: str, parts: list[Any]) -> Any:
        self._check(path, expect, what)
        return self._write(what, expect, "complete_multipart_upload", path, upload_id, parts, headers=_forbid(expect))

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        what = f"deleting /{path}"
        if objectstore.still_there_as_expected(expect, lambda: self._head(path, what), what):
            self._call(what, "delete_object", path)  # OSS deletes are idempotent

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        self._call(f"creating folder /{path}", "put_object", path + "/", b"")
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        page = self._call(what, "list_objects", prefix=path + "/", max_keys=2)
        if any(obj.key != path + "/" for obj in page.object_list):
            raise FolderNotEmpty(f"{what}: it is not empty")
        self._call(what, "delete_object", path + "/")

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """CopyObject: the metadata (the mtime) travels with the copy, which is made only from the version of
        `src` read just before (x-oss-copy-source-if-match). `expect` as for uploads: `dst` is re-read first,
        and a new name carries x-oss-forbid-overwrite. One CopyObject copies up to 1 GB; a larger object is
        refused here (the engine then copies it through this computer)."""
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        head = self._call(what, "head_object", src)
        size = int(head.content_length or 0)
        if size > COPY_OBJECT_LIMIT:
            raise ProviderError(f"{what}: larger than the 1 GB a single copy can copy")
        source_etag = str(head.etag or "").strip('"')
        self._check(dst, expect, what)
        headers = {"x-oss-copy-source-if-match": source_etag, "x-oss-storage-class": self.storage_class,
                   **_forbid(expect)}
        result = self._write(what, expect, "copy_object", self.bucket_name, src, dst, headers=headers)
        etag = str(result.etag or source_etag).strip('"')
        mtime = objectstore.parse_mtime(head.headers.get(MTIME_HEADER))
        if mtime is None and head.last_modified:
            mtime = float(head.last_modified)
        return RemoteEntry(dst, False, size, mtime, _md5_of(etag, head.headers.get("x-oss-object-type")), etag)

    def clean_interrupted(self, folder: str) -> int:
        """Abort multipart uploads under `folder` that a killed pass left behind (OSS bills their parts).

        Only uploads started more than a day ago (a younger one may be another client's, still running), and
        once a day per bucket and folder in a process, so a poll normally costs just the listing.
        """
        folder = folder.strip("/")
        now = time.time()
        if not _cleanups.due(self.endpoint, self.bucket_name, folder):
            return 0
        what = f"cleaning unfinished uploads in /{folder}"
        prefix = folder + "/" if folder else ""
        result = self._call(what, "list_multipart_uploads", prefix=prefix, max_uploads=1000)
        removed = 0
        for upload in result.upload_list:
            if now - float(upload.initiation_date) >= objectstore.STALE_UPLOAD_AGE:
                self._call(what, "abort_multipart_upload", upload.key, upload.upload_id)
                removed += 1
        return removed

    def close(self) -> None:
        if self._bucket is not None:
            self._bucket.session.session.close()
            self._bucket = None


_cleanups = objectstore.CleanupGate()



