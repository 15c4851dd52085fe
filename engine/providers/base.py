"""The one contract every storage service implements.

A provider knows nothing about tasks, state or policy: it lists, reads, writes and deletes entries under
connection-relative paths ("photos/2024/a.jpg", no leading slash, "/" as separator, "" for the root), and it
declares what it can do in a `Capabilities` record so the engine never has to ask "which service is this?".
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, NamedTuple


class HashKind(enum.StrEnum):
    """The hash a service reports for a file; each kind owns its streaming hasher (`engine.hashing`)."""

    NONE = "none"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    DROPBOX = "dropbox"  # Dropbox's content hash: sha256 of the sha256 of every 4 MiB block
    QUICKXOR = "quickxor"  # OneDrive's quickXorHash (base64)


class MtimeMode(enum.StrEnum):
    """How a provider keeps a file's modification time (the spec's attribute table)."""

    NATIVE = "native"  # the service stores the mtime we give it and lists it back
    METADATA = "metadata"  # kept in custom metadata; listings may show the upload time instead
    NONE = "none"  # the service only knows the upload time


class Conditional(enum.StrEnum):
    """How a provider honours the `expect` of `upload()` and `delete()` (see `Expect`).

    Each provider's docstring says how wide the window it leaves is.
    """

    SERVER = "server"  # the service checks the condition as it commits the write: nothing slips in between
    REREAD = "reread"  # the provider re-reads the entry just before the write: a change made during the write's
    #                    last request (for some services the whole upload) can still be overwritten
    NONE = "none"  # `expect` is ignored: the write is unconditional


@dataclass(frozen=True, slots=True)
class Capabilities:
    hash_kind: HashKind
    mtime_mode: MtimeMode
    # True when list() yields entries in canonical order (see `order_key`); otherwise the engine sorts them.
    canonical_order: bool = False
    max_file_size: int | None = None
    multipart_threshold: int | None = None
    # True when `move()` renames a file on the service itself (a server-side copy and delete, or a real rename):
    # a renamed file is not uploaded again.
    server_side_move: bool = False
    # True when list() reports the hash of every single-part file; False when it has to be computed on request.
    hash_in_listing: bool = True
    # Folders exist as real objects (or markers) and empty folders survive.
    folders: bool = True
    # False when listed sizes are not the plaintext sizes (client-side encryption): sizes cannot be compared.
    plain_sizes: bool = True
    # True when the service is reached over a network: its listing is read ahead in a thread (overlapping the
    # wait with the local walk) and small files travel in parallel. For a local folder both are CPU-bound
    # system calls that gain nothing from threads and lose to the GIL (measured: 4 threads took 13.6 s of CPU
    # for 10,000 small files, 1 thread 6.0 s).
    network: bool = True
    # How `expect` is honoured by upload() (replacing or creating a name) and by delete().
    conditional_writes: Conditional = Conditional.NONE
    conditional_deletes: Conditional = Conditional.NONE
    # -- contract v2: identity and the optional operations (rclone calls them features) --
    # Entries carry the service's own `id` (and `parent_id`): a rename keeps the id.
    ids: bool = False
    # The service allows two entries with the same name in one folder (Google Drive). The listing reports
    # one of them and tells `on_skip` about the others, never merging them silently.
    duplicate_names: bool = False
    # "A.txt" and "a.txt" are one name on the service (Dropbox, OneDrive, Box): two local names that differ
    # only by case cannot both be stored; the engine syncs one and skips the other with a reason.
    case_insensitive: bool = False
    # `copy()` copies a file on the service itself (no download and re-upload).
    server_side_copy: bool = False
    # `list_dir()` asks the service for one level (a delimiter listing, PROPFIND Depth 1, one scandir), not a
    # filtered full listing.
    list_dir: bool = False
    # `changes()` reads the service's change feed (with a cursor the engine saves).
    changes: bool = False
    # `wait_changes()` blocks until the change feed has something new (a long poll, Dropbox's
    # `list_folder/longpoll`): the running engine learns of a remote change within seconds, and a wait that
    # ends with nothing new costs no listing.
    wait_for_changes: bool = False
    # An upload must know its size before it starts (the SDK sends `size` as the exact length): a stream of
    # unknown length (an encrypted container, whose size is known only once written) is spooled first.
    needs_size_before_upload: bool = False
    # `export_documents()` lists the service's online documents (Google Docs...) as exported files for a
    # download-only task that asks for it.
    document_export: bool = False
    # The service reports a hash of `hash_kind` that is sometimes wrong (Baidu's md5, the spec's FAQ): a listed
    # hash that matches ours proves equal content, one that differs proves nothing. The engine then never
    # re-downloads, re-uploads, refuses a download or makes a conflict copy because of a hash alone: sizes, the
    # state's record and, where needed, the bytes decide; `--consistency-check` is refused for such a service.
    hash_unreliable: bool = False


@dataclass(frozen=True, slots=True)
class OptionSpec:
    name: str
    help: str
    secret: bool = False
    required: bool = False
    default: str | None = None
    choices: tuple[str, ...] | None = None
    # Tuning a user rarely needs (storage class, part sizes...): the wizard shows it on its "advanced settings"
    # step, as the product we replace does.
    advanced: bool = False
    # What the wizard shows in place of the option's name ("Access key ID"); the CLI keeps `name`. Empty: the
    # name with its underscores as spaces, capitalised.
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def is_address(self) -> bool:
        """The option is a service address (`endpoint`, `url`, `api_url`...): its value must parse as a URL or
        a host name. Told by the name, the convention every provider follows, so a new address option is
        checked without anyone remembering to."""
        return self.name in ("endpoint", "url") or self.name.endswith("_url")


def address_problem(value: str) -> str | None:
    """Why `value` cannot be used as a URL or host name (an unclosed "[" of an IPv6 address, a port that is
    no number or out of range), or None. Only what no HTTP client could ever connect to: the scheme a
    provider allows is its own rule."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value if "://" in value else "//" + value)
        parts.port  # noqa: B018 - reading it is the check: a bad port raises here, not at the first request
    except ValueError as exc:
        return str(exc) or "it cannot be parsed"
    if parts.password is not None:
        # The options are written to the main config and shown by `connection show`: a password belongs in
        # the connection's secret option, which goes to the secrets file.
        return "it holds a password; give the password in its own option instead"
    return None


