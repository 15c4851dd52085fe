"""Two-way Dropbox tasks through the console script (`skysync`), against the Dropbox fake: a token imported as
`rclone authorize` prints it (into the token store, the account id read with it), then what a user does on both
sides and what must happen. Dropbox is changed behind the engine's back through the fake, as another device
would."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.dropbox_server import DropboxFake

from .drive_e2e import MTIME, DriveEnv, assert_one_conflict_copy, new_local
from .servers import dropbox as server


@dataclass
class Env(DriveEnv):
    fake: DropboxFake
    account: str

    def remote(self) -> dict[str, bytes]:
        """Files under /Sync as Dropbox displays them."""
        return {k[len("/Sync/") :]: v for k, v in self.fake.files(self.account).items() if k.startswith("/Sync/")}

    def put(self, path: str, data: bytes) -> None:
        self.fake.put(self.account, f"/Sync/{path}", data, MTIME)

    def move(self, src: str, dst: str) -> None:
        with self.fake.lock:
            acc = self.fake.accounts[self.account]
            self.fake._relocate(acc, {"from_path": f"/Sync/{src}", "to_path": f"/Sync/{dst}"}, move=True)

    def delete(self, path: str) -> None:
        with self.fake.lock:
            self.fake.rpc("files/delete_v2", self.account, {"path": f"/Sync/{path}"})


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    fake = server.fake()
    account, access, refresh = fake.new_account(server.APP_KEY)
    fake.put(account, "/Sync/.keep-folder", b"")  # the task's remote folder exists
    options = server.options_for(fake, account, access, refresh)
    e = Env(*new_local(tmp_path), fake, account)
    e.add_task("dropbox", "d", {"chunk_size": "1", **{key: options[key] for key in (
        "app_key", "api_url", "content_url", "notify_url", "token_url", "token")}})  # fmt: skip
    yield e


def test_the_token_goes_to_the_token_store_and_the_account_id_to_the_config(env: Env) -> None:
    shown = json.loads(env.cli("connection", "show", "d", "--json").stdout)
    assert env.account in json.dumps(shown)
    secrets = (env.home / "secrets.toml").read_text() if (env.home / "secrets.toml").exists() else ""
    assert "access_token" not in secrets and "access_token" not in (env.home / "config.toml").read_text()
    stored = env.home / "tokens" / "d.json"
    assert stored.exists() and stored.stat().st_mode & 0o077 == 0
    env.cli("connection", "test", "d")


def test_two_way_with_conflicts_and_deletions_both_ways(env: Env) -> None:
    env.write("local.txt", b"from here")
    env.write("docs/both.txt", b"base")
    env.put("remote.txt", b"from Dropbox")
    env.sync()
    assert env.local_files() == {"local.txt": b"from here", "docs/both.txt": b"base", "remote.txt": b"from Dropbox",
                                 ".keep-folder": b""}  # fmt: skip
    assert env.remote() == env.local_files()
    again = json.loads(env.cli("sync", "t", "--json").stdout)["tasks"][0]
    assert again["summary"] == {}, f"not idempotent: {again}"

    # Changed on both sides: the local version keeps the name and Dropbox keeps its own edit in the file's
    # version history (conflict_mode revision, the default: the log names that rev); no conflict copy.
    env.write("docs/both.txt", b"local edit")
    rev = env.fake.put(env.account, "/Sync/docs/both.txt", b"remote edit", MTIME)["rev"]
    env.sync()
    local = env.local_files()
    assert local["docs/both.txt"] == b"local edit"
    assert not [p for p in local if "_Conflict_" in p]
    assert env.remote() == local
    assert f"the cloud's version is revision {rev} of " in env.cli("log", "--task", "t").stdout
    # With conflict_mode=copy, Dropbox's version becomes a conflict copy on both sides.
    env.cli("connection", "edit", "d", "--option", "conflict_mode=copy")
    env.write("docs/both.txt", b"local edit 2")
    env.put("docs/both.txt", b"remote edit 2")
    env.sync()
    assert_one_conflict_copy(env, env.remote(), b"local edit 2", b"remote edit 2")

    # Deleted here: deleted in Dropbox.
    (env.local / "local.txt").unlink()
    env.sync()
    assert "local.txt" not in env.remote() and env.remote() == env.local_files()


# Dropbox reports a deletion without an id (DeletedMetadata has a path only); the provider gives the path as the
# Change's id and path, and engine/feeds.py applies deletions by id only, so the remote index keeps the file until
# the next full listing. Strict: this test turns red (XPASS) once the feed applies a deletion by its path.
def test_deleted_in_dropbox_is_deleted_here(env: Env) -> None:
    env.write("gone.txt", b"soon deleted in Dropbox")
    env.write("kept.txt", b"stays")
    env.sync()  # a full listing: the remote index and its cursor are saved
    env.write("kept.txt", b"stays, edited")
    env.sync()  # from the feed
    env.delete("gone.txt")
    env.sync()
    assert "gone.txt" not in env.local_files() and env.local_files()["kept.txt"] == b"stays, edited"


def test_a_rename_in_dropbox_is_a_local_rename(env: Env) -> None:
    env.write("a/photo.jpg", b"jpeg bytes")
    env.sync()
    uploads = env.fake.calls["files/upload"]
    env.move("a/photo.jpg", "a/renamed.jpg")
    env.sync()
    assert env.local_files().get("a/renamed.jpg") == b"jpeg bytes" and "a/photo.jpg" not in env.local_files()
    assert env.fake.calls["files/upload"] == uploads  # nothing sent back up
    assert env.remote() == env.local_files()


def test_a_case_only_rename_in_dropbox_is_followed_here(env: Env) -> None:
    env.put("Remote.TXT", b"r")
    env.sync()
    downloads, uploads = env.fake.calls["files/download"], env.fake.calls["files/upload"]
    env.move("Remote.TXT", "remote.txt")
    env.sync()
    assert env.local_files().get("remote.txt") == b"r" and "Remote.TXT" not in env.local_files()
    assert env.fake.calls["files/download"] == downloads and env.fake.calls["files/upload"] == uploads
    assert env.cli("log", "--task", "t").stdout.count("renamed by case in the cloud") == 1
    assert env.summary() == {}  # the state follows the new spelling: nothing to do, no ping-pong
    assert env.local_files() == env.remote()


def test_a_case_only_rename_here_is_a_move_in_dropbox(env: Env) -> None:
    env.write("Notes.txt", b"n")
    env.sync()
    uploads = env.fake.calls["files/upload"]
    (env.local / "Notes.txt").rename(env.local / "NOTES.txt")
    env.sync()
    assert env.remote().get("NOTES.txt") == b"n" and "Notes.txt" not in env.remote()
    assert env.fake.calls["files/upload"] == uploads
    assert env.local_files() == env.remote()


def test_two_local_names_differing_only_by_case_never_overwrite_each_other(env: Env) -> None:
    env.write("Readme.md", b"first")
    env.write("README.md", b"second")
    done = env.sync(ok=False)
    assert done.returncode in (0, 1), done.stderr
    remote = env.remote()
    stored = [name for name in remote if name.lower() == "readme.md"]
    assert len(stored) == 1 and remote[stored[0]] in (b"first", b"second")
    # Both local files are kept as they were.
    assert env.local_files()["Readme.md"] == b"first" and env.local_files()["README.md"] == b"second"
    log = env.cli("log", "--task", "t").stdout
    skipped = "README.md" if remote[stored[0]] == b"first" else "Readme.md"
    assert skipped in log


def test_an_upload_session_cut_mid_way_is_resumed(env: Env) -> None:
    data = os.urandom((3 << 20) + 4321)  # chunk_size=1: four chunks through an upload session
    env.write("big/video.bin", data)
    env.fake.cut_next_append(commit=True)
    starts = env.fake.calls["files/upload_session/start"]
    env.sync()
    assert env.fake.calls["files/upload_session/start"] == starts + 1  # resumed, not started over
    assert env.remote()["big/video.bin"] == data
    again = json.loads(env.cli("sync", "t", "--json").stdout)["tasks"][0]
    assert again["summary"] == {}


def test_a_folder_renamed_by_case_in_dropbox_is_renamed_here(env: Env) -> None:
    env.write("Docs/a.txt", b"a")
    env.write("Docs/sub/b.txt", b"b")
    env.sync()
    downloads = env.fake.calls["files/download"]
    env.move("Docs", "docs")
    env.sync()
    assert env.local_files() == {"docs/a.txt": b"a", "docs/sub/b.txt": b"b", ".keep-folder": b""}
    assert not (env.local / "Docs").exists()
    assert env.fake.calls["files/download"] == downloads
    assert env.summary() == {}
    assert env.remote() == env.local_files()


def test_a_folder_renamed_by_case_here_is_one_move_in_dropbox(env: Env) -> None:
    env.write("Photos/x.jpg", b"x")
    env.write("Photos/2024/y.jpg", b"y")
    env.sync()
    uploads, moves = env.fake.calls["files/upload"], env.fake.calls["files/move_v2"]
    (env.local / "Photos").rename(env.local / "PHOTOS")
    env.sync()
    assert env.remote() == {"PHOTOS/x.jpg": b"x", "PHOTOS/2024/y.jpg": b"y", ".keep-folder": b""}
    assert env.fake.calls["files/upload"] == uploads and env.fake.calls["files/move_v2"] == moves + 1
    assert env.summary() == {}
    assert env.local_files() == env.remote()


def test_renamed_by_case_on_both_sides_keeps_one_spelling_and_loses_nothing(env: Env) -> None:
    env.write("Notes.txt", b"n")
    env.sync()
    (env.local / "Notes.txt").rename(env.local / "NOTES.txt")
    env.move("Notes.txt", "notes.txt")
    env.sync()
    assert env.local_files() == {"NOTES.txt": b"n", ".keep-folder": b""} and env.remote() == env.local_files()
    assert "this one kept" in env.cli("log", "--task", "t").stdout
    assert env.summary() == {}


def test_a_case_only_rename_with_new_content_in_dropbox_loses_nothing(env: Env) -> None:
    env.write("Plan.md", b"v1")
    env.sync()
    env.move("Plan.md", "plan.md")
    env.put("plan.md", b"v2 from another device")
    env.write("other.txt", b"unrelated")
    env.sync()
    assert env.local_files().get("plan.md") == b"v2 from another device" and "Plan.md" not in env.local_files()
    assert env.remote() == env.local_files()
    assert env.summary() == {}
