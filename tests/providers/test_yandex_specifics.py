"""Yandex Disk specifics against the fake (the contract suite covers the rest): times in custom_properties
(rclone's key and form, junk ignored, the service's time for files without one), 429/423 with Retry-After to the
pacer, paging past 1,000 entries, conditions the service checks, a refused token refreshed once, a revoked
sign-in, a full disk, and the device-code sign-in in Yandex's own request shape."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator

import pytest

from engine.auth import oauth
from engine.providers.base import (
    Expect,
    FolderNotEmpty,
    PreconditionFailed,
    QuotaExceeded,
    ReauthRequired,
    TransientError,
)
from engine.providers.yandex import MTIME_KEY, YandexProvider, parse_time, rfc3339
from tests.fakes.yandex_server import YandexFake

from .servers.yandex import options_for, token_json


@pytest.fixture
def fake() -> Iterator[YandexFake]:
    server = YandexFake().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def provider(fake: YandexFake) -> Iterator[YandexProvider]:
    p = YandexProvider(options_for(fake))
    try:
        yield p
    finally:
        p.close()


def put(p: YandexProvider, path: str, data: bytes, mtime: float = 1_600_000_000.5, expect: Expect | None = None):
    return p.upload(path, io.BytesIO(data), len(data), mtime, expect=expect)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2020-09-13T12:26:40Z", 1_600_000_000.0), ("2020-09-13T12:26:40.123456789Z", 1_600_000_000.123456789),
     ("2020-09-13T15:26:40.5+03:00", 1_600_000_000.5), (1_600_000_000, 1_600_000_000.0),
     (1_600_000_000_000, 1_600_000_000.0), ("inf", None), ("1e30", None), ("yesterday", None), ("", None),
     (None, None), ({"a": 1}, None)],
)
def test_times_in_custom_properties_are_read_or_ignored(text: object, expected: float | None) -> None:
    got = parse_time(text)
    assert got == pytest.approx(expected, abs=1e-6) if expected is not None else got is None


def test_times_are_written_as_rclone_writes_them() -> None:
    assert rfc3339(1_600_000_000.0) == "2020-09-13T12:26:40Z"
    assert rfc3339(1_600_000_000.25) == "2020-09-13T12:26:40.25Z"
    assert parse_time(rfc3339(1_700_000_000.123456)) == pytest.approx(1_700_000_000.123456, abs=1e-6)


def test_mtime_lives_in_custom_properties_and_a_file_without_it_shows_the_services_time(
    fake: YandexFake, provider: YandexProvider
) -> None:
    made = put(provider, "a/t.txt", b"when")
    assert fake.get("a/t.txt").props == {MTIME_KEY: "2020-09-13T12:26:40.5Z"}
    assert made.mtime == pytest.approx(1_600_000_000.5)
    node = fake.put("web.txt", b"from the browser")
    junk = fake.put("junk.txt", b"another tool", {MTIME_KEY: "inf"})
    listed = {e.path: e for e in provider.list("")}
    assert listed["web.txt"].mtime == pytest.approx(node.modified, abs=1)
    assert listed["junk.txt"].mtime == pytest.approx(junk.modified, abs=1)
    assert listed["a/t.txt"].hash == made.hash and len(made.hash) == 64  # sha256


@pytest.mark.parametrize(("status", "error"), [(429, "TooManyRequestsError"), (423, "DiskResourceLockedError"),
                                              (423, "DiskUploadTrafficLimitExceeded"), (503, "UnavailableError")])
def test_throttled_and_locked_answers_are_retryable_with_the_services_wait(
    fake: YandexFake, provider: YandexProvider, status: int, error: str
) -> None:
    fake.fail_next("/resources/upload", status, error, retry_after="7")
    with pytest.raises(TransientError) as info:
        put(provider, "x.txt", b"x")
    assert info.value.retryable and info.value.retry_after == 7.0
    assert "\n" not in str(info.value)
    put(provider, "x.txt", b"x")  # the next try goes through
    assert fake.get("x.txt").data == b"x"


def test_a_folder_of_2500_entries_is_read_in_three_pages(fake: YandexFake, provider: YandexProvider) -> None:
    for i in range(2500):
        fake.put(f"many/f{i:04d}", b"x")
    fake.calls.clear()
    names = {e.path for e in provider.list("many")}
    assert names == {f"f{i:04d}" for i in range(2500)}
    assert fake.calls["GET /v1/disk/resources"] == 3


def test_a_new_name_taken_meanwhile_is_not_overwritten(fake: YandexFake, provider: YandexProvider) -> None:
    fake.put("taken.txt", b"another client's")
    with pytest.raises(PreconditionFailed):
        put(provider, "taken.txt", b"ours", expect=Expect.absent())
    assert fake.get("taken.txt").data == b"another client's"


def test_a_version_changed_since_the_listing_is_neither_replaced_nor_deleted(
    fake: YandexFake, provider: YandexProvider
) -> None:
    seen = put(provider, "f.txt", b"seen")
    fake.put("f.txt", b"changed by another client")
    with pytest.raises(PreconditionFailed):
        put(provider, "f.txt", b"ours", expect=Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        provider.delete("f.txt", expect=Expect.entry(seen))
    assert fake.get("f.txt").data == b"changed by another client"
    current = next(e for e in provider.list("") if e.path == "f.txt")
    provider.delete("f.txt", expect=Expect.entry(current))
    assert fake.get("f.txt") is None and "f.txt" in fake.trash


def test_an_expired_access_token_is_refreshed_once(fake: YandexFake) -> None:
    issued = fake.issue_token(ttl=3600)
    options = {**options_for(fake), "token": token_json(str(issued["access_token"]), str(issued["refresh_token"]))}
    fake.oauth._access.pop(str(issued["access_token"]))  # the service forgot it before its expiry
    p = YandexProvider(options)
    try:
        assert p.account_id() == fake.uid
        assert fake.oauth.counts["refresh_token"] == 1
        p.check()
        assert fake.oauth.counts["refresh_token"] == 1
    finally:
        p.close()


def test_a_revoked_sign_in_is_reauth_required(fake: YandexFake, provider: YandexProvider) -> None:
    provider.check()
    fake.oauth.revoke_all()
    with pytest.raises(ReauthRequired) as info:
        list(provider.list(""))
    assert "\n" not in str(info.value)


def test_a_full_disk_is_quota_exceeded(fake: YandexFake, provider: YandexProvider) -> None:
    fake.total_space = 10
    with pytest.raises(QuotaExceeded):
        put(provider, "big.bin", b"x" * 11)
    assert fake.get("big.bin") is None


def test_device_sign_in_speaks_yandex_oauth(fake: YandexFake) -> None:
    spec = YandexProvider.oauth_spec(options_for(fake))
    grant = oauth.device_start(spec)
    assert grant.verification_uri == fake.url + "/device"  # read from Yandex's `verification_url`
    assert oauth.device_poll(spec, grant, 0).token is None  # authorization_pending
    assert fake.oauth.approve_device(grant.user_code)
    fake.oauth._devices[grant.device_code].last_poll = None
    token = oauth.device_poll(spec, grant, 0).token
    assert token is not None and fake.oauth.access_valid(token.access_token)
    expiry = token.expiry
    assert expiry is not None and expiry > dt.datetime.now(dt.UTC).timestamp()
    assert json.loads(token.to_json())["refresh_token"]


def test_an_upload_answered_202_is_waited_for_before_its_time_is_set(fake: YandexFake,
                                                                      provider: YandexProvider) -> None:
    fake.upload_delay = 0.3  # the real service answers 202 while it moves a large file into the Disk
    made = put(provider, "late.bin", b"accepted, not yet stored")
    node = fake.get("late.bin")
    assert node is not None and node.props == {MTIME_KEY: "2020-09-13T12:26:40.5Z"}
    assert made.size == len(b"accepted, not yet stored") and fake.calls["PATCH /v1/disk/resources"] >= 2


def test_a_walk_lists_several_folders_at_once(fake: YandexFake, provider: YandexProvider) -> None:
    for i in range(12):
        fake.put(f"tree/d{i:02d}/sub/f.txt", b"x")
    fake.list_delay = 0.05
    got = {e.path for e in provider.list("tree")}
    assert len(got) == 12 * 3 and "d11/sub/f.txt" in got
    assert fake.max_listing > 1  # with no change feed every poll lists everything: it must not be one by one


def test_a_folder_that_vanishes_during_the_walk_is_reported_not_taken_for_deleted(
    fake: YandexFake, provider: YandexProvider
) -> None:
    fake.put("tree/gone/inside.txt", b"x")
    fake.put("tree/kept/inside.txt", b"y")
    fake.fail_next("GET /v1/disk/resources?path=disk%3A%2Ftree%2Fgone", 404, "DiskNotFoundError")
    skipped: list[tuple[str, str]] = []
    got = {e.path for e in provider.list_reporting("tree", lambda path, reason: skipped.append((path, reason)))}
    assert got == {"gone", "kept", "kept/inside.txt"}
    assert [path for path, _ in skipped] == ["gone"]


def test_a_new_name_already_holding_these_very_bytes_is_taken_as_this_upload(
    fake: YandexFake, provider: YandexProvider
) -> None:
    fake.put("landed.txt", b"same bytes")  # an earlier attempt landed; its answer was lost
    made = put(provider, "landed.txt", b"same bytes", expect=Expect.absent())
    listed = next(e for e in provider.list("") if e.path == "landed.txt")
    assert made == listed and made.mtime == pytest.approx(1_600_000_000.5)


def test_a_folder_with_content_is_never_removed_and_a_move_never_replaces(
    fake: YandexFake, provider: YandexProvider
) -> None:
    fake.put("full/late.txt", b"put there after the listing")
    with pytest.raises(FolderNotEmpty):
        provider.rmdir("full")
    assert fake.get("full/late.txt") is not None
    src = put(provider, "a.txt", b"a")
    fake.put("b.txt", b"another client's b")
    with pytest.raises(PreconditionFailed):
        provider.move("a.txt", "b.txt", src)
    assert fake.get("b.txt").data == b"another client's b" and fake.get("a.txt").data == b"a"
    moved = provider.move("a.txt", "new/place/a.txt", src)  # folders made as needed
    assert moved.path == "new/place/a.txt" and fake.get("new/place/a.txt").props[MTIME_KEY]
