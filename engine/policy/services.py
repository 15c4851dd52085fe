"""What each cloud service refuses: note 7 of the spec ("In special cases, files will not be synced").

One `ServiceRules` row per heading of note 7, in the spec's order; `spec` holds the spec's words for that
heading verbatim, so a reviewer can tick each bullet against the fields below it. Bullets that are not about a
name or a size (quota, account limits, remote-only document types, shared folders, upload sessions) are listed
in `elsewhere` with the place that handles them.

Sizes: the services count in binary units (S3's "5 TB" is 5 TiB, OSS's "48.8 TB" is 10,000 parts of 5 GiB),
so the spec's GB and TB are read as GiB and TiB. "Exceeds" means strictly greater: a file of exactly the limit
syncs.
Lengths are counted in characters, as the spec writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.errors import UsageError

GB = 1024**3
TB = 1024**4


@dataclass(frozen=True, slots=True)
class ServiceRules:
    service: str  # the spec's heading, as the user reads it in a skip reason
    spec: str  # the spec's bullets for this heading, verbatim
    max_file_size: int | None = None  # "The size of a single file exceeds ..."
    path_chars: str = ""  # "The folder or file path contains the following characters"
    name_chars: str = ""  # "The folder or file name contains the following characters"
    names: tuple[str, ...] = ()  # "The folder or file name is (one of) ..."
    names_casefold: bool = False  # the service compares names without case (SharePoint's "Forms")
    name_contains: tuple[str, ...] = ()  # "The file/folder name is, or contains ..."
    file_prefixes: tuple[str, ...] = ()  # "The file name starts with / begins with ..."
    name_suffixes: tuple[str, ...] = ()  # "The folder or file name ends with ..."
    blank_name: bool = False  # "The file/folder name is blank."
    max_name: int | None = None  # "The folder or file name is longer than N characters."
    max_file_name: int | None = None  # "The file name is longer than N characters."
    max_path: int | None = None  # "The (full) folder or file path is longer than N characters."
    elsewhere: tuple[str, ...] = ()  # bullets handled outside the policy, and where
    # derived: the characters and reserved names as sets, since check() runs for every entry of a pass
    char_set: frozenset[str] = field(init=False, repr=False, compare=False)
    name_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = (n.casefold() for n in self.names) if self.names_casefold else self.names
        object.__setattr__(self, "char_set", frozenset(self.path_chars + self.name_chars))
        object.__setattr__(self, "name_set", frozenset(names))


SERVICES: dict[str, ServiceRules] = {
    "google-drive": ServiceRules(
        "Google Drive",
        spec="""For Google Drive if:
  • The size of a single file exceeds 5 TB.""",
        max_file_size=5 * TB,
    ),
    "baidu": ServiceRules(
        "Baidu Cloud",
        spec="""For Baidu Cloud if:
  • The file name starts with a period (.).
  • The file/folder name is, or contains any of the following: .baohe .cache
  • The folder or file name contains the following characters: * ? \\ " < > |
  • The storage space has reached the 100 GB limit.""",
        file_prefixes=(".",),
        name_contains=(".baohe", ".cache"),
        name_chars='*?\\"<>|',
        elsewhere=("storage space limit: the service's quota error (QuotaExceeded) stops the upload",),
    ),
    "dropbox": ServiceRules(
        "Dropbox",
        spec="""For Dropbox if:
  • The file name starts with any of the following: .dropbox .cache
  • The file/folder name is, or contains .dropbox.
  • The file has been uploaded for more than 48 hours.""",
        file_prefixes=(".dropbox", ".cache"),
        name_contains=(".dropbox",),
        elsewhere=("48-hour upload sessions: the provider restarts an expired upload session",),
    ),
    "box": ServiceRules(
        "Box",
        spec="""For Box if:
  • The size of a single file exceeds your account limit.
  • The type of the file is bookmark.""",
        elsewhere=(
            "account size limit: the provider reads it from the account (Capabilities.max_file_size)",
            "bookmarks (web links) are not files: the provider leaves them out of its listings",
        ),
    ),
    "onedrive": ServiceRules(
        "Microsoft OneDrive",
        spec="""For OneDrive if:
  • The type of the file is a note document.
  • The size of a single file exceeds 250 GB. (Default: 100 GB)
  • The file name begins with a space.
  • The folder is shared by others.
  • The folder or file name contains the following characters: : * ? " < > | \\ /""",
        max_file_size=100 * GB,  # the connection option max_file_size_gb raises it up to 250
        file_prefixes=(" ",),
        name_chars=':*?"<>|\\/',
        elsewhere=(
            "OneNote notebooks are not files: the provider leaves them out of its listings",
            "folders shared by others: the provider lists only the user's own drive",
        ),
    ),
    "onedrive-business": ServiceRules(
        "Microsoft OneDrive for Business",
        spec="""For OneDrive for Business if:
  • The type of the file is a note document.
  • The size of a single file exceeds 250 GB. (Default: 100 GB)
  • The file name begins with a space.
  • The file name is longer than 128 characters.
  • The full file path is longer than 308 characters.
  • The folder or file name contains the following characters: \\ / : * ? "< >|
  • The folder or file name ends with the following: .
  • The folder or file name is one of the following: forms ~
  • The folder or file name contains the following: _vti_""",
        max_file_size=100 * GB,  # the connection option max_file_size_gb raises it up to 250
        file_prefixes=(" ",),
        max_file_name=128,
        max_path=308,
        name_chars='\\/:*?"<>|',
        # Names ending in "." are first renamed by the tail-character rule (note 4), so this only stops a
        # name that still ends in "." after that.
        name_suffixes=(".",),
        names=("forms", "~"),
        names_casefold=True,
        name_contains=("_vti_",),
        elsewhere=("OneNote notebooks are not files: the provider leaves them out of its listings",),
    ),
    "sharepoint": ServiceRules(
        "Microsoft SharePoint Online",
        spec="""For Microsoft SharePoint Online if:
  • The size of a single file exceeds 15 GB.
  • The file name is longer than 128 characters.
  • The full file path is longer than 308 characters.
  • The folder or file name contains the following characters: \\ / : * ? "< >|
  • The folder or file name ends with the following: .
  • The folder or file name is one of the following: forms ~
  • The folder or file name contains the following: _vti_""",
        max_file_size=15 * GB,
        max_file_name=128,
        max_path=308,
        name_chars='\\/:*?"<>|',
        name_suffixes=(".",),
        names=("forms", "~"),
        names_casefold=True,
        name_contains=("_vti_",),
    ),
    "gcs": ServiceRules(
        "Google Cloud Storage",
        spec="""For Google Cloud Storage if:
  • The size of a single file exceeds 5 TB.
  • The folder or file path contains the following characters: * ? # [ ]
  • The file/folder name is blank.
  • The folder or file path is longer than 1,024 characters.""",
        max_file_size=5 * TB,
        path_chars="*?#[]",
        blank_name=True,
        max_path=1024,
    ),
    "swift": ServiceRules(
        "OpenStack Swift",
        spec="""For OpenStack Swift compatible cloud services (IBM SoftLayer, RackSpace, RackSpace UK):
  • The folder or file path is longer than 1,024 characters.
  • The folder or file path contains the following characters: ?""",
        max_path=1024,
        path_chars="?",
    ),
    "amazon-drive": ServiceRules(
        "Amazon Drive",
        spec="""For Amazon Drive if:
  • The size of a single file exceeds 45 GB.""",
        max_file_size=45 * GB,
    ),
    "s3-compatible": ServiceRules(
        "Amazon S3 compatible services",
        spec="""For Amazon S3 compatible cloud services (Amazon S3, Hicloud S3 and SFR Stockage) if:
  • The folder or file path contains the following characters: " < > | { ^ } % ` ] [ ~ #
  • The folder or file name is . or ..""",
        path_chars='"<>|{^}%`][~#',
        names=(".", ".."),
    ),
    "s3-and-sfr": ServiceRules(
        "Amazon S3 and SFR",
        spec="""For Amazon S3 and SFR Storage if:
  • The folder or file path is longer than 1,024 characters.""",
        max_path=1024,
    ),
    "hicloud": ServiceRules(
        "hicloud S3",
        spec="""For hicloud S3 if:
  • The folder or file path is longer than 255 characters.
  • The size of a single file exceeds 1 TB.""",
        max_path=255,
        max_file_size=1 * TB,
    ),
    "amazon-s3": ServiceRules(
        "Amazon S3",
        spec="""For Amazon S3 if:
  • The size of a single file exceeds 5 TB.""",
        max_file_size=5 * TB,
    ),
    "sfr": ServiceRules(
        "SFR",
        spec="""For SFR if:
  • The size of a single file exceeds 3.9 GB.""",
        max_file_size=int(3.9 * GB),
    ),
    "azure": ServiceRules(
        "Microsoft Azure",
        spec="""For Microsoft Azure if:
  • The size of a single file exceeds 4.75 TB.
  • The folder or file name is .synoemptyblob.
  • The full file path is longer than 1,024 characters.
  • The file name is longer than 255 characters.""",
        max_file_size=int(4.75 * TB),
        names=(".synoemptyblob",),
        max_path=1024,
        max_file_name=255,
    ),
    "b2": ServiceRules(
        "Backblaze B2",
        spec="""For Backblaze B2 if:
  • The folder or file name is .bzEmpty.
  • The folder or file name is longer than 250 characters.
  • The folder or file path is longer than 1,024 characters.""",
        names=(".bzEmpty",),
        max_name=250,
        max_path=1024,
    ),
    "oss": ServiceRules(
        "Alibaba Cloud OSS",
        spec="""For Alibaba Cloud OSS if:
  • The folder or file path is longer than 1,023 characters.
  • The size of a single file exceeds 48.8 TB.
  • The folder or file name is . or ..""",
        max_path=1023,
        max_file_size=int(48.8 * TB),
        names=(".", ".."),
    ),
    "megadisk": ServiceRules(
        "MegaFon MegaDisk",
        spec="""For MegaFon MegaDisk if:
  • The folder or file path contains the following characters: * ? " < > |""",
        path_chars='*?"<>|',
    ),
    "cos": ServiceRules(
        "Tencent Cloud COS",
        spec="""For Tencent Cloud COS if:
  • The folder or file path is longer than 797 characters.
  • The size of a single file exceeds 48.8 TB.
  • The folder or file path contains the following character: ? ~
  • The folder or file name is . or ..""",
        max_path=797,
        max_file_size=int(48.8 * TB),
        path_chars="?~",
        names=(".", ".."),
    ),
    "jdcloud": ServiceRules(
        "JD Cloud OSS",
        spec="""For JD Cloud OSS if:
  • The folder or file path is longer than 1,021 characters.
  • The size of a single file exceeds 19 TB.
  • The folder or file path contains the following characters: # % +
  • The folder or file name is . or ..""",
        max_path=1021,
        max_file_size=19 * TB,
        path_chars="#%+",
        names=(".", ".."),
    ),
    # Not in the spec: the `local` kind keeps the "cloud" in a folder on a local file system, which holds
    # names of at most 255 characters (note 6 checks the local name; this checks the stored one, which the
    # tail-character suffix makes longer).
    "local-folder": ServiceRules(
        "Local folder",
        spec="(not in the spec) A file system stores names of at most 255 characters.",
        max_name=255,
    ),
}

