"""`azure`: Microsoft Azure Blob Storage through the official azure-storage-blob SDK.

Blobs are flat names in a container; an empty folder is a zero-byte `.synoemptyblob` marker inside it (the
name the spec never syncs), reported as its folder and never as a file. Every blob we write carries the MD5 of
its whole content in its content settings (Azure computes none for block uploads, so we compute it while
streaming and commit it with the block list), and the file's mtime in blob metadata, since Azure only knows
the upload time. Files up to `block_size` MiB go in one Put Blob; larger ones as blocks of that size.

Conditional writes (`expect`): If-Match: <ETag> (or If-None-Match: * for a new name) on Put Blob, on Put Block
List (blocks are staged first; the condition is checked when the list is committed) and on Delete Blob, all
checked by the service itself, so another client's write while ours is on its way is never replaced.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
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
    from azure.storage.blob import ContainerClient

MARKER = ".synoemptyblob"
MIB = 1 << 20
DEFAULT_BLOCK_MIB = 8
MAX_BLOCK_MIB = 256  # a block is held in memory while it is sent (the service itself allows 4000 MiB)
MAX_BLOCKS = 50_000  # the most blocks one blob may have
# Spec note 7: "exceeds 4.75 TB" -- 50,000 blocks of 100 MiB (read as TiB, like the policy table); block sizes
# are chosen per file so that any blob up to this size stays within MAX_BLOCKS (100 MiB blocks at the limit).
MAX_OBJECT = int(4.75 * (1 << 40))
MTIME_KEY = "mtime"  # metadata keys must be C# identifiers
COPY_WAIT = 600.0  # seconds an asynchronous (cross-account) copy may take before it is given up
COPY_POLL = 0.5
CONTAINER_RE = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def _translate(exc: Exception, what: str) -> ProviderError:
    from azure.core import exceptions as az

    if isinstance(exc, ProviderError):
        return exc
    code = getattr(exc, "error_code", None) or ""
    code = str(getattr(code, "value", code))
    refused = AuthError(f"{what}: the account key or connection string was refused")
    if isinstance(exc, az.ClientAuthenticationError):
        return refused
    if isinstance(exc, az.ResourceNotFoundError):
        if code == "ContainerNotFound":
            return ContainerNotFound(f"{what}: the container does not exist")
        return NotFound(f"{what}: not found")
    if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError):
        return NetworkError(f"{what}: Azure Blob Storage could not be reached")
    if isinstance(exc, az.HttpResponseError):
        status = exc.status_code or 0
        # Azure says AuthenticationFailed for a bad signature; Azurite says AuthorizationFailure with the same
        # "failed to authenticate" message, while Azure's own AuthorizationFailure means a permission problem.
        if code == "AuthenticationFailed" or "failed to authenticate" in str(exc.message or ""):
            return refused
        if status == 403:
            return PermissionDenied(f"{what}: permission denied ({code or status})")
        if code in ("InsufficientAccountPermissions", "AccountIsDisabled"):
            return PermissionDenied(f"{what}: {code}")
        if status == 413 or code in ("RequestBodyTooLarge", "BlobTooLarge"):
            return QuotaExceeded(f"{what}: the blob is too large ({code or status})")
        if status in (408, 429, 500, 502, 503, 504):
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            return TransientError(f"{what}: Azure is busy ({code or status}), try again later",
                                  retry_after=retry_after_seconds(headers.get("Retry-After")))
        return ProviderError(f"{what}: Azure answered {status} {code}".rstrip())
    if isinstance(exc, az.AzureError | OSError):
        return NetworkError(f"{what}: {type(exc).__name__}")
    raise exc


def _policy_problem(container: str) -> str | None:
    """The container-name rule as engine.policy words it (one table for every kind)."""
    try:
        from engine.policy import validate_bucket
    except ImportError:
        return None
    return validate_bucket("azure", container)


def _connection_fields(connection_string: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _parents(rel: str) -> Iterator[str]:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _etag(value: str | None) -> str | None:
    # Upload responses quote the ETag header, listings do not; the engine compares them as revisions.
    return value.strip('"') if value else value


def _condition(expect: Expect | None) -> dict[str, Any]:
    """`expect` as the SDK's keyword arguments: If-Match: <ETag>, or If-None-Match: * for a free name."""
    from azure.core import MatchConditions

    if expect is None:
        return {}
    if expect.seen is None:
        return {"match_condition": MatchConditions.IfMissing}
    return {"etag": f'"{expect.seen.revision}"', "match_condition": MatchConditions.IfNotModified}


