"""Two-way OneDrive, OneDrive for Business and SharePoint tasks through the console script (`skysync`), against
the Graph fake: a token given as `rclone authorize` prints it, then what a user does on both sides. The cloud is
changed behind the engine's back through the fake, as another device would."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.graph_server import SHAREPOINT_STAMP, Drive, GraphFake

from .drive_e2e import MTIME, DriveEnv, assert_one_conflict_copy, new_local
from .servers.onedrive import CLIENT_ID, token_json


@dataclass
class Env(DriveEnv):
    fake: GraphFake
    drive: Drive
    kind: str

    def remote(self) -> dict[str, bytes]:
        return self.fake.files(self.drive, "Sync")

    def put(self, path: str, data: bytes) -> None:
        self.fake.put(self.drive, f"Sync/{path}", data, MTIME)


def make_env(tmp_path: pathlib.Path, fake: GraphFake, kind: str) -> Env:
    options = {"client_id": CLIENT_ID, "api_url": fake.api_url, "auth_url": fake.auth_url,
               "ca_file": fake.ca_file, "chunk_size": "320", "token": token_json(fake.token())}
    if kind == "sharepoint":
        _site, drives = fake.new_site("contoso.sharepoint.com", "sites/Team", ["Documents", "Archive"])
        drive = drives[0]
        options["site"] = "https://contoso.sharepoint.com/sites/Team"
        options["library"] = "Documents"
    else:
        drive = fake.new_drive("personal" if kind == "onedrive" else "business")
    fake.mkdirs(drive, "Sync")
    env = Env(*new_local(tmp_path), fake, drive, kind)
    env.add_task(kind, "c", options)
    return env


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    server = GraphFake(CLIENT_ID).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["onedrive", "onedrive-business", "sharepoint"])
def env(request: pytest.FixtureRequest, tmp_path: pathlib.Path, fake: GraphFake) -> Env:
    return make_env(tmp_path, fake, request.param)


@pytest.fixture
def personal(tmp_path: pathlib.Path, fake: GraphFake) -> Env:
    return make_env(tmp_path, fake, "onedrive")


def test_two_way_with_conflicts_renames_and_deletions_both_ways(env: Env) -> None:
    config = (env.home / "config.toml").read_text()
    assert "access_token" not in config and env.fake.user in config  # the account id, never the token
    env.write("local.txt", b"from here")
    env.write("docs/both.txt", b"base")
    env.put("remote.txt", b"from OneDrive")
    env.sync()
    assert env.local_files() == {"local.txt": b"from here", "docs/both.txt": b"base", "remote.txt": b"from OneDrive"}
    assert env.remote() == env.local_files()
    assert env.summary() == {}, "not idempotent"

    # Changed on both sides: the local version keeps the name, the cloud's becomes a conflict copy on both sides.
    env.write("docs/both.txt", b"local edit")
    env.put("docs/both.txt", b"remote edit")
    env.sync()
    assert_one_conflict_copy(env, env.remote(), b"local edit", b"remote edit")

    # Renamed in the cloud (read from the delta feed): renamed here. Where the kind has a content hash, nothing
    # is downloaded; Business has none (the spec's table), and a revision alone never proves a rename.
    downloads = env.fake.counts.get("downloads", 0)
    env.fake.rename(env.drive, "Sync/remote.txt", "Sync/docs/moved.txt")
    env.sync()
    assert env.local_files().get("docs/moved.txt") == b"from OneDrive" and "remote.txt" not in env.local_files()
    assert env.fake.counts.get("downloads", 0) == downloads + (env.kind == "onedrive-business")

    # Deleted here: deleted in the cloud; deleted in the cloud: deleted here.
    (env.local / "local.txt").unlink()
    env.fake.remove(env.drive, "Sync/docs/moved.txt")
    env.sync()
    assert "local.txt" not in env.remote() and "docs/moved.txt" not in env.local_files()
    assert env.remote() == env.local_files()
    assert env.summary() == {}


def test_an_upload_session_cut_mid_way_is_resumed(personal: Env) -> None:
    env = personal
    data = os.urandom(4 * 320 * 1024 + 777)  # chunk_size=320 KiB: five fragments
    env.write("big/video.bin", data)
    env.fake.cut_fragment(2)  # the second fragment is stored but its answer is lost
    env.sync()
    assert env.fake.counts["sessions"] == 1  # resumed, not started over
    assert env.fake.counts["fragments"] == 5  # no fragment sent twice: the session said where it was
    assert env.remote()["big/video.bin"] == data
    assert env.summary() == {}


def test_a_forgotten_delta_token_is_a_full_listing_and_loses_nothing(personal: Env) -> None:
    env = personal
    env.write("a.txt", b"a")
    env.sync()
    env.put("b.txt", b"b from the cloud")
    env.fake.forget_deltas(env.drive)
    env.sync()
    assert env.fake.counts["resync"] >= 1
    assert env.local_files() == {"a.txt": b"a", "b.txt": b"b from the cloud"}
    assert env.summary() == {}


def test_notebooks_and_folders_shared_by_others_are_skipped_with_a_reason(personal: Env) -> None:
    env = personal
    env.fake.add_onenote(env.drive, "Sync/Notebook")
    env.fake.add_remote_item(env.drive, "Sync/From Alice")
    env.put("plain.txt", b"p")
    env.sync()
    assert env.local_files() == {"plain.txt": b"p"}
    log = env.cli("log", "--task", "t").stdout
    assert "OneNote" in log and "shared by someone else" in log
    assert env.summary() == {"skipped": 2}  # skipped again, nothing transferred
    assert "Sync/Notebook/Section.one" in env.fake.files(env.drive)  # left alone in the cloud


def test_a_sharepoint_office_file_rewritten_after_upload_is_stable_over_three_passes(
    tmp_path: pathlib.Path, fake: GraphFake
) -> None:
    env = make_env(tmp_path, fake, "sharepoint")
    env.write("report.docx", b"PK office bytes")
    env.sync()
    assert env.remote()["report.docx"] == b"PK office bytes" + SHAREPOINT_STAMP  # SharePoint's rewrite
    uploads, downloads = fake.counts.get("uploads", 0), fake.counts.get("downloads", 0)
    for _ in range(3):
        assert env.summary() == {}
    assert (fake.counts.get("uploads", 0), fake.counts.get("downloads", 0)) == (uploads, downloads)
    assert env.local_files() == {"report.docx": b"PK office bytes"}  # the local file is never replaced
    # A real edit in SharePoint afterwards is still seen.
    env.put("report.docx", b"PK edited in the browser")
    env.sync()
    assert env.local_files() == {"report.docx": b"PK edited in the browser"}
