"""The four new drives (OneDrive over Graph, Box, Yandex Disk, Baidu Netdisk) against fakes that misbehave on
purpose (tests/fakes/hostile.py): names no folder can hold, a listing whose second page fails, a download cut or
refused mid-stream, a `skysync sync` killed with SIGKILL mid-upload, and a sign-in revoked for good. What must
hold each time: nothing is written outside the local folder, nothing is deleted that was not looked at, a failed
read fails (never reads as "empty" or "done"), a rerun ends with one copy of each file, and no token is ever
shown."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.providers import provider_class
from engine.providers.base import Provider, ProviderError, ReauthRequired
from tests.fakes.hostile import Faults

from .servers import baidu as baidu_server
from .servers import box as box_server
from .servers import onedrive as onedrive_server
from .servers import yandex as yandex_server

ROOT = pathlib.Path(__file__).resolve().parents[2]
SKYSYNC = str(pathlib.Path(sys.executable).with_name("skysync"))
KINDS = ["onedrive", "box", "yandex", "baidu"]
HOSTILE = ["..", ".", "a/b", "a\\b", "nul\x00x", "/abs", "bad\udcffname", ""]


@dataclass
class Drive:
    """One kind's fake behind one uniform face: where things are, how to misbehave, which tokens it issued."""

    kind: str
    fake: Any
    options: dict[str, str]
    faults: Faults
    page2: str  # a substring of the request that fetches a listing's second page
    tokens: list[str] = field(default_factory=list)
    ctx: Any = None

    def provider(self) -> Provider:
        return provider_class(self.kind)(self.options)

    def put(self, path: str, data: bytes) -> None:
        if self.kind == "onedrive":
            self.fake.put(onedrive_server.drive_of(self.options), path, data, 1_700_000_000.0)
        elif self.kind == "box":
            self.fake.put(path, data, 1_700_000_000.0)
        elif self.kind == "yandex":
            self.fake.put(path, data)
        else:
            self.fake.put(int(self.options["account_id"]), path, data, 1_700_000_000)

    def mkdir(self, path: str) -> None:
        if self.kind == "onedrive":
            self.fake.mkdirs(onedrive_server.drive_of(self.options), path)
        elif self.kind == "box":
            self.fake.mkdir(path)
        elif self.kind == "yandex":
            self.fake.mkdirs(path)
        else:
            self.fake.mkdir(int(self.options["account_id"]), path)

    def rename_raw(self, path: str, name: str) -> None:
        """The service lists the item at `path` under `name`, whatever it holds (no check of any kind)."""
        if self.kind == "onedrive":
            onedrive_server.drive_of(self.options).at(path).name = name
        elif self.kind == "box":
            self.fake.find(path).name = name
        elif self.kind == "yandex":
            self.fake.shown[path] = name
        else:
            self.fake.show_as(int(self.options["account_id"]), path, name)

    def files(self) -> dict[str, bytes]:
        """The files under Sync/, by path below it."""
        if self.kind == "onedrive":
            return self.fake.files(onedrive_server.drive_of(self.options), "Sync")
        if self.kind == "yandex":
            return {p[5:]: n.data for p, n in self.fake.nodes.items() if p.startswith("Sync/") and not n.is_dir}
        found = self.fake.files() if self.kind == "box" else self.fake.files(int(self.options["account_id"]))
        return {k[5:]: v for k, v in found.items() if k.startswith("Sync/")}

    def download_route(self, path: str) -> str:
        if self.kind == "onedrive":
            return "GET /download/"
        if self.kind == "box":
            return f"GET /2.0/files/{self.fake.find(path).id}/content"
        return "GET /download-target/" if self.kind == "yandex" else "GET /cdn/"

    def revoke(self) -> None:
        if self.kind == "baidu":
            self.fake.revoke(int(self.options["account_id"]))
        else:
            self.fake.oauth.revoke_all()


def _tokens(token_json: str) -> list[str]:
    token = json.loads(token_json)
    return [str(token[k]) for k in ("access_token", "refresh_token") if token.get(k)]


