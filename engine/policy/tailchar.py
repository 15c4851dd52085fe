"""Names ending in a period or a space: note 4 of the spec.

"File or folder names that end with a period (.) or a space will be renamed as
 'file name._DiskStation_modified date_TailCharacterConflict'."

Many services (and Windows) drop or refuse a trailing "." or " ", so the remote copy gets a suffix and the
local name never changes. The modified date is written YYYYMMDD-HHMMSS in UTC (so that the name does not
depend on the machine's time zone). The suffix is recognisable on its own, so mapping a remote name back to
the local one needs no state; the engine's state keeps the pair so that later passes do not rename again
with a newer date.
"""

from __future__ import annotations

import re
import time

TAIL_CHARACTERS = (".", " ")
SUFFIX_MARK = "._DiskStation_"
SUFFIX_END = "_TailCharacterConflict"
# Used only when no modification time is known (e.g. `skysync policy check` on a path that is only a string).
UNKNOWN_DATE = "YYYYMMDD-HHMMSS"

_RENAMED = re.compile(
    r"(?P<name>.*[. ])" + re.escape(SUFFIX_MARK) + r"(?:\d{8}-\d{6}|" + UNKNOWN_DATE + ")" + re.escape(SUFFIX_END),
    re.DOTALL,
)


def needs_rename(name: str) -> bool:
    return name.endswith(TAIL_CHARACTERS)


def date_text(mtime: float | None) -> str:
    if mtime is None:
        return UNKNOWN_DATE
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(mtime))


def remote_name(name: str, mtime: float | None) -> str:
    """The remote name for a local name ending in "." or " "; any other name is returned unchanged."""
    if not needs_rename(name):
        return name
    return f"{name}{SUFFIX_MARK}{date_text(mtime)}{SUFFIX_END}"


def local_name(name: str) -> str:
    """Undo `remote_name`: strip the suffix from a remote name that carries it; other names are unchanged."""
    match = _RENAMED.fullmatch(name)
    return match.group("name") if match else name
