"""What may be synced and under which name: the spec's rules as data, evaluated by small pure functions.

The engine asks one question per path through `PathPolicy.check`; everything else in this package is tables
and the functions that read them, one module per part of the spec:

- general.py   notes 6 and 25: what is never synced, on any service; remote folders that are not listed
- services.py  note 7: what each service refuses (one table, one row per heading of the spec)
- tailchar.py  note 4: names ending in "." or " " get a "._DiskStation_<date>_TailCharacterConflict" suffix
- buckets.py   notes 16 and 22: bucket and container names
- filters.py   Selective Sync and the File Filter (note 9: case-sensitive unless the task says otherwise)
- encoding.py  beyond the spec, opt-in: refused characters stored as full-width look-alikes
- check.py     `skysync policy check`: one line per path

A `check()` verdict is evaluated in this order: the task's own filters, the general rules (on the local name),
then the renames (tail characters, optional encoding) and last the service's rules on the name as it will be
stored remotely, so a rename that makes a name acceptable lets it sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from engine.errors import UsageError
from engine.policy import general, tailchar
from engine.policy.buckets import validate_bucket
from engine.policy.encoding import NameEncoder
from engine.policy.filters import Filters
from engine.policy.services import ServiceRules, file_name_chars, known_kinds, row_reason, rows_for

__all__ = [
    "SYNC",
    "PathPolicy",
    "Verdict",
    "known_kinds",
    "policy_option_help",
    "remote_folder_unlisted",
    "validate_bucket",
]

remote_folder_unlisted = general.remote_folder_unlisted


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Literal["sync", "rename", "skip"]
    reason: str = ""  # for skip and rename: which rule, in words a user understands
    remote_name: str | None = None  # for rename: the full remote path to use instead


SYNC = Verdict("sync")

ENCODE_OPTION = "encode_names"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def policy_option_help(kind: str) -> dict[str, str]:
    """Connection options this package reads for `kind`, with help text for the provider's OptionSpecs."""
    out = {
        ENCODE_OPTION: "true: store characters the service refuses as look-alike full-width characters "
        "instead of skipping such files (beyond the spec; default false)",
    }
    if kind in ("onedrive", "onedrive-business"):
        out["max_file_size_gb"] = "largest file to upload, in GB: 1 to 250 (default 100)"
    if kind == "s3":
        out["preset"] = "aws, hicloud, sfr, megafon or other: which service's naming rules apply (default aws)"
    return out


def _flag(options: Mapping[str, str], key: str) -> bool:
    value = str(options.get(key, "")).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"option '{key}' must be true or false, not '{options.get(key)}'")


def _encoder(rows: tuple[ServiceRules, ...]) -> NameEncoder:
    chars = "".join(general.FORBIDDEN_CHARACTERS) + "".join(r.path_chars + r.name_chars for r in rows)
    prefixes = tuple(p for r in rows for p in r.file_prefixes)
    return NameEncoder(chars, prefixes)


_TAIL = tailchar.TAIL_CHARACTERS
LARGEST_OBJECT = "the service's limit"
TAIL_REASON = "tail-character rule: a name ending in '.' or ' ' gets a suffix on the remote"