def _failed(exc: Exception, expect: Expect | None, what: str) -> ProviderError:
    """A refused condition (412, 409 BlobAlreadyExists, or 404 for If-Match on a blob gone meanwhile) as
    PreconditionFailed; anything else as `_translate` says."""
    from azure.core import exceptions as az

    if expect is not None and isinstance(exc, az.HttpResponseError):
        code = getattr(exc, "error_code", None) or ""
        code = str(getattr(code, "value", code))
        status = exc.status_code
        gone = status == 404 and expect.seen is not None and code != "ContainerNotFound"
        if status == 412 or (status == 409 and code == "BlobAlreadyExists") or gone:
            return expect.failed(what)
    return _translate(exc, what)


def _md5_hex(content_settings: Any) -> str | None:
    md5 = getattr(content_settings, "content_md5", None)
    return bytes(md5).hex() if md5 else None


def _mtime(metadata: Mapping[str, str] | None, fallback: Any) -> float | None:
    kept = sane_mtime((metadata or {}).get(MTIME_KEY))
    if kept is not None:
        return kept
    return fallback.timestamp() if fallback is not None else None


class AzureProvider(Provider):
    kind = "azure"
    location_options = ("container",)
    title = "Microsoft Azure Blob Storage"
    option_specs = (
        OptionSpec(
            "container",
            "the container to sync with, 3-63 characters (Azure portal: the storage account > Containers)",
            required=True,
            label="Container",
        ),
        OptionSpec(
            "connection_string",
            "the storage account's connection string (Azure portal: the account > Access keys); or give account name "
            "and key",
            secret=True,
            label="Connection string",
        ),
        OptionSpec(
            "account_name",
            "the storage account's name (Azure portal: Storage accounts), when no connection string is given",
            label="Storage account name",
        ),
        OptionSpec(
            "account_key",
            "a key of the storage account (Azure portal: the account > Access keys), when no connection string is "
            "given",
            secret=True,
            label="Account key",
        ),
        OptionSpec(
            "endpoint",
            "blob service URL; default https://<account>.blob.core.windows.net",
            label="Blob service address",
        ),
        OptionSpec(
            "block_size",
            "files above this many MiB are uploaded in blocks of that size (larger blocks for a file too large "
            "for 50,000 of them)",
            default="8",
            advanced=True,
            label="Block size (MiB)",
        ),
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.block_size = self._block_size(options)
        self.capabilities = Capabilities(
            hash_kind=HashKind.MD5,
            mtime_mode=MtimeMode.METADATA,
            max_file_size=self.max_object_size(options),
            multipart_threshold=self.block_size,
            conditional_writes=Conditional.SERVER,
            conditional_deletes=Conditional.SERVER,
            server_side_copy=True,  # Copy Blob from the source's URL (synchronous within an account, else polled)
            list_dir=True,  # List Blobs with delimiter "/"
            # No ids: a blob is its name, and a rename is a copy to a new name.
        )
        self._client: ContainerClient | None = None

    @staticmethod
    def _block_size(options: Mapping[str, str]) -> int:
        raw = options.get("block_size") or str(DEFAULT_BLOCK_MIB)
        try:
            size = round(float(raw) * MIB)
        except ValueError:
            raise InvalidOption("option 'block_size' must be a number of MiB") from None
        if not 1 <= size <= MAX_BLOCK_MIB * MIB:
            raise InvalidOption(f"option 'block_size' must be between 1 byte and {MAX_BLOCK_MIB} MiB")
        return size

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return MAX_OBJECT

    @classmethod
    def part_limits(cls, options: Mapping[str, str]) -> objectstore.PartLimits:
        return objectstore.PartLimits(MAX_BLOCKS, MAX_BLOCK_MIB * MIB, cls.max_object_size(options))

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        container = options["container"]
        problem = _policy_problem(container)
        if problem:
            raise InvalidOption(problem)
        if not CONTAINER_RE.match(container):  # the same rule, should the policy tables be absent
            raise InvalidOption(
                "an Azure container name must be 3-63 lowercase letters, digits or single hyphens, "
                "starting and ending with a letter or digit"
            )
        if not options.get("connection_string") and not (options.get("account_name") and options.get("account_key")):
            raise InvalidOption("give either option 'connection_string' or 'account_name' and 'account_key'")
        cls._block_size(options)

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        fields = _connection_fields(options.get("connection_string", ""))
        account = options.get("account_name") or fields.get("accountname", "")
        endpoint = options.get("endpoint") or fields.get("blobendpoint", "")
        return f"azure:{account}@{endpoint}" if endpoint else f"azure:{account}"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _container(self) -> ContainerClient:
        if self._client is None:
            from azure.storage.blob import ContainerClient, LinearRetry

            # The engine retries failed items itself; the SDK default (15 s, then 18 s, 24 s...) would stall a pass
            # on a dead network, so keep its own retries short.
            retry = LinearRetry(backoff=1, random_jitter_range=0.5, retry_total=1)
            common: dict[str, Any] = {
                "retry_policy": retry,
                "connection_timeout": 20,
                # We choose single put vs blocks ourselves; keep the SDK from re-splitting a block_size put.
                "max_single_put_size": self.block_size,
                "max_block_size": self.block_size,
            }
            try:
                if self.options.get("connection_string"):
                    self._client = ContainerClient.from_connection_string(
                        self.options["connection_string"], self.options["container"], **common
                    )
                else:
                    account = self.options["account_name"]
                    url = self.options.get("endpoint") or f"https://{account}.blob.core.windows.net"
                    self._client = ContainerClient(
                        url.rstrip("/"),
                        self.options["container"],
                        credential={"account_name": account, "account_key": self.options["account_key"]},
                        **common,
                    )
            except ValueError:
                raise InvalidOption("the Azure connection string or account key is malformed") from None
        return self._client

    def _blobs(self, prefix: str) -> Iterator[Any]:
        try:
            yield from self._container().list_blobs(name_starts_with=prefix or None, include=["metadata"])
        except Exception as exc:
            raise _translate(exc, f"listing /{prefix}") from None

    # -- the contract ----------------------------------------------------------------------------------------

    def keeps_revisions(self) -> str | None:
        """Blob versioning is a setting of the whole storage account, kept in Azure's management API (not the
        blob service an account key or connection string reaches), and Azurite has no versions at all: it
        cannot be verified from here, so conflicts are kept as copies."""
        return ("Azure keeps blob versions only where the storage account turns versioning on, which cannot be "
                "checked with the container's credentials")

    def check(self) -> None:
        try:
            self._container().get_container_properties()
        except Exception as exc:
            raise _translate(exc, f"opening container {self.options['container']}") from None

    def server_time(self) -> float | None:
        """The `Date` of a Get Container Properties answer, refused or not (the hook sees every answer)."""
        seen: list[str] = []

        def hook(response: Any) -> None:
            seen.append(response.http_response.headers.get("Date") or "")

        try:
            self._container().get_container_properties(raw_response_hook=hook)
        except Exception:  # a refusal still went through the hook; unreachable leaves nothing to compare
            pass
        return self.http_date(seen[-1] if seen else None)

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
            if not rel or rel.rsplit("/", 1)[-1] == MARKER:
                continue
            yield RemoteEntry(
                rel,
                False,
                blob.size,
                _mtime(blob.metadata, blob.last_modified),
                _md5_hex(blob.content_settings),
                _etag(blob.etag),
            )
        if folder and not found:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        if not folder and not found:
            self.check()  # an empty listing of a missing container is an error, not an empty folder

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """List Blobs with delimiter "/": the blobs right inside `folder` and its subfolders' prefixes. A folder
        holding only its `.synoemptyblob` marker is listed as there (and empty)."""
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        found = False
        names: set[str] = set()
        files: list[Any] = []
        try:
            for item in self._container().walk_blobs(name_starts_with=prefix or None, include=["metadata"],
                                                      delimiter="/"):
                found = True
                name = item.name[len(prefix) :]
                if name.endswith("/"):
                    name = name[:-1]
                    if name and "/" not in name and name not in names:
                        names.add(name)
                        yield RemoteEntry(name, True)
                elif name and name != MARKER and "/" not in name:
                    files.append(item)
        except Exception as exc:
            raise _translate(exc, f"listing /{folder}") from None
        for blob in files:
            name = blob.name[len(prefix) :]
            if name not in names:  # a blob "x" beside a folder "x/": browsing shows the folder
                yield RemoteEntry(name, False, blob.size, _mtime(blob.metadata, blob.last_modified),
                                  _md5_hex(blob.content_settings), _etag(blob.etag))
        if folder and not found:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        if not folder and not found:
            self.check()

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        try:
            downloader = self._container().get_blob_client(path).download_blob()
            downloader.readinto(out)
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None
        props = downloader.properties
        return RemoteEntry(
            path,
            False,
            props.size,
            _mtime(props.metadata, props.last_modified),
            _md5_hex(props.content_settings),
            _etag(props.etag),
        )

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        from azure.storage.blob import BlobBlock, ContentSettings

        condition = _condition(expect)
        blob = self._container().get_blob_client(path)
        metadata = {MTIME_KEY: repr(float(mtime))}
        objectstore.refuse_too_large(size, self.capabilities.max_file_size, f"writing /{path}")
        md5 = hashlib.md5()
        written = 0
        try:
            first = src.read(self.block_size + 1)
            if len(first) <= self.block_size:
                md5.update(first)
                written = len(first)
                result = blob.upload_blob(
                    first,
                    overwrite=True,
                    metadata=metadata,
                    content_settings=ContentSettings(content_md5=bytearray(md5.digest())),
                    **condition,
                )
            else:
                # Blocks are staged uncommitted; readers see the old blob until the block list is committed.
                blocks: list[BlobBlock] = []
                limits = self.part_limits(self.options)
                sizes = objectstore.part_schedule(size, self.block_size, limits)
                for _number, chunk in objectstore.parts(src, first, sizes, f"writing /{path}", limits.max_parts):
                    block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
                    blob.stage_block(block_id, chunk, length=len(chunk))
                    md5.update(chunk)
                    written += len(chunk)
                    blocks.append(BlobBlock(block_id=block_id))
                result = blob.commit_block_list(
                    blocks,
                    metadata=metadata,
                    content_settings=ContentSettings(content_md5=bytearray(md5.digest())),
                    **condition,
                )
        except Exception as exc:
            error = _failed(exc, expect, f"writing /{path}")
            landed = self._holding(path, md5.hexdigest(), written) if isinstance(error, PreconditionFailed) else None
            if landed is None:
                raise error from None
            # Exactly what we wrote is there: an earlier attempt whose answer was lost (the SDK retried it).
            result = {"etag": landed}
        return RemoteEntry(path, False, written, float(mtime), md5.hexdigest(), _etag(result["etag"]))

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """Copy Blob from the source blob's URL: the metadata (the mtime) and the content MD5 travel with it.
        The copy is made only from the version of `src` read just before (source If-Match), and `expect` is
        checked by the service on the destination (If-None-Match: * / If-Match), as for uploads. Within one
        account the copy is done when the call returns; otherwise its status is polled until it is."""
        from azure.core import MatchConditions

        what = f"copying /{src} to /{dst}"
        source = self._container().get_blob_client(src)
        target = self._container().get_blob_client(dst)
        try:
            props = source.get_blob_properties()
        except Exception as exc:
            raise _translate(exc, what) from None
        try:
            started = target.start_copy_from_url(
                source.url, source_etag=props.etag, source_match_condition=MatchConditions.IfNotModified,
                **_condition(expect),
            )
            status = started.get("copy_status")
            deadline = time.monotonic() + COPY_WAIT
            while status == "pending":
                if time.monotonic() > deadline:
                    target.abort_copy(started["copy_id"])
                    raise TransientError(f"{what}: the service did not finish the copy in {COPY_WAIT:.0f} s")
                time.sleep(COPY_POLL)
                status = target.get_blob_properties().copy.status
            if status != "success":
                raise ProviderError(f"{what}: the service reported the copy as {status}")
            copied = target.get_blob_properties()
        except ProviderError:
            raise
        except Exception as exc:
            raise _failed(exc, expect, what) from None
        return RemoteEntry(dst, False, copied.size, _mtime(copied.metadata, copied.last_modified),
                           _md5_hex(copied.content_settings), _etag(copied.etag))

    def _holding(self, path: str, md5: str, size: int) -> str | None:
        """The ETag of blob `path` when it holds content of this MD5 and size, else None."""
        try:
            props = self._container().get_blob_client(path).get_blob_properties()
        except Exception:
            return None
        return props.etag if (props.size, _md5_hex(props.content_settings)) == (size, md5) else None

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._container().delete_blob(path, delete_snapshots="include", **_condition(expect))
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", "") == "ContainerNotFound":
                raise _translate(exc, f"deleting /{path}") from None
        except Exception as exc:
            error = _failed(exc, expect, f"deleting /{path}")
            if isinstance(error, PreconditionFailed) and not self._exists(path):
                return  # If-Match on a blob gone meanwhile is 412 too: gone is what we wanted
            raise error from None

    def _exists(self, path: str) -> bool:
        try:
            return bool(self._container().get_blob_client(path).exists())
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        for _ in self._blobs(path + "/"):
            return RemoteEntry(path, True)  # the folder already has content (or its marker)
        try:
            self._container().upload_blob(f"{path}/{MARKER}", b"", overwrite=True)
        except Exception as exc:
            raise _translate(exc, f"creating folder /{path}") from None
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        marker = f"{path}/{MARKER}"
        for blob in self._blobs(path + "/"):
            if blob.name != marker:
                raise FolderNotEmpty(f"removing folder /{path}: it is not empty")
        self.delete(marker)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
