"""Names ending in a period or a space: note 4 of the spec.

"File or folder names that end with a period (.) or a space will be renamed as
 'file name._DiskStation_modified date_TailCharacterConflict'."

Many services (and Windows) drop or refuse a trailing "." or " ", so the remote copy gets a suffix and the
local name never changes. A file's date is its modification time, written YYYYMMDD-HHMMSS in UTC (so that the
name does not depend on the machine's time zone). A folder's modification time changes whenever its content
does, so a folder is dated with the local time of its rename instead (`folder_remote_name`), and the pair is
remembered: by the engine's state for the folder itself, and by `PathPolicy` for everything inside it (made
in this pass, or learned back from the remote listing), so the name never changes in later passes. The
suffix is recognisable on its own, so mapping a remote name back to the local one needs no state.
YYYYMMDD-HHMMSS itself only ever shows in answers about a name alone (`skysync policy check`).
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


def rename_date(when: float | None) -> str:
    """A folder's rename date: the local time it was renamed (`when`, epoch seconds)."""
    if when is None:
        return UNKNOWN_DATE
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(when))


def folder_remote_name(name: str, when: float | None) -> str:
    """The remote name of a folder whose name ends in "." or " ", renamed at `when`; others are unchanged."""
    if not needs_rename(name):
        return name
    return f"{name}{SUFFIX_MARK}{rename_date(when)}{SUFFIX_END}"


def remote_name(name: str, mtime: float | None) -> str:
    """The remote name for a local name ending in "." or " "; any other name is returned unchanged."""
    if not needs_rename(name):
        return name
    return f"{name}{SUFFIX_MARK}{date_text(mtime)}{SUFFIX_END}"


def local_name(name: str) -> str:
    """Undo `remote_name`: strip the suffix from a remote name that carries it; other names are unchanged."""
    match = _RENAMED.fullmatch(name)
    return match.group("name") if match else name
