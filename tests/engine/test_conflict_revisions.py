"""Conflict modes (issue 18 item 3): the decision table, the connection setting through the CLI, and the pass
keeping the cloud's version as a revision where the provider says it keeps them.

The pass runs against a `local` cloud whose provider keeps every replaced file in a folder of versions beside
it (as a versioned bucket does), so what the executor does in revision mode is seen without a server: the
local version on top, the cloud's edit kept once, no conflict copy, the log naming the revision.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import BinaryIO

import pytest

from engine import revisions
from engine.cli import main
from engine.config import Home
from engine.connect import open_provider
from engine.providers.base import Expect, NetworkError, RemoteEntry
from engine.providers.local import LocalProvider
from engine.state import StateDB

from .conftest import Env, write

WHEN = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC


class VersionedLocal(LocalProvider):
    """A local cloud that keeps each replaced file under `<versions>/<n>` (n counts from 1)."""

    def __init__(self, options: Mapping[str, str], versions: pathlib.Path, answer: str | Exception | None = None):
        super().__init__(options)
        self.versions = versions
        self.answer = answer

    def keeps_revisions(self) -> str | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def replaced_version(self, path: str, listed: RemoteEntry) -> tuple[str, float | None]:
        return f"v{len(os.listdir(self.versions)) + 1}", WHEN

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None
               ) -> RemoteEntry:
        current = pathlib.Path(self.options["root"], path)
        if current.is_file():
            shutil.copy2(current, self.versions / str(len(os.listdir(self.versions)) + 1))
        return super().upload(path, src, size, mtime, expect=expect)


def versioned(env: Env, tmp_path: pathlib.Path, answer: str | Exception | None = None) -> VersionedLocal:
    versions = tmp_path / "versions"
    versions.mkdir(exist_ok=True)
    return VersionedLocal({"root": str(env.cloud)}, versions, answer)


def conflict_lines(env: Env) -> list[str]:
    db = StateDB(Home(env.home.path).setting("database-path"))
    try:
        return [r.message for r in db.read_log(task="t", kinds=("conflict",))]
    finally:
        db.close()


def both_edited(env: Env, provider: VersionedLocal) -> None:
    write(env.local / "doc.txt", "base", 1_600_000_000)
    assert env.sync(provider=provider).exit_code == 0
    write(env.local / "doc.txt", "local edit", 1_700_000_000)
    write(env.cloud / "doc.txt", "cloud edit!", 1_700_000_100)


# -- the decision ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "keeps", "mode"), [
    ("revision", None, "revision"),
    ("revision", "bucket 'b' has versioning suspended", "copy"),
    ("copy", None, "copy"),
    ("copy", "bucket 'b' has versioning off", "copy"),
])  # fmt: skip
def test_decide(setting: str, keeps: str | None, mode: str) -> None:
    got, why = revisions.decide(setting, keeps)
    assert got == mode
    if setting == "revision":
        assert (keeps or "the cloud keeps earlier versions") in why
    else:
        assert "conflict_mode is copy" in why


def test_the_message_names_the_revision_and_its_time() -> None:
    assert revisions.kept_message("3HL4kqtJ", WHEN) == (
        "changed on both sides; kept the local version; the cloud's version is revision 3HL4kqtJ of "
        "2025-06-15 15:06:40 UTC")
    assert revisions.kept_message("", None).endswith("the cloud's version is an earlier revision")


# -- the pass ------------------------------------------------------------------------------------------------------


def test_revision_mode_uploads_over_the_cloud_version_and_keeps_no_copy(env: Env, tmp_path: pathlib.Path) -> None:
    provider = versioned(env, tmp_path)
    both_edited(env, provider)
    result = env.sync(provider=provider)
    assert result.exit_code == 0 and result.summary == {"conflict": 1}, result.as_dict()
    assert env.local_tree() == env.cloud_tree() == {"doc.txt": b"local edit"}
    # The first pass created the file (nothing replaced); the conflict's upload replaced the cloud's edit.
    assert [p.read_bytes() for p in sorted((tmp_path / "versions").iterdir())] == [b"cloud edit!"]
    assert conflict_lines(env) == [revisions.kept_message("v1", WHEN)]
    assert env.sync(provider=provider).summary == {}


def test_an_upload_only_task_keeps_the_cloud_version_as_a_revision_too(make_env, tmp_path: pathlib.Path) -> None:
    env = make_env("upload")
    provider = versioned(env, tmp_path)
    both_edited(env, provider)
    result = env.sync(provider=provider)
    assert result.summary == {"conflict": 1}, result.as_dict()
    assert env.cloud_tree() == {"doc.txt": b"local edit"}
    assert (tmp_path / "versions" / "1").read_bytes() == b"cloud edit!"
    assert not [name for name in env.local_tree() if "_Conflict_" in name]


@pytest.mark.parametrize("answer", ["versions are not kept here", NetworkError("cannot reach the service")],
                         ids=["not-kept", "check-failed"])
def test_without_verified_versions_conflict_copies_are_made(env: Env, tmp_path: pathlib.Path, answer) -> None:
    provider = versioned(env, tmp_path, answer)
    both_edited(env, provider)
    result = env.sync(provider=provider)
    assert result.summary == {"conflict": 1}, result.as_dict()
    copies = [name for name in env.local_tree() if "_Conflict_" in name]
    assert len(copies) == 1 and env.local_tree()[copies[0]] == b"cloud edit!"
    assert env.cloud_tree() == env.local_tree()


# -- the setting through the CLI -------------------------------------------------------------------------------


def cli(env: Env, capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    got = main(["--home", env.home.path, *args])
    out, err = capsys.readouterr()
    assert got == code, (args, out, err)
    return out, err


def test_conflict_mode_is_a_connection_option(env: Env, tmp_path: pathlib.Path, capsys) -> None:
    show = json.loads(cli(env, capsys, "connection", "show", "c", "--json")[0])
    assert show["conflict_mode"] == "revision"  # the spec's default; `local` keeps no versions, so: copies
    out, _ = cli(env, capsys, "connection", "test", "c")
    assert "conflicts: copy (" in out and "keeps no earlier versions" in out
    cli(env, capsys, "connection", "edit", "c", "--option", "conflict_mode=copy")
    assert "conflict_mode = \"copy\"" in (pathlib.Path(env.home.path) / "config.toml").read_text()
    assert revisions.for_connection(Home(env.home.path), "c")[1].startswith("conflict_mode is copy")
    _, err = cli(env, capsys, "connection", "edit", "c", "--option", "conflict_mode=both", code=2)
    assert len(err.strip().splitlines()) == 1 and "conflict_mode" in err and '"revision"' in err
    cli(env, capsys, "connection", "edit", "c", "--option", "conflict_mode=revision")
    assert "conflict_mode =" not in (pathlib.Path(env.home.path) / "config.toml").read_text()  # the default
    provider = open_provider(Home(env.home.path), "c")
    try:
        assert revisions.resolve(provider, "revision")[0] == "copy"
    finally:
        provider.close()
