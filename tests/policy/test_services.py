"""Note 7 ("In special cases, files will not be synced"), service by service, from the spec's words.

For every rule of every service: a name (or size) that passes and one that fails. Sizes: the spec writes GB and
TB; the services mean GiB and TiB, so a file of exactly the binary limit syncs and one byte more is skipped
(and a file of the decimal size, which both readings allow, syncs).
"""

from __future__ import annotations

import pytest

from engine.errors import UsageError
from engine.policy import PathPolicy
from engine.policy.services import SERVICES, row_reason

from .helpers import action, verdict

GiB = 1024**3
TiB = 1024**4

F, D = False, True  # is_dir

# (kind, options, path, is_dir, size, expected)
CASES: list[tuple[str, dict[str, str], str, bool, int | None, str]] = []


def case(kind: str, path: str, is_dir: bool, size: int | None, expected: str, **options: str) -> None:
    CASES.append((kind, options, path, is_dir, size, expected))


def size_limit(kind: str, limit: int, decimal: int, **options: str) -> None:
    """'The size of a single file exceeds <limit>.'"""
    case(kind, "big.bin", F, decimal, "sync", **options)
    case(kind, "big.bin", F, limit, "sync", **options)
    case(kind, "big.bin", F, limit + 1, "skip", **options)
    case(kind, "big", D, limit + 1, "sync", **options)  # a folder has no size of its own


