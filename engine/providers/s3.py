"""`s3` and `jdcloud`: Amazon S3 and the services that speak its API, through boto3.

Layout on the service: a file is one object under its path; a folder is a zero-byte marker object "dir/", and
folders that only exist because keys run through them ("a/b.txt" without an "a/" marker) are reported too. The
mtime travels in user metadata (x-amz-meta-mtime) and comes back from `download()`; listings show the upload
time, as the spec's attribute table says. A whole listing is one ListObjectsV2 pagination -- never a request
per object (rclone#7332 shows what per-object HEADs cost).

revision = ETag. hash = the ETag when it is an MD5 (single-part uploads); multipart ETags ("...-N") carry no
hash, as the spec's note 2 of the attribute table says. Uploads send Content-MD5, so the service itself refuses a
body damaged on the way, and a single-part upload keeps that MD5 in x-amz-meta-md5 too.

Server-side encryption (`server_side_encryption` = AES256 or aws:kms, with `sse_kms_key_id`) is asked for on
every write: PutObject, CreateMultipartUpload and CopyObject. Under aws:kms an ETag is not the content's MD5 and
a listing cannot tell (ListObjectsV2 carries no encryption and no metadata), so such a connection lists no hash
(`hash_in_listing` False): the consistency check then compares with the MD5 the state recorded when the file was
sent (while the object keeps that ETag), and only for other objects (another tool's, or changed since) asks
`file_hash`, one HEAD reading x-amz-meta-md5, or the ETag when the HEAD says it is not sealed with a KMS key.

Part size per file (issue 18): the `part_size` option is the smallest part; a file so large that those parts
would be more than 10,000 gets the smallest whole number of MiB that keeps it within the count
(`objectstore.part_size_for`), up to the 5 TiB S3 stores in one object (`max_object_size`; the engine skips a
larger file before its first byte). The parts of one file go `upload_concurrency` at a time (default 4; issue
19: one stream to S3 rarely fills the link, and rclone sends four): read in order on the uploading thread, each
held in memory while in flight, and a failed part aborts the whole upload once the others in flight are done.

Conditional writes (`expect`): If-Match: <ETag> / If-None-Match: * on PutObject and on CompleteMultipartUpload,
which S3 checks as it commits the object, so another client's write while our data travels is caught. Before
completing a multipart upload the object is also re-read (HEAD), for services that take the condition on
PutObject only (moto ignores If-Match there): their window is the CompleteMultipartUpload round trip. A service
that refuses conditional writes (501 NotImplemented) gets a HEAD before every conditional write instead
(remembered per connection; its window is the PUT's duration); one that silently ignores the headers gets no
protection, which cannot be told from here. Deletes re-read the object (HEAD) right before the DELETE: S3 has
no conditional delete that compatible services honour, so a write landing in the round trip between the two
requests is still deleted (in a versioned bucket it stays as a noncurrent version).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO, ClassVar

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
    PreconditionFailed,
    Provider,
    ProviderError,
    QuotaExceeded,
    RemoteEntry,
    TransientError,
    retry_after_seconds,
)
from engine.providers.paging import PageTrail

MIB = 1 << 20
TIB = 1 << 40
MIN_PART_MIB = 5  # S3's smallest part (all but the last)
MAX_PART_MIB = 5 * 1024  # S3's largest part
MAX_OBJECT = 5 * TIB  # S3's largest object (compatible services without a row of their own are taken alike)
JD_MAX_OBJECT = 19 * TIB  # spec note 7, JD Cloud OSS: "exceeds 19 TB" (read as TiB, like the policy table)
MD5_KEY = "md5"  # sent as x-amz-meta-md5: the content's MD5 where the ETag may not be it (SSE-KMS)
SSE_CHOICES = ("AES256", "aws:kms")
CHUNK = MIB
MTIME_KEY = "mtime"  # sent as x-amz-meta-mtime
COPY_OBJECT_LIMIT = 5 * 1024**3  # the largest object one CopyObject can copy
DEFAULT_UPLOAD_CONCURRENCY = 4  # parts of one file in flight: one stream rarely fills a link to S3
MAX_UPLOAD_CONCURRENCY = 16  # each part in flight is held in memory (16 x part_size)
CONTINUE_THRESHOLD = MIB  # a PutObject body up to this is sent without waiting for "100 Continue"

_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
        "AuthorizationHeaderMalformed",
        "AccountProblem",
        "NotSignedUp",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
    }
)
# Low-level attempts per request (botocore's standard mode: exponential backoff with jitter, Retry-After honoured
# through _honour_retry_after). Three, botocore's default, let one pass in a hundred fail its listing on a
# service failing one request in five; the executor retries whole items on top of this.
MAX_ATTEMPTS = 5
RETRY_AFTER_CAP = 20.0  # seconds: a longer Retry-After is the executor's or the next pass's to wait out


etag_hash = objectstore.etag_md5


def _etag_not_md5(response: Mapping[str, Any]) -> bool:
    """An answer about an object encrypted with a KMS key or a customer key (SSE-KMS, SSE-C): its ETag is not
    the MD5 of the content."""
    return response.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse") or bool(
        response.get("SSECustomerAlgorithm"))


def _answered_md5(response: Mapping[str, Any]) -> str:
    """The content's MD5 from a GET or HEAD answer: the one our upload kept in the metadata, else the ETag
    unless the object is sealed with a KMS or customer key. "" when there is none to check against."""
    kept = str(response.get("Metadata", {}).get(MD5_KEY, "")).lower()
    if objectstore.etag_md5(kept):
        return kept
    if _etag_not_md5(response):
        return ""
    return etag_hash(str(response.get("ETag", ""))) or ""


walk_keys = objectstore.walk_keys

# Spec note 19, as GCS says it for Nearline beside its storage class.
EARLY_DELETION_WARNING = (
    "Amazon Infrequent Access storage (STANDARD_IA) is designed for data that is not frequently modified: when "
    "you edit or delete a file, early deletion charges may apply."
)
SSE_OPTIONS = (
    OptionSpec(
        "server_side_encryption",
        "encrypt every uploaded object on the service: AES256 (keys managed by S3) or aws:kms (a KMS key); "
        "empty: the bucket's default",
        choices=SSE_CHOICES,
        advanced=True,
        label="Server-side encryption",
    ),
    OptionSpec(
        "sse_kms_key_id",
        "with aws:kms, the KMS key (id, ARN or alias) to encrypt with; empty: the account's default S3 key",
        advanced=True,
        label="KMS key ID",
    ),
)


UPLOAD_CONCURRENCY_OPTION = OptionSpec(
    "upload_concurrency",
    f"how many parts of one large file are sent at the same time (1..{MAX_UPLOAD_CONCURRENCY}); each one in "
    "flight is held in memory, so memory use is this times the part size. The task's own 'concurrency' "
    "setting says how many files are sent at once",
    label="Parallel parts per file",
    default=str(DEFAULT_UPLOAD_CONCURRENCY),
    advanced=True,
)


def upload_concurrency(options: Mapping[str, str]) -> int:
    """The connection's `upload_concurrency` option: a whole number within 1..MAX_UPLOAD_CONCURRENCY."""
    raw = (options.get("upload_concurrency") or str(DEFAULT_UPLOAD_CONCURRENCY)).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_UPLOAD_CONCURRENCY:
        raise InvalidOption(f"option 'upload_concurrency' must be a whole number, 1..{MAX_UPLOAD_CONCURRENCY}")
    return int(raw)


