"""How many files of the local folder each file-filter rule would exclude (the filter screen's live preview).

The rules mean what the engine's policy means: an extension matches the part after the last dot, a name glob
matches the file name, the maximum size excludes larger files; case-insensitive matching folds both sides.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.errors import UsageError

SCAN_LIMIT = 200_000  # a preview, not an audit: stop walking after this many files
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """'0' (no limit), '1048576', '10M', '1.5 GB' -> bytes (binary units)."""
    match = _SIZE.match(text or "0")
    if not match:
        raise UsageError("maximum size must be a number of bytes, or like 10M or 2 GB (0 = no limit)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def split_list(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,\s]+", text) if p.strip()]


def normalize_exts(items: list[str]) -> list[str]:
    return [i.lstrip("*").lstrip(".") for i in items if i.lstrip("*").lstrip(".")]


@dataclass(frozen=True, slots=True)
class Rules:
    exts: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    max_size: int = 0
    case_insensitive: bool = False


@dataclass(slots=True)
class Preview:
    files: int = 0
    by_rule: dict[str, int] | None = None
    excluded: int = 0
    truncated: bool = False


def _walk(root: str, skip: tuple[str, ...]) -> Iterator[tuple[str, int]]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        dirnames[:] = [d for d in dirnames if (f"{rel}/{d}" if rel else d) not in skip]
        for name in filenames:
            try:
                size = os.stat(os.path.join(dirpath, name), follow_symlinks=False).st_size
            except OSError:
                continue
            yield name, size


def preview(root: str, rules: Rules, skip_folders: tuple[str, ...] = ()) -> Preview:
    fold = str.casefold if rules.case_insensitive else (lambda s: s)
    exts = {fold(e): e for e in rules.exts}
    names = [(fold(g), g) for g in rules.names]
    counts = {f".{e}": 0 for e in rules.exts} | {g: 0 for g in rules.names}
    size_key = f"> {rules.max_size:,} bytes"
    if rules.max_size:
        counts[size_key] = 0
    out = Preview(by_rule=counts)
    for name, size in _walk(root, tuple(f.strip("/") for f in skip_folders)):
        if out.files >= SCAN_LIMIT:
            out.truncated = True
            break
        out.files += 1
        hit = False
        _, dot, ext = name.rpartition(".")
        if dot and fold(ext) in exts:
            counts[f".{exts[fold(ext)]}"] += 1
            hit = True
        for pattern, original in names:
            if fnmatch.fnmatchcase(fold(name), pattern):
                counts[original] += 1
                hit = True
        if rules.max_size and size > rules.max_size:
            counts[size_key] += 1
            hit = True
        out.excluded += hit
    return out