class RemoteEntry(NamedTuple):
    """One file or folder as the service reports it (a named tuple: listings make many of them).

    `revision` must change whenever the content changes, and `upload()` must return the same size, revision and
    hash that the next `list()` will report, so a second pass sees nothing new.
    """

    path: str
    is_dir: bool
    size: int = 0
    mtime: float | None = None
    hash: str | None = None
    revision: str | None = None
    # The service's own identity for the entry where it has one (`Capabilities.ids`); it survives a rename.
    id: str | None = None
    parent_id: str | None = None

    def signature(self) -> tuple[object, ...]:
        """What the engine compares with the last synced state to tell whether the remote side changed."""
        if self.is_dir:
            return (True,)
        return (False, self.size, self.revision if self.revision is not None else self.mtime)


@dataclass(frozen=True, slots=True)
class Expect:
    """What a name must still hold for a conditional `upload()` or `delete()` to go ahead.

    `Expect.absent()`: no file by that name (a new upload, a conflict copy). `Expect.entry(e)`: still the version
    `e` the plan saw, told by its revision (ETag, generation, version id) or, where the service has none, by its
    size and mtime. Other clients write to the same cloud folder while a pass runs; a write or delete whose
    condition no longer holds raises `PreconditionFailed` instead of destroying their version.
    """

    seen: RemoteEntry | None  # None: the name must be free

    @classmethod
    def absent(cls) -> Expect:
        return cls(None)

    @classmethod
    def entry(cls, entry: RemoteEntry) -> Expect:
        return cls(entry)

    def met_by(self, current: RemoteEntry | None) -> bool:
        """Whether `current` (the file at the name as read now; None when there is none) is what was expected.

        For providers that re-read the entry themselves. A name that now holds nothing does not meet
        `Expect.entry`: the version the plan saw is gone, and whoever removed it may have had a reason.
        """
        if self.seen is None:
            return current is None
        if current is None or current.is_dir:
            return False
        if self.seen.revision is not None or current.revision is not None:
            return current.revision == self.seen.revision
        return current.size == self.seen.size and current.mtime == self.seen.mtime

    def failed(self, what: str) -> PreconditionFailed:
        """The error for `what` ("writing /a.txt") when the condition does not hold."""
        if self.seen is None:
            return PreconditionFailed(f"{what}: another client created it since it was listed")
        return PreconditionFailed(f"{what}: another client changed or deleted it since it was listed")