def path_limit(kind: str, limit: int, **options: str) -> None:
    """'The folder or file path is longer than <limit> characters.' (components short enough for any rule)"""
    head = "/".join(["p" * 99] * (limit // 100))
    ok = head + "/" + "f" * (limit - len(head) - 1)
    assert len(ok) == limit
    case(kind, ok, F, 1, "sync", **options)
    case(kind, ok + "x", F, 1, "skip", **options)


def chars(kind: str, forbidden: str, **options: str) -> None:
    """'... contains the following characters: ...' -- each in a file name and in a folder name."""
    for ch in forbidden:
        case(kind, f"a{ch}b.txt", F, 1, "skip", **options)
        case(kind, f"a{ch}b/c.txt", F, 1, "skip", **options)
    case(kind, "a-b.txt", F, 1, "sync", **options)


# For Google Drive if: • The size of a single file exceeds 5 TB.
size_limit("gdrive", 5 * TiB, 5 * 10**12)
case("gdrive", "a#b?c*.txt", F, 1, "sync")  # no character rule for Google Drive

# For Baidu Cloud if:
# • The file name starts with a period (.).
case("baidu", ".hidden", F, 1, "skip")
case("baidu", "sub/.hidden", F, 1, "skip")
case("baidu", "visible.txt", F, 1, "sync")
case("baidu", ".config", D, None, "sync")  # the rule speaks of file names
# • The file/folder name is, or contains any of the following: .baohe .cache
case("baidu", ".baohe", D, None, "skip")
case("baidu", "x.baohe", F, 1, "skip")
case("baidu", "a.baohe.b/c.txt", F, 1, "skip")
case("baidu", "baohe.txt", F, 1, "sync")
case("baidu", ".cache", D, None, "skip")
case("baidu", "app.cache", F, 1, "skip")
case("baidu", "cache/x.txt", F, 1, "sync")
# • The folder or file name contains the following characters: * ? \ " < > |
chars("baidu", '*?\\"<>|')

# For Dropbox if:
# • The file name starts with any of the following: .dropbox .cache
case("dropbox", ".dropboxrc", F, 1, "skip")
case("dropbox", ".cache-file", F, 1, "skip")
case("dropbox", ".cache-dir", D, None, "sync")  # "file name"
case("dropbox", ".bashrc", F, 1, "sync")
case("dropbox", "x.cache", F, 1, "sync")
# • The file/folder name is, or contains .dropbox.
case("dropbox", ".dropbox", D, None, "skip")
case("dropbox", "x.dropbox", F, 1, "skip")
case("dropbox", "a.dropbox.b/c.txt", F, 1, "skip")
case("dropbox", "dropbox.txt", F, 1, "sync")

# For Box if: the account limit and bookmarks are not name rules; any name that the general rules allow syncs.
case("box", "a#b?c*.txt", F, 1, "sync")
case("box", "huge.bin", F, 100 * TiB, "sync")

# For OneDrive (and OneDrive for Business) if:
for od in ("onedrive", "onedrive-business"):
    # • The size of a single file exceeds 250 GB. (Default: 100 GB)
    size_limit(od, 100 * GiB, 100 * 10**9)
    size_limit(od, 250 * GiB, 250 * 10**9, max_file_size_gb="250")
    size_limit(od, 120 * GiB, 120 * 10**9, max_file_size_gb="120")
    # • The file name begins with a space.
    case(od, " notes.txt", F, 1, "skip")
    case(od, "notes .txt", F, 1, "sync")
    # • The folder or file name contains the following characters: : * ? " < > | \ /
    chars(od, ':*?"<>|\\')

# For OneDrive for Business and Microsoft SharePoint Online if:
for ms in ("onedrive-business", "sharepoint"):
    # • The file name is longer than 128 characters.
    case(ms, "n" * 124 + ".txt", F, 1, "sync")
    case(ms, "n" * 125 + ".txt", F, 1, "skip")
    # • The full file path is longer than 308 characters.
    path_limit(ms, 308)
    # • The folder or file name ends with the following: .
    #   (the tail-character rule renames such names first, so they are renamed, never synced as is)
    case(ms, "report.", F, 1, "rename")
    case(ms, "folder.", D, None, "rename")
    case(ms, "report.txt", F, 1, "sync")
    # • The folder or file name is one of the following: forms ~
    case(ms, "forms", D, None, "skip")
    case(ms, "Forms", D, None, "skip")
    case(ms, "forms/x.txt", F, 1, "skip")
    case(ms, "form", D, None, "sync")
    case(ms, "forms.txt", F, 1, "sync")
    case(ms, "~", F, 1, "skip")
    case(ms, "~x", F, 1, "sync")
    # • The folder or file name contains the following: _vti_
    case(ms, "a_vti_b.txt", F, 1, "skip")
    case(ms, "_vti_cnf/x.txt", F, 1, "skip")
    case(ms, "a_vti.txt", F, 1, "sync")
    # • The folder or file name contains the following characters: \ / : * ? "< >|
    chars(ms, '\\:*?"<>|')

# For Microsoft SharePoint Online if: • The size of a single file exceeds 15 GB.
size_limit("sharepoint", 15 * GiB, 15 * 10**9)
case("sharepoint", " lead.txt", F, 1, "sync")  # no leading-space rule for SharePoint

# For Google Cloud Storage if:
# • The size of a single file exceeds 5 TB.
size_limit("gcs", 5 * TiB, 5 * 10**12)
# • The folder or file path contains the following characters: * ? # [ ]
chars("gcs", "*?#[]")
# • The file/folder name is blank.
case("gcs", "a//b.txt", F, 1, "skip")
case("gcs", "a/b.txt", F, 1, "sync")
# • The folder or file path is longer than 1,024 characters.
path_limit("gcs", 1024)

# For OpenStack Swift compatible cloud services:
# • The folder or file path is longer than 1,024 characters.
path_limit("swift", 1024)
# • The folder or file path contains the following characters: ?
chars("swift", "?")
case("swift", "a#b*.txt", F, 1, "sync")

# For Amazon Drive if: • The size of a single file exceeds 45 GB.
size_limit("amazon-drive", 45 * GiB, 45 * 10**9)

# For Amazon S3 compatible cloud services (Amazon S3, Hicloud S3 and SFR Stockage) if:
for preset in ("aws", "hicloud", "sfr"):
    # • The folder or file path contains the following characters: " < > | { ^ } % ` ] [ ~ #
    chars("s3", '"<>|{^}%`][~#', preset=preset)
    case("s3", "a*b?.txt", F, 1, "sync", preset=preset)
    # • The folder or file name is . or ..
    case("s3", "a/./b", F, 1, "skip", preset=preset)
    case("s3", "a/../b", F, 1, "skip", preset=preset)
    case("s3", "a/.../b", F, 1, "rename", preset=preset)  # "..." is a name; it ends with "."
    case("s3", "a/.b", F, 1, "sync", preset=preset)

# For Amazon S3 and SFR Storage if: • The folder or file path is longer than 1,024 characters.
path_limit("s3", 1024, preset="aws")
path_limit("s3", 1024, preset="sfr")
# For hicloud S3 if: • The folder or file path is longer than 255 characters. • ... exceeds 1 TB.
path_limit("s3", 255, preset="hicloud")
size_limit("s3", 1 * TiB, 10**12, preset="hicloud")
# For Amazon S3 if: • The size of a single file exceeds 5 TB.
size_limit("s3", 5 * TiB, 5 * 10**12, preset="aws")
# For SFR if: • The size of a single file exceeds 3.9 GB.
case("s3", "big.bin", F, 3_900_000_000, "sync", preset="sfr")
case("s3", "big.bin", F, int(3.9 * GiB), "sync", preset="sfr")
case("s3", "big.bin", F, int(3.9 * GiB) + 1, "skip", preset="sfr")
case("s3", "big.bin", F, 4 * GiB, "skip", preset="sfr")
# S3-compatible services the spec does not name: the family's characters, no length or size limit
chars("s3", '"<>|{^}%`][~#', preset="other")
case("s3", "big.bin", F, 100 * TiB, "sync", preset="other")

# For Microsoft Azure if:
# • The size of a single file exceeds 4.75 TB.
case("azure", "big.bin", F, int(4.75 * 10**12), "sync")
case("azure", "big.bin", F, int(4.75 * TiB), "sync")
case("azure", "big.bin", F, int(4.75 * TiB) + 1, "skip")
# • The folder or file name is .synoemptyblob.
case("azure", ".synoemptyblob", F, 0, "skip")
case("azure", "a/.synoemptyblob/b", F, 0, "skip")
case("azure", ".synoemptyblob.txt", F, 0, "sync")
# • The full file path is longer than 1,024 characters.
path_limit("azure", 1024)
# • The file name is longer than 255 characters.  (A 250-character name ending in "." gets the tail-character
#   suffix, which makes it too long for Azure, though the local name is fine.)
case("azure", "n" * 255, F, 1, "sync")
case("azure", "n" * 249 + ".", F, 1, "skip")
case("webdav", "n" * 249 + ".", F, 1, "rename")
case("local", "n" * 200 + ".", F, 1, "rename")  # a folder playing the cloud: 255 characters a stored name
case("local", "n" * 249 + ".", F, 1, "skip")

# For Backblaze B2 if:
# • The folder or file name is .bzEmpty.
case("b2", ".bzEmpty", F, 0, "skip")
case("b2", "a/.bzEmpty", F, 0, "skip")
case("b2", ".bzEmpty2", F, 0, "sync")
# • The folder or file name is longer than 250 characters.
case("b2", "n" * 250, F, 1, "sync")
case("b2", "n" * 251, F, 1, "skip")
case("b2", "d" * 250 + "/x", F, 1, "sync")
case("b2", "d" * 251 + "/x", F, 1, "skip")
# • The folder or file path is longer than 1,024 characters.
path_limit("b2", 1024)

# For Alibaba Cloud OSS if:
# • The folder or file path is longer than 1,023 characters.
path_limit("oss", 1023)
# • The size of a single file exceeds 48.8 TB.
case("oss", "big.bin", F, int(48.8 * 10**12), "sync")
case("oss", "big.bin", F, int(48.8 * TiB), "sync")
case("oss", "big.bin", F, 49 * TiB, "skip")
# • The folder or file name is . or ..
case("oss", "a/../b", F, 1, "skip")
case("oss", "a/..b", F, 1, "sync")

# For MegaFon MegaDisk if: • The folder or file path contains the following characters: * ? " < > |
chars("megadisk", '*?"<>|')
case("megadisk", "a#b%.txt", F, 1, "sync")

# For Tencent Cloud COS if:
# • The folder or file path is longer than 797 characters.
path_limit("cos", 797)
# • The size of a single file exceeds 48.8 TB.
case("cos", "big.bin", F, int(48.8 * TiB), "sync")
case("cos", "big.bin", F, 49 * TiB, "skip")
# • The folder or file path contains the following character: ? ~
chars("cos", "?~")
case("cos", "a#b.txt", F, 1, "sync")
# • The folder or file name is . or ..
case("cos", "a/./b", F, 1, "skip")

# For JD Cloud OSS if:
# • The folder or file path is longer than 1,021 characters.
path_limit("jdcloud", 1021)
# • The size of a single file exceeds 19 TB.
size_limit("jdcloud", 19 * TiB, 19 * 10**12)
# • The folder or file path contains the following characters: # % +
chars("jdcloud", "#%+")
case("jdcloud", "a~b?.txt", F, 1, "sync")
# • The folder or file name is . or ..
case("jdcloud", "a/../b", F, 1, "skip")

# Services the spec gives no special case: only the general rules.
for plain in ("local", "webdav"):
    case(plain, 'a#b?c*d<e>f|g"h~i%j+k[l]m{n}o^p`q.txt', F, 1, "sync")
    case(plain, "big.bin", F, 100 * TiB, "sync")
    path_limit(plain, 2048)


def _id(c: tuple[str, dict[str, str], str, bool, int | None, str]) -> str:
    kind, options, path, is_dir, size, expected = c
    preset = options.get("preset") or options.get("max_file_size_gb") or ""
    return f"{kind}{'-' + preset if preset else ''}-{path[:24]!r}{'/' if is_dir else ''}-{size}-{expected}"


@pytest.mark.parametrize("c", CASES, ids=[_id(c) for c in CASES])
def test_service_rule(c: tuple[str, dict[str, str], str, bool, int | None, str]) -> None:
    kind, options, path, is_dir, size, expected = c
    got = verdict(kind, path, is_dir, size, options, mtime=0.0)
    assert got.action == expected, got.reason


def test_every_service_of_the_spec_has_cases() -> None:
    kinds = {kind for kind, *_ in CASES}
    presets = {o.get("preset") for kind, o, *_ in CASES if kind == "s3"}
    assert kinds >= {
        "gdrive", "baidu", "dropbox", "box", "onedrive", "onedrive-business", "sharepoint", "gcs", "swift",
        "amazon-drive", "s3", "azure", "b2", "oss", "megadisk", "cos", "jdcloud",
    }  # fmt: skip
    assert presets >= {"aws", "hicloud", "sfr"}


def test_skip_reason_names_the_service_and_the_rule() -> None:
    why = verdict("onedrive", "a*b.txt", False, 1).reason
    assert why.startswith("Microsoft OneDrive:") and "'*'" in why
    why = verdict("s3", "d" * 200 + "/" + "x" * 100, False, 1, {"preset": "hicloud"}).reason
    assert why.startswith("hicloud S3:") and "255" in why
    why = verdict("gdrive", "big", False, 6 * TiB).reason
    assert why.startswith("Google Drive:") and "5 TB" in why
    why = verdict("sharepoint", "forms", True).reason
    assert "'forms'" in why


def test_a_name_with_a_slash_from_a_remote_listing() -> None:
    # OneDrive: "The folder or file name contains the following characters: ... \ /" -- a "/" can only be met
    # inside one name of a remote listing, never in a task-relative path
    assert row_reason(SERVICES["onedrive"], ["a/b.txt"], False, 1, 7) is not None
    assert row_reason(SERVICES["onedrive"], ["ab.txt"], False, 1, 6) is None


def test_remote_root_counts_towards_the_path_limit() -> None:
    # hicloud: 255 characters for the whole key, the task's folder on the bucket included
    rel = "f" * 240
    assert PathPolicy("s3", {"preset": "hicloud"}).check(rel, False, 1).action == "sync"
    within = PathPolicy("s3", {"preset": "hicloud"}, remote_root="/backup/nas/")  # "backup/nas/" + 240 = 251
    assert within.check(rel, False, 1).action == "sync"
    beyond = PathPolicy("s3", {"preset": "hicloud"}, remote_root="backup/nas/photos")
    assert beyond.check(rel, False, 1).action == "skip"


def test_size_unknown_is_not_a_reason_to_skip() -> None:
    assert action("gdrive", "big.bin", False, None) == "sync"


@pytest.mark.parametrize("value", ["0", "251", "lots", "-5"])
def test_onedrive_size_option_is_checked(value: str) -> None:
    with pytest.raises(UsageError, match="max_file_size_gb"):
        PathPolicy("onedrive", {"max_file_size_gb": value})


def test_unknown_kind_and_preset_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown provider kind 'ftp'"):
        PathPolicy("ftp")
    with pytest.raises(UsageError, match="unknown s3 preset 'wasabi'"):
        PathPolicy("s3", {"preset": "wasabi"})


def test_s3_without_preset_follows_amazon_s3() -> None:
    why = verdict("s3", "/".join(["d" * 200] * 5) + "/" + "f" * 20, False, 1).reason  # 1,025 characters
    assert why.startswith("Amazon S3 and SFR:")
    assert action("s3", "big", False, 5 * TiB + 1) == "skip"