# Our provider kinds -> the rows of note 7 that apply. Kinds with no row follow the general rules only.
# (`local` is a folder playing the cloud in tests and demos; its one row is a fact of file systems.)
KIND_ROWS: dict[str, tuple[str, ...]] = {
    "local": ("local-folder",),
    "webdav": (),  # the spec has no special case for WebDAV (nor for Cubby or Yandex behind it)
    "yandex": (),
    "gdrive": ("google-drive",),
    "baidu": ("baidu",),
    "dropbox": ("dropbox",),
    "box": ("box",),
    "onedrive": ("onedrive",),
    "onedrive-business": ("onedrive-business",),
    "sharepoint": ("sharepoint",),
    "gcs": ("gcs",),
    "swift": ("swift",),
    "amazon-drive": ("amazon-drive",),
    "s3": (),  # by preset, below
    "azure": ("azure",),
    "b2": ("b2",),
    "oss": ("oss",),
    "megadisk": ("megadisk",),
    "cos": ("cos",),
    "jdcloud": ("jdcloud",),
}

# The s3 kind's connection option `preset` -> rows. "megafon" and "other" are S3-compatible services the spec
# does not name; they get the family's character rules, which are S3's own advice for keys.
S3_PRESET_ROWS: dict[str, tuple[str, ...]] = {
    "aws": ("s3-compatible", "s3-and-sfr", "amazon-s3"),
    "hicloud": ("s3-compatible", "hicloud"),
    "sfr": ("s3-compatible", "s3-and-sfr", "sfr"),
    "megafon": ("s3-compatible",),
    "other": ("s3-compatible",),
}
DEFAULT_S3_PRESET = "aws"

