"""Baidu Netdisk tasks through the console script (`skysync`), against the Baidu fake: a token imported as
`rclone authorize` prints it, then what a user does on both sides and what must happen. Baidu is changed behind
the engine's back through the fake, as another device would; the fake's counters say what was transferred."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.baidu_server import BaiduFake

from .drive_e2e import MTIME, DriveEnv, assert_one_conflict_copy, new_local
from .servers import baidu as server


@dataclass
class Env(DriveEnv):
    fake: BaiduFake
    uk: int

    def remote(self) -> dict[str, bytes]:
        """Files under the task's folder, /apps/skysync/Sync."""
        return {k[len("Sync/") :]: v for k, v in self.fake.files(self.uk).items() if k.startswith("Sync/")}

    def put(self, path: str, data: bytes) -> None:
        self.fake.put(self.uk, f"Sync/{path}", data, MTIME)

    def transfers(self) -> tuple[int, int]:
        """(downloads, upload blocks) the fake has served so far."""
        return self.fake.counts["download"], self.fake.counts["superfile2"]


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    fake = server.fake()
    uk, access, refresh = fake.new_account(server.APP_NAME)
    fake.mkdir(uk, "Sync")  # the task's remote folder exists
    options = server.options_for(fake, uk, access, refresh)
    e = Env(*new_local(tmp_path), fake, uk)
    e.add_task("baidu", "b", {key: options[key] for key in (
        "secret_key", "app_key", "app_name", "api_url", "content_url", "auth_url", "token")})  # fmt: skip
    yield e


def test_the_token_goes_to_the_store_and_the_secret_key_to_secrets(env: Env) -> None:
    config = (env.home / "config.toml").read_text()
    assert str(env.uk) in config and server.SECRET_KEY not in config and "access_token" not in config
    secrets = (env.home / "secrets.toml").read_text()
    assert server.SECRET_KEY in secrets and "access_token" not in secrets
    assert (env.home / "tokens" / "b.json").stat().st_mode & 0o077 == 0
    env.cli("connection", "test", "b")


def test_two_way_with_conflicts_deletions_and_a_rename_in_baidu(env: Env) -> None:
    env.write("local.txt", b"from here")
    env.write("docs/both.txt", b"base")
    env.write("big.bin", os.urandom((4 << 20) + 123))  # two 4 MiB blocks
    env.put("remote.txt", b"from Baidu")
    env.sync()
    assert env.remote() == env.local_files()
    assert set(env.local_files()) == {"local.txt", "docs/both.txt", "big.bin", "remote.txt"}
    assert env.summary() == {}, "not idempotent"

    # Changed on both sides: the local version keeps the name, Baidu's becomes a conflict copy on both sides.
    env.write("docs/both.txt", b"local edit")
    env.put("docs/both.txt", b"remote edit")
    env.sync()
    assert_one_conflict_copy(env, env.remote(), b"local edit", b"remote edit")

    # Deleted here: deleted in Baidu; deleted in Baidu: deleted here.
    (env.local / "local.txt").unlink()
    env.fake.delete(env.uk, "Sync/remote.txt")
    env.sync()
    assert "local.txt" not in env.remote() and "remote.txt" not in env.local_files()
    assert env.remote() == env.local_files()

    # Renamed in Baidu (its md5 right, as for most files): a local rename, nothing transferred.
    before = env.transfers()
    with env.fake.lock:
        env.fake._operate(env.fake.accounts[env.uk], "move",
                          {"path": "/apps/skysync/Sync/big.bin", "dest": "/apps/skysync/Sync/docs",
                           "newname": "moved.bin"}, "fail")  # fmt: skip
    env.sync()
    assert "docs/moved.bin" in env.local_files() and "big.bin" not in env.local_files()
    assert env.transfers() == before
    assert env.summary() == {}


