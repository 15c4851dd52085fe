"""Two-way Yandex Disk tasks through the console script (`skysync`), against the Yandex Disk fake: a token given
as `rclone authorize` prints it (into the token store, the account's uid read with it), then what a user does on
both sides. The Disk is changed behind the engine's back through the fake, as the web interface or another
device would."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from engine.providers.yandex import MTIME_KEY, rfc3339
from tests.fakes.yandex_server import YandexFake

from .drive_e2e import MTIME, DriveEnv, assert_one_conflict_copy, new_local
from .servers.yandex import options_for


@dataclass
class Env(DriveEnv):
    fake: YandexFake

    def remote(self) -> dict[str, bytes]:
        with self.fake._lock:
            return {p[len("Sync/"):]: n.data for p, n in self.fake.nodes.items()
                    if p.startswith("Sync/") and not n.is_dir}  # fmt: skip

    def put(self, path: str, data: bytes, mtime: float | None = MTIME) -> None:
        self.fake.put(f"Sync/{path}", data, {MTIME_KEY: rfc3339(mtime)} if mtime is not None else None)

    def uploads(self) -> int:
        return sum(n for route, n in self.fake.calls.items() if route.startswith("PUT /upload-target/"))

    def transfers(self) -> int:
        return sum(n for route, n in self.fake.calls.items() if "-target/" in route)


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    fake = YandexFake().start()
    try:
        fake.mkdirs("Sync")
        options = options_for(fake)
        e = Env(*new_local(tmp_path), fake)
        e.add_task("yandex", "y", {key: options[key] for key in ("client_id", "client_secret", "api_url", "auth_url")},
                   piped=("token", options["token"]))  # fmt: skip
        yield e
    finally:
        fake.stop()


def test_the_token_goes_to_the_token_store_and_the_uid_to_the_config(env: Env) -> None:
    config = (env.home / "config.toml").read_text()
    assert env.fake.uid in config and "access_token" not in config
    secrets = (env.home / "secrets.toml").read_text()
    assert "yandex-secret" in secrets and "access_token" not in secrets  # the client secret, never the token
    stored = env.home / "tokens" / "y.json"
    assert stored.exists() and stored.stat().st_mode & 0o077 == 0
    tested = env.cli("connection", "test", "y").stdout
    assert "neither list nor restore earlier versions" in tested, tested  # conflicts keep both copies


def test_two_way_with_times_conflicts_and_deletions_both_ways(env: Env) -> None:
    env.write("local.txt", b"from here")
    env.write("docs/both.txt", b"base")
    env.put("remote.txt", b"from Yandex")
    env.put("web.txt", b"uploaded in the browser", mtime=None)  # no time of ours: the service's is used
    env.cli("sync", "t")
    assert env.local_files() == env.remote() == {"local.txt": b"from here", "docs/both.txt": b"base",
                                                 "remote.txt": b"from Yandex", "web.txt": b"uploaded in the browser"}
    # The time travels in custom_properties both ways.
    assert (env.local / "remote.txt").stat().st_mtime == MTIME
    node = env.fake.get("Sync/local.txt")
    assert node is not None and node.props[MTIME_KEY] == rfc3339(MTIME + 100)
    moved = env.transfers()
    assert env.summary() == {}, "a second pass must have nothing to do"
    assert env.transfers() == moved

    # Changed on both sides: the local version keeps the name, the Disk's becomes a conflict copy on both sides.
    env.write("docs/both.txt", b"local edit")
    env.put("docs/both.txt", b"remote edit", MTIME + 50)
    env.cli("sync", "t")
    assert_one_conflict_copy(env, env.remote(), b"local edit", b"remote edit")

    # Deleted here: deleted on the Disk, into its trash. Deleted on the Disk: deleted here.
    (env.local / "local.txt").unlink()
    with env.fake._lock:
        del env.fake.nodes["Sync/remote.txt"]
    env.cli("sync", "t")
    assert "local.txt" not in env.remote() and "remote.txt" not in env.local_files()
    assert "Sync/local.txt" in env.fake.trash
    assert env.remote() == env.local_files()
    assert env.summary() == {}


def test_a_throttled_or_locked_file_fails_alone_and_syncs_at_the_next_pass(env: Env) -> None:
    env.write("a.txt", b"a")
    env.write("b.txt", b"b")
    env.fake.fail_next("GET /v1/disk/resources/upload?path=disk%3A%2FSync%2Fa.txt", 423, "DiskResourceLockedError",
                       retry_after="0", times=10)  # fmt: skip
    done = env.cli("sync", "t", ok=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Yandex Disk has it locked" in env.cli("log", "--task", "t").stdout
    assert env.remote() == {"b.txt": b"b"}
    with env.fake._lock:
        env.fake._faults.clear()
    env.cli("sync", "t")
    assert env.remote() == env.local_files()


def test_a_revoked_sign_in_stops_the_pass_and_changes_nothing(env: Env) -> None:
    env.write("a.txt", b"a")
    env.cli("sync", "t")
    env.fake.oauth.revoke_all()
    env.write("b.txt", b"b")
    done = env.cli("sync", "t", ok=False)
    assert done.returncode == 2 and "connection login y" in done.stderr, done.stderr
    assert env.remote() == {"a.txt": b"a"}


def test_renames_both_ways_move_without_sending_the_bytes_up_again(env: Env) -> None:
    env.write("docs/report.txt", b"a long report")
    env.write("photos/a.jpg", b"jpeg bytes")
    env.cli("sync", "t")
    uploads = env.uploads()

    # Renamed here: moved on the Disk (a server-side move), nothing uploaded.
    (env.local / "docs/report.txt").rename(env.local / "docs/final report.txt")
    env.cli("sync", "t")
    assert env.remote() == env.local_files()
    assert "docs/final report.txt" in env.remote() and "docs/report.txt" not in env.remote()
    assert env.uploads() == uploads
    assert env.fake.calls["POST /v1/disk/resources/move"] >= 1

    # Renamed on the Disk (no ids, no feed): the new name arrives here and the old one goes, content intact.
    with env.fake._lock:
        env.fake.nodes["Sync/photos/b.jpg"] = env.fake.nodes.pop("Sync/photos/a.jpg")
    env.cli("sync", "t")
    assert env.local_files() == env.remote() and env.local_files()["photos/b.jpg"] == b"jpeg bytes"
    assert env.summary() == {}
