"""Note 6 (files never synced, whatever the service) and note 25 (remote folders not listed), from the spec's words.

Each general rule is checked on every provider kind: a name that passes and a name that fails.
"""

from __future__ import annotations

import unicodedata

import pytest

from engine.policy import PathPolicy, remote_folder_unlisted

from .helpers import ALL_CONNECTIONS

IDS = [f"{k}-{o.get('preset', '')}".rstrip("-") for k, o in ALL_CONNECTIONS]

NFD_NAME = unicodedata.normalize("NFD", "café.txt")
NFC_NAME = unicodedata.normalize("NFC", "café.txt")
PATH_2048 = "/".join(["d" * 200] * 10) + "/" + "f" * 38  # 10 * 201 + 38 characters
PATH_2049 = PATH_2048 + "f"

# (path, is_dir, expected) -- written from the bullets of note 6.
GENERAL_CASES = [
    # "The folder or file path contains NFD characters"
    (NFD_NAME, False, "skip"),
    (unicodedata.normalize("NFD", "café") + "/x.txt", False, "skip"),
    (NFC_NAME, False, "sync"),
    # "or the following characters: : \ /"
    ("a:b.txt", False, "skip"),
    ("dir:x/file.txt", False, "skip"),
    ("a\\b.txt", False, "skip"),
    ("ab.txt", False, "sync"),
    # "The file name starts with any of the following: ._ ~.SYNOPPSDB"
    ("._photo.jpg", False, "skip"),
    ("a/._photo.jpg", False, "skip"),
    ("_.photo.jpg", False, "sync"),
    ("x._photo.jpg", False, "sync"),
    ("~.SYNOPPSDB", False, "skip"),
    ("~.SYNOPPSDB-wal", False, "skip"),
    ("~SYNOPPSDB", False, "sync"),
    # "The file/folder name is any of the following: .ds_store, desktop.ini, @eadir, thumbs.db, ..."
    # matched as users' real files are named
    (".DS_Store", False, "skip"),
    ("sub/.DS_Store", False, "skip"),
    (".ds_store", False, "skip"),
    ("DS_Store", False, "sync"),
    (".DS_Store.txt", False, "sync"),
    ("desktop.ini", False, "skip"),
    ("Desktop.ini", False, "skip"),
    ("desktop.ini.bak", False, "sync"),
    ("@eaDir", True, "skip"),
    ("@eaDir/photo.jpg@SYNOFILE_THUMB_M.jpg", False, "skip"),
    ("a/@eaDir/b/c.jpg", False, "skip"),
    ("eaDir", True, "sync"),
    ("Thumbs.db", False, "skip"),
    ("Thumbs.db.old", False, "sync"),
    (".SynologyWorkingDirectory", True, "skip"),
    ("#recycle", True, "skip"),
    ("#recycle/old.txt", False, "skip"),
    ("recycle", True, "sync"),
    ("Icon\r", False, "skip"),
    ("Icon", False, "sync"),
    ("$Recycle.Bin", True, "skip"),
    ("$RECYCLE.BIN", True, "skip"),
    ("@sharebin", True, "skip"),
    ("@SynologyCloudSync", True, "skip"),
    ("cloudsync_encrypt.info", False, "skip"),
    ("@ActiveBackup", True, "skip"),
    ("ActiveBackupData", True, "skip"),
    ("#snapshot", True, "skip"),
    ("ActiveBackupForOffice365", True, "skip"),
    ("ActiveBackupForGSuite", True, "skip"),
    ("ActiveBackup", True, "sync"),
    # "The folder or file in the @tmp folder of the root folder."
    ("@tmp/x.txt", False, "skip"),
    ("@tmp/deep/x.txt", False, "skip"),
    ("a/@tmp/x.txt", False, "sync"),
    ("a/@tmp", True, "sync"),
    ("tmp/x.txt", False, "sync"),
    # "The folder or file path is longer than 2,048 characters."
    (PATH_2048, False, "sync"),
    (PATH_2049, False, "skip"),
    # "The file name is longer than 255 characters."
    ("n" * 255, False, "sync"),
    ("n" * 256, False, "skip"),
    ("a/" + "n" * 256, False, "skip"),
    # (not in the spec) Linux file systems count the 255 in bytes: 127 "é" are 254 bytes, 128 are 256.
    ("é" * 127, False, "sync"),
    ("é" * 128, False, "skip"),
]


@pytest.mark.parametrize(("kind", "options"), ALL_CONNECTIONS, ids=IDS)
def test_general_rules_hold_on_every_service(kind: str, options: dict[str, str]) -> None:
    policy = PathPolicy(kind, options)
    services = tuple(f"{row.service}:" for row in policy.rows)
    wrong = []
    for path, is_dir, expected in GENERAL_CASES:
        got = policy.check(path, is_dir, 10)
        if expected == "skip" and got.action != "skip":
            wrong.append((path[:40], got))
        # a name the general rules let through may still meet a rule of the service (hicloud's 255-character
        # paths, say), but never a general one
        if expected == "sync" and got.action == "skip" and not got.reason.startswith(services):
            wrong.append((path[:40], got))
    assert wrong == []


@pytest.mark.parametrize(("path", "is_dir", "expected"), GENERAL_CASES, ids=lambda v: repr(v)[:40])
def test_general_rules_on_local(path: str, is_dir: bool, expected: str) -> None:
    assert PathPolicy("local").check(path, is_dir, 10).action == expected


def test_assumption_2048_path_case_lengths() -> None:
    assert (len(PATH_2048), len(PATH_2049)) == (2048, 2049)


def test_skip_reason_names_the_rule() -> None:
    policy = PathPolicy("local")
    assert "'.DS_Store'" in policy.check(".DS_Store", False).reason
    assert "@tmp" in policy.check("@tmp/x", False).reason
    assert "2,048" in policy.check("/".join(["d" * 200] * 11), True).reason
    assert "255" in policy.check("n" * 256, False).reason
    assert "NFD" in policy.check(NFD_NAME, False).reason
    assert "':'" in policy.check("a:b", False).reason
    assert "'._'" in policy.check("._a", False).reason


def test_dot_steps_are_never_names() -> None:
    # beyond the spec, for safety: a remote key "a/../b" must not lead outside the task folder
    for kind, options in ALL_CONNECTIONS:
        policy = PathPolicy(kind, options)
        assert policy.check("a/../b", False).action == "skip"
        assert policy.check("a/./b", False).action == "skip"


def test_empty_component_is_skipped() -> None:
    assert PathPolicy("local").check("a//b", False).action == "skip"


# Note 25: "folders in remote destinations will not be listed by Cloud Sync under the following circumstances:
#   • The folder contains the following characters: / \
#   • The folder does not have a folder name.
#   • The folder name ends with a space."
@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("photos", True),
        ("a/b", False),
        ("a\\b", False),
        ("", False),
        ("trailing ", False),
        (" leading", True),
        ("mid dle", True),
        ("dot.", True),
    ],
)
def test_remote_folders_not_listed(name: str, listed: bool) -> None:
    reason = remote_folder_unlisted(name)
    assert (reason is None) == listed
    assert (PathPolicy("s3").remote_folder_unlisted(name) is None) == listed