def test_a_wrong_md5_never_causes_a_transfer_or_a_conflict(env: Env) -> None:
    """The spec's FAQ: Baidu reports wrong hashes for many files, and a client that trusts them downloads the
    same file again and again. Here three files carry a wrong md5: one synced up then misreported, one another
    client put there, one already on both sides with the same bytes."""
    env.write("mine.txt", b"uploaded by skysync")
    env.sync()
    env.fake.corrupt_md5(env.uk, "Sync/mine.txt")
    env.put("theirs.txt", b"put there by another device")
    env.fake.corrupt_md5(env.uk, "Sync/theirs.txt")
    env.write("both.txt", b"the same bytes on both sides")
    env.put("both.txt", b"the same bytes on both sides")
    env.fake.corrupt_md5(env.uk, "Sync/both.txt")

    env.sync()  # theirs.txt is downloaded once (its bytes never match the listed md5); both.txt is compared once
    assert env.local_files()["theirs.txt"] == b"put there by another device"
    assert not [p for p in {**env.local_files(), **env.remote()} if "_Conflict_" in p]
    settled = env.transfers()
    os.chmod(env.local / "mine.txt", 0o600)  # only the ctime moves: no reason to look at the bytes
    for _ in range(5):
        assert env.summary() == {}
    assert env.transfers() == settled, "a wrong md5 made the engine transfer a file again"
    assert env.remote() == env.local_files()

    done = env.cli("task", "edit", "t", "--consistency-check", ok=False)
    assert done.returncode == 2 and "md5" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # Even when a hand-edited config turns it on, the wrong hashes are not compared.
    config = env.home / "config.toml"
    config.write_text(config.read_text().replace("consistency_check = false", "consistency_check = true"))
    assert "consistency_check = true" in config.read_text()
    assert env.summary() == {} and env.transfers() == settled

    # Renamed here: a move in Baidu, not an upload, though the listed md5 is not the file's.
    (env.local / "mine.txt").rename(env.local / "renamed.txt")
    moves = env.fake.counts["filemanager-move"]
    assert env.summary() == {"moved-remote": 1}
    assert env.transfers() == settled and env.fake.counts["filemanager-move"] == moves + 1
    assert env.remote() == env.local_files()


def test_an_entry_outside_the_app_folder_is_skipped_with_its_reason(env: Env) -> None:
    env.write("here.txt", b"h")
    env.write(".hidden", b"a name starting with a period")  # spec note 7: Baidu refuses it
    env.sync()
    assert ".hidden" not in env.remote() and "here.txt" in env.remote()
    env.fake.plant_outside(env.uk, "Sync", "/apps/another-app/stray.txt", b"not ours")
    env.sync()
    assert "stray.txt" not in env.local_files()
    log = env.cli("log", "--task", "t").stdout
    assert "/apps/another-app/stray.txt" in log and "outside the app folder /apps/skysync/" in log
    assert ".hidden  Baidu Cloud: the file name starts with '.'" in log
    assert env.summary() == {"skipped": 2}  # nothing to do
    assert env.cli("log", "--task", "t").stdout.count("stray.txt") == 1  # logged once, not at every pass
    assert env.remote() == {"here.txt": b"h"} and env.local_files() == {"here.txt": b"h", ".hidden":
                                                                       b"a name starting with a period"}


def test_a_full_account_says_so_with_its_quota(env: Env) -> None:
    with env.fake.lock:
        env.fake.accounts[env.uk].quota_total = 1000
    env.write("large.bin", b"x" * 5000)
    done = env.sync(ok=False)
    assert done.returncode == 1, done.stderr
    log = env.cli("log", "--task", "t").stdout
    assert "the Baidu storage space has reached its limit (0 bytes used of 1000 bytes)" in log
    assert "large.bin" not in env.remote()


def test_baidus_rate_limit_is_waited_out_by_the_pacer(env: Env) -> None:
    env.write("a.txt", b"a")
    env.fake.throttle(2)  # errno 31034 for the next two calls (the listing's)
    done = env.sync()
    assert "a.txt" in env.remote() and done.returncode == 0
    with env.fake.lock:
        assert env.fake._throttle == 0  # both refusals were met and waited out
    assert env.summary() == {}