# -- values read from a service: data written by anyone, never trusted ------------------------------------------

_EPOCH_MAX = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last time a file system or datetime can hold
# Other tools write mtimes in milliseconds, microseconds or nanoseconds: a value past this many seconds
# (about the year 5138) is read in the next smaller unit.
_UNIT_STEPS = (1e3, 1e6, 1e9)


def sane_mtime(value: object) -> float | None:
    """A modification time kept in a service's metadata, as seconds since the epoch, or None.

    None for anything that is not a finite, plausible time: `inf`, `nan`, `1e30`, a negative number, text.
    The caller then falls back to the service's own time for the entry. Milliseconds (and micro- and
    nanoseconds) are recognised by their size and scaled.
    """
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    for step in _UNIT_STEPS:
        if seconds <= _EPOCH_MAX:
            break
        seconds = float(value) / step  # type: ignore[arg-type]
    return seconds if seconds <= _EPOCH_MAX else None


def retry_after_seconds(value: object, now: float | None = None) -> float | None:
    """An HTTP `Retry-After` header as seconds to wait from now; None when absent or unreadable.

    Both forms RFC 9110 allows: delta-seconds ("120") and an HTTP date ("Fri, 31 Dec 1999 23:59:59 GMT"; a
    date in the past means no wait). A value another tool put there is untrusted: a negative, fractional or
    non-finite number is not delta-seconds, and a date without a zone is not an HTTP date.
    """
    import time
    from email.utils import parsedate_to_datetime

    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# -- errors: every message is safe to show to the user (never a secret, never a traceback) --------------------