@contextlib.contextmanager
def drive_for(kind: str, tmp_path: pathlib.Path) -> Iterator[Drive]:
    if kind == "onedrive":
        fake = onedrive_server.fake()
        with onedrive_server.serve(tmp_path) as options:
            issued = fake.oauth.issue()
            options["token"] = onedrive_server.token_json(str(issued["access_token"]), str(issued["refresh_token"]))
            drive = Drive(kind, fake, options, fake.faults, "skiptoken")
            yield from _around(drive)
    elif kind == "box":
        with box_server.serve(tmp_path) as options:
            fake = box_server.fake()
            yield from _around(Drive(kind, fake, options, fake.faults, "&marker="))
    elif kind == "yandex":
        with yandex_server.serve(tmp_path) as options:
            fake = yandex_server.fake()
            yield from _around(Drive(kind, fake, options, fake.faults, "offset=1000"))
    else:
        with baidu_server.serve(tmp_path) as options:
            fake = baidu_server.fake()
            yield from _around(Drive(kind, fake, options, fake.faults, "start=1000"))


def _around(drive: Drive) -> Iterator[Drive]:
    drive.tokens = _tokens(drive.options["token"])
    drive.faults.clear()
    drive.faults.held.clear()
    drive.faults._release.clear()
    drive.mkdir("Sync")
    try:
        yield drive
    finally:
        drive.faults.clear()
        if drive.kind == "yandex":
            drive.fake.shown.clear()


@pytest.fixture(params=KINDS)
def drive(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Drive]:
    with drive_for(request.param, tmp_path) as found:
        yield found


def _no_token_in(drive: Drive, *texts: str) -> None:
    for text in texts:
        for token in drive.tokens:
            assert token not in text, f"a token is shown: {text[:300]!r}"


# -- names -------------------------------------------------------------------------------------------------


def test_a_listed_name_no_folder_can_hold_is_skipped_with_its_reason_and_nothing_below_it_is_listed(
        drive: Drive) -> None:  # fmt: skip
    drive.put("Sync/ok.txt", b"ok")
    drive.put("Sync/sub/inner.txt", b"inner")
    for i, name in enumerate(HOSTILE):
        if name == "" and drive.kind in ("baidu",):
            continue  # a Baidu path ending in "/" names the folder itself: no item can be listed so
        drive.put(f"Sync/h{i}", b"hostile")
        drive.rename_raw(f"Sync/h{i}", name)
    drive.put("Sync/evil/x.txt", b"below a hostile folder")
    drive.rename_raw("Sync/evil", "../evil")
    skipped: list[tuple[str, str]] = []
    listed = [e.path for e in drive.provider().list_reporting("Sync", lambda p, r: skipped.append((p, r)))]
    assert sorted(listed) == ["ok.txt", "sub", "sub/inner.txt"], (listed, skipped)
    assert len(skipped) >= len([n for n in HOSTILE if n or drive.kind != "baidu"]) + 1, skipped
    assert all(reason for _, reason in skipped)


# -- reads that fail part way ------------------------------------------------------------------------------


def test_a_listing_whose_second_page_fails_fails_and_never_reads_short(drive: Drive) -> None:
    for i in range(1001):  # the services' largest page is 1,000 items: the 1,001st is on page 2
        drive.put(f"Sync/f{i:04}", b"x")
    drive.faults.arm(drive.page2, "500", times=0)  # however often it is asked again
    seen: list[str] = []
    with pytest.raises(ProviderError) as failed:
        for entry in drive.provider().list_reporting("Sync", lambda p, r: None):
            seen.append(entry.path)
    assert len(seen) < 1001
    _no_token_in(drive, str(failed.value), repr(failed.value))


@pytest.mark.parametrize("action", ["truncate", "500"])
def test_a_download_cut_or_refused_mid_stream_fails(drive: Drive, action: str) -> None:
    data = os.urandom(256 << 10)
    drive.put("Sync/f.bin", data)
    drive.faults.arm(drive.download_route("Sync/f.bin"), action, times=0)
    out = io.BytesIO()
    with pytest.raises(ProviderError) as failed:
        drive.provider().download("Sync/f.bin", out)
    _no_token_in(drive, str(failed.value), repr(failed.value))
    drive.faults.clear()
    out = io.BytesIO()
    drive.provider().download("Sync/f.bin", out)
    assert out.getvalue() == data


class FullDisk(io.BytesIO):
    """The local temporary file of a download on a disk that fills up after the first 64 KiB."""

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > 64 << 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_a_full_local_disk_during_a_download_is_the_disk_error_not_a_network_one(drive: Drive) -> None:
    """The executor tells the user "the local disk is full" (and does not retry it as a dropped connection) only
    if the provider lets the disk's own OSError through."""
    drive.put("Sync/f.bin", os.urandom(256 << 10))
    with pytest.raises(OSError) as failed:
        drive.provider().download("Sync/f.bin", FullDisk())
    assert failed.value.errno == errno.ENOSPC and not isinstance(failed.value, ProviderError)


