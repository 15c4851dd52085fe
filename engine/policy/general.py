"""The rules that hold for every service: creating connections, notes 6 and 25 of the spec.

Each table below comes after the spec's own words, so the two can be read side by side. The functions return
the reason a path breaks a rule (a short sentence for the user) or None.

Two lines of note 6 are not here because they are facts about the local disk, not about names: "the folder
or file is located in a mount point or an external storage device" and "the folder or file under a folder is
being mounted using a bind mount". The engine's local scanner detects those (device ids and mount points).
"""

from __future__ import annotations

import unicodedata

# Note 6: "The folder or file path contains NFD characters or the following characters: : \ /"
# "/" separates the components of our paths, so it can only be caught inside a single name (a remote listing
# of a service whose names may contain "/"); within a task-relative path every component is checked.
FORBIDDEN_CHARACTERS = (":", "\\", "/")

# Note 6: "The file name starts with any of the following: ._ ~.SYNOPPSDB"
# "._" is macOS's AppleDouble companion file; "~.SYNOPPSDB" is the product's own database.
# The spec says "file name"; we apply these to folders as well: a folder named "._x" is the same AppleDouble
# debris, and no one names a real folder "~.SYNOPPSDB...".
FORBIDDEN_PREFIXES = ("._", "~.SYNOPPSDB")

# Note 6: "The file/folder name is any of the following: .ds_store, desktop.ini, @eadir, thumbs.db,
# .SynologyWorkingDirectory, #recycle, Icon\r, $Recycle.Bin, @sharebin, @SynologyCloudSync,
# cloudsync_encrypt.info, @ActiveBackup, ActiveBackupData, #snapshot, ActiveBackupForOffice365,
# ActiveBackupForGSuite"
# The spec mixes cases (".ds_store" but "$Recycle.Bin"); real files are named ".DS_Store", "@eaDir",
# "Thumbs.db", so the list is matched case-insensitively. "Icon\r" is the macOS custom-icon file: "Icon"
# followed by a carriage return.
RESERVED_NAMES = (
    ".ds_store",
    "desktop.ini",
    "@eadir",
    "thumbs.db",
    ".SynologyWorkingDirectory",
    "#recycle",
    "Icon\r",
    "$Recycle.Bin",
    "@sharebin",
    "@SynologyCloudSync",
    "cloudsync_encrypt.info",
    "@ActiveBackup",
    "ActiveBackupData",
    "#snapshot",
    "ActiveBackupForOffice365",
    "ActiveBackupForGSuite",
)
_RESERVED_FOLDED = frozenset(n.casefold() for n in RESERVED_NAMES)
_FORBIDDEN_SET = frozenset(FORBIDDEN_CHARACTERS)

# Note 6: "The folder or file in the @tmp folder of the root folder."
# Only the task's top level: "@tmp/x" is skipped, "a/@tmp/x" is synced.
ROOT_ONLY_FOLDERS = ("@tmp",)

# Not in the spec, for safety: "." and ".." are not names but steps in a path; a remote listing that holds
# them (an S3 key "a/../b") must never lead a download outside the task's folder.
NOT_NAMES = (".", "..")

# Note 6: "The folder or file path is longer than 2,048 characters."
MAX_PATH_CHARS = 2048

# Note 6: "The file name is longer than 255 characters." (Applied to folder names too: no local file system
# of the product can hold a longer one.)
MAX_NAME_CHARS = 255
# Not in the spec: Linux file systems (ext4, XFS, btrfs) count those 255 in bytes, and a name of 255 characters
# or fewer can take more bytes in UTF-8 ("é" * 200 is 400): a remote name like that would fail its download on
# every pass, so it is skipped with this reason instead.
MAX_NAME_BYTES = 255


def is_nfd(text: str) -> bool:
    """True when the text holds decomposed (NFD) sequences, such as "e" + U+0301 instead of "é"."""
    return unicodedata.normalize("NFC", text) != text


def name_reason(name: str, encodable: frozenset[str] = frozenset()) -> str | None:
    """Why one file or folder name breaks note 6, or None. `name` is a single component.

    `encodable`: characters that the connection's name encoding will store as look-alikes, so they are no
    reason to skip (see encoding.py).
    """
    if name in NOT_NAMES:
        return f"{name!r} is not a file or folder name"
    if not _FORBIDDEN_SET.isdisjoint(name):
        for ch in FORBIDDEN_CHARACTERS:
            if ch in name and ch not in encodable:
                return f"the name {name!r} contains the character {ch!r}, which is never synced"
    if not name.isascii() and is_nfd(name):
        return f"the name {name!r} contains NFD (decomposed Unicode) characters"
    if name.startswith(FORBIDDEN_PREFIXES):
        prefix = next(p for p in FORBIDDEN_PREFIXES if name.startswith(p))
        return f"names starting with {prefix!r} are never synced"
    if name.casefold() in _RESERVED_FOLDED:
        return f"{name!r} is a system file or folder that is never synced"
    if len(name) > MAX_NAME_CHARS:
        return f"the name is longer than {MAX_NAME_CHARS} characters ({len(name)})"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"the name is longer than a local file system holds: {MAX_NAME_BYTES} bytes in UTF-8 ({size})"
    return None


def path_reason(parts: list[str], encodable: frozenset[str] = frozenset()) -> str | None:
    """Why a task-relative path (split into its components) breaks note 6, or None."""
    if parts and parts[0] in ROOT_ONLY_FOLDERS:
        # the folder itself too: only the product's temporary files ever live there
        return f"the {parts[0]} folder at the root of the task and everything in it are never synced"
    for part in parts:
        reason = name_reason(part, encodable)
        if reason:
            return reason
    length = len("/".join(parts))
    if length > MAX_PATH_CHARS:
        return f"the path is longer than {MAX_PATH_CHARS:,} characters ({length:,})"
    return None


# Note 25: "As a general rule, folders in remote destinations will not be listed by Cloud Sync under the
# following circumstances:
#   • The folder contains the following characters: / \
#   • The folder does not have a folder name.
#   • The folder name ends with a space."
UNLISTED_FOLDER_CHARACTERS = ("/", "\\")


def remote_folder_unlisted(name: str) -> str | None:
    """Why a folder found in a remote listing is not listed (note 25), or None when it is listed.

    The engine calls this on each remote folder's own name; a folder that is not listed is ignored together
    with everything under it, and never deleted.
    """
    if name == "":
        return "the remote folder has no name"
    for ch in UNLISTED_FOLDER_CHARACTERS:
        if ch in name:
            return f"the remote folder name contains {ch!r}"
    if name.endswith(" "):
        return "the remote folder name ends with a space"
    return None
