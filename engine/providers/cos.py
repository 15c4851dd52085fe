"""`cos`: Tencent Cloud Object Storage (COS V5 only, spec note 26), through cos-python-sdk-v5.

The same layout as the S3 family: one object per file, zero-byte "dir/" markers for folders, folders implied by
deeper keys reported too, the mtime in user metadata (x-cos-meta-mtime), and a listing that is one paginated
GET Bucket walk with no request per object. COS ETags are MD5s for single-part objects; multipart objects
("...-N") carry no hash (spec, attribute table note 2).

Conditional writes (`expect`): the SDK passes no write condition that COS documents, so the object is re-read
(HEAD) just before the PUT Object or, for a multipart upload, just before Complete Multipart Upload. The window
left is the PUT's duration (at most one part's worth of data) or the completion's round trip; deletes re-read
the object just before the DELETE, a window of one round trip.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlsplit

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
MIN_PART_MIB = 1  # COS's smallest part (all but the last)
MAX_PART_MIB = 5 * 1024
# Spec note 7: "exceeds 48.8 TB" -- 10,000 parts of 5 GiB (read as TiB, like the policy table).
MAX_OBJECT = int(48.8 * (1 << 40))
CHUNK = MIB
MTIME_HEADER = "x-cos-meta-mtime"
COPY_OBJECT_LIMIT = 5 * 1024**3  # the largest object one PUT Object - Copy copies
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA")
REFUSED_CLASSES = ("ARCHIVE", "DEEP_ARCHIVE", "GLACIER")

_AUTH_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecretId", "ExpiredToken", "InvalidToken"}
)
_TRANSIENT_CODES = frozenset({"InternalError", "ServiceUnavailable", "RequestTimeout", "SlowDown"})


def normalise_storage_class(value: str) -> str:
    name = value.strip().upper().replace("-", "_").replace(" ", "_")
    name = {"IA": "STANDARD_IA", "INFREQUENT_ACCESS": "STANDARD_IA"}.get(name, name)
    if name in REFUSED_CLASSES:
        raise objectstore.archive_class_refused(value, STORAGE_CLASSES)
    if name not in STORAGE_CLASSES:
        raise objectstore.unknown_class(STORAGE_CLASSES)
    return name


_md5_of = objectstore.etag_md5


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """A response header by name, whatever case the SDK's plain dict kept it in."""
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