def test_a_revoked_sign_in_is_sign_in_needed_without_a_token_in_the_message(drive: Drive) -> None:
    drive.put("Sync/f.txt", b"x")
    provider = drive.provider()
    provider.options = {**provider.options}
    drive.revoke()
    with pytest.raises(ReauthRequired) as failed:
        list(provider.list_reporting("Sync", lambda p, r: None))
    _no_token_in(drive, str(failed.value), repr(failed.value))


# -- through the console script ----------------------------------------------------------------------------

CLI_OPTIONS = {
    "onedrive": ("client_id", "api_url", "auth_url", "ca_file", "drive_id"),
    "box": ("client_id", "client_secret", "api_url", "upload_url", "token_url", "auth_url"),
    "yandex": ("client_id", "client_secret", "api_url", "auth_url"),
    "baidu": ("app_key", "secret_key", "app_name", "api_url", "content_url", "auth_url"),
}
SMALL_PARTS = {"onedrive": ("chunk_size=320",), "box": ("chunk_size=1",), "yandex": (), "baidu": ()}
# The request of the chunked upload to hold (kill -9 there), and how many such requests go through first.
PART = {"onedrive": ("PUT /upload/", 2), "box": ("PUT /api/2.0/files/upload_sessions/", 2),
        "yandex": ("PUT /upload-target/", 0), "baidu": ("superfile2", 1)}  # fmt: skip


@dataclass
class Cli:
    drive: Drive
    home: pathlib.Path
    local: pathlib.Path

    def argv(self, *args: str) -> list[str]:
        return [SKYSYNC, "--home", str(self.home), *args]

    def run(self, *args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, cwd=ROOT, timeout=120, input=stdin,
                              env={**os.environ, "SKYSYNC_HOSTNAME": "testhost"})  # fmt: skip
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def local_files(self) -> dict[str, bytes]:
        return {p.relative_to(self.local).as_posix(): p.read_bytes() for p in self.local.rglob("*") if p.is_file()}

    def secrets_seen(self) -> list[str]:
        """Every token the drive issued to this connection so far: the first ones and those in the token store."""
        found = list(self.drive.tokens)

        def walk(value: object, key: str = "") -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, str(k))
            elif isinstance(value, list):
                for v in value:
                    walk(v, key)
            elif isinstance(value, str) and ("token" in key.lower() or key == "secret") and len(value) >= 8:
                found.append(value)

        for stored in (self.home / "tokens").glob("*.json"):
            walk(json.loads(stored.read_text()))
        return found


@pytest.fixture
def cli(drive: Drive, tmp_path: pathlib.Path) -> Cli:
    local = tmp_path / "local"
    local.mkdir()
    c = Cli(drive, tmp_path / "home", local)
    args = [arg for key in CLI_OPTIONS[drive.kind] for arg in ("--option", f"{key}={drive.options[key]}")]
    args += [arg for option in SMALL_PARTS[drive.kind] for arg in ("--option", option)]
    c.run("connection", "add", "c", "--provider", drive.kind, *args, "--option", "token=-",
          stdin=drive.options["token"] + "\n")  # fmt: skip
    c.run("task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/Sync",
          "--direction", "bidirectional")  # fmt: skip
    return c


def _no_secret_anywhere(cli: Cli, *outputs: str) -> None:
    """No token in these outputs, in `skysync log` and `status`, nor in any file of the home but the token store."""
    texts = [*outputs, cli.run("log", "--task", "t", ok=False).stdout, cli.run("status", ok=False).stdout]
    for path in cli.home.rglob("*"):
        if path.is_file() and path.parent.name != "tokens":
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    for secret in cli.secrets_seen():
        for text in texts:
            assert secret not in text, f"a token is shown: {secret[:6]}... in {text[:200]!r}"


