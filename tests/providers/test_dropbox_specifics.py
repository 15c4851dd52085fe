"""What only Dropbox has, against the fake that the real SDK talks to: throttling with Retry-After, upload
sessions cut mid-way and expired, the service's refusals, tokens refreshed and revoked, the change feed's
renames, deleted folders, resets and longpoll, conditions checked by the service, and case-insensitive names."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator

import pytest

from engine.providers.base import (
    ContainerNotFound,
    CursorExpired,
    Expect,
    FolderNotEmpty,
    PermissionDenied,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    ReauthRequired,
    TransientError,
)
from engine.providers.dropbox import DropboxProvider
from tests.fakes.dropbox_server import DropboxFake, content_hash

from .servers import dropbox as server

MTIME = 1_650_000_000.0


@pytest.fixture
def fake() -> DropboxFake:
    return server.fake()


@pytest.fixture
def account(fake: DropboxFake) -> Iterator[tuple[str, dict[str, str]]]:
    account, access, refresh = fake.new_account(server.APP_KEY)
    yield account, server.options_for(fake, account, access, refresh)


@pytest.fixture
def dbx(account: tuple[str, dict[str, str]]) -> Iterator[DropboxProvider]:
    provider = DropboxProvider({**account[1], "chunk_size": "1"})
    yield provider
    provider.close()


def put(p: DropboxProvider, path: str, data: bytes, expect: Expect | None = None) -> object:
    return p.upload(path, io.BytesIO(data), len(data), MTIME, expect=expect)


def read(p: DropboxProvider, path: str) -> bytes:
    out = io.BytesIO()
    p.download(path, out)
    return out.getvalue()


# -- throttling and sign-in ----------------------------------------------------------------------------------


def test_429_is_transient_with_the_wait_the_service_asked_for(fake: DropboxFake, dbx: DropboxProvider) -> None:
    fake.throttle(1, retry_after=7)
    with pytest.raises(TransientError) as info:
        dbx.check()
    assert info.value.retryable and info.value.retry_after == 7
    dbx.check()  # the next request goes through


def test_an_expired_access_token_is_refreshed_once(fake: DropboxFake, account: tuple[str, dict[str, str]]) -> None:
    name, options = account
    fake.expire_tokens(name)
    before = fake.calls["oauth2/token"]
    p = DropboxProvider(options)
    try:
        assert p.account_id() == name
        p.check()
    finally:
        p.close()
    assert fake.calls["oauth2/token"] == before + 1


def test_a_revoked_sign_in_is_reauth_required(fake: DropboxFake, account: tuple[str, dict[str, str]]) -> None:
    name, options = account
    fake.revoke(name)
    p = DropboxProvider(options)
    try:
        with pytest.raises(ReauthRequired) as info:
            p.check()
    finally:
        p.close()
    assert "sign in again" in str(info.value) or "sign-in" in str(info.value)
    assert options["token"] not in str(info.value)


def test_the_oauth_spec_is_pkce_without_redirect_and_offline(account: tuple[str, dict[str, str]]) -> None:
    spec = DropboxProvider.oauth_spec(account[1])
    assert spec.pkce and spec.redirect == "none" and spec.client_secret is None
    assert spec.extra_auth_params == {"token_access_type": "offline"}
    assert spec.token_url == account[1]["token_url"] and spec.auth_url == account[1]["auth_url"]
    assert DropboxProvider.identity(account[1]) == f"dropbox:{account[0]}"


# -- upload sessions -----------------------------------------------------------------------------------------


class Hooked(io.BytesIO):
    """A source that runs `hook` once, the first time more than `after` bytes have been read from it."""

    def __init__(self, data: bytes, after: int, hook: object) -> None:
        super().__init__(data)
        self.after, self.hook = after, hook

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if self.hook is not None and self.tell() > self.after:
            hook, self.hook = self.hook, None
            hook()  # type: ignore[operator]
        return chunk


@pytest.mark.parametrize("stored", [True, False], ids=["answer-lost", "chunk-lost"])
def test_a_session_cut_mid_way_resumes_where_the_service_is(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider, stored: bool
) -> None:
    data = os.urandom((3 << 20) + 12345)
    fake.cut_next_append(commit=stored)
    starts = fake.calls["files/upload_session/start"]
    entry = dbx.upload("big/cut.bin", io.BytesIO(data), len(data), MTIME)
    assert fake.calls["files/upload_session/start"] == starts + 1, "resumed, not started again"
    assert entry.hash == content_hash(data) and entry.size == len(data)
    assert read(dbx, "big/cut.bin") == data
    assert fake.files(account[0])["/big/cut.bin"] == data


def test_a_session_older_than_48_hours_is_started_again(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    data = os.urandom((3 << 20) + 99)
    starts = fake.calls["files/upload_session/start"]
    src = Hooked(data, 2 << 20, lambda: fake.advance(49 * 3600))  # the service ages while chunk 3 is read
    entry = dbx.upload("old/session.bin", src, len(data), MTIME)
    assert fake.calls["files/upload_session/start"] == starts + 2
    assert entry.hash == content_hash(data)
    assert fake.files(account[0])["/old/session.bin"] == data


def test_a_large_upload_keeps_client_modified(dbx: DropboxProvider) -> None:
    data = os.urandom((2 << 20) + 1)
    entry = dbx.upload("m.bin", io.BytesIO(data), len(data), MTIME + 0.7)
    listed = {e.path: e for e in dbx.list("")}["m.bin"]
    assert entry.mtime == listed.mtime == int(MTIME)
    assert entry.revision == listed.revision


# -- the service's refusals ----------------------------------------------------------------------------------


def test_no_space_is_quota_exceeded(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    fake.quota(account[0], 10)
    with pytest.raises(QuotaExceeded) as info:
        put(dbx, "too-big.bin", b"x" * 11)
    assert "no space" in str(info.value)
    with pytest.raises(QuotaExceeded):
        dbx.upload("big.bin", io.BytesIO(b"y" * (2 << 20)), 2 << 20, MTIME)


def test_refused_names_and_restricted_content_carry_dropbox_reason(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    fake.disallow("refused.txt")
    with pytest.raises(PermissionDenied) as info:
        put(dbx, "a/refused.txt", b"r")
    assert "disallowed_name" in str(info.value)
    put(dbx, "claimed.mp3", b"music")
    fake.restrict(account[0], "/claimed.mp3")
    with pytest.raises(PermissionDenied) as info:
        read(dbx, "claimed.mp3")
    assert "restricted_content" in str(info.value)


# -- conditions the service checks ---------------------------------------------------------------------------


def test_conditional_writes_and_deletes_keep_other_clients_versions(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    first = put(dbx, "c.txt", b"mine")
    fake.put(account[0], "/c.txt", b"theirs", MTIME + 9)
    with pytest.raises(PreconditionFailed):
        put(dbx, "c.txt", b"mine again", expect=Expect.entry(first))  # type: ignore[arg-type]
    with pytest.raises(PreconditionFailed):
        dbx.delete("c.txt", expect=Expect.entry(first))  # type: ignore[arg-type]
    with pytest.raises(PreconditionFailed):
        put(dbx, "c.txt", b"new", expect=Expect.absent())
    assert fake.files(account[0])["/c.txt"] == b"theirs"
    # An earlier attempt that landed before its answer was lost: the same bytes are there, the write is done.
    landed = put(dbx, "c.txt", b"theirs", expect=Expect.absent())
    assert landed.hash == content_hash(b"theirs")  # type: ignore[attr-defined]
    current = {e.path: e for e in dbx.list("")}["c.txt"]
    dbx.delete("c.txt", expect=Expect.entry(current))
    assert "/c.txt" not in fake.files(account[0])


def test_a_delete_never_takes_a_folder_that_took_the_name(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    put(dbx, "x/inside.txt", b"i")
    with pytest.raises(PreconditionFailed):
        dbx.delete("x")
    with pytest.raises(FolderNotEmpty):
        dbx.rmdir("x")
    assert fake.files(account[0]) == {"/x/inside.txt": b"i"}


def test_move_refuses_a_source_changed_since_listed(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    listed = put(dbx, "s.txt", b"one")
    fake.put(account[0], "/s.txt", b"two")
    with pytest.raises(PreconditionFailed):
        dbx.move("s.txt", "t.txt", listed)  # type: ignore[arg-type]
    assert set(fake.files(account[0])) == {"/s.txt"}
    put(dbx, "taken.txt", b"t")
    with pytest.raises(ProviderError):
        dbx.move("s.txt", "taken.txt")
    assert fake.files(account[0])["/taken.txt"] == b"t"


# -- case-insensitive names ----------------------------------------------------------------------------------


def test_one_name_whatever_the_case_and_case_only_renames(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    put(dbx, "Docs/Report.TXT", b"v1")
    second = put(dbx, "docs/report.txt", b"v2")  # the same file: its name keeps the case it was made with
    listed = {e.path: e for e in dbx.list("")}
    assert set(listed) == {"Docs", "Docs/Report.TXT"}
    assert listed["Docs/Report.TXT"].id == second.id  # type: ignore[attr-defined]
    assert read(dbx, "DOCS/REPORT.txt") == b"v2"
    moved = dbx.move("Docs/Report.TXT", "Docs/report.txt", listed["Docs/Report.TXT"])
    assert moved.path == "Docs/report.txt" and moved.id == second.id  # type: ignore[attr-defined]
    assert set(fake.files(account[0])) == {"/Docs/report.txt"}
    assert {e.path for e in dbx.list("docs")} == {"report.txt"}


def test_children_take_the_case_of_their_listed_folder(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    dbx.mkdir("Photos")
    put(dbx, "PHOTOS/a.jpg", b"a")
    listed = {e.path for e in dbx.list("")}
    assert listed == {"Photos", "Photos/a.jpg"}


# -- change feed ---------------------------------------------------------------------------------------------


def test_changes_rename_keeps_the_id_and_a_deleted_folder_is_one_path(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    before = put(dbx, "feed/a.txt", b"a")
    put(dbx, "feed/sub/deep.txt", b"d")
    cursor = dbx.changes_start("feed")
    dbx.move("feed/a.txt", "feed/b.txt", before)  # type: ignore[arg-type]
    fake.put(account[0], "/feed/sub/deep.txt", b"changed")
    dbx.delete("feed/sub/deep.txt")
    dbx.rmdir("feed/sub")
    changes, cursor = dbx.changes("feed", cursor)
    seen = list(changes)
    upserts = {c.path: c for c in seen if not c.deleted}
    deletions = {c.path: c for c in seen if c.deleted}
    assert upserts["b.txt"].id == before.id  # type: ignore[attr-defined]
    assert upserts["b.txt"].entry is not None and upserts["b.txt"].entry.path == "b.txt"
    assert set(deletions) == {"a.txt", "sub"}  # the folder once, its file implied
    assert all(c.id == c.path for c in deletions.values())
    again, _ = dbx.changes("feed", cursor)
    assert list(again) == []


def test_a_reset_cursor_is_cursor_expired_and_a_missing_folder_is_container_not_found(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    put(dbx, "f/x.txt", b"x")
    cursor = dbx.changes_start("f")
    fake.reset_cursors(account[0])
    with pytest.raises(CursorExpired):
        dbx.changes("f", cursor)
    with pytest.raises(ContainerNotFound):
        dbx.changes_start("nowhere")
    with pytest.raises(ContainerNotFound):
        list(dbx.list_dir("f/x.txt"))


def test_longpoll_wakes_on_a_change_without_listing(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    assert dbx.capabilities.wait_for_changes
    put(dbx, "w/start.txt", b"s")
    cursor = dbx.changes_start("w")
    listings = fake.calls["files/list_folder"] + fake.calls["files/list_folder/continue"]
    timer = threading.Timer(0.5, lambda: fake.put(account[0], "/w/new.txt", b"n"))
    began = time.monotonic()
    timer.start()
    changed, backoff = dbx.wait_changes(cursor, 30)
    timer.join()
    assert changed and backoff == 0
    assert time.monotonic() - began < 5
    assert fake.calls["files/list_folder"] + fake.calls["files/list_folder/continue"] == listings
    outside = dbx.changes_start("w")
    fake.put(account[0], "/elsewhere.txt", b"e")  # outside the folder: no wake-up for it
    assert list(dbx.changes("w", outside)[0]) == []


def test_longpoll_with_nothing_new_says_so_and_passes_on_the_backoff_asked_for(
    fake: DropboxFake, dbx: DropboxProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "longpoll_hold", 0.3)
    monkeypatch.setattr(fake, "longpoll_backoff", 7)
    put(dbx, "q/start.txt", b"s")
    cursor = dbx.changes_start("q")
    assert dbx.wait_changes(cursor, 1) == (False, 7.0)  # 1 s asks Dropbox for its shortest wait (30 s)


def test_longpoll_on_a_reset_feed_is_an_expired_cursor(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    cursor = dbx.changes_start("")
    fake.reset_cursors(account[0])
    with pytest.raises(CursorExpired):
        dbx.wait_changes(cursor, 30)


def test_files_dropbox_cannot_download_are_skipped_with_a_reason(
    fake: DropboxFake, account: tuple[str, dict[str, str]], dbx: DropboxProvider
) -> None:
    put(dbx, "ok.txt", b"ok")
    put(dbx, "paper.paper", b"")
    fake.not_downloadable(account[0], "/paper.paper")
    skipped: list[tuple[str, str]] = []
    listed = [e.path for e in dbx.list_reporting("", lambda path, why: skipped.append((path, why)))]
    assert listed == ["ok.txt"]
    assert [p for p, _ in skipped] == ["paper.paper"] and "cannot download" in skipped[0][1]
