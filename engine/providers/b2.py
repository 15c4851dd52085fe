"""`b2`: Backblaze B2 through the official b2sdk.

B2 is a flat object store: folders are name prefixes, and an empty folder is kept as a zero-byte `.bzEmpty`
marker inside it (the convention of Backblaze's own tools, and a name the spec never syncs), so markers are
reported as their folder and never as files. The file's mtime lives in the `src_last_modified_millis` file
info (B2 itself only knows the upload time). Single-part uploads carry a sha1; large files uploaded in parts
(`b2_upload_part`) have none (spec note 4 of the attribute table), so they are reported without a hash.
Deleting a file hides it: B2 keeps the older versions (versioning), like the service's own "delete".

Conditional writes (`expect`): B2 has no write condition, so the file's latest version is re-read (one
b2_list_file_versions call) right before the upload or the hide. The window left is the whole upload: a version
another client uploads while ours is on its way becomes the previous version of the file (B2 keeps it, but a
sync no longer sees it); for a hide, one round trip.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, cast

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
    sane_mtime,
)

if TYPE_CHECKING:
    from b2sdk.v2 import B2Api, Bucket

MARKER = ".bzEmpty"
MIB = 1 << 20
DEFAULT_PART_SIZE_MIB = 100
MIN_PART_SIZE_MIB = 5  # B2's absolute minimum part size
MAX_PART_SIZE_MIB = 5 * 1024
MTIME_KEY = "src_last_modified_millis"
MAX_PARTS = 10_000  # the most parts one large file may have
MAX_PART_BYTES = 5 * 10**9  # B2's largest part ("5 GB", decimal as Backblaze counts)
MAX_OBJECT = 10 * 10**12  # B2's largest file ("10 TB"); parts are chosen per file to reach it in 10,000


def _real_api(realm: str) -> B2Api:
    from b2sdk.v2 import B2Api, InMemoryAccountInfo

    return B2Api(InMemoryAccountInfo())


# Test seam: tests/providers/servers/b2.py swaps this for a factory of B2Api objects that talk to b2sdk's
# in-process RawSimulator (there is no B2 server to run locally). It gets the realm (the `endpoint` option,
# or "production") so a test can still point the real HTTP client at an address. Production never changes it.
api_factory: Callable[[str], B2Api] = _real_api
# The smallest part size the provider accepts; the simulator-backed tests lower it to exercise multipart.
min_part_size_bytes: int = MIN_PART_SIZE_MIB * MIB
# The largest file one b2_copy_file copies (B2's limit; test servers lower it with their simulator's).
max_simple_copy_bytes: int = 5 * 10**9


def _validate_bucket_name(name: str) -> None:
    """The spec's B2 bucket rule; engine.policy owns the table when it exists."""
    try:
        from engine.policy import validate_bucket
    except ImportError:
        validate_bucket = None
    if validate_bucket is not None:
        problem = validate_bucket("b2", name)
        if problem:
            raise InvalidOption(str(problem))
        return
    if not 6 <= len(name) <= 50:
        raise InvalidOption("a B2 bucket name must be 6 to 50 characters long")
    if name.startswith("b2-"):
        raise InvalidOption("a B2 bucket name cannot start with 'b2-'")


def _translate(exc: Exception, what: str) -> ProviderError:
    from b2sdk.v2 import exception as b2e

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, b2e.NonExistentBucket):
        return ContainerNotFound(f"{what}: the bucket does not exist")
    if isinstance(exc, b2e.FileNotPresent):
        return NotFound(f"{what}: not found")
    if isinstance(exc, b2e.Unauthorized):  # InvalidAuthToken too
        return AuthError(f"{what}: the application key was refused")
    if isinstance(exc, b2e.NotAllowedByAppKeyError | b2e.RestrictedBucket | b2e.AccessDenied):
        return PermissionDenied(f"{what}: the application key does not allow it")
    if isinstance(exc, b2e.CapExceeded | b2e.MaxFileSizeExceeded):
        return QuotaExceeded(f"{what}: a B2 cap or size limit was reached")
    if isinstance(exc, b2e.B2ConnectionError | b2e.UnknownHost | b2e.ConnectionReset | b2e.BrokenPipe):
        return NetworkError(f"{what}: B2 could not be reached")
    if isinstance(exc, b2e.TooManyRequests | b2e.TransientErrorMixin):
        # b2sdk reads the answer's Retry-After (delta-seconds) into the exception.
        wait = getattr(exc, "retry_after_seconds", None)
        return TransientError(f"{what}: B2 is busy, try again later",
                              retry_after=float(wait) if wait is not None else None)
    if isinstance(exc, b2e.B2Error):
        return ProviderError(f"{what}: {type(exc).__name__}")
    if isinstance(exc, OSError):
        return NetworkError(f"{what}: {exc.strerror or type(exc).__name__}")
    raise exc


