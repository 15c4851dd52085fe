"""Two-way Box tasks through the console script (`skysync`), against the Box fake: a token imported as
`rclone authorize` prints it (into the token store, the account id read with it), then what a user does on both
sides and what must happen. Box is changed behind the engine's back through the fake, as another device would."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.box_server import BoxFake

from .drive_e2e import MTIME, DriveEnv, assert_one_conflict_copy, new_local
from .servers.box import small_parts


@dataclass
class Env(DriveEnv):
    fake: BoxFake

    def remote(self) -> dict[str, bytes]:
        return {k[len("Sync/"):]: v for k, v in self.fake.files().items() if k.startswith("Sync/")}

    def put(self, path: str, data: bytes) -> None:
        self.fake.put(f"Sync/{path}", data, MTIME)


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    fake = small_parts(BoxFake().start())
    try:
        fake.mkdir("Sync")  # the task's remote folder exists
        options = fake.options()
        e = Env(*new_local(tmp_path), fake)
        # The token from a pipe, as `rclone authorize box | skysync ...`.
        e.add_task("box", "b", {"chunk_size": "1", **{key: options[key] for key in (
            "client_id", "api_url", "upload_url", "token_url", "auth_url", "client_secret")}},
            piped=("token", options["token"]))  # fmt: skip
        yield e
    finally:
        fake.stop()


def test_two_way_with_conflicts_renames_and_deletions_both_ways(env: Env) -> None:
    # The piped token went to the token store, the secret to secrets.toml, the account id to the config.
    config = (env.home / "config.toml").read_text()
    assert "11446498" in config and "box-secret" not in config and "access_token" not in config
    secrets = (env.home / "secrets.toml").read_text()
    assert "box-secret" in secrets and "access_token" not in secrets
    stored = env.home / "tokens" / "b.json"
    assert stored.exists() and stored.stat().st_mode & 0o077 == 0

    env.write("local.txt", b"from here")
    env.write("docs/both.txt", b"base")
    env.put("remote.txt", b"from Box")
    env.sync()
    assert env.local_files() == {"local.txt": b"from here", "docs/both.txt": b"base", "remote.txt": b"from Box"}
    assert env.remote() == env.local_files()
    assert env.summary() == {}, "not idempotent"

    # Changed on both sides: the local version keeps the name, Box's becomes a conflict copy on both sides.
    env.write("docs/both.txt", b"local edit")
    env.put("docs/both.txt", b"remote edit")
    env.sync()
    assert_one_conflict_copy(env, env.remote(), b"local edit", b"remote edit")

    # Renamed in Box (the feed reports the same id under a new name): renamed here, nothing transferred.
    uploads, downloads = env.fake.calls["POST files/content"], env.fake.calls.copy()
    env.fake.move("Sync/remote.txt", "Sync/renamed.txt")
    env.sync()
    assert env.local_files().get("renamed.txt") == b"from Box" and "remote.txt" not in env.local_files()
    assert env.fake.calls["POST files/content"] == uploads
    assert sum(n for r, n in env.fake.calls.items() if r.endswith("/content") and r.startswith("GET")) == sum(
        n for r, n in downloads.items() if r.endswith("/content") and r.startswith("GET"))

    # Deleted here: trashed in Box. Trashed in Box: deleted here.
    (env.local / "local.txt").unlink()
    env.fake.trash("Sync/docs/both.txt")
    env.sync()
    assert "local.txt" not in env.remote() and "docs/both.txt" not in env.local_files()
    assert env.remote() == env.local_files()
    assert env.summary() == {}


def test_a_bookmark_is_skipped_with_its_reason_and_never_touched(env: Env) -> None:
    env.fake.add_web_link("Sync/Company site", "https://example.com/")
    env.put("minutes.boxnote", b'{"a": "Box Note"}')
    env.write("here.txt", b"h")
    env.sync()
    assert env.local_files() == {"here.txt": b"h"}
    log = env.cli("log", "--task", "t").stdout
    assert "Company site" in log and "minutes.boxnote" in log and "bookmark" in log
    # A local file of the bookmark's name is never uploaded over it; the Note stays as it is.
    env.write("Company site", b"a local file")
    env.sync(ok=False)
    assert env.fake.find("Sync/Company site").type == "web_link"
    assert env.remote() == {"here.txt": b"h", "minutes.boxnote": b'{"a": "Box Note"}'}


def test_a_big_file_goes_through_an_upload_session_and_one_above_the_account_limit_is_refused(env: Env) -> None:
    data = os.urandom((3 << 20) + 4321)  # chunk_size=1: seven parts of 512 KiB
    env.write("big/video.bin", data)
    env.sync()
    assert env.remote()["big/video.bin"] == data and env.fake.calls["POST files/upload_sessions"] == 1
    assert env.summary() == {}
    env.fake.max_upload_size = 1 << 20
    env.write("big/too-big.bin", os.urandom((1 << 20) + 1))
    done = env.sync(ok=False)
    assert done.returncode == 1, done.stderr
    assert "too-big.bin" not in "".join(env.remote())
    assert "exceeds your account limit" in env.cli("log", "--task", "t").stdout
