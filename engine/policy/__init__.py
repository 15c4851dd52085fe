"""What may be synced and under which name: the spec's rules as data, evaluated by small pure functions.

The engine asks one question per path through `PathPolicy.check`; everything else in this package is tables
and the functions that read them. (This file is the interface; the rule tables live beside it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Literal["sync", "rename", "skip"]
    reason: str = ""  # for skip and rename: which rule, in words a user understands
    remote_name: str | None = None  # for rename: the full remote path to use instead


SYNC = Verdict("sync")


class PathPolicy:
    """All rules for one task on one provider."""

    def __init__(
        self,
        provider_kind: str,
        connection_options: Mapping[str, str] | None = None,
        exclude_folders: tuple[str, ...] = (),
        exclude_names: tuple[str, ...] = (),
        exclude_exts: tuple[str, ...] = (),
        max_size: int = 0,
        case_insensitive: bool = False,
    ) -> None:
        self.provider_kind = provider_kind
        self.exclude_folders = tuple(f.strip("/") for f in exclude_folders)

    def is_excluded_folder(self, path: str) -> bool:
        """Selective sync: the folder and everything under it is left alone on both sides."""
        return any(path == f or path.startswith(f + "/") for f in self.exclude_folders)

    def check(self, path: str, is_dir: bool, size: int | None = None) -> Verdict:
        return SYNC

    def local_name(self, remote_path: str) -> str:
        """The local path for a remote path (undoes renames such as the tail-character rule)."""
        return remote_path
