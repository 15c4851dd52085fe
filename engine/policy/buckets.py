"""Bucket and container names: notes 16 and 22 of the spec, checked before anything touches the network.

`validate_bucket(kind, name, preset)` returns None when the name is acceptable, else one line naming every rule
that failed (all at once: a user fixing one rule at a time would meet the next only at the next try). The
providers call it from `validate_options`, so `connection add`/`edit` refuse a bad name before any network call,
and the app's wizard calls it as the name is typed: one implementation. Each rule set below carries the spec's
words; rules the spec does not state but the service documents are marked as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import UsageError
from engine.policy.services import S3_PRESET_ROWS, known_kinds

Check = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class BucketRule:
    words: str  # the rule as the user reads it
    ok: Check


def _length(lo: int, hi: int) -> Check:
    return lambda name: lo <= len(name) <= hi


def _only(pattern: str) -> Check:
    rx = re.compile(pattern)
    return lambda name: rx.fullmatch(name) is not None


_LOWER_DIGIT = "abcdefghijklmnopqrstuvwxyz0123456789"

# Note 22: "For cloud services compatible with Amazon S3 (Amazon S3, Hicloud S3, and SFR Stockage) and Alibaba
# Cloud OSS:
#   • The name length must be between 3 and 63 characters.
#   • The name must start with a lowercase letter or number.
#   • The name can only contain lowercase letters, numbers, or the following: . -"
S3_AND_OSS = (
    BucketRule("the name length must be between 3 and 63 characters", _length(3, 63)),
    BucketRule("the name must start with a lowercase letter or number", lambda n: n[:1] in set(_LOWER_DIGIT)),
    BucketRule("the name can only contain lowercase letters, numbers, '.' or '-'", _only(r"[a-z0-9.\-]*")),
)

# Note 22: "For Backblaze B2:
#   • The name length must be between 6 and 50 characters.
#   • The name cannot start with b2-."
B2 = (
    BucketRule("the name length must be between 6 and 50 characters", _length(6, 50)),
    BucketRule("the name cannot start with 'b2-'", lambda n: not n.startswith("b2-")),
    # Not in the spec; Backblaze's documentation: "letters, digits, and '-'".
    BucketRule("the name can only contain letters, numbers or '-'", _only(r"[A-Za-z0-9\-]*")),
)

# Note 22: "For Tencent Cloud COS:
#   • The name length cannot exceed 40 characters.
#   • The name can only contain lowercase letters or numbers."
# COS's API names a bucket "<name>-<APPID>" (e.g. "photos-1250000000"); the rules apply to the part before the
# APPID, which is split off when present.
COS = (
    BucketRule("the name cannot be empty", _length(1, 10**9)),
    BucketRule("the name length cannot exceed 40 characters", _length(0, 40)),
    BucketRule("the name can only contain lowercase letters or numbers", _only(r"[a-z0-9]*")),
)
_COS_APPID = re.compile(r"(?P<name>.*)-(?P<appid>\d+)")

# Note 22: "For JD Cloud OSS:
#   • The name length must be between 3 and 63 characters.
#   • The name must start and end with a lowercase letter or number.
#   • The name can only contain lowercase letters, numbers, or the character -."
JDCLOUD = (
    BucketRule("the name length must be between 3 and 63 characters", _length(3, 63)),
    BucketRule(
        "the name must start and end with a lowercase letter or number",
        lambda n: n[:1] in set(_LOWER_DIGIT) and n[-1:] in set(_LOWER_DIGIT),
    ),
    BucketRule("the name can only contain lowercase letters, numbers or '-'", _only(r"[a-z0-9\-]*")),
)

# Note 16: "OpenStack Swift Container name cannot exceed 255 characters and cannot include '/'."
SWIFT = (
    BucketRule("the container name cannot be empty", _length(1, 10**9)),
    BucketRule("the container name cannot exceed 255 characters", _length(0, 255)),
    BucketRule("the container name cannot include '/'", lambda n: "/" not in n),
)

# Not in the spec (which has no Azure rule); Azure's documentation for container names: 3 to 63 characters,
# lowercase letters, numbers and hyphens, starting with a letter or number, no two hyphens in a row.
AZURE = (
    BucketRule("the container name length must be between 3 and 63 characters", _length(3, 63)),
    BucketRule("the container name can only contain lowercase letters, numbers or '-'", _only(r"[a-z0-9\-]*")),
    BucketRule("the container name must start with a lowercase letter or number", lambda n: n[:1] != "-"),
    BucketRule(
        "every '-' in a container name must sit between letters or numbers",
        lambda n: "--" not in n and not n.endswith("-"),
    ),
)

# Which rule set a kind's bucket (or container) option must follow; kinds not named have no bucket rule here.
BUCKET_RULES: dict[str, tuple[str, tuple[BucketRule, ...]]] = {
    "s3": ("Amazon S3 compatible bucket", S3_AND_OSS),
    "oss": ("Alibaba Cloud OSS bucket", S3_AND_OSS),
    "b2": ("Backblaze B2 bucket", B2),
    "cos": ("Tencent Cloud COS bucket", COS),
    "jdcloud": ("JD Cloud OSS bucket", JDCLOUD),
    "swift": ("OpenStack Swift container", SWIFT),
    "azure": ("Microsoft Azure container", AZURE),
}


def broken_rules(kind: str, name: str) -> list[str]:
    """The words of every rule of `kind` that `name` breaks, in the table's order (none for a kind without
    rules)."""
    if kind not in BUCKET_RULES:
        return []
    rules = BUCKET_RULES[kind][1]
    checked = name
    if kind == "cos":
        match = _COS_APPID.fullmatch(name)
        if match:
            checked = match.group("name")
    return [rule.words for rule in rules if not rule.ok(checked)]


def validate_bucket(kind: str, name: str, preset: str | None = None) -> str | None:
    """None when `name` is a valid bucket/container name for `kind`; else one line naming every failed rule.

    Raises UsageError for an unknown kind or s3 preset (a caller's mistake, not the user's bucket name).
    """
    if kind not in known_kinds():
        raise UsageError(f"unknown provider kind '{kind}' (known: {', '.join(known_kinds())})")
    if kind == "s3" and preset and preset not in S3_PRESET_ROWS:
        raise UsageError(f"unknown s3 preset '{preset}' (known: {', '.join(S3_PRESET_ROWS)})")
    broken = broken_rules(kind, name)
    if not broken:
        return None
    return f"invalid {BUCKET_RULES[kind][0]} name {name!r}: {'; '.join(broken)}"
