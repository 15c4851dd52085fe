"""`skysync policy check --provider KIND [--size BYTES] PATH...`: what the policy would do with each path.

Paths are task-relative; one ending in "/" is a folder. The answer is one line per path, and exit code 1 when
any path would not sync as is (renamed or skipped), 0 otherwise. No file system or network access: a path is
only a string here, so a tail-character rename shows the date as YYYYMMDD-HHMMSS. `--size` is checked against
the spec's size limits and against the provider's largest file (`Provider.max_object_size`, read from the class:
no credentials needed), as a pass checks it before sending the first byte.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.errors import UsageError
from engine.policy import PathPolicy, Verdict


def _verdict(policy: PathPolicy, path: str, size: int | None) -> Verdict:
    is_dir = path.endswith("/")
    while path.startswith("./"):  # "./notes." as a shell completes it is the task-relative "notes."
        path = path[2:]
    return policy.check(path, is_dir, None if is_dir else size)


def largest_object(kind: str, options: Mapping[str, str]) -> int | None:
    """The provider's largest file for these options; None for a kind with rules only (no provider built)."""
    from engine.providers import UnknownProvider, provider_class  # the registry imports no SDK until asked

    try:
        cls = provider_class(kind)
    except UnknownProvider:
        return None
    return cls.max_object_size(options)


def policy_check(kind: str, paths: list[str], size: int | None, options: Mapping[str, str]) -> tuple[list[str], int]:
    """One line per path ("syncs", "renamed to X (why)", "skipped: why") and the exit code."""
    if size is not None and size < 0:
        raise UsageError("--size must be a number of bytes, 0 or more")
    # UsageError for an unknown kind or a bad option. A name alone has no rename time: the date is the pattern.
    policy = PathPolicy(kind, options, rename_clock=None, max_object_size=largest_object(kind, options))
    lines: list[str] = []
    code = 0
    for path in paths:
        verdict = _verdict(policy, path, size)
        if verdict.action == "sync":
            lines.append(f"{path}: syncs")
            continue
        code = 1
        if verdict.action == "rename":
            lines.append(f"{path}: renamed to {verdict.remote_name} ({verdict.reason})")
        else:
            lines.append(f"{path}: skipped: {verdict.reason}")
    return lines, code
