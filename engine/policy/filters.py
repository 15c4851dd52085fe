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

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


def _clean_folder(path: str) -> str:
    return "/".join(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


def _clean_ext(ext: str) -> str:
    return ext.strip().lstrip(".")


@dataclass(frozen=True, slots=True)
class Filters:
    folders: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    exts: tuple[str, ...] = ()
    max_size: int = 0
    case_insensitive: bool = False

    @classmethod
    def build(
        cls,
        folders: Iterable[str] = (),
        names: Iterable[str] = (),
        exts: Iterable[str] = (),
        max_size: int = 0,
        case_insensitive: bool = False,
    ) -> Filters:
        return cls(
            folders=tuple(f for f in (_clean_folder(f) for f in folders) if f),
            names=tuple(n for n in names if n),
            exts=tuple(e for e in (_clean_ext(e) for e in exts) if e),
            max_size=max(0, int(max_size)),
            case_insensitive=case_insensitive,
        )

    def _fold(self, text: str) -> str:
        return text.casefold() if self.case_insensitive else text

    def excluded_folder(self, path: str) -> str | None:
        """The excluded folder that `path` is, or lies under; None when it is not excluded."""
        path = self._fold(_clean_folder(path))
        for folder in self.folders:
            f = self._fold(folder)
            if path == f or path.startswith(f + "/"):
                return folder
        return None

    def reason(self, parts: list[str], is_dir: bool, size: int | None) -> str | None:
        """Why the task's own filters leave this path alone, or None."""
        folder = self.excluded_folder("/".join(parts))
        if folder is not None:
            return f"the folder {folder!r} is excluded from this task (selective sync)"
        for i, name in enumerate(parts):
            folded = self._fold(name)
            for pattern in self.names:
                if fnmatchcase(folded, self._fold(pattern)):
                    what = "file" if i == len(parts) - 1 and not is_dir else "folder"
                    return f"the {what} name {name!r} matches the excluded name {pattern!r}"
        if is_dir or not parts:
            return None
        name = self._fold(parts[-1])
        for ext in self.exts:
            if name.endswith("." + self._fold(ext)):
                return f"the extension .{ext} is excluded from this task"
        if self.max_size and size is not None and size > self.max_size:
            return f"the file is larger than this task's maximum file size ({size:,} > {self.max_size:,} bytes)"
        return None
