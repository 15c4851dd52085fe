"""Whether a name a drive service listed can be one name in a path here (shared by the drives that list items by
name: OneDrive, Box, Yandex Disk, Baidu).

A service hands out names as its users stored them, through other clients and other rules. A name holding `/`
would read as a folder and a file inside it (another item's path, which a later delete or upload would hit); an
empty name, `.` or `..` would name the folder itself or its parent; a leading `/` would be dropped by path joins
and land on a namesake; NUL and backslash names, and text that is not Unicode, cannot be written here as they are.
Such an item is skipped with its reason (the engine then treats it, and everything below it, as not looked at:
never deleted on either side), rather than mapped to some other path.
"""

from __future__ import annotations

from engine.names import is_valid_utf8


def unusable_name(name: object) -> str | None:
    """Why `name` cannot be one path part (None: it can)."""
    if not isinstance(name, str) or not name:
        return "the service listed an item without a name; left as it is"
    if name in (".", ".."):
        return f"the service listed an item named '{name}', which names a folder, not an item; left as it is"
    for char, what in (("/", "a slash"), ("\\", "a backslash"), ("\x00", "a NUL character")):
        if char in name:
            return f"the name holds {what}, which no name here can hold; left as it is"
    if not is_valid_utf8(name):
        return "the name is not valid Unicode; left as it is"
    return None


def shown_path(prefix: str, name: object) -> str:
    """The path a skipped item's log line names: the name as listed, never joined away."""
    return f"{prefix}/{name}" if prefix else str(name)