def _split(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


class PathPolicy:
    """All rules for one task on one provider.

    Raises UsageError for an unknown provider kind or a connection option value it cannot use.
    `remote_root` (the task's folder on the service) only counts towards the services' path-length limits.
    `max_object_size` is the provider's largest file (its capability), checked like the spec's size limits.
    `own_files` are the task-relative paths of skysync's own files that lie in the task's folders: skipped.
    `rename_clock` dates the tail-character rename of a folder (the local time of the rename); None leaves
    the date as YYYYMMDD-HHMMSS, for answers about a name alone (`skysync policy check`).

    One policy serves one pass. It remembers the remote name of every renamed folder it has made or seen in
    the remote listing (through `local_name`), so a folder and everything inside it keep one name.
    """

    def __init__(
        self,
        provider_kind: str,
        connection_options: Mapping[str, str] | None = None,
        exclude_folders: tuple[str, ...] = (),
        exclude_names: tuple[str, ...] = (),
        exclude_exts: tuple[str, ...] = (),
        max_size: int = 0,
        case_insensitive: bool = False,
        remote_root: str = "",
        rename_clock: Callable[[], float] | None = time.time,
        max_object_size: int | None = None,
        own_files: tuple[str, ...] = (),
    ) -> None:
        options = dict(connection_options or {})
        self.provider_kind = provider_kind
        self.rows = rows_for(provider_kind, options)
        if max_object_size is not None:
            # The provider's largest object (Capabilities.max_file_size), after the spec's own rows so their
            # words win where both apply: a larger file is skipped before its first byte is sent, never failed
            # at the end of a long upload (issue 18).
            self.rows += (ServiceRules(LARGEST_OBJECT, spec="", max_file_size=max_object_size),)
        self.filters = Filters.build(exclude_folders, exclude_names, exclude_exts, max_size, case_insensitive,
                                     own_files)
        self.exclude_folders = self.filters.folders
        self.encoder = _encoder(self.rows) if _flag(options, ENCODE_OPTION) else None
        self._encodable = self.encoder.chars if self.encoder else frozenset()
        self.remote_root = remote_root.strip("/")
        self._rename_clock = rename_clock
        # local folder path -> the remote name of its last component, for folders renamed by the tail rule
        self._folder_names: dict[str, str] = {}

    @property
    def file_name_chars(self) -> int | None:
        """The service's own limit on a file name, in characters (None: only the local disk's 255 bytes)."""
        return file_name_chars(self.rows)

    def is_excluded_folder(self, path: str) -> bool:
        """Selective sync: the folder and everything under it is left alone on both sides."""
        return self.filters.excluded_folder(path) is not None

    def is_own_file(self, path: str) -> bool:
        """One of skysync's own files (its home, its state database) or under one: skipped like an excluded
        folder, and told apart from one."""
        folder = self.filters.excluded_folder(path)
        return folder is not None and folder in self.filters.own

    def remote_folder_unlisted(self, name: str) -> str | None:
        """Note 25: why a remote folder (its own name) is not listed, or None when it is."""
        return general.remote_folder_unlisted(name)

    def check(
        self,
        path: str,
        is_dir: bool,
        size: int | None = None,
        *,
        mtime: float | None = None,
        parent_remote: str | None = None,
    ) -> Verdict:
        """Would this task-relative path sync as is, under another remote name, or not at all?

        `mtime` dates a file's tail-character rename (note 4); a file without it reads YYYYMMDD-HHMMSS.
        A folder checked without an mtime (as the engine checks folders: a folder's mtime changes whenever its
        content does, so it makes a poor name) is dated with the time of its rename, once: the name is
        remembered, as is the one of a renamed folder seen in the remote listing. `parent_remote`, when given,
        is the remote path the engine already uses for the parent folder. Without it, parent folders are
        mapped by the remembered names, or as a folder checked without an mtime, so a folder and its children
        agree. Only the last component of `remote_name` is this entry's own decision.
        """
        parts = _split(path)
        if not parts:
            return SYNC
        why = self.filters.reason(parts, is_dir, size)
        if why:
            return Verdict("skip", why)
        if "" in parts:
            return Verdict("skip", "a folder in the path has no name (such remote folders are not listed)")
        why = general.path_reason(parts, self._encodable)
        if why:
            return Verdict("skip", why)

        renamed: list[str] = []
        if parent_remote is None and self.encoder is None and not any(p.endswith(_TAIL) for p in parts):
            remote_parts = parts  # the common case: nothing to rename
        elif parent_remote is not None:
            remote_parts = [*_split(parent_remote), self._remote(parts[-1], is_dir, mtime, renamed)]
        else:
            last = len(parts) - 1
            remote_parts = [self._folder(parts, i, renamed) for i in range(last)]
            if is_dir and mtime is None:
                remote_parts.append(self._folder(parts, last, renamed))
            else:
                remote_parts.append(self._remote(parts[last], is_dir, mtime, renamed))

        remote_path = "/".join(remote_parts)
        full_len = len(remote_path) + (len(self.remote_root) + 1 if self.remote_root else 0)
        for rules in self.rows:
            why = row_reason(rules, remote_parts, is_dir, size, full_len)
            if why:
                return Verdict("skip", why)
        if remote_parts is parts or remote_path == "/".join(parts):
            return SYNC
        reason = "; ".join(dict.fromkeys(renamed)) or "the parent folder is stored under another name"
        return Verdict("rename", reason, remote_path)

    def _folder(self, parts: list[str], i: int, renamed: list[str]) -> str:
        """The remote name of folder `parts[:i + 1]`: remembered, or made now (and remembered)."""
        name = parts[i]
        if not name.endswith(_TAIL):
            return self._remote(name, True, None, renamed)
        key = "/".join(parts[: i + 1])
        known = self._folder_names.get(key)
        if known is not None:
            self._remote(name, True, None, renamed)  # for the reasons only: the same as when it was named
            return known
        made_at = self._rename_clock() if self._rename_clock is not None else None
        out = self._remote(name, True, None, renamed, made_at=made_at)
        return self._folder_names.setdefault(key, out)

    def _remote(
        self, name: str, is_dir: bool, mtime: float | None, renamed: list[str], made_at: float | None = None
    ) -> str:
        out = tailchar.remote_name(name, mtime) if made_at is None else tailchar.folder_remote_name(name, made_at)
        if out != name:
            renamed.append(TAIL_REASON)
        if self.encoder:
            encoded = self.encoder.encode(out, is_file=not is_dir)
            if encoded != out:
                renamed.append("encode_names: characters the service refuses are stored as look-alikes")
            out = encoded
        return out

    def local_name(self, remote_path: str) -> str:
        """The local path for a remote path (undoes renames such as the tail-character rule)."""
        if tailchar.SUFFIX_END not in remote_path and (self.encoder is None or remote_path.isascii()):
            return remote_path  # the common case: look-alikes and the quote mark are never ASCII
        remote_parts = remote_path.split("/")
        parts = [self.encoder.decode(p) for p in remote_parts] if self.encoder else remote_parts
        local = [tailchar.local_name(p) for p in parts]
        for i, (theirs, ours) in enumerate(zip(parts, local, strict=True)):
            if theirs != ours:  # a renamed folder (or file) seen in the listing: its name is the one to keep
                self._folder_names["/".join(local[: i + 1])] = remote_parts[i]
        return "/".join(local)
