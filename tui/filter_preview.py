"""How many files of the local folder each file-filter rule would exclude (the filter screen's live preview).

Counting goes through the engine's own filter, so the preview means exactly what a pass will do: an extension
is a suffix ("tar.gz" too), a name glob matches any name on the path, larger files than the maximum are left.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.errors import UsageError
from engine.policy.filters import Filters

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


def _walk(root: str, skip: tuple[str, ...]) -> Iterator[tuple[list[str], int]]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == "." else rel.split(os.sep)
        dirnames[:] = [d for d in dirnames if "/".join([*parts, d]) not in skip]
        for name in filenames:
            try:
                size = os.stat(os.path.join(dirpath, name), follow_symlinks=False).st_size
            except OSError:
                continue
            yield [*parts, name], size


def preview(root: str, rules: Rules, skip_folders: tuple[str, ...] = ()) -> Preview:
    """Count with the engine's own filter (engine.policy.filters), one rule at a time and all together."""
    ci = rules.case_insensitive
    single: dict[str, Filters] = {f".{e}": Filters.build(exts=[e], case_insensitive=ci) for e in rules.exts}
    single |= {g: Filters.build(names=[g], case_insensitive=ci) for g in rules.names}
    if rules.max_size:
        single[f"> {rules.max_size:,} bytes"] = Filters.build(max_size=rules.max_size)
    together = Filters.build(names=rules.names, exts=rules.exts, max_size=rules.max_size, case_insensitive=ci)
    out = Preview(by_rule=dict.fromkeys(single, 0))
    counts = out.by_rule
    assert counts is not None
    for parts, size in _walk(root, tuple(f.strip("/") for f in skip_folders)):
        if out.files >= SCAN_LIMIT:
            out.truncated = True
            break
        out.files += 1
        for rule, one in single.items():
            if one.reason(parts, False, size) is not None:
                counts[rule] += 1
        if together.reason(parts, False, size) is not None:
            out.excluded += 1
    return out
