"""Notes 16 and 22: bucket and container names, each rule at and just past its limits."""

from __future__ import annotations

import pytest

from engine.errors import UsageError
from engine.policy import validate_bucket

OK = None

S3_FAMILY = [("s3", None), ("s3", "aws"), ("s3", "hicloud"), ("s3", "sfr"), ("oss", None)]


# For cloud services compatible with Amazon S3 (Amazon S3, Hicloud S3, and SFR Stockage) and Alibaba Cloud OSS:
@pytest.mark.parametrize(("kind", "preset"), S3_FAMILY)
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        # • The name length must be between 3 and 63 characters.
        ("abc", OK),
        ("ab", "between 3 and 63"),
        ("a" * 63, OK),
        ("a" * 64, "between 3 and 63"),
        ("", "between 3 and 63"),
        # • The name must start with a lowercase letter or number.
        ("1abc", OK),
        ("-abc", "must start with a lowercase letter or number"),
        (".abc", "must start with a lowercase letter or number"),
        ("Abc", "must start with a lowercase letter or number"),
        # • The name can only contain lowercase letters, numbers, or the following: . -
        ("my.bucket-01", OK),
        ("my_bucket", "can only contain"),
        ("myBucket", "can only contain"),
        ("my bucket", "can only contain"),
    ],
)
def test_s3_family_and_oss(kind: str, preset: str | None, name: str, rule: str | None) -> None:
    _expect(validate_bucket(kind, name, preset), rule)


# For Backblaze B2:
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        # • The name length must be between 6 and 50 characters.
        ("abcdef", OK),
        ("abcde", "between 6 and 50"),
        ("a" * 50, OK),
        ("a" * 51, "between 6 and 50"),
        # • The name cannot start with b2-.
        ("b2-photos", "cannot start with 'b2-'"),
        ("b2photos", OK),
        ("photos-b2-", OK),
        ("My-Photos", OK),
        # beyond the spec, B2's own documentation: letters, digits and "-"
        ("my.photos", "can only contain"),
    ],
)
def test_b2(name: str, rule: str | None) -> None:
    _expect(validate_bucket("b2", name), rule)


# For Tencent Cloud COS:
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        # • The name length cannot exceed 40 characters.
        ("a" * 40, OK),
        ("a" * 41, "cannot exceed 40"),
        ("a", OK),
        ("", "cannot be empty"),
        # • The name can only contain lowercase letters or numbers.
        ("photos2024", OK),
        ("Photos", "only contain lowercase letters or numbers"),
        ("my-photos", "only contain lowercase letters or numbers"),
        ("my.photos", "only contain lowercase letters or numbers"),
        # COS's API spells a bucket "<name>-<APPID>"; the rules apply to the name
        ("photos-1250000000", OK),
        ("a" * 40 + "-1250000000", OK),
        ("a" * 41 + "-1250000000", "cannot exceed 40"),
        ("my-photos-1250000000", "only contain lowercase letters or numbers"),
    ],
)
def test_cos(name: str, rule: str | None) -> None:
    _expect(validate_bucket("cos", name), rule)


# For JD Cloud OSS:
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        # • The name length must be between 3 and 63 characters.
        ("abc", OK),
        ("ab", "between 3 and 63"),
        ("a" * 63, OK),
        ("a" * 64, "between 3 and 63"),
        # • The name must start and end with a lowercase letter or number.
        ("-abc", "start and end with a lowercase letter or number"),
        ("abc-", "start and end with a lowercase letter or number"),
        ("Abc", "start and end with a lowercase letter or number"),
        ("0ab9", OK),
        # • The name can only contain lowercase letters, numbers, or the character -.
        ("my-bucket", OK),
        ("my.bucket", "can only contain"),
        ("my_bucket", "can only contain"),
        ("myBucket", "can only contain"),
    ],
)
def test_jdcloud(name: str, rule: str | None) -> None:
    _expect(validate_bucket("jdcloud", name), rule)


# Note 16: OpenStack Swift Container name cannot exceed 255 characters and cannot include '/'.
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("c" * 255, OK),
        ("c" * 256, "cannot exceed 255"),
        ("My Container_1.x", OK),
        ("a/b", "cannot include '/'"),
        ("", "cannot be empty"),
    ],
)
def test_swift_container(name: str, rule: str | None) -> None:
    _expect(validate_bucket("swift", name), rule)


# Azure (not in the spec): 3 to 63 characters, lowercase letters, numbers and hyphens.
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("abc", OK),
        ("ab", "between 3 and 63"),
        ("a" * 63, OK),
        ("a" * 64, "between 3 and 63"),
        ("my-container-1", OK),
        ("MyContainer", "can only contain"),
        ("my_container", "can only contain"),
        ("-abc", "must start with"),
        ("a--b", "between letters or numbers"),
        ("abc-", "between letters or numbers"),
    ],
)
def test_azure_container(name: str, rule: str | None) -> None:
    _expect(validate_bucket("azure", name), rule)


def test_message_names_the_service_and_the_name() -> None:
    msg = validate_bucket("b2", "b2-photos")
    assert msg == "invalid Backblaze B2 bucket name 'b2-photos': the name cannot start with 'b2-'"
    assert "OpenStack Swift container" in (validate_bucket("swift", "a/b") or "")


def test_kinds_without_a_bucket_rule() -> None:
    for kind in ("local", "gcs", "webdav", "gdrive"):
        assert validate_bucket(kind, "Anything Goes/") is None


def test_unknown_kind_or_preset() -> None:
    with pytest.raises(UsageError, match="unknown provider kind"):
        validate_bucket("ftp", "abc")
    with pytest.raises(UsageError, match="unknown s3 preset"):
        validate_bucket("s3", "abc", "wasabi")


def _expect(message: str | None, rule: str | None) -> None:
    if rule is None:
        assert message is None
    else:
        assert message is not None and rule in message, message


@pytest.mark.parametrize(
    ("kind", "name", "rules"),
    [
        ("s3", "_", ["between 3 and 63", "must start with", "can only contain"]),
        ("jdcloud", "-M", ["between 3 and 63", "start and end", "can only contain"]),
        ("b2", "b2-.", ["between 6 and 50", "cannot start with 'b2-'", "can only contain"]),
        ("cos", "My-" + "x" * 40, ["cannot exceed 40", "only contain lowercase"]),
        ("azure", "A-", ["between 3 and 63", "can only contain", "between letters"]),
    ],
)
def test_every_broken_rule_is_named_at_once(kind: str, name: str, rules: list[str]) -> None:
    """One line naming every rule: fixing one at a time, a user would meet the next only at the next try."""
    message = validate_bucket(kind, name)
    assert message is not None and "\n" not in message
    assert message.count(";") == len(rules) - 1, message
    for rule in rules:
        assert rule in message, (rule, message)
