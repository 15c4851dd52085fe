"""Pieces every S3-style object store (s3, jdcloud, oss, cos) needs the same way; not a provider itself.

Keys to folders and files, multipart slicing, mtime metadata text, and the once-a-day cleanup of unfinished
multipart uploads. Providers never import each other; they share this instead. The part-size rule
(`PartLimits`, `part_size_for`) serves every store that uploads in parts, blocks or segments (azure, b2, gcs,
swift too).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from engine.providers.base import Expect, InvalidOption, QuotaExceeded, RemoteEntry, sane_mtime

T = TypeVar("T")
R = TypeVar("R")

MIB = 1 << 20
MAX_PARTS = 10_000  # the most parts one multipart upload may have (S3, OSS and COS alike)
STALE_UPLOAD_AGE = 24 * 3600  # an unfinished upload older than this is a killed pass's, not a running one
CLEANUP_INTERVAL = 24 * 3600  # look for them at most this often per bucket and folder

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


def part_size_mib(options: Mapping[str, str], default: int, low: int, high: int) -> int:
    """The connection's `part_size` option: a whole number of MiB within the service's limits."""
    raw = options.get("part_size") or str(default)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidOption(f"option 'part_size' must be a whole number of MiB, {low}..{high}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class PartLimits:
    """What a service allows for one upload in parts (blocks, segments): the rule below reads only this."""

    max_parts: int | None  # the most parts one upload may have; None: no limit on the count
    max_part: int  # the largest part, in bytes
    max_object: int | None  # the largest object, in bytes (the provider's `max_object_size`); None: no limit
    granule: int = MIB  # part sizes are whole multiples of this (whole MiB, as the options are given)


def part_size_for(size: int, configured: int, limits: PartLimits) -> int:
    """The part size for one file of `size` bytes: the configured size, or the smallest larger whole number
    of granules that keeps the upload within the service's part count (issue 18: 16 MiB parts stopped an S3
    upload above ~156 GiB at part 10,001, after sending everything before it).

    Never above the service's largest part: a file so large that even those parts are too many is bigger
    than the service's largest object, which the engine refuses before the first byte (`max_object_size`),
    and `parts` refuses should one get here anyway. A size below 0 (not known before the upload: a stream
    encrypted on the way) is handled by `part_schedule`.
    """
    if limits.max_parts is None or size <= 0:
        return configured
    needed = -(-size // limits.max_parts)
    needed = -(-needed // limits.granule) * limits.granule
    return min(max(configured, needed), max(limits.max_part, configured))


def refuse_too_large(size: int, max_object: int | None, what: str) -> None:
    """Before the first byte: a file larger than the service's largest object would fail at its end (the part
    past the count, or the completion). The engine skips such files already; this guards direct callers."""
    if max_object is not None and size > max_object:
        raise QuotaExceeded(f"{what}: {size:,} bytes is larger than the {max_object:,} bytes the service stores "
                            "in one object")


# For a stream of unknown length (a file encrypted on the way) the parts grow: the part size doubles after every
# twentieth of the allowed count, so memory stays at the configured size for ordinary files while the count
# reaches far: from S3's smallest part (5 MiB) past S3's 5 TiB, from the default 16 MiB past 30 TiB (OSS and
# COS store 48.8 TiB only in 10,000 parts of 5 GiB, which no schedule that starts small reaches). S3, OSS, COS
# and Azure take parts of different sizes; only the last may be smaller than the minimum.
GROWTH_STEPS = 20


def part_schedule(size: int, configured: int, limits: PartLimits) -> Callable[[int], int]:
    """The size of part number n (from 1) of one upload: `part_size_for` for a known size, growing for an
    unknown one (size < 0)."""
    if size >= 0 or limits.max_parts is None:
        chosen = part_size_for(size, configured, limits)
        return lambda _number: chosen
    step = max(1, limits.max_parts // GROWTH_STEPS)
    top = max(limits.max_part, configured)
    return lambda number: min(top, configured << min((number - 1) // step, 62))


def archive_class_refused(value: str, allowed: tuple[str, ...]) -> InvalidOption:
    """Spec notes 23-24: files in archive storage cannot be read back at once, so they cannot be synced."""
    return InvalidOption(
        f"storage class {value} is not supported: files in archive storage cannot be synced"
        f" (use one of {', '.join(allowed)})"
    )


def unknown_class(allowed: tuple[str, ...]) -> InvalidOption:
    return InvalidOption(f"option 'storage_class' must be one of: {', '.join(allowed)}")


def etag_md5(etag: str) -> str | None:
    """The MD5 an ETag stands for: single-part uploads only ("abc...-3" multipart ETags have none)."""
    etag = etag.strip('"').lower()
    return etag if _MD5_ETAG.match(etag) else None


MARKER_WITH_DATA = (
    "a folder marker object that holds data ({size} bytes); it is left as it is, with everything in the "
    "folder, until it is emptied or renamed in the cloud"
)


def walk_keys(
    keys: Iterator[tuple[str, Any]],
    prefix: str,
    size_of: Callable[[Any], int] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[str, bool, Any]]:
    """Turn (key, listing item) pairs under `prefix` into (relative path, is_dir, item), once per path.

    Folder markers "x/" become folder "x"; folders implied by deeper keys are reported the first time a key
    runs through them (with item None). Empty path segments ("/abs", "a//b") are left to the engine's
    path checks, except that no empty folder name is ever synthesised. A marker that holds data (another
    tool's, not ours) is not a folder to sync nor to delete: it goes to `on_skip` with its subtree.
    """
    seen_dirs: set[str] = set()
    for key, item in keys:
        rel = key[len(prefix) :]
        if not rel:
            continue  # the listed folder's own marker
        is_marker = rel.endswith("/")
        path = rel[:-1] if is_marker else rel
        if is_marker and size_of is not None and on_skip is not None and path and size_of(item) > 0:
            on_skip(path, MARKER_WITH_DATA.format(size=size_of(item)))
            seen_dirs.add(path)
            continue
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parts[i - 1] and parent not in seen_dirs:
                seen_dirs.add(parent)
                yield parent, True, None
        if is_marker:
            if path and path not in seen_dirs:
                seen_dirs.add(path)
                yield path, True, item
        else:
            yield path, False, item


def one_level(files: Iterable[tuple[str, Any]], folders: Iterable[str], prefix: str) -> Iterator[tuple[str, bool, Any]]:
    """A delimiter listing of `prefix` as (name, is_dir, item): folders first, then files, each name once.

    `files` are the (key, item) pairs the service listed right under `prefix` ("Contents"), `folders` the
    common prefixes ("prefix/x/"). The folder's own marker is not an entry, and an empty name ("prefix//") is
    left out, as the full listing never synthesises one. A key "x" beside a folder "x/" is reported as the
    folder: browsing shows where the subtree is, and the sync itself skips such a name from the full listing.
    """
    dirs: list[str] = []
    for common in folders:
        name = common[len(prefix) :].rstrip("/")
        if name and "/" not in name and name not in dirs:
            dirs.append(name)
    for name in dirs:
        yield name, True, None
    taken = set(dirs)
    for key, item in files:
        name = key[len(prefix) :]
        if name and "/" not in name and name not in taken:
            taken.add(name)
            yield name, False, item


def read_full(src: BinaryIO, n: int) -> bytes:
    """Up to `n` bytes, fewer only at EOF (a raw stream may return short reads)."""
    chunks: list[bytes] = []
    while n > 0:
        chunk = src.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def parts(
    src: BinaryIO, first: bytes, part_size: int | Callable[[int], int], what: str, max_parts: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """(part number, body) of a multipart upload, starting with `first` (already read) and reading ahead one
    byte so the last part is known to be last. `part_size` is one size or the size of part n (`part_schedule`).
    Refuses more than `max_parts` (default MAX_PARTS, read when called so a test can lower it) before sending
    the part past the limit: a file that grew while it was read."""
    limit = MAX_PARTS if max_parts is None else max_parts
    size_of = part_size if callable(part_size) else (lambda _number: part_size)
    pending = first
    number = 0
    while True:
        size = size_of(number + 1)
        if len(pending) <= size:
            pending += read_full(src, size - len(pending) + 1)
        if not pending:
            return
        body, pending = pending[:size], pending[size:]
        number += 1
        if number > limit:
            raise QuotaExceeded(f"{what}: more than {limit} parts (the file grew while it was sent?)")
        yield number, body


def multipart(
    src: BinaryIO,
    first: bytes,
    part_size: int | Callable[[int], int],
    what: str,
    upload_part: Callable[[int, bytes], T],
    complete: Callable[[list[T]], R],
    abort: Callable[[], object],
    max_parts: int | None = None,
) -> tuple[R, int]:
    """Send every part in order, then complete the upload: (what `complete` returned, bytes sent).

    On any failure (or a cancel) the upload is aborted, best effort, so the service does not bill its parts,
    and the original error is raised.
    """
    done: list[T] = []
    total = 0
    try:
        for number, body in parts(src, first, part_size, what, max_parts):
            done.append(upload_part(number, body))
            total += len(body)
        return complete(done), total
    except BaseException:
        with contextlib.suppress(Exception):  # the upload failed already: that is the error worth reporting
            abort()
        raise


def format_mtime(mtime: float) -> str:
    """The mtime as kept in object metadata: seconds with up to microseconds, no trailing zeros."""
    return f"{mtime:.6f}".rstrip("0").rstrip(".")


def parse_mtime(value: str | None) -> float | None:
    return sane_mtime(value) if value else None


class CleanupGate:
    """Lets an unfinished-upload cleanup run once per CLEANUP_INTERVAL per (service, bucket, folder)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[tuple[str, ...], float] = {}

    def due(self, *key: str) -> bool:
        now = time.time()
        with self._lock:
            if now - self._last.get(key, 0.0) < CLEANUP_INTERVAL:
                return False
            self._last[key] = now
            return True


def still_there_as_expected(
    expect: Expect | None, head: Callable[[], RemoteEntry | None], what: str
) -> bool:
    """Before a delete these services cannot make conditional: re-read the object. False when it is gone
    already (nothing to do); raises PreconditionFailed when another client changed it since the listing. The
    window left is the one round trip between this read and the delete."""
    if expect is None:
        return True
    found = head()
    if found is None:
        return False
    if not expect.met_by(found):
        raise expect.failed(what)
    return True