def send_parts(
    numbered: Iterable[tuple[int, bytes]], upload_part: Callable[[int, bytes], Any], concurrency: int
) -> tuple[list[Any], int]:
    """Send the parts `numbered` yields with up to `concurrency` in flight: (upload_part's answers in part
    order, bytes sent).

    Parts are read one after the other on the calling thread (the source is a stream, perhaps throttled or
    encrypting), and a new one is read only when fewer than `concurrency` are in flight, so memory stays
    within `concurrency` parts. The first failure stops the reading; the parts already in flight are waited
    for (their threads cannot be interrupted) and that first error is raised, for the caller to abort the
    upload once nothing of it is still being sent.
    """
    if concurrency <= 1:
        answers: list[Any] = []
        total = 0
        for number, body in numbered:
            answers.append(upload_part(number, body))
            total += len(body)
        return answers, total
    results: dict[int, Any] = {}
    numbers: dict[Future[Any], int] = {}
    total = 0

    def settle(finished: Iterable[Future[Any]]) -> None:
        for future in finished:
            results[numbers.pop(future)] = future.result()  # the first failure raises here

    # Leaving the pool waits for every part already sent, failed or not, so none lands after the caller's abort.
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="skysync-part") as pool:
        for number, body in numbered:
            while len(numbers) >= concurrency:
                settle(wait(numbers, return_when=FIRST_COMPLETED).done)
            numbers[pool.submit(upload_part, number, body)] = number
            total += len(body)
        settle(wait(numbers).done)
    return [results[number] for number in sorted(results)], total


def _sse_problem(options: Mapping[str, str]) -> str | None:
    if options.get("sse_kms_key_id") and options.get("server_side_encryption") != "aws:kms":
        return "option 'sse_kms_key_id' needs server_side_encryption=aws:kms"
    return None


def _condition_refused(exc: Exception) -> bool:
    """Whether the service refused a conditional header itself (501 NotImplemented: an S3-compatible service
    without If-Match / If-None-Match), rather than the condition failing."""
    answer = getattr(exc, "response", None) or {}
    return answer.get("Error", {}).get("Code") == "NotImplemented" or answer.get(
        "ResponseMetadata", {}).get("HTTPStatusCode") == 501