# OneDrive's "exceeds 250 GB. (Default: 100 GB)": the connection option max_file_size_gb picks the limit.
ONEDRIVE_SIZE_OPTION = "max_file_size_gb"
ONEDRIVE_MAX_GB = 250
ONEDRIVE_KINDS = ("onedrive", "onedrive-business")


def known_kinds() -> list[str]:
    return sorted(KIND_ROWS)


def rows_for(kind: str, options: Mapping[str, str] | None = None) -> tuple[ServiceRules, ...]:
    """The note-7 rows for one connection; raises UsageError for an unknown kind or a bad option value."""
    options = options or {}
    if kind not in KIND_ROWS:
        raise UsageError(f"unknown provider kind '{kind}' (known: {', '.join(known_kinds())})")
    keys = KIND_ROWS[kind]
    if kind == "s3":
        preset = options.get("preset") or DEFAULT_S3_PRESET
        if preset not in S3_PRESET_ROWS:
            raise UsageError(f"unknown s3 preset '{preset}' (known: {', '.join(S3_PRESET_ROWS)})")
        keys = S3_PRESET_ROWS[preset]
    rows = tuple(SERVICES[k] for k in keys)
    if kind in ONEDRIVE_KINDS and options.get(ONEDRIVE_SIZE_OPTION):
        limit = onedrive_limit(options[ONEDRIVE_SIZE_OPTION])
        rows = tuple(dataclasses.replace(r, max_file_size=limit) for r in rows)
    return rows