class COSProvider(Provider):
    kind = "cos"
    location_options = ("bucket",)
    title = "Tencent Cloud COS"
    DEFAULT_PART_MIB = 16
    option_specs = (
        OptionSpec(
            "region",
            "the bucket's region, e.g. ap-guangzhou (the COS console's bucket list shows it)",
            required=True,
            label="Region",
        ),
        OptionSpec("endpoint", "the service address (default: cos.<region>.myqcloud.com)", label="Endpoint address"),
        OptionSpec(
            "bucket",
            "the bucket, as <name>-<APPID>: the COS console's bucket list shows it so",
            required=True,
            label="Bucket (name-APPID)",
        ),
        OptionSpec(
            "secret_id",
            "the SecretId of an API key (Tencent Cloud console: Access Management > API Keys)",
            required=True,
            label="SecretId",
        ),
        OptionSpec(
            "secret_key",
            "the SecretKey of that API key (Access Management > API Keys)",
            secret=True,
            required=True,
            label="SecretKey",
        ),
        OptionSpec(
            "storage_class", "storage class of uploads: STANDARD or STANDARD_IA", default="STANDARD", advanced=True,
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
        self.bucket = self.options["bucket"]
        self.region = self.options["region"]
        self.storage_class = normalise_storage_class(self.options.get("storage_class") or "STANDARD")
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
            server_side_copy=True,  # PUT Object - Copy (x-cos-copy-source), metadata kept
            list_dir=True,  # GET Bucket with delimiter "/"
            # No ids: an object is its key, and a rename is a copy to a new key.
        )
        self._client: Any = None
        # The SDK's errors carry no answer headers: a response hook on our session keeps each thread's last
        # Retry-After for _translate.
        self._answers = threading.local()
        self._client_lock = threading.Lock()
        self._session: Any = None

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
        normalise_storage_class(options.get("storage_class") or "STANDARD")
        objectstore.part_size_mib(options, cls.DEFAULT_PART_MIB, MIN_PART_MIB, MAX_PART_MIB)
        endpoint = options.get("endpoint") or ""
        if "://" in endpoint and not endpoint.startswith(("http://", "https://")):
            raise InvalidOption("option 'endpoint' must be an http:// or https:// URL or a host name")

    @classmethod
    def where(cls, options: Mapping[str, str]) -> str:
        return (options.get("endpoint") or f"cos.{options.get('region', '')}.myqcloud.com").rstrip("/")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        return f"{cls.kind}:{cls.where(options)}:{options.get('secret_id', '')}"

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _config(self) -> Any:
        from qcloud_cos import CosConfig

        common: dict[str, Any] = {
            "Region": self.region,
            "SecretId": self.options["secret_id"],
            "SecretKey": self.options["secret_key"],
            "Timeout": 60,
            "PoolConnections": 32,
            "PoolMaxSize": 32,
        }
        endpoint = (self.options.get("endpoint") or "").strip().rstrip("/")
        if not endpoint:
            return CosConfig(Scheme="https", **common)
        parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        scheme = parts.scheme or "https"
        host = parts.hostname or ""
        if parts.port is not None or _is_ip(host):
            # An address (a private gateway, a test server): connect there, and name the bucket in the Host
            # header exactly as the public service expects it.
            return CosConfig(Scheme=scheme, IP=host, Port=parts.port, **common)
        return CosConfig(Scheme=scheme, Endpoint=host, **common)

    @property
    def client(self) -> Any:
        with self._client_lock:  # the executor's threads share this provider
            if self._client is None:
                import requests
                from qcloud_cos import CosS3Client

                # The SDK logs every failed attempt with a traceback; our errors already say what failed, in one line.
                logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
                # Our own session (not the SDK's process-wide one), so close() releases this connection's sockets.
                self._session = requests.Session()
                adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=32)
                self._session.mount("http://", adapter)
                self._session.mount("https://", adapter)
                self._session.hooks["response"].append(self._remember_retry_after)
                self._client = CosS3Client(self._config(), retry=1, session=self._session)
        return self._client

    def _remember_retry_after(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._answers.retry_after = retry_after_seconds(response.headers.get("Retry-After"))

    def _translate(self, exc: Exception, what: str) -> ProviderError:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        where = self.where(self.options)
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, CosServiceError):
            code, status = str(exc.get_error_code() or ""), int(exc.get_status_code() or 0)
            if code in _AUTH_CODES:
                return AuthError(f"Tencent Cloud COS at {where} refused the SecretId or SecretKey ({code})")
            if code == "NoSuchBucket":
                return ContainerNotFound(f"the bucket '{self.bucket}' does not exist in region {self.region}")
            if code in ("NoSuchKey", "NoSuchUpload") or status == 404:
                return NotFound(f"{what}: not found")
            if code == "InvalidObjectState":
                return ProviderError(f"{what}: the file is in archive storage and cannot be downloaded")
            if code == "AccessDenied" or status == 403:
                return PermissionDenied(f"{what}: access denied by Tencent Cloud COS")
            if code in ("EntityTooLarge", "QuotaExceeded", "TooManyBuckets"):
                return QuotaExceeded(f"{what}: {code}")
            if code in _TRANSIENT_CODES or status >= 500 or status == 429:
                return TransientError(f"{what}: Tencent Cloud COS is busy or failing ({code or status})",
                                      retry_after=getattr(self._answers, "retry_after", None))
            return ProviderError(f"{what}: {code or status}")
        if isinstance(exc, CosClientError):
            # The SDK wraps network failures and its own argument checks in one class; tell them apart by text.
            text = str(exc).lower()
            if any(w in text for w in ("connection", "timeout", "timed out", "max retries", "refused", "reset")):
                return NetworkError(f"cannot reach Tencent Cloud COS at {where}")
            return ProviderError(f"{what}: the COS client refused the request")
        if isinstance(exc, OSError):
            return NetworkError(f"{what}: network error talking to {where}")
        raise exc

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except Exception as exc:  # the SDK raises its own classes and requests' errors; see _translate
            raise self._translate(exc, what) from None

    # -- the contract -----------------------------------------------------------------------------------------

    def check(self) -> None:
        self._call("checking the bucket", "list_objects", MaxKeys=1)

    def server_time(self) -> float | None:
        """The `Date` of a HEAD Bucket answer (the SDK hands back a successful answer's headers only)."""
        try:
            headers = self.client.head_bucket(Bucket=self.bucket)
        except Exception:  # refused or unreachable: no clock to compare; check() reports why
            return None
        return self.http_date(next((v for k, v in headers.items() if k.lower() == "date"), None))

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        marker: str | None = ""
        trail = PageTrail(f"listing /{prefix}")
        while True:
            page = self._call(f"listing /{prefix}", "list_objects", Prefix=prefix, Marker=marker, MaxKeys=1000)
            contents = page.get("Contents", ())
            yield from contents
            # Without NextMarker, the last key is the marker (the v1 listing's rule).
            last = str(contents[-1]["Key"]) if contents else None
            marker = trail.next(str(page.get("IsTruncated", "false")).lower() == "true", page.get("NextMarker") or last)
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
                yield str(obj["Key"]), obj

        for path, is_dir, obj in objectstore.walk_keys(
            keys(), prefix, lambda obj: int(obj.get("Size", 0)), on_skip
        ):
            if is_dir:
                yield RemoteEntry(path, True)
                continue
            etag = str(obj.get("ETag", "")).strip('"')
            yield RemoteEntry(
                path,
                False,
                int(obj.get("Size", 0)),
                _iso_to_unix(str(obj.get("LastModified", ""))),
                _md5_of(etag),
                etag,
            )
        if folder and not seen_any:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in bucket '{self.bucket}'")

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """GET Bucket with delimiter "/": the keys right inside `folder` and its subfolders' prefixes."""
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        files: list[tuple[str, Any]] = []
        folders: list[str] = []
        marker: str | None = ""
        trail = PageTrail(f"listing /{folder}")
        while True:
            page = self._call(f"listing /{folder}", "list_objects", Prefix=prefix, Delimiter="/", Marker=marker,
                              MaxKeys=1000)
            files.extend((str(obj["Key"]), obj) for obj in page.get("Contents", ()))
            folders.extend(str(common["Prefix"]) for common in page.get("CommonPrefixes", ()))
            marker = trail.next(str(page.get("IsTruncated", "false")).lower() == "true", page.get("NextMarker"))
            if marker is None:
                break
        if folder and not files and not folders:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in bucket '{self.bucket}'")
        for name, is_dir, obj in objectstore.one_level(files, folders, prefix):
            if is_dir:
                yield RemoteEntry(name, True)
            else:
                etag = str(obj.get("ETag", "")).strip('"')
                yield RemoteEntry(name, False, int(obj.get("Size", 0)),
                                  _iso_to_unix(str(obj.get("LastModified", ""))), _md5_of(etag), etag)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        what = f"reading /{path}"
        response = self._call(what, "get_object", Key=path)
        body = response["Body"]
        try:
            for chunk in body.get_stream(CHUNK):
                out.write(chunk)
        except Exception as exc:
            raise self._translate(exc, what) from None
        finally:
            body.get_raw_stream().close()
        etag = (_header(response, "etag") or "").strip('"')
        mtime = objectstore.parse_mtime(_header(response, MTIME_HEADER))
        if mtime is None:
            mtime = _http_to_unix(_header(response, "last-modified"))
        size = int(_header(response, "content-length") or 0)
        return RemoteEntry(path, False, size, mtime, _md5_of(etag), etag)

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        """Single PUT up to one part size, multipart above; the returned mtime is the one kept in metadata."""
        what = f"writing /{path}"
        objectstore.refuse_too_large(size, self.capabilities.max_file_size, what)
        meta = {MTIME_HEADER: objectstore.format_mtime(mtime)}
        first = objectstore.read_full(src, self.part_size + 1)
        if len(first) <= self.part_size:
            self._check(path, expect, what)
            response = self._call(
                what,
                "put_object",
                Key=path,
                Body=first,
                EnableMD5=True,  # Content-MD5: the service refuses a body that arrived damaged
                Metadata=meta,
                StorageClass=self.storage_class,
            )
            etag = (_header(response, "etag") or "").strip('"')
            return RemoteEntry(path, False, len(first), mtime, _md5_of(etag), etag)
        parts = objectstore.part_schedule(size, self.part_size, self.part_limits(self.options))
        return self._multipart(path, src, first, meta, what, mtime, expect, parts)

    def _head(self, path: str, what: str) -> RemoteEntry | None:
        """The object `path` as HEAD reports it (size, ETag), or None when there is none."""
        try:
            headers = self._call(what, "head_object", Key=path)
        except NotFound:
            return None
        etag = (_header(headers, "etag") or "").strip('"')
        return RemoteEntry(path, False, int(_header(headers, "content-length") or 0), None, None, etag)

    def _check(self, path: str, expect: Expect | None, what: str) -> None:
        if expect is not None and not expect.met_by(self._head(path, what)):
            raise expect.failed(what)

    def _multipart(
        self, path: str, src: BinaryIO, first: bytes, meta: dict[str, str], what: str, mtime: float,
        expect: Expect | None, part_size: Callable[[int], int],
    ) -> RemoteEntry:
        created = self._call(what, "create_multipart_upload", Key=path, Metadata=meta, StorageClass=self.storage_class)
        upload_id = created["UploadId"]

        def upload_part(number: int, body: bytes) -> dict[str, Any]:
            response = self._call(
                what, "upload_part", Key=path, Body=body, PartNumber=number, UploadId=upload_id, EnableMD5=True
            )
            return {"PartNumber": number, "ETag": _header(response, "etag")}

        def complete(done: list[dict[str, Any]]) -> Any:
            self._check(path, expect, what)  # the parts took a while: look again
            return self._call(
                what, "complete_multipart_upload", Key=path, UploadId=upload_id, MultipartUpload={"Part": done}
            )

        response, total = objectstore.multipart(
            src,
            first,
            part_size,
            what,
            upload_part,
            complete,
            lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=path, UploadId=upload_id),
        )
        etag = str(response.get("ETag", "")).strip('"')
        return RemoteEntry(path, False, total, mtime, _md5_of(etag), etag)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        what = f"deleting /{path}"
        if objectstore.still_there_as_expected(expect, lambda: self._head(path, what), what):
            self._call(what, "delete_object", Key=path)  # COS deletes are idempotent

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        self._call(f"creating folder /{path}", "put_object", Key=path + "/", Body=b"")
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        page = self._call(what, "list_objects", Prefix=path + "/", MaxKeys=2)
        if any(obj["Key"] != path + "/" for obj in page.get("Contents", ())):
            raise FolderNotEmpty(f"{what}: it is not empty")
        self._call(what, "delete_object", Key=path + "/")

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """PUT Object - Copy: the metadata (the mtime) travels with the copy, made only from the version of
        `src` read just before (x-cos-copy-source-If-Match). `expect` as for uploads: `dst` is re-read first
        (the window is the copy's round trip). Above 5 GB one copy cannot do it: refused (the engine then copies
        through this computer)."""
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        head = self._call(what, "head_object", Key=src)
        size = int(_header(head, "content-length") or 0)
        if size > COPY_OBJECT_LIMIT:
            raise ProviderError(f"{what}: larger than the 5 GB a single copy can copy")
        source_etag = (_header(head, "etag") or "").strip('"')
        self._check(dst, expect, what)
        source: dict[str, str] = {"Bucket": self.bucket, "Key": src, "Region": self.region}
        endpoint = (self.options.get("endpoint") or "").strip().rstrip("/")
        if endpoint:
            source["Endpoint"] = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint).netloc
        response = self._call(what, "copy_object", Key=dst, CopySource=source, CopyStatus="Copy",
                              CopySourceIfMatch=f'"{source_etag}"', StorageClass=self.storage_class)
        etag = str(response.get("ETag", "") or source_etag).strip('"')
        mtime = objectstore.parse_mtime(_header(head, MTIME_HEADER))
        if mtime is None:
            mtime = _http_to_unix(_header(head, "last-modified"))
        return RemoteEntry(dst, False, size, mtime, _md5_of(etag), etag)

    def clean_interrupted(self, folder: str) -> int:
        """Abort multipart uploads under `folder` that a killed pass left behind (COS bills their parts).

        Only uploads started more than a day ago (a younger one may be another client's, still running), and
        once a day per bucket and folder in a process, so a poll normally costs just the listing.
        """
        folder = folder.strip("/")
        now = time.time()
        if not _cleanups.due(self.where(self.options), self.bucket, folder):
            return 0
        what = f"cleaning unfinished uploads in /{folder}"
        prefix = folder + "/" if folder else ""
        data = self._call(what, "list_multipart_uploads", Prefix=prefix, MaxUploads=1000)
        removed = 0
        for upload in data.get("Upload", ()):
            started = _iso_to_unix(str(upload.get("Initiated", "")))
            if started is not None and now - started >= objectstore.STALE_UPLOAD_AGE:
                self._call(what, "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"])
                removed += 1
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._session.close()
            self._client = None


_cleanups = objectstore.CleanupGate()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _iso_to_unix(text: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _http_to_unix(text: str | None) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).timestamp() if text else None
    except (TypeError, ValueError):
        return None