class S3Provider(Provider):
    kind = "s3"
    location_options = ("bucket",)
    title = "Amazon S3 and S3-compatible services"
    # preset -> (endpoint, default region); "" means boto3's own AWS endpoint resolution.
    PRESETS: ClassVar[dict[str, tuple[str, str]]] = {
        "aws": ("", "us-east-1"),
        "hicloud": ("https://s3.hicloud.net.tw", "us-east-1"),
        "sfr": ("https://s3.sfr.fr", "us-east-1"),
        "megafon": ("https://s3.megafon.ru", "us-east-1"),
        "other": ("", "us-east-1"),
    }
    STORAGE_CLASSES: ClassVar[tuple[str, ...]] = ("STANDARD", "STANDARD_IA", "REDUCED_REDUNDANCY")
    STORAGE_ALIASES: ClassVar[dict[str, str]] = {
        "IA": "STANDARD_IA",
        "INFREQUENT_ACCESS": "STANDARD_IA",
        "RRS": "REDUCED_REDUNDANCY",
    }
    REFUSED_CLASSES: ClassVar[tuple[str, ...]] = ("GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "ARCHIVE")
    DEFAULT_PART_MIB = 16
    service_name = "the S3 service"
    option_specs = (
        OptionSpec(
            "preset",
            "the service: aws, hicloud, sfr, megafon or other",
            label="Service",
            default="aws",
            choices=("aws", "hicloud", "sfr", "megafon", "other"),
        ),
        OptionSpec("endpoint", "the service URL (overrides the preset; required for 'other')", label="Endpoint URL"),
        OptionSpec("region", "the bucket's region", default="us-east-1", label="Region"),
        OptionSpec("bucket", "the bucket", required=True, label="Bucket"),
        OptionSpec("access_key_id", "the access key ID", required=True, label="Access key ID"),
        OptionSpec("secret_access_key", "the secret access key", secret=True, required=True,
                   label="Secret access key"),
        OptionSpec(
            "storage_class",
            "storage class of uploads: STANDARD, STANDARD_IA or REDUCED_REDUNDANCY. " + EARLY_DELETION_WARNING,
            label="Storage class",
            default="STANDARD",
            advanced=True,
        ),
        OptionSpec(
            "part_size",
            f"multipart part size in MiB ({MIN_PART_MIB}..{MAX_PART_MIB}); a file too large for 10,000 such "
            "parts gets larger ones",
            label="Part size (MiB)",
            default=str(DEFAULT_PART_MIB),
            advanced=True,
        ),
        OptionSpec(
            "addressing_style",
            "auto, path or virtual",
            label="Addressing style",
            default="auto",
            choices=("auto", "path", "virtual"),
            advanced=True,
        ),
        OptionSpec(
            "create_bucket",
            "create the bucket when it does not exist",
            label="Create the bucket if missing",
            default="false",
            choices=("true", "false"),
        ),
        UPLOAD_CONCURRENCY_OPTION,
        *SSE_OPTIONS,
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.validate_options(self.options)
        self.bucket = self.options["bucket"]
        self.region = self.options.get("region") or self._preset()[1]
        self.endpoint = self.resolve_endpoint(self.options)
        self.storage_class = self.normalise_storage_class(self.options.get("storage_class") or "STANDARD")
        part_mib = objectstore.part_size_mib(self.options, self.DEFAULT_PART_MIB, MIN_PART_MIB, MAX_PART_MIB)
        self.part_size = part_mib * MIB
        self.upload_concurrency = upload_concurrency(self.options)
        self.sse: dict[str, str] = {}
        if self.options.get("server_side_encryption"):
            self.sse["ServerSideEncryption"] = self.options["server_side_encryption"]
            if self.options.get("sse_kms_key_id"):
                self.sse["SSEKMSKeyId"] = self.options["sse_kms_key_id"]
        # Under SSE-KMS an ETag is not an MD5 and the listing cannot tell: no listed hash (see the docstring).
        self.sealed = self.options.get("server_side_encryption") == "aws:kms"
        self.capabilities = Capabilities(
            hash_kind=HashKind.MD5,
            mtime_mode=MtimeMode.METADATA,
            canonical_order=False,  # S3 lists in UTF-8 byte order, where "a-b" comes before "a/x"
            server_side_move=True,  # CopyObject + DeleteObject (see `move`)
            max_file_size=self.max_object_size(self.options),
            multipart_threshold=self.part_size,
            hash_in_listing=not self.sealed,
            conditional_writes=Conditional.SERVER,
            conditional_deletes=Conditional.REREAD,
            server_side_copy=True,  # CopyObject (UploadPartCopy above 5 GB)
            list_dir=True,  # ListObjectsV2 with Delimiter="/"
            # No ids: an object is its key, and a rename is a copy to a new key.
        )
        self._unconditional = False  # the service refused If-Match / If-None-Match: re-read instead
        self._unconditional_deletes = False  # the same for DeleteObject's If-Match (older services lack it)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._bucket_checked = self.options.get("create_bucket", "false") != "true"

    # -- options ---------------------------------------------------------------------------------------------

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return MAX_OBJECT

    @classmethod
    def part_limits(cls, options: Mapping[str, str]) -> objectstore.PartLimits:
        """The service's multipart limits (objectstore.MAX_PARTS is read now, so a test can lower it)."""
        return objectstore.PartLimits(objectstore.MAX_PARTS, MAX_PART_MIB * MIB, cls.max_object_size(options))

    def _preset(self) -> tuple[str, str]:
        return self.PRESETS.get(self.options.get("preset") or "aws", ("", "us-east-1"))

    @classmethod
    def resolve_endpoint(cls, options: Mapping[str, str]) -> str:
        """The service URL the options point at ("" for boto3's AWS default)."""
        endpoint = (options.get("endpoint") or "").strip()
        if endpoint:
            return endpoint if "://" in endpoint else "https://" + endpoint
        return cls.PRESETS.get(options.get("preset") or "aws", ("", ""))[0]

    @classmethod
    def normalise_storage_class(cls, value: str) -> str:
        name = value.strip().upper().replace("-", "_").replace(" ", "_")
        name = cls.STORAGE_ALIASES.get(name, name)
        if name in cls.REFUSED_CLASSES or name.startswith("GLACIER"):
            raise objectstore.archive_class_refused(value, cls.STORAGE_CLASSES)
        if name not in cls.STORAGE_CLASSES:
            raise objectstore.unknown_class(cls.STORAGE_CLASSES)
        return name

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        cls.normalise_storage_class(options.get("storage_class") or "STANDARD")
        objectstore.part_size_mib(options, cls.DEFAULT_PART_MIB, MIN_PART_MIB, MAX_PART_MIB)
        upload_concurrency(options)
        problem = _sse_problem(options)
        if problem:
            raise InvalidOption(problem)
        if options.get("bucket"):  # before any network call, with every rule the name breaks (notes 22, 16)
            from engine.policy import validate_bucket

            problem = validate_bucket(cls.kind, options["bucket"],
                                      (options.get("preset") or None) if cls.kind == "s3" else None)
            if problem:
                raise InvalidOption(problem)
        if (options.get("preset") == "other") and not options.get("endpoint"):
            raise InvalidOption("option 'endpoint' is required with preset 'other'")
        endpoint = options.get("endpoint") or ""
        if endpoint and "://" in endpoint and not endpoint.startswith(("http://", "https://")):
            raise InvalidOption("option 'endpoint' must be an http:// or https:// URL")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        # One connection per credential (spec note 1): the same key on the same service is the same account.
        endpoint = cls.resolve_endpoint(options) or "aws"
        return f"{cls.kind}:{endpoint.rstrip('/')}:{options.get('access_key_id', '')}"

    # -- plumbing --------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._client_lock:  # the executor's threads share this provider
            if self._client is None:
                from botocore.config import Config

                style = self.options.get("addressing_style") or "auto"
                if style == "auto" and self.endpoint:
                    style = "path"  # compatible services and test servers rarely have wildcard DNS for buckets
                config = Config(
                    region_name=self.region,
                    s3={"addressing_style": style},
                    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                    connect_timeout=10,
                    read_timeout=120,
                    max_pool_connections=32,
                    # Newer botocore adds CRC checksums that many S3-compatible services reject.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                self._client = _shared_session().create_client(
                    "s3",
                    region_name=self.region,
                    endpoint_url=self.endpoint or None,
                    aws_access_key_id=self.options["access_key_id"],
                    aws_secret_access_key=self.options["secret_access_key"],
                    config=config,
                )
                # Before botocore's retry handler, so its backoff sees the service's Retry-After.
                self._client.meta.events.register_first("needs-retry.s3", _honour_retry_after)
                # After botocore's own before-call.s3 handler, which adds the Expect header this removes.
                self._client.meta.events.register_last("before-call.s3", _no_continue_for_small_puts)
        return self._client

    def _where(self) -> str:
        return self.endpoint or f"Amazon S3 ({self.region})"

    def _translate(self, exc: Exception, what: str) -> ProviderError:
        """One line for the user from a boto3/botocore failure; never the secret, never a traceback."""
        from botocore import exceptions as bx

        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _AUTH_CODES:
                # A wrong secret is not a wrong key ID (the app said "access key" for both): name the one refused.
                refused = {"InvalidAccessKeyId": "does not know the access key ID",
                           "SignatureDoesNotMatch": "refused the secret access key (it does not match the key ID)"}
                return AuthError(f"{self.service_name} at {self._where()} "
                                 f"{refused.get(code, 'refused the access key')} ({code})")
            if code == "NoSuchBucket":
                return ContainerNotFound(f"the bucket '{self.bucket}' does not exist at {self._where()}")
            if code == "PreconditionFailed" or status == 412:
                return PreconditionFailed(f"{what}: another client changed it since it was listed")
            if code == "ConditionalRequestConflict":  # S3's 409 for two conditional writes at once: try again
                return TransientError(f"{what}: another client is writing it at the same moment")
            if code in ("NoSuchKey", "NoSuchUpload") or (status == 404 and code in ("", "404", "NotFound")):
                return NotFound(f"{what}: not found")
            if code in ("PermanentRedirect", "IllegalLocationConstraintException") or status == 301:
                return InvalidOption(
                    f"the bucket '{self.bucket}' is not in region '{self.region}'; set option 'region'"
                )
            if code == "InvalidObjectState":
                return ProviderError(f"{what}: the file is in archive storage and cannot be downloaded")
            if code in ("AccessDenied", "AllAccessDisabled") or status == 403:
                return PermissionDenied(f"{what}: access denied by {self.service_name}")
            if code in ("EntityTooLarge", "QuotaExceeded", "TooManyBuckets"):
                return QuotaExceeded(f"{what}: {code}")
            if code in _TRANSIENT_CODES or status >= 500 or status == 429:
                headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                return TransientError(f"{what}: {self.service_name} is busy or failing ({code or status})",
                                      retry_after=retry_after_seconds(headers.get("retry-after")))
            message = str(error.get("Message", "")).splitlines()[0:1]
            return ProviderError(f"{what}: {code or status}{': ' + message[0] if message else ''}")
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return AuthError(f"{self.service_name}: the access key is missing")
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
            return NetworkError(f"cannot reach {self._where()}")
        # A body cut short (IncompleteReadError) is the same broken connection seen from the other end; it was
        # a permanent ProviderError, so a download cut once failed its item for the whole pass.
        if isinstance(exc, bx.ReadTimeoutError | bx.ResponseStreamingError | bx.IncompleteReadError
                      | bx.ConnectionClosedError):
            return NetworkError(f"{what}: the connection to {self._where()} broke off")
        if isinstance(exc, bx.HTTPClientError | OSError):
            return NetworkError(f"{what}: network error talking to {self._where()}")
        if isinstance(exc, bx.BotoCoreError):
            return ProviderError(f"{what}: {str(exc).splitlines()[0]}")
        raise exc

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except Exception as exc:  # botocore's tree is wide; _translate re-raises what it doesn't know
            raise self._translate(exc, what) from None

    def _ensure_bucket(self) -> None:
        """With create_bucket=true: create the missing bucket on first use (its name was checked with the
        options)."""
        if self._bucket_checked:
            return
        try:
            self._call("checking the bucket", "list_objects_v2", MaxKeys=1)
        except ContainerNotFound:
            kwargs: dict[str, Any] = {}
            if self.region and self.region != "us-east-1" and not self.endpoint:
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self._call(f"creating the bucket '{self.bucket}'", "create_bucket", **kwargs)
        self._bucket_checked = True

    @classmethod
    def bucket_name_ok(cls, name: str) -> bool:
        from engine.policy import validate_bucket

        return validate_bucket(cls.kind, name) is None

    # -- the contract ----------------------------------------------------------------------------------------

    def check(self) -> None:
        self._ensure_bucket()
        self._call("checking the bucket", "list_objects_v2", MaxKeys=1)

    def keeps_revisions(self) -> str | None:
        """GetBucketVersioning: only "Enabled" keeps the object a write replaces; "Suspended", or versioning
        never turned on, replaces it for good. Asked per pass that meets a conflict: it can be switched off."""
        try:
            status = self._call(f"reading the versioning of bucket '{self.bucket}'", "get_bucket_versioning")
        except PermissionDenied:
            return f"the versioning of bucket '{self.bucket}' cannot be read with this key (s3:GetBucketVersioning)"
        state = str(status.get("Status") or "")
        if state == "Enabled":
            return None
        return f"bucket '{self.bucket}' has versioning {state.lower() or 'off'}"

    def replaced_version(self, path: str, listed: RemoteEntry) -> tuple[str, float | None]:
        """HEAD: the VersionId and LastModified of the object the conflict's upload replaces, while it is still
        the one listed (its ETag)."""
        what = f"writing /{path}"
        try:
            response = self._call(what, "head_object", Key=path)
        except NotFound:
            raise Expect.entry(listed).failed(what) from None
        if listed.revision and str(response.get("ETag", "")).strip('"') != listed.revision:
            raise Expect.entry(listed).failed(what)
        modified = response.get("LastModified")
        return str(response.get("VersionId") or ""), modified.timestamp() if modified is not None else None

    def server_time(self) -> float | None:
        """The `Date` of a HEAD Bucket answer, refused or not (a skewed clock gets RequestTimeTooSkewed)."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            answer = exc.response
        except Exception:  # unreachable: no clock to compare; check() reports why
            return None
        return self.http_date(answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date"))

    def _keys(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        token: str | None = None
        trail = PageTrail(f"listing /{prefix}")
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix, "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(f"listing /{prefix}", "list_objects_v2", **kwargs)
            for item in page.get("Contents", ()):
                yield item["Key"], item
            token = trail.next(bool(page.get("IsTruncated")), page.get("NextContinuationToken"))
            if token is None:
                return

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self.list_reporting(folder, lambda path, reason: None)

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        self._ensure_bucket()
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        seen = 0

        def counted() -> Iterator[tuple[str, dict[str, Any]]]:
            nonlocal seen
            for key_item in self._keys(prefix):
                seen += 1
                yield key_item

        for path, is_dir, item in walk_keys(counted(), prefix, lambda item: int(item.get("Size", 0)), on_skip):
            if is_dir:
                yield RemoteEntry(path, True)
            else:
                etag = str(item.get("ETag", ""))
                modified = item.get("LastModified")
                yield RemoteEntry(
                    path,
                    False,
                    int(item.get("Size", 0)),
                    modified.timestamp() if modified is not None else None,
                    self._listed_hash(etag),
                    etag.strip('"'),
                )
        if folder and not seen:  # not even its marker: the folder does not exist
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in bucket '{self.bucket}'")

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """One ListObjectsV2 pagination with Delimiter="/": the keys right inside `folder` and its subfolders'
        prefixes (implicit folders included), without walking their content."""
        self._ensure_bucket()
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        files: list[tuple[str, dict[str, Any]]] = []
        folders: list[str] = []
        token: str | None = None
        trail = PageTrail(f"listing /{folder}")
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix, "Delimiter": "/", "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(f"listing /{folder}", "list_objects_v2", **kwargs)
            files.extend((item["Key"], item) for item in page.get("Contents", ()))
            folders.extend(common["Prefix"] for common in page.get("CommonPrefixes", ()))
            token = trail.next(bool(page.get("IsTruncated")), page.get("NextContinuationToken"))
            if token is None:
                break
        if folder and not files and not folders:  # not even its marker
            raise ContainerNotFound(f"the remote folder /{folder} does not exist in bucket '{self.bucket}'")
        for name, is_dir, item in objectstore.one_level(files, folders, prefix):
            if is_dir:
                yield RemoteEntry(name, True)
            else:
                etag = str(item.get("ETag", ""))
                modified = item.get("LastModified")
                yield RemoteEntry(name, False, int(item.get("Size", 0)),
                                  modified.timestamp() if modified is not None else None,
                                  self._listed_hash(etag), etag.strip('"'))

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        what = f"reading /{path}"
        response = self._call(what, "get_object", Key=path)
        body = response["Body"]
        try:
            while chunk := body.read(CHUNK):
                out.write(chunk)
        except Exception as exc:
            raise self._translate(exc, what) from None
        finally:
            body.close()
        etag = str(response.get("ETag", ""))
        mtime = objectstore.parse_mtime(response.get("Metadata", {}).get(MTIME_KEY))
        if mtime is None and response.get("LastModified") is not None:
            mtime = response["LastModified"].timestamp()
        return RemoteEntry(path, False, int(response.get("ContentLength", 0)), mtime, _answered_md5(response),
                           etag.strip('"'))

    def _listed_hash(self, etag: str) -> str | None:
        """The hash a listing (or a write's answer) may show for an ETag: none under SSE-KMS, where it is not an
        MD5 and nothing in the listing says so."""
        return None if self.sealed else etag_hash(etag)

    def file_hash(self, path: str) -> str | None:
        """One HEAD, for a connection whose listings carry no hash (SSE-KMS): the MD5 kept in the metadata, or
        the ETag when the object is not sealed with a KMS or customer key (another tool's object)."""
        answer = self._call(f"reading /{path}", "head_object", Key=path)
        return _answered_md5(answer) or None

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        """Single PUT up to one part size, multipart above; the returned mtime is the one kept in metadata."""
        self._ensure_bucket()
        what = f"writing /{path}"
        objectstore.refuse_too_large(size, self.capabilities.max_file_size, what)
        meta = {MTIME_KEY: objectstore.format_mtime(mtime)}
        first = objectstore.read_full(src, self.part_size + 1)
        if len(first) <= self.part_size:
            md5 = hashlib.md5(first).hexdigest()
            response = self._write(
                what,
                "put_object",
                expect,
                # Our ETag: the MD5, except under SSE-KMS (unknown then; a lost answer is not recognised).
                "" if self.sealed else md5,
                Key=path,
                Body=first,
                ContentMD5=_content_md5(first),  # the service refuses a body that arrived damaged
                Metadata={**meta, MD5_KEY: md5},
                StorageClass=self.storage_class,
                **self.sse,
            )
            etag = str(response.get("ETag", "")).strip('"')
            # The MD5 the service checked (Content-MD5) is the content's, whatever the ETag is under encryption.
            return RemoteEntry(path, False, len(first), mtime, md5, etag)
        parts = objectstore.part_schedule(size, self.part_size, self.part_limits(self.options))
        return self._multipart(path, src, first, meta, what, mtime, expect, parts)

    def _multipart(
        self, path: str, src: BinaryIO, first: bytes, meta: dict[str, str], what: str, mtime: float,
        expect: Expect | None, part_size: Callable[[int], int],
    ) -> RemoteEntry:
        asked = time.monotonic()
        created = self._call(
            what, "create_multipart_upload", Key=path, Metadata=meta, StorageClass=self.storage_class, **self.sse
        )
        upload_id = created["UploadId"]
        if created.get("ResponseMetadata", {}).get("RetryAttempts"):
            self._abort_lost_uploads(path, upload_id, time.monotonic() - asked)

        def upload_part(number: int, body: bytes) -> dict[str, Any]:
            response = self._call(
                what,
                "upload_part",
                Key=path,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ContentMD5=_content_md5(body),
            )
            return {"ETag": response["ETag"], "PartNumber": number}

        try:
            numbered = objectstore.parts(src, first, part_size, what, self.part_limits(self.options).max_parts)
            done, total = send_parts(numbered, upload_part, self.upload_concurrency)
            response = self._complete(what, expect, path, upload_id, done)
        except BaseException:
            with contextlib.suppress(Exception):  # the upload failed already: that is the error worth reporting
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=path, UploadId=upload_id)
            raise
        etag = str(response.get("ETag", "")).strip('"')
        return RemoteEntry(path, False, total, mtime, self._listed_hash(etag), etag)

    def _abort_lost_uploads(self, key: str, ours: str, within: float) -> None:
        """Abort the uploads a retried CreateMultipartUpload started but whose answer was lost on the way.

        When the connection drops after the service created the upload, botocore asks again and we only learn
        the second upload's id; the first would sit unfinished (and billed) until the daily cleanup, a day
        later. Those are the uploads of the same key started at most `within` seconds (the call's duration,
        retries included; plus a second of timestamp rounding) before ours, by the service's own clock. Only
        called after a retry; best effort.
        """
        what = f"writing /{key}"
        try:
            page = self._call(what, "list_multipart_uploads", Prefix=key, MaxUploads=1000)
        except ProviderError:
            return  # the daily cleanup (clean_interrupted) gets what is left
        uploads = [u for u in page.get("Uploads", ()) if u.get("Key") == key and u.get("Initiated")]
        mine = next((u["Initiated"].timestamp() for u in uploads if u.get("UploadId") == ours), None)
        if mine is None:
            return
        for upload in uploads:
            started = upload["Initiated"].timestamp()
            if upload["UploadId"] != ours and mine - within - 1 <= started <= mine + 1:
                # One at a time: NotFound is an abort whose answer was lost in turn, not a reason to stop.
                with contextlib.suppress(ProviderError):
                    self._call(what, "abort_multipart_upload", Key=key, UploadId=upload["UploadId"])

    def _complete(self, what: str, expect: Expect | None, key: str, upload_id: str, parts: list[Any]) -> Any:
        ours = _multipart_etag([part["ETag"] for part in parts])
        try:
            if expect is not None and not self._unconditional:
                self._check(key, expect, what)  # for services that ignore the condition on completion
            return self._write(what, "complete_multipart_upload", expect, ours, Key=key, UploadId=upload_id,
                               MultipartUpload={"Parts": parts})
        except PreconditionFailed:
            if not self._landed(key, ours, what):
                raise
            with contextlib.suppress(Exception):  # this upload is not needed: the same content is there
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            return {"ETag": f'"{ours}"'}

    def _write(self, what: str, method: str, expect: Expect | None, ours: str, **kwargs: Any) -> Any:
        """PutObject or CompleteMultipartUpload with `expect` sent as If-Match / If-None-Match: *.

        `ours` is the ETag the write makes. When the condition fails because that very content is there already
        (an earlier attempt whose answer was lost on the way, retried by botocore or the engine), the write is
        done, not refused: otherwise our own upload would look like another client's.
        """
        if expect is None:
            return self._call(what, method, **kwargs)
        try:
            return self._conditional(what, method, expect, **kwargs)
        except PreconditionFailed:
            if self._landed(kwargs["Key"], ours, what):
                return {"ETag": f'"{ours}"'}
            raise

    def _conditional(self, what: str, method: str, expect: Expect, **kwargs: Any) -> Any:
        if self._unconditional or (expect.seen is not None and not expect.seen.revision):
            self._check(kwargs["Key"], expect, what)
            return self._call(what, method, **kwargs)
        revision = expect.seen.revision if expect.seen is not None else None
        condition = {"IfMatch": f'"{revision}"'} if revision else {"IfNoneMatch": "*"}
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs, **condition)
        except Exception as exc:
            if not _condition_refused(exc):
                error = self._translate(exc, what)
                # If-Match on a key that is gone: S3 answers NoSuchKey.
                if isinstance(error, PreconditionFailed) or (isinstance(error, NotFound) and revision
                                                             and method == "put_object"):
                    raise expect.failed(what) from None
                raise error from None
        self._unconditional = True  # a compatible service that takes no conditional writes
        self._check(kwargs["Key"], expect, what)
        return self._call(what, method, **kwargs)

    def _landed(self, key: str, ours: str, what: str) -> bool:
        """Whether `key` holds exactly the content whose ETag is `ours`."""
        found = self._head(key, what)
        return found is not None and found.revision == ours

    def _check(self, key: str, expect: Expect, what: str) -> None:
        if not expect.met_by(self._head(key, what)):
            raise expect.failed(what)

    def _head(self, key: str, what: str) -> RemoteEntry | None:
        """The object `key` as HEAD reports it (size, ETag), or None when there is none."""
        try:
            response = self._call(what, "head_object", Key=key)
        except NotFound:
            return None
        etag = str(response.get("ETag", "")).strip('"')
        return RemoteEntry(key, False, int(response.get("ContentLength", 0)), None, _answered_md5(response) or None,
                           etag)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        what = f"deleting /{path}"
        seen = expect.seen if expect is not None else None
        if seen is not None and seen.revision and not self._unconditional_deletes:
            self._delete_if(path, seen.revision, what, expect)  # type: ignore[arg-type]
        elif objectstore.still_there_as_expected(expect, lambda: self._head(path, what), what):
            self._call(what, "delete_object", Key=path)  # S3 deletes are idempotent

    def _delete_if(self, key: str, revision: str, what: str, expect: Expect) -> None:
        """DeleteObject made only while `key` still has the ETag `revision` (If-Match): another client's version
        written since is never the one deleted. A service that does not take the condition (501, NotImplemented)
        gets a HEAD first from then on, leaving the one round trip between the two."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=f'"{revision}"')
            return
        except Exception as exc:
            if not _condition_refused(exc):
                error = self._translate(exc, what)
                if isinstance(error, NotFound):
                    return  # gone already (a retry of a delete whose answer was lost, or another client's)
                if isinstance(error, PreconditionFailed):
                    raise expect.failed(what) from None
                raise error from None
        self._unconditional_deletes = True
        if objectstore.still_there_as_expected(expect, lambda: self._head(key, what), what):
            self._call(what, "delete_object", Key=key)

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        self._call(
            f"creating folder /{path}",
            "put_object",
            Key=path + "/",
            Body=b"",
            StorageClass=self.storage_class,
            **self.sse,
        )
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        page = self._call(what, "list_objects_v2", Prefix=path + "/", MaxKeys=2)
        if any(item["Key"] != path + "/" for item in page.get("Contents", ())):
            raise FolderNotEmpty(f"{what}: it is not empty")
        self._call(what, "delete_object", Key=path + "/")

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        """CopyObject then DeleteObject: two requests, and no data through this computer.

        The copy keeps the metadata (the mtime) and is made only while `src` still has the listed ETag
        (x-amz-copy-source-if-match), so another client's newer version is never moved away under the old
        name's feet, and only while `dst` is free (If-None-Match: *, as for uploads; a service that refuses the
        condition gets a HEAD first, leaving the time between the two requests). Not atomic: for a moment both
        names exist. CopyObject copies at most 5 GB; a larger object would need a multipart copy (UploadPartCopy),
        which is not done: it is refused here, and the engine uploads it under the new name instead.
        (moto 5.2 checks neither condition on a copy; AWS checks both.)
        """
        src, dst = src.strip("/"), dst.strip("/")
        what = f"moving /{src} to /{dst}"
        if listed is not None and listed.size > COPY_OBJECT_LIMIT:
            raise ProviderError(f"{what}: larger than the 5 GB a single copy can move")
        condition = {"CopySourceIfMatch": f'"{listed.revision}"'} if listed is not None and listed.revision else {}
        response = self._conditional(
            what,
            "copy_object",
            Expect.absent(),
            Key=dst,
            CopySource={"Bucket": self.bucket, "Key": src},
            MetadataDirective="COPY",
            StorageClass=self.storage_class,
            **self.sse,
            **condition,
        )
        result = response.get("CopyObjectResult", {})
        if listed is not None:
            size = listed.size
        else:
            size = int(self._call(what, "head_object", Key=dst).get("ContentLength", 0))
        if listed is not None and listed.revision:
            # Only the version just copied goes: one another client wrote meanwhile stays (and the next pass
            # sees both names, and keeps both).
            self.delete(src, expect=Expect.entry(listed))
        else:
            self._call(what, "delete_object", Key=src)
        etag = str(result.get("ETag", "")).strip('"')
        modified = result.get("LastModified")
        return RemoteEntry(dst, False, size, modified.timestamp() if modified is not None else None,
                           self._listed_hash(etag), etag)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """CopyObject with the metadata (the mtime) kept, made only from the version of `src` read just before
        (x-amz-copy-source-if-match) and, with `expect`, under the same If-None-Match / If-Match as uploads.
        Above the 5 GB one CopyObject can copy, a multipart copy (UploadPartCopy ranges) does it."""
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        head = self._call(what, "head_object", Key=src)
        size = int(head.get("ContentLength", 0))
        source_etag = str(head.get("ETag", "")).strip('"')
        mtime = objectstore.parse_mtime(head.get("Metadata", {}).get(MTIME_KEY))
        if mtime is None and head.get("LastModified") is not None:
            mtime = head["LastModified"].timestamp()
        if size > COPY_OBJECT_LIMIT:
            return self._multipart_copy(src, dst, head, what, mtime, expect)
        if expect is not None and not self._unconditional:
            self._check(dst, expect, what)  # for services that ignore the condition on a copy (moto does)
        condition = {"CopySourceIfMatch": f'"{source_etag}"'} if source_etag else {}
        response = self._write(
            what,
            "copy_object",
            expect,
            "" if self.sealed else source_etag,  # a copy has the source's ETag (single-part, not under SSE-KMS)
            Key=dst,
            CopySource={"Bucket": self.bucket, "Key": src},
            MetadataDirective="COPY",
            StorageClass=self.storage_class,
            **self.sse,
            **condition,
        )
        etag = str(response.get("CopyObjectResult", response).get("ETag", "")).strip('"')
        return RemoteEntry(dst, False, size, mtime, self._listed_hash(etag), etag)

    def _multipart_copy(
        self, src: str, dst: str, head: dict[str, Any], what: str, mtime: float | None, expect: Expect | None
    ) -> RemoteEntry:
        size = int(head.get("ContentLength", 0))
        source_etag = str(head.get("ETag", "")).strip('"')
        part = objectstore.part_size_for(size, self.part_size, self.part_limits(self.options))
        created = self._call(what, "create_multipart_upload", Key=dst, Metadata=head.get("Metadata", {}),
                             StorageClass=self.storage_class, **self.sse)
        upload_id = created["UploadId"]
        done: list[dict[str, Any]] = []
        try:
            for number, start in enumerate(range(0, size, part), start=1):
                answer = self._call(
                    what, "upload_part_copy", Key=dst, UploadId=upload_id, PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": src},
                    CopySourceRange=f"bytes={start}-{min(start + part, size) - 1}",
                    CopySourceIfMatch=f'"{source_etag}"',
                )
                done.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})
            response = self._complete(what, expect, dst, upload_id, done)
        except BaseException:
            with contextlib.suppress(Exception):  # the copy failed already: that is the error worth reporting
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=dst, UploadId=upload_id)
            raise
        etag = str(response.get("ETag", "")).strip('"')
        return RemoteEntry(dst, False, size, mtime, self._listed_hash(etag), etag)

    def clean_interrupted(self, folder: str) -> int:
        """Abort multipart uploads under `folder` that a killed pass left behind (the service bills their parts).

        Only uploads started more than a day ago: a younger one may belong to another client still uploading.
        Once a day per bucket and folder in a process, so a poll normally costs just the listing.
        """
        folder = folder.strip("/")
        now = time.time()
        if not _cleanups.due(self.endpoint, self.bucket, folder):
            return 0
        what = f"cleaning unfinished uploads in /{folder}"
        prefix = folder + "/" if folder else ""
        page = self._call(what, "list_multipart_uploads", Prefix=prefix, MaxUploads=1000)
        removed = 0
        for upload in page.get("Uploads", ()):
            started = upload.get("Initiated")
            if started is None or now - started.timestamp() < objectstore.STALE_UPLOAD_AGE:
                continue
            self._call(what, "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"])
            removed += 1
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class JDCloudProvider(S3Provider):
    """JD Cloud OSS on its S3-compatible API: its own endpoints, bucket rule and storage classes."""

    kind = "jdcloud"
    title = "JD Cloud OSS"
    PRESETS: ClassVar[dict[str, tuple[str, str]]] = {}
    STORAGE_CLASSES: ClassVar[tuple[str, ...]] = ("STANDARD",)
    STORAGE_ALIASES: ClassVar[dict[str, str]] = {}
    service_name = "JD Cloud OSS"
    DEFAULT_REGION = "cn-north-1"
    option_specs = (
        OptionSpec("endpoint", "the service URL (default: https://s3.<region>.jdcloud-oss.com)", label="Endpoint URL"),
        OptionSpec("region", "the region: cn-north-1, cn-east-1, cn-east-2 or cn-south-1", default="cn-north-1",
                   label="Region"),
        OptionSpec("bucket", "the bucket", required=True, label="Bucket"),
        OptionSpec("access_key_id", "the access key ID", required=True, label="Access key ID"),
        OptionSpec("secret_access_key", "the secret access key", secret=True, required=True,
                   label="Secret access key"),
        OptionSpec("storage_class", "storage class of uploads: STANDARD", default="STANDARD", advanced=True,
                   label="Storage class"),
        OptionSpec(
            "part_size",
            f"multipart part size in MiB ({MIN_PART_MIB}..{MAX_PART_MIB})",
            label="Part size (MiB)",
            default=str(S3Provider.DEFAULT_PART_MIB),
            advanced=True,
        ),
        OptionSpec(
            "addressing_style",
            "auto, path or virtual",
            label="Addressing style",
            default="auto",
            choices=("auto", "path", "virtual"),
            advanced=True,
        ),
        OptionSpec(
            "create_bucket",
            "create the bucket when it does not exist",
            label="Create the bucket if missing",
            default="false",
            choices=("true", "false"),
        ),
        UPLOAD_CONCURRENCY_OPTION,
        *SSE_OPTIONS,
    )

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return JD_MAX_OBJECT

    def _preset(self) -> tuple[str, str]:
        return ("", self.DEFAULT_REGION)

    @classmethod
    def resolve_endpoint(cls, options: Mapping[str, str]) -> str:
        endpoint = (options.get("endpoint") or "").strip()
        if endpoint:
            return endpoint if "://" in endpoint else "https://" + endpoint
        return f"https://s3.{options.get('region') or cls.DEFAULT_REGION}.jdcloud-oss.com"


_cleanups = objectstore.CleanupGate()
_session_lock = threading.Lock()
_session: Any = None


def _shared_session() -> Any:
    """One botocore session for all connections: it caches the parsed service model (0.2 s per client)."""
    global _session
    with _session_lock:
        if _session is None:
            import botocore.session  # slow to import: only when a connection of this kind is used

            _session = botocore.session.get_session()
        return _session


def _multipart_etag(part_etags: list[str]) -> str:
    """The ETag S3 gives the object these parts make: the MD5 of their MD5s, a dash and their count."""
    digests = b"".join(bytes.fromhex(etag.strip('"')) for etag in part_etags)
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"


def _content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _no_continue_for_small_puts(model: Any = None, params: Any = None, **_: Any) -> None:
    """botocore event hook (before-call): no `Expect: 100-continue` on a PutObject of a small body.

    botocore asks every PutObject and UploadPart to wait for the service's "100 Continue" before the body
    leaves, so a refused request (a wrong key, a failed If-None-Match) does not carry a large body for nothing.
    For a small body that wait is a whole extra round trip per file, longer than sending the body itself: one
    PUT of 500 bytes to moto took 12 ms of wall time instead of 18, and 10 % less CPU on both sides. The body
    and its Content-MD5 are sent and checked as before; a refused small PUT only wastes its few bytes.
    """
    if model is None or params is None or model.name != "PutObject":
        return
    headers = params.get("headers", {})
    if "Expect" not in headers:
        return
    from botocore.utils import determine_content_length

    length = determine_content_length(params.get("body"))
    if length is not None and length <= CONTINUE_THRESHOLD:
        del headers["Expect"]


def _honour_retry_after(response: Any = None, **_: Any) -> None:
    """botocore event hook (needs-retry): make its backoff wait at least what the service's Retry-After asks.

    botocore's standard mode only reads its own `x-amz-retry-after` (milliseconds) and ignores HTTP's
    `Retry-After`, which S3-compatible services (and proxies in front of S3) send with 503 SlowDown and 429;
    retrying a throttled request sooner mostly earns another 503. The header is copied into the one botocore
    reads (capped); botocore still adds no more than 5 s to its own backoff. Returns None, so the retry
    decision stays botocore's.
    """
    http = response[0] if isinstance(response, tuple) and response else None
    if http is None or http.status_code not in (429, 503) or "x-amz-retry-after" in http.headers:
        return
    seconds = retry_after_seconds(http.headers.get("Retry-After"))
    if seconds is not None:
        http.headers["x-amz-retry-after"] = str(int(min(seconds, RETRY_AFTER_CAP) * 1000))
