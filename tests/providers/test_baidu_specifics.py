"""What Baidu Netdisk does that the contract suite does not ask, against the Baidu fake: the app folder (spec note
3), Baidu's errno answers (rate limit, refused token, a full account, a taken name), a block cut mid-upload, the
md5 Baidu gets wrong, conditions re-read before writes, and the sign-in's wire details."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from engine.providers.baidu import BLOCK, BaiduProvider
from engine.providers.base import (
    Expect,
    FolderNotEmpty,
    InvalidOption,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
    TransientError,
)
from tests.fakes.baidu_server import BaiduFake

from .servers import baidu as server

MTIME = 1_650_000_000.0


@pytest.fixture
def fake() -> BaiduFake:
    return server.fake()


@pytest.fixture
def account(fake: BaiduFake) -> tuple[int, str, str]:
    return fake.new_account(server.APP_NAME)


@pytest.fixture
def provider(fake: BaiduFake, account: tuple[int, str, str]) -> Iterator[BaiduProvider]:
    p = BaiduProvider(server.options_for(fake, *account))
    yield p
    p.close()


def put(p: BaiduProvider, path: str, data: bytes, expect: Expect | None = None):
    return p.upload(path, io.BytesIO(data), len(data), MTIME, expect=expect)


def read(p: BaiduProvider, path: str) -> bytes:
    out = io.BytesIO()
    p.download(path, out)
    return out.getvalue()


# -- the app folder ------------------------------------------------------------------------------------------


def test_everything_lands_under_the_app_folder(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    put(provider, "a/b.txt", b"b")
    uk = account[0]
    with fake.lock:
        paths = set(fake.accounts[uk].items)
    assert "/apps/skysync/a/b.txt" in paths and not [p for p in paths if not p.startswith("/apps")]


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../escape.txt", "./x"])
def test_a_path_leaving_the_app_folder_is_refused_before_any_call(fake: BaiduFake, provider, path: str) -> None:
    before = sum(fake.counts.values())
    with pytest.raises(PermissionDenied) as info:
        put(provider, path, b"x")
    assert "outside the app folder /apps/skysync/" in str(info.value) and "note 3" in str(info.value)
    with pytest.raises(PermissionDenied):
        provider.delete(path)
    assert sum(fake.counts.values()) == before


def test_a_listed_entry_outside_the_folder_is_reported_not_listed(fake: BaiduFake, account, provider) -> None:
    put(provider, "Sync/in.txt", b"in")
    fake.plant_outside(account[0], "Sync", "/apps/other/out.txt", b"out")
    fake.plant_outside(account[0], "Sync", "/apps/skysync/Sync/../x.txt", b"dots")
    skipped: list[tuple[str, str]] = []
    listed = [e.path for e in provider.list_reporting("Sync", lambda path, reason: skipped.append((path, reason)))]
    assert listed == ["in.txt"]
    assert [path for path, _ in skipped] == ["/apps/other/out.txt", "/apps/skysync/Sync/../x.txt"]
    assert all("outside the app folder" in reason for _, reason in skipped)
    assert [e.path for e in provider.list_dir("Sync")] == ["in.txt"]


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_app_name_must_be_one_folder_name(name: str) -> None:
    with pytest.raises(InvalidOption):
        BaiduProvider.validate_options({"app_key": "k", "secret_key": "s", "app_name": name})


def test_another_app_name_is_another_pairing() -> None:
    one = BaiduProvider.location({"account_id": "1", "app_name": "a"})
    assert one != BaiduProvider.location({"account_id": "1", "app_name": "b"})


# -- Baidu's answers -----------------------------------------------------------------------------------------


def test_the_rate_limit_is_retryable_and_passes(fake: BaiduFake, provider: BaiduProvider) -> None:
    fake.throttle(1)
    with pytest.raises(TransientError) as info:
        provider.check()
    assert info.value.retryable and "31034" in str(info.value)
    provider.check()


def test_a_refused_token_is_refreshed_once_with_the_single_use_refresh_token(fake: BaiduFake, account) -> None:
    uk, _, refresh = account
    options = {**server.options_for(fake, uk, "121.revoked-access", refresh)}
    p = BaiduProvider(options)
    try:
        assert p.account_id() == str(uk)
        renewed = p.unsaved_token()
        assert renewed is not None and renewed.refresh_token not in (None, refresh)
        assert refresh not in fake.refresh  # spent: Baidu's refresh tokens are single-use
        assert fake.counts["token-refresh_token"] >= 1
    finally:
        p.close()


def test_a_full_account_names_its_quota(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    with fake.lock:
        fake.accounts[account[0]].quota_total = 100 * 1024**3
    put(provider, "small.txt", b"fits")
    with fake.lock:
        fake.accounts[account[0]].quota_total = 10
    with pytest.raises(QuotaExceeded) as info:
        put(provider, "big.txt", b"does not fit in ten bytes")
    assert "storage space has reached its limit (4 bytes used of 10 bytes)" in str(info.value)
    assert "big.txt" not in fake.files(account[0])


class Unread(io.BytesIO):
    """A source that must not be read: the size alone decides."""

    def read(self, *args: object) -> bytes:
        raise AssertionError("the file was read although its size rules it out")


@pytest.mark.parametrize(("vip_type", "limit_gb"), [(0, 4), (1, 10), (2, 20)])
def test_a_file_larger_than_the_membership_allows_is_refused_before_a_byte(fake: BaiduFake, account, vip_type: int,
                                                                           limit_gb: int) -> None:
    with fake.lock:
        fake.accounts[account[0]].vip_type = vip_type
    p = BaiduProvider(server.options_for(fake, *account))
    try:
        precreates = fake.counts["precreate"]
        with pytest.raises(QuotaExceeded) as info:
            p.upload("huge.iso", Unread(), limit_gb * 1024**3 + 1, 1_700_000_000)
        assert f"{limit_gb} GB per file" in str(info.value)
        assert fake.counts["precreate"] == precreates  # nothing was asked of Baidu
    finally:
        p.close()


def test_a_block_cut_mid_upload_is_sent_again_alone(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    data = os.urandom(2 * BLOCK + 11)  # three blocks
    before = fake.counts["superfile2"]
    fake.break_parts(1)
    uploaded = put(provider, "three-blocks.bin", data)
    assert fake.counts["superfile2"] - before == 4  # three blocks, one of them twice
    assert fake.files(account[0])["three-blocks.bin"] == data
    assert uploaded.hash == hashlib.md5(data).hexdigest() and uploaded.size == len(data)


def test_an_empty_file_is_created_without_blocks(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    before = fake.counts["superfile2"], fake.counts["precreate"]
    put(provider, "empty.txt", b"")
    assert (fake.counts["superfile2"], fake.counts["precreate"]) == before
    assert fake.files(account[0])["empty.txt"] == b""


def test_a_wrong_md5_is_listed_as_baidu_says_and_the_download_still_works(fake: BaiduFake, account,
                                                                         provider: BaiduProvider) -> None:
    put(provider, "f.txt", b"content")
    fake.corrupt_md5(account[0], "f.txt")
    listed = {e.path: e for e in provider.list("")}["f.txt"]
    assert listed.hash != hashlib.md5(b"content").hexdigest()
    assert provider.capabilities.hash_unreliable
    assert read(provider, "f.txt") == b"content"


def test_a_download_carries_baidus_user_agent(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    import urllib.error
    import urllib.request

    put(provider, "ua.txt", b"ua")
    assert read(provider, "ua.txt") == b"ua"
    fs_id = fake.item(account[0], "ua.txt").fs_id  # type: ignore[union-attr]
    plain = urllib.request.Request(f"{fake.url}/file/{fs_id}?access_token={account[1]}")
    with pytest.raises(urllib.error.HTTPError) as info:  # what any other client gets
        urllib.request.urlopen(plain)
    assert info.value.code == 403


# -- conditions ----------------------------------------------------------------------------------------------


def test_a_replacement_checks_the_version_it_saw(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    seen = put(provider, "c.txt", b"one")
    fake.put(account[0], "c.txt", b"another client", MTIME)
    with pytest.raises(PreconditionFailed):
        put(provider, "c.txt", b"mine", Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        put(provider, "c.txt", b"mine", Expect.absent())
    with pytest.raises(PreconditionFailed):
        provider.delete("c.txt", expect=Expect.entry(seen))
    assert fake.files(account[0])["c.txt"] == b"another client"


def test_a_file_delete_never_takes_a_folder(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    put(provider, "d/inside.txt", b"keep me")
    with pytest.raises(PreconditionFailed):
        provider.delete("d")
    with pytest.raises(FolderNotEmpty):
        provider.rmdir("d")
    assert fake.files(account[0]) == {"d/inside.txt": b"keep me"}


def test_a_move_onto_a_taken_name_changes_nothing(fake: BaiduFake, account, provider: BaiduProvider) -> None:
    src = put(provider, "m/a.txt", b"a")
    put(provider, "m/b.txt", b"b")
    with pytest.raises(PreconditionFailed):
        provider.move("m/a.txt", "m/b.txt", src)
    moved = provider.move("m/a.txt", "n/deep/c.txt", src)  # parents made as needed
    assert moved.revision == src.revision and moved.path == "n/deep/c.txt"
    assert fake.files(account[0]) == {"m/b.txt": b"b", "n/deep/c.txt": b"a"}
    with pytest.raises(NotFound):
        provider.copy("m/missing.txt", "m/elsewhere.txt")


# -- sign-in and rules ---------------------------------------------------------------------------------------


def test_the_sign_in_speaks_baidus_device_flow() -> None:
    spec = BaiduProvider.oauth_spec({"app_key": "k", "secret_key": "s", "auth_url": "http://127.0.0.1:1"})
    assert spec.device_url == "http://127.0.0.1:1/oauth/2.0/device/code?response_type=device_code"
    assert spec.token_url == "http://127.0.0.1:1/oauth/2.0/token"
    assert (spec.device_grant, spec.device_code_field, spec.scopes) == ("device_token", "code", ("basic,netdisk",))
    assert "s" not in repr(spec).replace("spec", "").replace("client", "").replace("token_url", "")
    with pytest.raises(InvalidOption):
        BaiduProvider.oauth_spec({"app_key": "k"})


def test_every_option_has_a_label_and_a_help_text() -> None:
    for spec in BaiduProvider.option_specs:
        assert spec.help and spec.title
    names = {spec.name: spec for spec in BaiduProvider.option_specs}
    assert names["secret_key"].secret and not names["app_key"].secret and names["app_name"].required
    assert "/apps/<app name>" in BaiduProvider.setup_note


def test_note_7_names_are_refused_for_baidu(tmp_path) -> None:
    skysync = os.path.join(os.path.dirname(sys.executable), "skysync")
    done = subprocess.run([skysync, "--home", str(tmp_path), "policy", "check", "--provider", "baidu", ".profile",
                           "a.baohe", "x.cache/y.txt", "what?.txt", "fine.txt"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.stdout.splitlines() == [
        ".profile: skipped: Baidu Cloud: the file name starts with '.'",
        "a.baohe: skipped: Baidu Cloud: the name 'a.baohe' is or contains '.baohe'",
        "x.cache/y.txt: skipped: Baidu Cloud: the name 'x.cache' is or contains '.cache'",
        "what?.txt: skipped: Baidu Cloud: the name 'what?.txt' contains the character '?'",
        "fine.txt: syncs",
    ]