class ProviderError(Exception):
    """A failure talking to the service; `str()` is one line for the user.

    `retry_after` is the wait in seconds the service asked for (a `Retry-After` header, a 429's hint), or None;
    the connection's pacer honours it.
    """

    retryable: bool = False

    def __init__(self, *args: object, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class AuthError(ProviderError):
    """The credentials were refused."""


class ReauthRequired(AuthError):
    """The sign-in is no longer valid (the refresh token was revoked or has expired): the connection needs
    `skysync connection login NAME`; its state is kept. Passes of this connection stop; others carry on."""


class CursorExpired(ProviderError):
    """The service no longer knows the change-feed cursor (too old, or reset): list everything again and start
    a fresh cursor."""


class ContainerNotFound(ProviderError):
    """The bucket, container or root folder of the connection does not exist."""


class NotFound(ProviderError):
    """The file or folder does not exist (any more)."""


class FolderNotEmpty(ProviderError):
    """A folder to remove holds something (put there since the listing, or never listed): it stays."""


class PermissionDenied(ProviderError):
    """The service or the file system refused the operation."""


class QuotaExceeded(ProviderError):
    """No space left, or a size limit of the service."""


class NetworkError(ProviderError):
    """The service could not be reached; worth retrying."""

    retryable = True


class TransientError(ProviderError):
    """A temporary failure (throttling, 5xx); worth retrying."""

    retryable = True


class PreconditionFailed(ProviderError):
    """The name no longer holds what `expect` said (another client wrote or deleted it): nothing was changed.

    Not a failure of the service and not worth a retry: the engine keeps both versions instead.
    """


class InvalidOption(ProviderError):
    """A connection option has a value the provider cannot use."""


class ContentUnavailable(ProviderError):
    """The service holds the file but will not hand its content over (a Google Doc whose export is larger than
    Google exports): the item is skipped with this reason, not failed; nothing changes on either side, and the
    next pass asks again (the document may have shrunk)."""


# -- change feeds ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One item of a change feed, by id (see `Provider.changes`).

    An upsert carries the entry as it is now (`entry.id == id`). A deletion (or a move out of the feed's
    folder) has `entry` None. Where the service reports paths (Dropbox, OneDrive), `path` is the entry's path
    relative to the feed's folder; where it reports only parents and names (Google Drive), `path` is None and
    the engine's remote index resolves it from `parent_id` and `name` (entries right inside the folder have
    `parent_id == Provider.folder_id(folder)`).
    """

    id: str
    entry: RemoteEntry | None
    parent_id: str | None = None
    name: str = ""
    path: str | None = None

    @property
    def deleted(self) -> bool:
        return self.entry is None


class ChangeWait(NamedTuple):
    """What `Provider.wait_changes` saw: whether the feed holds something new after the cursor, and how many
    seconds the service asks the caller to wait before the next call (Dropbox's `backoff`; 0 for none)."""

    changed: bool
    backoff: float = 0.0


# -- ordering --------------------------------------------------------------------------------------------------


def order_key(path: str) -> str:
    """The canonical order of paths: a depth-first walk with siblings sorted by name.

    Mapping "/" below every other character makes "a", "a/x", "a-b" sort in that order, so a folder is
    followed directly by its subtree, and listings, state and the local walk can be merged as sorted streams.
    """
    return path.replace("/", "\x00")


def sorted_entries(entries: Iterable[RemoteEntry]) -> list[RemoteEntry]:
    return sorted(entries, key=lambda e: order_key(e.path))


def join(*parts: str) -> str:
    """Join connection-relative path parts, ignoring empty ones and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


# -- the contract ----------------------------------------------------------------------------------------------


class Provider(ABC):
    kind: ClassVar[str]
    # The options that pick a place inside the account (bucket, container...): see `location()`.
    location_options: ClassVar[tuple[str, ...]] = ()
    title: ClassVar[str]
    option_specs: ClassVar[tuple[OptionSpec, ...]] = ()
    capabilities: Capabilities
    # What the connection wizard says before the options (how to get the credentials, what a choice means).
    setup_note: ClassVar[str] = ""
    # Seconds the connection's pacer (engine.pacer) keeps between the starts of two calls: the rate a service
    # allows one account (most object stores need none; consumer drives publish one).
    min_call_spacing: ClassVar[float] = 0.0

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = dict(options)

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        """Raise InvalidOption for a value the service can never accept; no network access."""
        for spec in cls.option_specs:
            value = options.get(spec.name)
            if spec.required and not value:
                raise InvalidOption(f"option '{spec.name}' is required for provider '{cls.kind}'")
            if value and spec.choices and value not in spec.choices:
                raise InvalidOption(f"option '{spec.name}' must be one of: {', '.join(spec.choices)}")
            problem = address_problem(value) if value and spec.is_address else None
            if problem:
                # Checked first for every provider: a malformed address would otherwise reach urllib or an SDK
                # as a ValueError, which the CLI can only call a bug.
                raise InvalidOption(f"option '{spec.name}' is not a valid URL ({problem})")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        """The credential this connection uses; the spec allows one connection per credential."""
        return f"{cls.kind}:" + ",".join(f"{k}={options.get(k, '')}" for k in sorted(options) if k != "preset")

    @classmethod
    def location(cls, options: Mapping[str, str]) -> str:
        """Where this connection's data lives: the account (`identity`) and the bucket, container or folder
        inside it. A task whose connection comes to point elsewhere is a new pairing (its state is forgotten)."""
        return cls.identity(options) + "".join(f"|{k}={options.get(k, '')}" for k in cls.location_options)

    @classmethod
    def folder_here(cls, options: Mapping[str, str], remote: str) -> str | None:
        """The folder on this machine that holds `remote` (links resolved), for a kind whose storage is a folder
        of this machine; None for a service. A task's local folder must not overlap it: each pass would copy
        the tree into itself once more."""
        return None

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        """The largest file the service stores for a connection with these options (bytes; None: no known
        limit). No network and no credentials needed: `policy check --size` answers with it, and the provider
        puts it in `capabilities.max_file_size`, which the engine checks before the first byte is sent."""
        return None

    def location_choices(self) -> tuple[str, list[tuple[str, str]]] | None:
        """After sign-in, the location option the wizard offers a list for and its (id, label) pairs -- Google
        Drive's shared drives, SharePoint's document libraries. The option takes the label when it is unique
        among the pairs and the id otherwise. None: the kind has no such choice. May call the service."""
        return None

    def keeps_revisions(self) -> str | None:
        """None when the service verifiably keeps the version an upload replaces as an earlier revision, for
        this bucket or account (bucket versioning enabled, a drive's own file history); otherwise the reason it
        does not, or cannot be told, in words for a person. May call the service; raises ProviderError when it
        cannot be reached. A two-way conflict then uploads the local version over the remote one (spec:
        "the remote changes will be saved as one revision") instead of making conflict copies."""
        return f"{self.title} keeps no earlier versions of a file that skysync can rely on"

    def replaced_version(self, path: str, listed: RemoteEntry) -> tuple[str, float | None]:
        """The service's version id and time of file `path`, listed as `listed`: the revision a conflict's
        upload keeps as the earlier one, so the log can name it. Asked just before that upload, only where
        `keeps_revisions()` said None. PreconditionFailed when the name no longer holds `listed`. The default
        is the listed revision (a drive's own revision id) and mtime."""
        return listed.revision or "", listed.mtime

    @abstractmethod
    def check(self) -> None:
        """Reach the service with the credentials (connection test). Raise a ProviderError on failure."""

    @abstractmethod
    def list(self, folder: str) -> Iterator[RemoteEntry]:
        """Every entry below `folder`, recursively, with paths relative to `folder`.

        Raise ContainerNotFound when `folder` (or the bucket) does not exist. Implicit folders of object stores
        (a key "a/b" with no "a/" marker) are reported as folders too.
        """

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        """`list()`, telling `on_skip(path, reason)` about each entry the service holds but the listing leaves
        out (a link, an unreadable folder, a name it cannot carry), so the engine never mistakes an entry it
        was not shown for one that was deleted. Override where a listing can leave something out."""
        return iter(self.list(folder))

    @abstractmethod
    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        """Write the content of file `path` to `out`; return its entry, with the stored mtime where kept.

        The entry's `hash`, where the answer gives one, is what the received bytes are checked against (None:
        check against the listing's); "" says this content has no hash of the provider's kind at all (an S3
        object encrypted with a KMS key, whose ETag is not an MD5), so nothing is checked.
        """

    @abstractmethod
    def upload(
        self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
    ) -> RemoteEntry:
        """Store `src` (read to EOF) as file `path`, replacing any file there, atomically for readers.

        Parent folders are created as needed. Returns the entry exactly as `list()` will report it. With
        `expect`, nothing is replaced unless the name still holds what it says; otherwise `PreconditionFailed`
        (as far as `capabilities.conditional_writes` allows: see `Conditional`).
        """

    @abstractmethod
    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        """Delete file `path`; a file that is already gone is not an error.

        With `expect`, a file that holds another version than expected is kept: `PreconditionFailed`.
        """

    @abstractmethod
    def mkdir(self, path: str) -> RemoteEntry:
        """Create folder `path` (and its parents); an existing folder is not an error."""

    @abstractmethod
    def rmdir(self, path: str) -> None:
        """Remove folder `path` if it is empty (or only its marker); a missing folder is not an error."""

    def clean_interrupted(self, folder: str) -> int:
        """Remove what interrupted uploads left under `folder` (temporary files, unfinished multipart uploads).

        Called by the engine at the start of a pass, while it holds the task's lock, after listing `folder`.
        Returns how many leftovers were removed.
        """
        return 0

    def flush(self) -> None:  # noqa: B027 - optional: most services are durable when an upload returns
        """Make completed uploads durable; the engine calls it before it records a batch of them as synced.

        Services are durable once an upload returns; a provider that writes to a disk of its own flushes it.
        """

    def file_hash(self, path: str) -> str | None:
        """The hash of one file, for providers whose listings do not carry it; None when unknown."""
        return None

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        """Rename file `src` to `dst` on the service (optional: see `Capabilities.server_side_move`).

        `listed` is `src` as the engine listed it: a provider moves only that version where it can tell (and
        uses its size rather than asking again). `dst` is a name the listing did not hold; a provider that can
        tell refuses to replace a file there. Parent folders are created as needed. Returns the moved entry
        exactly as `list()` will report it. Any non-retryable ProviderError means "not moved" (nothing changed
        at `src`): the engine then uploads the file under the new name and deletes the old one.
        """
        raise NotImplementedError(f"{self.kind} has no server-side move")

    def server_time(self) -> float | None:
        """The service's clock (POSIX seconds), read from the `Date` header of one cheap request, for the clock
        skew check of `skysync doctor`; None when there is no clock to compare (a local folder, or an SDK that
        hides the answer's headers). An error answer carries a `Date` too, and a refused signature is exactly when
        the skew matters, so providers read it from failed answers as well. Never raises."""
        return None

    @staticmethod
    def http_date(value: object) -> float | None:
        """An HTTP `Date` header ("Tue, 01 Jul 2025 10:00:00 GMT") as POSIX seconds; None when absent or bad."""
        import datetime as dt
        from email.utils import parsedate_to_datetime

        if not isinstance(value, str) or not value:
            return None
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()  # HTTP dates are GMT

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        """The entries directly inside `folder` (one level, paths relative to `folder`), for browsing.

        Raise ContainerNotFound when `folder` does not exist. The default filters a full listing; a provider
        that can ask for one level (`Capabilities.list_dir`) overrides it.
        """
        for entry in self.list(folder):
            if "/" not in entry.path:
                yield entry

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        """Copy file `src` to `dst` on the service itself (optional: `Capabilities.server_side_copy`).

        Parent folders are created as needed; with `expect` (usually `Expect.absent()`), nothing is replaced
        unless `dst` still holds what it says. Returns the new entry exactly as `list()` will report it.
        """
        raise NotImplementedError(f"{self.kind} has no server-side copy")

    def folder_id(self, folder: str) -> str | None:
        """The service's id of `folder` (for `Change.parent_id`), or None where entries have no ids."""
        return None

    def changes_start(self, folder: str) -> str:
        """A change-feed cursor for "from now on" below `folder` (optional: `Capabilities.changes`).

        The engine takes it *before* a full listing, so nothing that happens during the listing is missed.
        """
        raise NotImplementedError(f"{self.kind} has no change feed")

    def changes(self, folder: str, cursor: str) -> tuple[Iterator[Change], str]:
        """What changed below `folder` since `cursor`: (the changes in the order the service gives them, the
        new cursor). Raise CursorExpired when the service no longer knows `cursor`."""
        raise NotImplementedError(f"{self.kind} has no change feed")

    def export_documents(self) -> None:
        """From now on, list the service's online documents as ordinary files in an exported format, and
        download them by exporting (optional: `Capabilities.document_export`). Only a download-only task asks
        for it: an exported file is never uploaded back."""
        raise NotImplementedError(f"{self.kind} has no online documents to export")

    def wait_changes(self, cursor: str, timeout: float) -> ChangeWait:
        """Block until something changes below the folder of `cursor` (from `changes_start`), or about `timeout`
        seconds pass (the service's own bounds apply, and it may hold the call a little longer), without
        listing anything (optional: `Capabilities.wait_for_changes`). Errors are ProviderErrors, as elsewhere;
        a cursor the service no longer knows is CursorExpired."""
        raise NotImplementedError(f"{self.kind} cannot wait for changes")

    def close(self) -> None:  # noqa: B027 - optional: most providers hold nothing to release
        """Release connections; the provider is not used afterwards."""