def _mtime(version: Any) -> float:
    millis = (version.file_info or {}).get(MTIME_KEY)
    try:
        kept = sane_mtime(int(millis) / 1000)  # B2's own convention: src_last_modified_millis
    except (TypeError, ValueError, OverflowError):
        kept = None
    return kept if kept is not None else version.upload_timestamp / 1000


def _hash(version: Any) -> str | None:
    # Large files report "none" (or a client-supplied large_file_sha1 we deliberately ignore: spec note 4).
    sha1 = version.content_sha1
    return sha1 if sha1 and sha1 != "none" else None


def _parents(rel: str) -> Iterator[str]:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


class _Window(io.RawIOBase):
    """An independent read cursor over a shared seekable file; closing it leaves the file open."""

    def __init__(self, src: BinaryIO, start: int, lock: threading.Lock) -> None:
        super().__init__()
        self._src, self._start, self._lock, self._pos = src, start, lock, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            with self._lock:
                self._pos = self._src.seek(0, io.SEEK_END) - self._start + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        with self._lock:
            self._src.seek(self._start + self._pos)
            data = self._src.read(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class B2Provider(Provider):
    kind = "b2"
    location_options = ("bucket",)
    title = "Backblaze B2"
    option_specs = (
        OptionSpec(
            "bucket",
            "the bucket to sync with (Backblaze web console: B2 Cloud Storage > Buckets)",
            required=True,
            label="Bucket",
        ),
        OptionSpec(
            "key_id",
            "the keyID of an application key (Backblaze web console: Application Keys)",
            required=True,
            label="Application key ID",
        ),
        OptionSpec(
            "application_key",
            "the applicationKey, shown once when the key is made (Application Keys)",
            secret=True,
            required=True,
            label="Application key",
        ),
        OptionSpec(
            "part_size",
            "large files are uploaded in parts of this many MiB (larger ones for a file too large for 10,000 "
            "such parts)",
            default="100",
            advanced=True,
            label="Part size (MiB)",
        ),
        OptionSpec(
            "endpoint",
            "B2 API address (realm URL); default: Backblaze's production realm",
            label="API address",
        ),
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.part_size = self._part_size(options)
        self.capabilities = Capabilities(
            hash_kind=HashKind.SHA1,
            mtime_mode=MtimeMode.METADATA,
            max_file_size=self.max_object_size(options),
            multipart_threshold=self.part_size,
            conditional_writes=Conditional.REREAD,
            conditional_deletes=Conditional.REREAD,
            server_side_copy=True,  # b2_copy_file (b2_copy_part above one part), file info kept
            list_dir=True,  # b2_list_file_names with delimiter "/"
            # No ids across renames: a file id names one version of one name (a rename is a copy).
            needs_size_before_upload=True,  # b2sdk is given `size` as the exact stream length
        )
        self._lock = threading.Lock()
        self._bucket_obj: Bucket | None = None

    @staticmethod
    def _part_size(options: Mapping[str, str]) -> int:
        raw = options.get("part_size") or str(DEFAULT_PART_SIZE_MIB)
        try:
            size = round(float(raw) * MIB)
        except ValueError:
            raise InvalidOption("option 'part_size' must be a number of MiB") from None
        if not min_part_size_bytes <= size <= MAX_PART_SIZE_MIB * MIB:
            low, high = min_part_size_bytes / MIB, MAX_PART_SIZE_MIB
            raise InvalidOption(f"option 'part_size' must be between {low:g} and {high} MiB")
        return size

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return MAX_OBJECT

    @classmethod
    def part_limits(cls, options: Mapping[str, str]) -> objectstore.PartLimits:
        return objectstore.PartLimits(MAX_PARTS, MAX_PART_BYTES, cls.max_object_size(options))

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        _validate_bucket_name(options["bucket"])
        cls._part_size(options)

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        return f"b2:{options.get('key_id', '')}"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _bucket(self) -> Bucket:
        with self._lock:
            if self._bucket_obj is None:
                try:
                    realm = self.options.get("endpoint") or "production"
                    api = api_factory(realm)
                    api.authorize_account(
                        realm=realm,
                        application_key_id=self.options["key_id"],
                        application_key=self.options["application_key"],
                    )
                    self._bucket_obj = api.get_bucket_by_name(self.options["bucket"])
                except Exception as exc:
                    raise _translate(exc, f"opening bucket {self.options['bucket']}") from None
            return self._bucket_obj

    def _versions(self, prefix: str) -> Iterator[Any]:
        """The latest visible version of every file named `prefix...` (hidden files are skipped)."""
        bucket = self._bucket()
        try:
            for version, _ in bucket.ls(prefix, latest_only=True, recursive=True):
                yield version
        except Exception as exc:
            raise _translate(exc, f"listing /{prefix}") from None

    def _entry(self, rel: str, version: Any) -> RemoteEntry:
        return RemoteEntry(rel, False, version.size, _mtime(version), _hash(version), version.id_)

    # -- the contract ----------------------------------------------------------------------------------------

    def keeps_revisions(self) -> str | None:
        """B2 keeps every version of a file (an upload over a name makes the old one its previous version)
        unless a lifecycle rule of the bucket hides or deletes versions; the rules are read fresh each time (they
        can change), and any such rule counts, whatever its prefix."""
        bucket = self._bucket()
        try:
            rules = bucket.get_fresh_state().lifecycle_rules or []
        except Exception as exc:
            raise _translate(exc, "reading the bucket's lifecycle rules") from None
        for rule in rules:
            days = rule.get("daysFromHidingToDeleting") or rule.get("daysFromUploadingToHiding")
            if days:
                prefix = rule.get("fileNamePrefix") or ""
                where = f" for names starting '{prefix}'" if prefix else ""
                return (f"a lifecycle rule of bucket '{self.options['bucket']}'{where} hides or deletes versions "
                        f"after {days} day{'s' if days != 1 else ''}")
        return None

    def check(self) -> None:
        bucket = self._bucket()
        try:
            next(iter(bucket.ls("", latest_only=True, recursive=False, fetch_count=1)), None)
        except Exception as exc:
            raise _translate(exc, "listing the bucket") from None

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        seen_dirs: set[str] = set()
        found = False
        for version in self._versions(prefix):
            found = True
            rel = version.file_name[len(prefix) :]
            for parent in _parents(rel):
                if parent not in seen_dirs:
                    seen_dirs.add(parent)
                    yield RemoteEntry(parent, True)
            if rel.rsplit("/", 1)[-1] == MARKER or not rel:
                continue
            yield self._entry(rel, version)
        if folder and not found:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """b2_list_file_names with delimiter "/": the files right inside `folder` and its subfolders (a folder
        holding only its `.bzEmpty` marker included)."""
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        found = False
        folders: list[str] = []
        files: list[Any] = []
        try:
            for version, subfolder in self._bucket().ls(prefix, latest_only=True, recursive=False):
                found = True
                if subfolder is not None:
                    name = subfolder[len(prefix) :].rstrip("/")
                    if name and "/" not in name and name not in folders:
                        folders.append(name)
                    continue
                name = version.file_name[len(prefix) :]
                if name and name != MARKER and "/" not in name:
                    files.append((name, version))
        except ProviderError:
            raise
        except Exception as exc:
            raise _translate(exc, f"listing /{folder}") from None
        if folder and not found:
            raise ContainerNotFound(f"the remote folder /{folder} does not exist")
        yield from (RemoteEntry(name, True) for name in folders)
        taken = set(folders)  # a file "x" beside a folder "x/": browsing shows the folder
        yield from (self._entry(name, version) for name, version in files if name not in taken)

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        bucket = self._bucket()
        try:
            downloaded = bucket.download_file_by_name(path)
            downloaded.save(out, allow_seeking=False)
        except Exception as exc:
            raise _translate(exc, f"reading /{path}") from None
        return self._entry(path, downloaded.download_version)

    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        from b2sdk.v2 import UploadSourceStream, WriteIntent

        objectstore.refuse_too_large(size, self.capabilities.max_file_size, f"writing /{path}")
        bucket = self._bucket()
        self._check(path, expect, f"writing /{path}")
        if not src.seekable():
            spool = tempfile.SpooledTemporaryFile(max_size=8 * MIB)  # noqa: SIM115 -- closed below
            shutil.copyfileobj(src, spool, MIB)
            spool.seek(0)
            src = cast(BinaryIO, spool)
        lock = threading.Lock()
        start = src.tell()

        def opener() -> BinaryIO:
            # b2sdk opens the source once per part (in parallel threads) and closes it, so each part gets
            # its own cursor over the shared file instead of the file itself.
            return cast(BinaryIO, _Window(src, start, lock))

        source = UploadSourceStream(opener, stream_length=size)
        try:
            # Files up to part_size go in one b2_upload_file (sha1 kept); larger ones in parts of part_size, or
            # of the size that keeps the file within 10,000 parts (objectstore.part_size_for). Parts are cut at
            # that size and only the last one may be shorter (B2 allows that), so the planner floor is 1 byte;
            # otherwise b2sdk keeps anything below 2 x part_size in one upload.
            version = bucket.create_file(
                [WriteIntent(source)],
                path,
                file_info={MTIME_KEY: str(round(mtime * 1000))},
                recommended_upload_part_size=objectstore.part_size_for(size, self.part_size,
                                                                       self.part_limits(self.options)),
                min_part_size=1,
            )
        except Exception as exc:
            raise _translate(exc, f"writing /{path}") from None
        finally:
            if isinstance(src, tempfile.SpooledTemporaryFile):
                src.close()
        return self._entry(path, version)

    def _latest(self, path: str, what: str) -> RemoteEntry | None:
        """The file's latest version (None when there is none, or it is hidden)."""
        version = self._latest_version(path, what)
        return None if version is None else self._entry(path, version)

    def _latest_version(self, path: str, what: str) -> Any:
        try:
            for version in self._bucket().list_file_versions(path, fetch_count=2):
                if version.action == "start":
                    continue  # another client's large file, still unfinished
                return None if version.action != "upload" else version
        except Exception as exc:
            raise _translate(exc, what) from None
        return None

    def replaced_version(self, path: str, listed: RemoteEntry) -> tuple[str, float | None]:
        """The file's latest version (its fileId) and B2's upload time of it, while it is the one listed."""
        what = f"writing /{path}"
        version = self._latest_version(path, what)
        if version is None or version.id_ != listed.revision:
            raise Expect.entry(listed).failed(what)
        return version.id_, version.upload_timestamp / 1000

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """b2_copy_file of the latest version of `src` (b2_copy_part in part_size parts above 5 GB), with
        its file info (the mtime) kept. `expect` is checked by re-reading `dst` first, as for uploads: B2 has
        no write condition, so the window is the copy's duration."""
        what = f"copying /{src} to /{dst}"
        source = self._latest_version(src, what)
        if source is None:
            raise NotFound(f"{what}: /{src} is not there")
        self._check(dst, expect, what)
        large = source.size > max_simple_copy_bytes
        try:
            version = self._bucket().copy(
                source.id_,
                dst,
                length=source.size,  # known: b2sdk then picks one b2_copy_file or parts by it
                # Given explicitly: a copy in parts would otherwise start with an empty file info (no mtime).
                content_type=source.content_type,
                file_info=source.file_info,
                min_part_size=1 if large else None,
                max_part_size=min(objectstore.part_size_for(source.size, self.part_size,
                                                            self.part_limits(self.options)),
                                  max_simple_copy_bytes) if large else None,
            )
        except Exception as exc:
            raise _translate(exc, what) from None
        return self._entry(dst, version)

    def _check(self, path: str, expect: Expect | None, what: str) -> None:
        if expect is not None and not expect.met_by(self._latest(path, what)):
            raise expect.failed(what)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        from b2sdk.v2 import exception as b2e

        bucket = self._bucket()
        if expect is not None:
            found = self._latest(path, f"deleting /{path}")
            if found is None:
                return  # gone (or hidden) already
            if not expect.met_by(found):
                raise expect.failed(f"deleting /{path}")
        try:
            bucket.hide_file(path)
        except (b2e.FileNotPresent, b2e.FileAlreadyHidden, b2e.ResourceNotFound):
            return
        except Exception as exc:
            raise _translate(exc, f"deleting /{path}") from None

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        for _ in self._versions(path + "/"):
            return RemoteEntry(path, True)  # the folder already has content (or its marker)
        try:
            self._bucket().upload_bytes(b"", f"{path}/{MARKER}")
        except Exception as exc:
            raise _translate(exc, f"creating folder /{path}") from None
        return RemoteEntry(path, True)

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        for version in self._versions(path + "/"):
            if version.file_name != f"{path}/{MARKER}":
                raise FolderNotEmpty(f"removing folder /{path}: it is not empty")
        bucket = self._bucket()
        try:
            # Markers are bookkeeping, not user data: remove every version so no hidden marker lingers.
            for version in bucket.list_file_versions(f"{path}/{MARKER}"):
                bucket.delete_file_version(version.id_, version.file_name)
        except Exception as exc:
            raise _translate(exc, f"removing folder /{path}") from None

    def close(self) -> None:
        self._bucket_obj = None
