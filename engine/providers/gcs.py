"""`gcs`: Google Cloud Storage through the official google-cloud-storage client.

Objects are flat names in a bucket; an empty folder is a zero-byte object named "folder/" (the Cloud
Console's own convention), reported as its folder. The hash is the object's MD5 (spec note 5: composite
objects, which only have a CRC32C, are reported without a hash), the revision its generation, and the mtime
lives in custom metadata because GCS only knows the upload time. Uploads never enable object versioning
(spec note 14); the storage class applies to every object written (Nearline and Coldline charge early
deletion, spec note 13: the wizard warns about it).

Conditional writes (`expect`): `ifGenerationMatch` (0 for "no such object") on the upload and on the delete,
which Google checks as it commits, so nothing another client writes meanwhile is lost. Emulators do not all
enforce preconditions (gcp-storage-emulator ignores them), so the object is also re-read just before: against
such a server the window left is the upload's duration; against Google's service the re-read costs one metadata
request and changes nothing.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

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
    sane_mtime,
)

if TYPE_CHECKING:
    from google.cloud.storage import Bucket

MTIME_KEY = "mtime"
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE")
# GCS's largest object, 5 TiB (spec note 7 says "5 TB", read as TiB like the policy table). A resumable upload
# has no limit on the count of its chunks, so no part size has to grow with the file.
MAX_OBJECT = 5 * (1 << 40)
# The client retries transient failures for up to 120 s by default; the engine retries failed items itself,
# so keep each call's own retrying short.
RETRY_SECONDS = 3.0
EARLY_DELETION_WARNING = (
    "Nearline and Coldline storage are meant for data that rarely changes: editing or deleting a file soon "
    "after upload may incur early deletion charges."
)


def _translate(exc: Exception, what: str) -> ProviderError:
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, auth_exc.RefreshError | gexc.Unauthorized):
        return AuthError(f"{what}: the service account credentials were refused")
    if isinstance(exc, auth_exc.TransportError | requests.ConnectionError | requests.Timeout):
        return NetworkError(f"{what}: Google Cloud Storage could not be reached")
    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        if cause is not None and not isinstance(cause, gexc.RetryError):
            return _translate(cause, what) if isinstance(cause, Exception) else ProviderError(what)
        return NetworkError(f"{what}: Google Cloud Storage did not answer in time")
    if isinstance(exc, gexc.NotFound):
        return NotFound(f"{what}: not found")
    if isinstance(exc, gexc.Forbidden):
        return PermissionDenied(f"{what}: the service account is not allowed to do that")
    if isinstance(exc, gexc.RequestRangeNotSatisfiable | gexc.PreconditionFailed):
        return TransientError(f"{what}: the object changed meanwhile")
    if isinstance(exc, gexc.TooManyRequests | gexc.ServerError):
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        return TransientError(f"{what}: Google Cloud Storage is busy, try again later",
                              retry_after=retry_after_seconds(headers.get("Retry-After")))
    if isinstance(exc, gexc.GoogleAPICallError):
        if exc.code == 413:
            return QuotaExceeded(f"{what}: the object is too large")
        return ProviderError(f"{what}: Google Cloud Storage answered {exc.code}")
    if isinstance(exc, auth_exc.GoogleAuthError):
        return AuthError(f"{what}: the service account credentials are not usable")
    if isinstance(exc, OSError):
        return NetworkError(f"{what}: {exc.strerror or type(exc).__name__}")
    raise exc


def _md5_hex(blob: Any) -> str | None:
    # Composite objects have no MD5 (only a CRC32C, which the spec does not adopt).
    return base64.b64decode(blob.md5_hash).hex() if blob.md5_hash and not blob.component_count else None


def _mtime(blob: Any) -> float | None:
    kept = sane_mtime((blob.metadata or {}).get(MTIME_KEY))
    if kept is not None:
        return kept
    return blob.updated.timestamp() if blob.updated is not None else None


def _parents(rel: str) -> Iterator[str]:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


class GCSProvider(Provider):
    kind = "gcs"
    location_options = ("bucket",)
    title = "Google Cloud Storage"
    option_specs = (
        OptionSpec(
            "bucket",
            "the bucket to sync with (Google Cloud console: Cloud Storage > Buckets)",
            required=True,
            label="Bucket",
        ),
        OptionSpec(
            "project",
            "the project's ID (Cloud console, project picker); default: the service account's project",
            label="Project ID",
        ),
        OptionSpec(
            "credentials_file",
            "the service account's JSON key file (Cloud console: IAM & Admin > Service accounts > Keys); copied into "
            "the secrets store",
            secret=True,
            label="Service account key file",
        ),
        OptionSpec(
            "credentials_json",
            "the service account's JSON key itself, pasted in place of the key file",
            secret=True,
            label="Service account key (JSON)",
        ),
        OptionSpec("endpoint", "API address (default: https://storage.googleapis.com)", label="API address"),
        OptionSpec(
            "storage_class",
            "storage class of uploaded files; " + EARLY_DELETION_WARNING,
            choices=STORAGE_CLASSES,
            advanced=True,
            label="Storage class",
        ),
    )
    capabilities = Capabilities(
        hash_kind=HashKind.MD5,
        mtime_mode=MtimeMode.METADATA,
        max_file_size=MAX_OBJECT,
        conditional_writes=Conditional.SERVER,
        conditional_deletes=Conditional.SERVER,
        server_side_copy=True,  # objects.rewrite, repeated until done (large objects take several calls)
        list_dir=True,  # objects.list with delimiter "/"
        # No ids across renames: a generation names one version of one name (a rename is a copy).
        needs_size_before_upload=True,  # the client is given `size` as the exact stream length
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self._bucket_obj: Bucket | None = None

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        if not (options.get("credentials_json") or options.get("credentials_file") or options.get("endpoint")):
            raise InvalidOption("option 'credentials_file' (a service-account JSON key) is required")
        if options.get("credentials_json") or options.get("credentials_file"):
            cls._service_account(options)

    @staticmethod
    def _service_account(options: Mapping[str, str]) -> dict[str, Any] | None:
        text = options.get("credentials_json")
        stored = options.get("credentials_file", "")
        if not text and stored.lstrip().startswith("{"):
            text = stored  # the file's content, as `connection add` copied it into the secrets store
        elif not text and stored:
            path = os.path.expanduser(stored)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                raise InvalidOption(f"the credentials file {path} cannot be read: {exc.strerror}") from None
        if not text:
            return None
        try:
            info = json.loads(text)
        except ValueError:
            raise InvalidOption("the credentials are not valid JSON") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise InvalidOption("the credentials are not a service-account JSON key")
        return info

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        try:
            info = cls._service_account(options) or {}
        except InvalidOption:
            info = {}
        who = info.get("client_email") or options.get("endpoint", "")
        return f"gcs:{who}"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _retry(self) -> Any:
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(RETRY_SECONDS)

    def _bucket(self) -> Bucket:
        if self._bucket_obj is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage
            from google.oauth2 import service_account

            info = self._service_account(self.options)
            try:
                credentials: Any = (
                    service_account.Credentials.from_service_account_info(info)
                    if info is not None
                    else AnonymousCredentials()  # an emulator or a public endpoint
                )
            except ValueError:
                raise InvalidOption("the service-account key is malformed") from None
            project = self.options.get("project") or (info or {}).get("project_id") or "-"
            client_options = {"api_endpoint": self.options["endpoint"]} if self.options.get("endpoint") else None
            client = storage.Client(project=project, credentials=credentials, client_options=client_options)
            self._bucket_obj = client.bucket(self.options["bucket"])
        return self._bucket_obj

    def _blobs(self, prefix: str) -> Iterator[Any]:
        try:
            yield from self._bucket().list_blobs(prefix=prefix or None, retry=self._retry())
        except Exception as exc:
            from google.api_core.exceptions import NotFound as GNotFound

            if isinstance(exc, GNotFound):
                raise ContainerNotFound(f"bucket {self.options['bucket']} does not exist") from None
            raise _translate(exc, f"listing /{prefix}") from None

    def _entry(self, rel: str, blob: Any) -> RemoteEntry:
        return RemoteEntry(rel, False, blob.size or 0, _mtime(blob), _md5_hex(blob), str(blob.generation))

    # -- the contract ----------------------------------------------------------------------------------------

    def keeps_revisions(self) -> str | None:
        """Object versioning of the bucket, read fresh (skysync never turns it on: spec note 14), and no
        lifecycle rule deleting noncurrent versions (any prefix counts). The revision named in the log is the
        replaced object's generation, the entry's own revision."""
        bucket = self._bucket()
        try:
            bucket.reload(retry=self._retry())
        except Exception as exc:
            raise _translate(exc, f"reading the settings of bucket '{bucket.name}'") from None
        if not bucket.versioning_enabled:
            return f"bucket '{bucket.name}' has object versioning off"
        noncurrent = ("isLive", "numNewerVersions", "daysSinceNoncurrentTime", "noncurrentTimeBefore")
        for rule in bucket.lifecycle_rules:
            if rule.get("action", {}).get("type") == "Delete" and any(k in rule.get("condition", {})
                                                                       for k in noncurrent):
                return f"a lifecycle rule of bucket '{bucket.name}' deletes earlier versions"
        return None

    def check(self) -> None:
        for _ in self._blobs(""):
            break

    def server_time(self) -> float | None:
        """The `Date` of an unsigned request for the bucket's name: the service dates its refusal too, and a
        skewed clock would already fail the service account's token exchange."""
        import requests

        base = (self.options.get("endpoint") or "https://storage.googleapis.com").rstrip("/")
        try:
            answer = requests.get(f"{base}/storage/v1/b/{self.options['bucket']}", params={"fields": "name"},
                                  timeout=10)
        except Exception:  # unreachable: no clock to compare; check() reports why
            return None
        return self.http_date(answer.headers.get("Date"))

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        seen_dirs: set[str] = set()
        found = False
        for blob in self._blobs(prefix):
            found = True
            rel = blob.name[len(prefix) :]
            for parent in _parents(rel):
                if parent not in seen_dirs:
                    seen_dirs.add(parent)
                    yield RemoteEntry(parent, True)
            if not rel or rel.endswith("/"):
                continue  # the folder's own placeholder, or a placeholder already reported as a parent
            yield self._entry(rel, blob)
        if folder and not found:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """objects.list with delimiter "/": the objects right inside `folder` and its subfolders' prefixes."""
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        files: list[tuple[str, Any]] = []
        try:
            pages = self._bucket().list_blobs(prefix=prefix or None, delimiter="/", retry=self._retry())
            files.extend((blob.name, blob) for blob in pages)
            folders = sorted(pages.prefixes)  # known once every page is read
        except Exception as exc:
            from google.api_core.exceptions import NotFound as GNotFound

            if isinstance(exc, GNotFound):
                raise ContainerNotFound(f"bucket {self.options['bucket']} does not exist") from None
            raise _translate(exc, f"listing /{folder}") from None
        if folder and not files and not folders:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        taken: set[str] = set()
        for name in (common[len(prefix) :].rstrip("/") for common in folders):
            if name and "/" not in name and name not in taken:
                taken.add(name)
                yield RemoteEntry(name, True)
        for key, blob in files:
            name = key[len(prefix) :]
            if name and "/" not in name and name not in taken:  # "x" beside "x/": browsing shows the folder
                yield self._entry(name, blob)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        try:
            blob = self._bucket().get_blob(path, retry=self._retry())
            if blob is None:
                raise NotFound(f"reading /{path}: not found")
            # Pin the generation we described, so the entry returned matches the bytes written. A fresh handle
            # builds its own download URL rather than trusting the listed mediaLink (which emulators do not
            # always percent-encode).
            fresh = self._bucket().blob(path)
            fresh.download_to_file(out, if_generation_match=blob.generation, retry=self._retry())
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None
        return self._entry(path, blob)

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return MAX_OBJECT

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        what = f"writing /{path}"
        objectstore.refuse_too_large(size, MAX_OBJECT, what)
        blob = self._bucket().blob(path)
        blob.metadata = {MTIME_KEY: repr(float(mtime))}
        if self.options.get("storage_class"):
            blob.storage_class = self.options["storage_class"]
        generation = self._check(path, expect, what)
        try:
            blob.upload_from_file(src, size=size, rewind=False, checksum="md5", retry=self._retry(),
                                  if_generation_match=generation)
        except Exception as exc:
            raise self._failed(exc, expect, what) from None
        return self._entry(path, blob)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """objects.rewrite of the generation of `src` read just before (ifSourceGenerationMatch), repeated with
        its token until the service says done; the metadata (the mtime) is copied. `expect` is sent as
        ifGenerationMatch on the destination (0: no object), after a re-read as for uploads."""
        what = f"copying /{src} to /{dst}"
        source = self._current(src, what)
        if source is None:
            raise NotFound(f"{what}: /{src} is not there")
        generation = self._check(dst, expect, what)
        target = self._bucket().blob(dst)
        token: str | None = None
        try:
            while True:
                token, _, _ = target.rewrite(source, token=token, if_generation_match=generation,
                                             if_source_generation_match=source.generation, retry=self._retry())
                if token is None:
                    break  # the last answer carried the new object, which `target` now describes
        except Exception as exc:
            raise self._failed(exc, expect, what) from None
        return self._entry(dst, target)

    def _check(self, path: str, expect: Expect | None, what: str) -> int | None:
        """Re-read `path` against `expect` (see the module's docstring); the generation to make the service
        check it again (0: no object), or None without `expect`."""
        if expect is None:
            return None
        blob = self._current(path, what)
        if not expect.met_by(None if blob is None else self._entry(path, blob)):
            raise expect.failed(what)
        return 0 if blob is None else int(blob.generation)

    def replaced_version(self, path: str, listed: RemoteEntry) -> tuple[str, float | None]:
        """The object's generation and the time it was written, while it is the one listed."""
        what = f"writing /{path}"
        blob = self._current(path, what)
        if blob is None or str(blob.generation) != listed.revision:
            raise Expect.entry(listed).failed(what)
        return str(blob.generation), blob.updated.timestamp() if blob.updated is not None else None

    def _current(self, path: str, what: str) -> Any:
        try:
            return self._bucket().get_blob(path, retry=self._retry())
        except Exception as exc:
            raise _translate(exc, what) from None

    @staticmethod
    def _failed(exc: Exception, expect: Expect | None, what: str) -> ProviderError:
        from google.api_core.exceptions import PreconditionFailed as GPreconditionFailed

        if expect is not None and isinstance(exc, GPreconditionFailed):
            return expect.failed(what)
        return _translate(exc, what)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        from google.api_core.exceptions import NotFound as GNotFound

        what = f"deleting /{path}"
        generation = None
        if expect is not None:
            blob = self._current(path, what)
            if blob is None:
                return  # gone already
            if not expect.met_by(self._entry(path, blob)):
                raise expect.failed(what)
            generation = int(blob.generation)
        try:
            self._bucket().delete_blob(path, retry=self._retry(), if_generation_match=generation)
        except GNotFound:
            return
        except Exception as exc:
            raise self._failed(exc, expect, what) from None

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        for _ in self._blobs(path + "/"):
            return RemoteEntry(path, True)  # the folder already has content (or its placeholder)
        try:
            self._bucket().blob(path + "/").upload_from_string(b"", retry=self._retry())
        except Exception as exc:
            raise _translate(exc, f"creating folder /{path}") from None
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        for blob in self._blobs(path + "/"):
            if blob.name != path + "/":
                raise FolderNotEmpty(f"removing folder /{path}: it is not empty")
        self.delete(path + "/")

    def close(self) -> None:
        if self._bucket_obj is not None:
            self._bucket_obj.client.close()
            self._bucket_obj = None