def test_sync_killed_mid_upload_resumes_with_one_copy_and_nothing_lost(cli: Cli) -> None:
    data = os.urandom((9 << 20) + 777)  # parts on every kind (Baidu's blocks are 4 MiB)
    (cli.local / "big.bin").write_bytes(data)
    (cli.local / "small.txt").write_bytes(b"small")
    route, skip = PART[cli.drive.kind]
    cli.drive.faults.arm(route, "hold", skip=skip)
    proc = subprocess.Popen(cli.argv("sync", "t"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SKYSYNC_HOSTNAME": "testhost"})  # fmt: skip
    try:
        assert cli.drive.faults.held.wait(60), "the upload never reached the held part"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        cli.drive.faults.release()
        if proc.poll() is None:
            proc.kill()
    assert "big.bin" not in cli.drive.files() or cli.drive.kind == "yandex"  # Yandex: the whole file was sent
    done = cli.run("sync", "t")
    assert cli.drive.files() == {"big.bin": data, "small.txt": b"small"}, (sorted(cli.drive.files()),
                                                                          cli.run("log", "--task", "t").stdout)
    assert cli.local_files() == {"big.bin": data, "small.txt": b"small"}
    again = json.loads(cli.run("sync", "t", "--json").stdout)["tasks"][0]["summary"]
    assert again == {}, again
    _no_secret_anywhere(cli, done.stdout, done.stderr)


def test_a_sign_in_refused_for_good_is_one_line_sign_in_needed_and_nothing_is_deleted(cli: Cli) -> None:
    (cli.local / "keep.txt").write_bytes(b"keep")
    (cli.local / "gone-here.txt").write_bytes(b"deleted here")
    cli.drive.put("Sync/remote.txt", b"remote")
    cli.run("sync", "t")
    (cli.local / "gone-here.txt").unlink()  # a deletion the pass would send, were it allowed to run
    cli.drive.revoke()  # every call 401, and the refresh refused
    done = cli.run("sync", "t", ok=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sign-in needed" in lines[0], done.stderr
    assert cli.drive.files() == {"keep.txt": b"keep", "gone-here.txt": b"deleted here", "remote.txt": b"remote"}
    assert cli.local_files() == {"keep.txt": b"keep", "remote.txt": b"remote"}
    _no_secret_anywhere(cli, done.stdout, done.stderr)


def test_a_download_cut_mid_stream_leaves_nothing_in_place_and_hostile_names_write_nowhere(
        cli: Cli, tmp_path: pathlib.Path) -> None:  # fmt: skip
    data = os.urandom(1 << 20)
    cli.drive.put("Sync/f.bin", data)
    cli.drive.put("Sync/ok.txt", b"ok")
    for i, name in enumerate(["../escaped", "/abs", "a/b", "a\\b"]):
        cli.drive.put(f"Sync/h{i}", b"hostile")
        cli.drive.rename_raw(f"Sync/h{i}", name)
    (cli.local / "a").mkdir()
    (cli.local / "a" / "b").write_bytes(b"mine, not the listed 'a/b'")
    cli.drive.faults.arm(cli.drive.download_route("Sync/f.bin"), "truncate", times=0)
    done = cli.run("sync", "t", ok=False)
    assert done.returncode == 1, done.stderr
    every = sorted(p.relative_to(cli.local).as_posix() for p in cli.local.rglob("*"))
    # No partial f.bin, no temporary file left (ok.txt only where the cut is per file: the other fakes cut all).
    assert every in (["a", "a/b"], ["a", "a/b", "ok.txt"]), every
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "local"]  # nothing written beside the folder
    assert (cli.local / "a" / "b").read_bytes() == b"mine, not the listed 'a/b'"
    cli.drive.faults.clear()
    cli.run("sync", "t")
    assert cli.local_files() == {"f.bin": data, "ok.txt": b"ok", "a/b": b"mine, not the listed 'a/b'"}
    assert (tmp_path / "escaped").exists() is False
    _no_secret_anywhere(cli, done.stdout, done.stderr)


def test_box_an_empty_page_with_a_marker_to_go_on_is_not_the_end_of_a_listing(tmp_path: pathlib.Path) -> None:
    with drive_for("box", tmp_path) as box:
        for name in ("a.txt", "b.txt"):
            box.put(f"Sync/{name}", b"x")
        box.fake.empty_pages = 2  # Box filtered a page's items out after paging: more follow
        provider = box.provider()
        assert sorted(e.path for e in provider.list("Sync")) == ["a.txt", "b.txt"]
        box.fake.empty_pages = 2
        with pytest.raises(ProviderError):  # the folder is not empty: asked for one item, it reads on to find it
            provider.rmdir("Sync")
        box.fake.empty_pages = 10**6  # a service that never gets anywhere: the listing fails, it never ends short
        with pytest.raises(ProviderError):
            list(provider.list("Sync"))
