"""Two-way Google Drive tasks through the console script (`skysync`), against the Drive fake and the fake OAuth
server: a token imported as `rclone authorize` prints it, then what a user does on both sides and what must
happen. Drive is changed behind the engine's back through the fake's state, as another device would."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.gdrive_server import DriveState, running
from tests.fakes.oauth_server import FakeOAuthServer

from .drive_e2e import DriveEnv, new_local


@dataclass
class Env(DriveEnv):
    state: DriveState
    oauth: FakeOAuthServer
    issued: dict[str, object]

    def folder(self) -> str:
        found = self.state.find("Sync")
        assert found is not None
        return found.id

    def remote_files(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        with self.state.lock:
            by_id = self.state.files
            for f in by_id.values():
                if f.data is None or f.trashed:
                    continue
                parts, cur = [f.name], f
                while cur.parents and cur.parents[0] != self.folder():
                    cur = by_id[cur.parents[0]]
                    if cur.trashed or cur.id == self.state.root:
                        break
                    parts.append(cur.name)
                else:
                    out["/".join(reversed(parts))] = f.data
        return out


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    oauth = FakeOAuthServer(rotate=False).start()
    try:
        with running(DriveState(token_check=oauth.access_valid)) as (url, state):
            state.add_file("root", "Sync", None)
            issued = oauth.issue()
            e = Env(*new_local(tmp_path), state, oauth, issued)
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            e.add_task("gdrive", "g", {"client_id": "test-client", "api_url": url, "token_url": oauth.token_url,
                                       "token": json.dumps({**issued, "expiry": expiry})})
            yield e
    finally:
        oauth.stop()


def test_two_way_with_conflicts_deletions_both_ways_and_a_rename_on_drive(env: Env) -> None:
    (env.local / "sub").mkdir()
    (env.local / "a.txt").write_bytes(b"local a")
    (env.local / "sub" / "b.txt").write_bytes(b"local b")
    env.state.add_file(env.folder(), "r.txt", b"remote r")
    env.sync()
    assert env.local_files() == env.remote_files() == {"a.txt": b"local a", "sub/b.txt": b"local b",
                                                       "r.txt": b"remote r"}
    # The imported token lives in the token store only, never in config.toml or secrets.toml.
    for name in ("config.toml", "secrets.toml"):
        saved = (env.home / name).read_text() if (env.home / name).exists() else ""
        assert env.issued["access_token"] not in saved and env.issued["refresh_token"] not in saved

    # Changed on both sides: the local version keeps the name and Drive keeps its own edit as an earlier
    # revision (conflict_mode revision, the default: the log names its headRevisionId); no conflict copy.
    (env.local / "a.txt").write_bytes(b"local edit")
    found = env.state.find("Sync/a.txt")
    assert found is not None
    env.state.write(found.id, b"drive edit")
    drive_revision = found.revision
    env.sync()
    local = env.local_files()
    assert local["a.txt"] == b"local edit"
    assert not [name for name in local if "_Conflict_" in name]
    assert env.remote_files() == local
    assert f"the cloud's version is revision {drive_revision} of " in env.cli("log", "--task", "t").stdout

    # Deleted locally: trashed on Drive. Deleted on Drive: gone locally.
    (env.local / "sub" / "b.txt").unlink()
    r = env.state.find("Sync/r.txt")
    assert r is not None
    env.state.trash(r.id)
    env.sync()
    assert "sub/b.txt" not in env.remote_files() and "r.txt" not in env.local_files()
    assert env.state.files[r.id].trashed

    # Renamed on Drive (same id): renamed locally, nothing uploaded again.
    a = env.state.find("Sync/a.txt")
    assert a is not None
    env.state.rename(a.id, "renamed.txt")
    uploads_before = sum(1 for method, path in env.state.log if path.startswith("/upload/"))
    env.sync()
    assert (env.local / "renamed.txt").read_bytes() == b"local edit" and not (env.local / "a.txt").exists()
    assert env.remote_files() == env.local_files()
    assert sum(1 for method, path in env.state.log if path.startswith("/upload/")) == uploads_before

    # A pass with nothing to do, restarted from the saved cursor (a new process): the feed's one request, and
    # no listing (the folder's id is asked only when a change has to be placed).
    before = len(env.state.log)
    env.sync()
    assert env.state.log[before:] == [("GET", "/drive/v3/changes")]


def test_a_google_doc_is_skipped_in_a_two_way_task_and_never_touched(env: Env) -> None:
    doc = env.state.add_doc(env.folder(), "Minutes")
    (env.local / "Minutes").write_bytes(b"a local file with the Doc's name")
    done = env.sync()
    assert env.local_files() == {"Minutes": b"a local file with the Doc's name"}
    assert env.state.files[doc].mime_type.endswith("document") and not env.state.files[doc].trashed
    assert env.remote_files() == {}
    log = env.cli("log", "--task", "t", "--json").stdout
    assert "Google Docs document" in log, done.stderr


def test_a_revoked_sign_in_is_reported_and_nothing_changes(env: Env) -> None:
    (env.local / "keep.txt").write_bytes(b"k")
    env.sync()
    env.oauth.revoke_all()
    env.state.revoke()
    done = env.cli("sync", "t", ok=False)
    assert done.returncode != 0
    assert "sign-in" in done.stderr.lower() or "login" in done.stderr.lower()
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert (env.local / "keep.txt").exists()
