"""`skysync policy check`: one line per path and the exit code."""

from __future__ import annotations

import pytest

from engine.errors import UsageError
from engine.policy.check import policy_check


def test_one_line_per_path_and_exit_code_one_when_any_would_not_sync_as_is() -> None:
    lines, code = policy_check("onedrive", ["ok.txt", "a*b.txt", "notes.", ".DS_Store", "folder/"], None, {})
    assert code == 1
    assert lines[0] == "ok.txt: syncs"
    assert lines[1].startswith("a*b.txt: skipped: Microsoft OneDrive:")
    assert lines[2].startswith("notes.: renamed to notes.._DiskStation_YYYYMMDD-HHMMSS_TailCharacterConflict (")
    assert lines[3].startswith(".DS_Store: skipped: ")
    assert lines[4] == "folder/: syncs"
    assert len(lines) == 5


def test_exit_code_zero_when_everything_syncs() -> None:
    assert policy_check("s3", ["a.txt", "b/c.txt"], 10, {"preset": "aws"}) == (
        ["a.txt: syncs", "b/c.txt: syncs"],
        0,
    )


def test_size_applies_to_files_only() -> None:
    lines, code = policy_check("sharepoint", ["big.iso", "dir/"], 16 * 1024**3, {})
    assert code == 1
    assert "larger than 15 GB" in lines[0]
    assert lines[1] == "dir/: syncs"


def test_options_reach_the_policy() -> None:
    lines, code = policy_check("onedrive", ["a:b"], None, {"encode_names": "true"})
    assert (lines, code)[1] == 1 and "renamed to a：b" in lines[0]
    lines, _ = policy_check("s3", ["x" * 200 + "/" + "y" * 60], None, {"preset": "hicloud"})
    assert "hicloud S3" in lines[0]


def test_unknown_kind_is_a_usage_error_with_one_line() -> None:
    with pytest.raises(UsageError) as err:
        policy_check("dropbax", ["a"], None, {})
    assert "unknown provider kind 'dropbax'" in str(err.value) and "\n" not in str(err.value)


def test_negative_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        policy_check("local", ["a"], -1, {})


def test_a_leading_dot_slash_is_the_task_root() -> None:
    assert policy_check("local", ["./a.txt", "./.DS_Store"], None, {}) == (
        ["./a.txt: syncs", "./.DS_Store: skipped: '.DS_Store' is a system file or folder that is never synced"],
        1,
    )


def test_option_help_for_the_lead_s_option_specs() -> None:
    from engine.policy import policy_option_help

    assert set(policy_option_help("onedrive")) == {"encode_names", "max_file_size_gb"}
    assert set(policy_option_help("s3")) == {"encode_names", "preset"}
    assert set(policy_option_help("gcs")) == {"encode_names"}


def test_the_providers_largest_object_is_a_size_limit() -> None:
    """The provider's own largest file (Provider.max_object_size) counts like the spec's limits; a spec row
    that applies too keeps its words."""
    from engine.policy import PathPolicy

    policy = PathPolicy("s3", {"preset": "other"}, rename_clock=None, max_object_size=100)
    assert policy.check("a.bin", False, 100).action == "sync"
    verdict = policy.check("a.bin", False, 101)
    assert verdict.action == "skip" and "larger than 100 bytes (101 bytes)" in verdict.reason
    assert policy.check("folder", True, None).action == "sync"
    hicloud = PathPolicy("s3", {"preset": "hicloud"}, rename_clock=None, max_object_size=5 * 1024**4)
    assert hicloud.check("a.bin", False, 1024**4 + 1).reason.startswith("hicloud S3:")
    assert policy_check("b2", ["a.bin"], 10 * 10**12 + 1, {})[1] == 1
    assert policy_check("b2", ["a.bin"], 10 * 10**12, {}) == (["a.bin: syncs"], 0)
