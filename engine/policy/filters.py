"""Selective sync and the file filter: the user's own choices for one task (the spec's "Selective Sync").

- Folder tab: excluded folders, as paths relative to the task ("photos/raw"). A folder and everything under
  it is left alone on both sides; excluding it later never deletes it anywhere (the engine's job: a skipped
  path is never treated as missing).
- File Filter tab: excluded file names (globs such as "*.tmp" or "~$*", fnmatch-style on the base name; a
  pattern that matches a folder's name excludes that folder too), excluded extensions ("tmp" or ".tmp", also
  multi-part such as "tar.gz") and a maximum file size in bytes (0 = no limit).
- Note 9: names are compared case-sensitively (the product runs on Linux), unless the task asks for
  case-insensitive matching.

New files and folders are synced by default: anything that no filter names is synced.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase


def _clean_folder(path: str) -> str:
    return "/".join(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


def _clean_ext(ext: str) -> str:
    return ext.strip().lstrip(".")


OWN_REASON = "skysync's own files (its home or its state database) are never synced"


@dataclass(frozen=True, slots=True)
class Filters:
    folders: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    exts: tuple[str, ...] = ()
    max_size: int = 0
    case_insensitive: bool = False
    # skysync's own files inside the task's folders (engine.ownfiles): among `folders`, so they are left alone on
    # both sides as an excluded folder is, with a reason of their own
    own: tuple[str, ...] = ()
    # the same, folded when matching ignores case, and the globs compiled: reason() runs for every entry
    _folders: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _globs: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _exts: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(
        cls,
        folders: Iterable[str] = (),
        names: Iterable[str] = (),
        exts: Iterable[str] = (),
        max_size: int = 0,
        case_insensitive: bool = False,
        own: Iterable[str] = (),
    ) -> Filters:
        fold = str.casefold if case_insensitive else str
        own_ = tuple(f for f in (_clean_folder(f) for f in own) if f)
        folders_ = own_ + tuple(f for f in (_clean_folder(f) for f in folders) if f)
        names_ = tuple(n for n in names if n)
        exts_ = tuple(e for e in (_clean_ext(e) for e in exts) if e)
        globs = re.compile("|".join(fnmatch.translate(fold(n)) for n in names_)) if names_ else None
        return cls(
            folders=folders_,
            names=names_,
            exts=exts_,
            max_size=max(0, int(max_size)),
            case_insensitive=case_insensitive,
            own=own_,
            _folders=tuple(fold(f) for f in folders_),
            _globs=globs,
            _exts=tuple("." + fold(e) for e in exts_),
        )

    def _fold(self, text: str) -> str:
        return text.casefold() if self.case_insensitive else text

    def excluded_folder(self, path: str) -> str | None:
        """The excluded folder that `path` is, or lies under; None when it is not excluded."""
        if not self.folders:
            return None
        path = self._fold(_clean_folder(path))
        for folder, f in zip(self.folders, self._folders, strict=True):
            if path == f or path.startswith(f + "/"):
                return folder
        return None

    def reason(self, parts: list[str], is_dir: bool, size: int | None) -> str | None:
        """Why the task's own filters leave this path alone, or None."""
        folder = self.excluded_folder("/".join(parts))
        if folder is not None and folder in self.own:
            return OWN_REASON
        if folder is not None:
            return f"the folder {folder!r} is excluded from this task (selective sync)"
        if self._globs is not None:
            for i, name in enumerate(parts):
                folded = self._fold(name)
                if self._globs.match(folded):
                    pattern = next(p for p in self.names if fnmatchcase(folded, self._fold(p)))
                    what = "file" if i == len(parts) - 1 and not is_dir else "folder"
                    return f"the {what} name {name!r} matches the excluded name {pattern!r}"
        if is_dir or not parts:
            return None
        if self._exts:
            name = self._fold(parts[-1])
            for ext, suffix in zip(self.exts, self._exts, strict=True):
                if name.endswith(suffix):
                    return f"the extension .{ext} is excluded from this task"
        if self.max_size and size is not None and size > self.max_size:
            return f"the file is larger than this task's maximum file size ({size:,} > {self.max_size:,} bytes)"
        return None
