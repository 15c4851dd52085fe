"""Helpers for the policy tests: one call per question the engine asks."""

from __future__ import annotations

from engine.policy import PathPolicy, Verdict

# Every provider kind the policy knows, with the connection options that select the spec's rows.
ALL_CONNECTIONS: list[tuple[str, dict[str, str]]] = [
    ("local", {}),
    ("webdav", {}),
    ("gdrive", {}),
    ("baidu", {}),
    ("dropbox", {}),
    ("box", {}),
    ("onedrive", {}),
    ("onedrive-business", {}),
    ("sharepoint", {}),
    ("gcs", {}),
    ("swift", {}),
    ("amazon-drive", {}),
    ("s3", {"preset": "aws"}),
    ("s3", {"preset": "hicloud"}),
    ("s3", {"preset": "sfr"}),
    ("s3", {"preset": "megafon"}),
    ("s3", {"preset": "other"}),
    ("azure", {}),
    ("b2", {}),
    ("oss", {}),
    ("megadisk", {}),
    ("cos", {}),
    ("jdcloud", {}),
]


def verdict(
    kind: str,
    path: str,
    is_dir: bool = False,
    size: int | None = None,
    options: dict[str, str] | None = None,
    **kwargs: object,
) -> Verdict:
    return PathPolicy(kind, options or {}).check(path, is_dir, size, **kwargs)  # type: ignore[arg-type]


def action(kind: str, path: str, is_dir: bool = False, size: int | None = None, **options: str) -> str:
    return verdict(kind, path, is_dir, size, options).action