def file_name_chars(rows: tuple[ServiceRules, ...]) -> int | None:
    """The longest file name, in characters, that every row allows (None: no row limits it): names the engine
    makes itself, such as conflict copies, are cut to fit it rather than be skipped."""
    limits = [n for r in rows for n in (r.max_name, r.max_file_name) if n is not None]
    return min(limits) if limits else None


def onedrive_limit(value: str) -> int:
    try:
        gb = int(value)
    except ValueError:
        gb = 0
    if not 1 <= gb <= ONEDRIVE_MAX_GB:
        raise UsageError(f"{ONEDRIVE_SIZE_OPTION} must be a whole number of GB from 1 to {ONEDRIVE_MAX_GB}")
    return gb * GB


def _human(size: int) -> str:
    for unit, factor in (("TB", TB), ("GB", GB)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size:,} bytes"


def row_reason(rules: ServiceRules, parts: list[str], is_dir: bool, size: int | None, path_len: int) -> str | None:
    """Why one remote path breaks one row of note 7, or None.

    `parts` are the components of the remote path as it will be stored (after renames); `path_len` is the
    length of the full path on the service (the task's remote folder included), for the length limits.
    """
    why = _reason(rules, parts, is_dir, size, path_len)
    return f"{rules.service}: {why}" if why else None


def _reason(rules: ServiceRules, parts: list[str], is_dir: bool, size: int | None, path_len: int) -> str | None:
    chars, names = rules.char_set, rules.name_set
    last = len(parts) - 1
    for i, name in enumerate(parts):
        is_file = i == last and not is_dir
        if not chars.isdisjoint(name):
            for ch in rules.path_chars:
                if ch in name:
                    return f"the path contains the character {ch!r} (in {name!r})"
            for ch in rules.name_chars:
                if ch in name:
                    return f"the name {name!r} contains the character {ch!r}"
        if names and (name.casefold() if rules.names_casefold else name) in names:
            return f"the name {name!r} is reserved"
        for part in rules.name_contains:
            if part in name:
                return f"the name {name!r} is or contains {part!r}"
        if is_file:
            for prefix in rules.file_prefixes:
                if name.startswith(prefix):
                    return (
                        "the file name begins with a space"
                        if prefix == " "
                        else f"the file name starts with {prefix!r}"
                    )
        for suffix in rules.name_suffixes:
            if name.endswith(suffix):
                return f"the name {name!r} ends with {suffix!r}"
        if rules.blank_name and name == "":
            return "a file or folder name is blank"
        if rules.max_name is not None and len(name) > rules.max_name:
            return f"the name is longer than {rules.max_name} characters ({len(name)})"
        if is_file and rules.max_file_name is not None and len(name) > rules.max_file_name:
            return f"the file name is longer than {rules.max_file_name} characters ({len(name)})"
    if rules.max_path is not None and path_len > rules.max_path:
        return f"the path is longer than {rules.max_path:,} characters ({path_len:,})"
    if not is_dir and size is not None and rules.max_file_size is not None and size > rules.max_file_size:
        return f"the file is larger than {_human(rules.max_file_size)} ({size:,} bytes)"
    return None
