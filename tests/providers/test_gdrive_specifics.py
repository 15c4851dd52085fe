"""Google Drive beyond the shared contract: names Drive allows and a disk does not, resumable uploads cut and
resumed, the change feed's cost, shared drives, rate limits, quota, the Workspace policy error and tokens that
are refused, all against the protocol fake that the real google-api-python-client talks to."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterator

import pytest

from engine.providers.base import (
    ContainerNotFound,
    CursorExpired,
    Expect,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
    ReauthRequired,
    RemoteEntry,
    TransientError,
)
from engine.providers.gdrive import DRIVE_SDK_DISABLED, GDriveProvider
from tests.fakes.gdrive_server import DriveState, running
from tests.fakes.oauth_server import FakeOAuthServer
from tests.providers.servers.gdrive import token_json

MTIME = 1_650_000_000.0


@pytest.fixture
def drive() -> Iterator[tuple[str, DriveState]]:
    with running() as served:
        yield served


def make(url: str, state: DriveState, **extra: str) -> GDriveProvider:
    options = {"client_id": "test-client", "api_url": url, "token": token_json(state.issue_token()),
               "account_id": state.permission_id, "token_url": "http://127.0.0.1:9/token", **extra}
    return GDriveProvider(options)


def put(p: GDriveProvider, path: str, data: bytes, **kw: object) -> RemoteEntry:
    return p.upload(path, io.BytesIO(data), len(data), MTIME, **kw)  # type: ignore[arg-type]


def test_names_drive_allows_are_skipped_with_reasons_and_never_listed(drive: tuple[str, DriveState]) -> None:
    url, state = drive
    p = make(url, state)
    put(p, "d/same.txt", b"first")
    folder = state.find("d")
    assert folder is not None
    second = state.add_file(folder.id, "same.txt", b"second, uploaded later elsewhere")
    state.add_file(folder.id, "a/b.txt", b"slash")
    state.add_doc(folder.id, "Minutes")
    state.add_doc(folder.id, "Budget", "spreadsheet")
    state.add_shortcut(folder.id, "link", folder.id)
    skipped: dict[str, str] = {}
    listed = {e.path: e for e in p.list_reporting("", lambda path, reason: skipped.__setitem__(path, reason))}
    assert set(listed) == {"d", "d/same.txt"}
    assert p.download("d/same.txt", io.BytesIO()).id == listed["d/same.txt"].id  # the oldest, by id
    assert second in skipped["d/same.txt"]
    assert "'/'" in skipped["d/a\uff0fb.txt"]
    assert "Google Docs document" in skipped["d/Minutes"] and "Sheets" in skipped["d/Budget"]
    assert "shortcut" in skipped["d/link"]
    assert set(e.path for e in p.list_dir("d")) == {"same.txt"}


def test_upload_of_more_than_three_chunks_is_cut_and_resumed_from_the_servers_offset(
    drive: tuple[str, DriveState],
) -> None:
    url, state = drive
    p = make(url, state, chunk_size="256K")
    data = os.urandom(4 * 256 * 1024 + 12345)  # five chunks
    # The third chunk is cut twice in a row (httplib2 resends once by itself), keeping 100,000 of its bytes:
    # the provider must ask the server what it holds and go on from that offset, inside its chunk.
    state.cut_uploads(2, keep=100_000, from_offset=2 * 256 * 1024)
    entry = put(p, "big/file.bin", data)
    assert entry.size == len(data) and entry.hash == hashlib.md5(data).hexdigest()
    out = io.BytesIO()
    p.download("big/file.bin", out)
    assert out.getvalue() == data
    puts = [path for method, path in state.log if method == "PUT"]
    # Two chunks, the third cut twice, one status query, then two chunks from the offset inside the third
    # (going back to the chunk's start would take three).
    assert len(puts) == 7 and not state.cuts
    assert entry.mtime == MTIME


def test_a_no_change_poll_of_a_ten_thousand_file_drive_is_one_request(drive: tuple[str, DriveState]) -> None:
    url, state = drive
    state.populate("root", [f"photos/{i // 1000:02d}/img{i:05d}.jpg" for i in range(10_000)])
    p = make(url, state)
    cursor = p.changes_start("")
    before = state.count()
    changes, again = p.changes("", cursor)
    assert list(changes) == [] and again == cursor
    assert state.count() - before == 1
    # A fresh provider (a restart) with the saved cursor: still one request.
    fresh = make(url, state)
    before = state.count()
    assert list(fresh.changes("", cursor)[0]) == []
    assert state.count() - before == 1


def test_changes_carry_parent_and_name_and_a_rename_keeps_the_id(drive: tuple[str, DriveState]) -> None:
    url, state = drive
    p = make(url, state)
    made = put(p, "f/a.txt", b"a")
    cursor = p.changes_start("")
    state.rename(made.id or "", "b.txt")
    doc = state.add_doc(p.folder_id("f") or "", "Notes")
    changes, cursor = p.changes("", cursor)
    seen = list(changes)
    assert [(c.id, c.parent_id, c.name, c.path) for c in seen] == [(made.id, p.folder_id("f"), "b.txt", None)]
    assert doc not in {c.id for c in seen}  # a Doc is left out of the feed, as the listing skips it
    p.delete("f/b.txt")
    changes, _ = p.changes("", cursor)
    assert [(c.id, c.deleted) for c in changes] == [(made.id, True)]
    state.expire_changes()
    with pytest.raises(CursorExpired):
        p.changes("", cursor)


def test_a_shared_drive_by_name_holds_the_connection(drive: tuple[str, DriveState]) -> None:
    url, state = drive
    team = state.add_drive("Team")
    mine = make(url, state)
    put(mine, "mine.txt", b"my drive")
    shared = make(url, state, shared_drive="Team")
    shared.check()
    entry = put(shared, "docs/report.txt", b"shared")
    assert {e.path for e in shared.list("")} == {"docs", "docs/report.txt"}
    assert {e.path for e in mine.list("")} == {"mine.txt"}
    assert shared.folder_id("") == team
    cursor = shared.changes_start("")
    put(mine, "mine2.txt", b"not in the shared drive's feed")
    shared.delete("docs/report.txt")
    assert [(c.id, c.deleted) for c in shared.changes("", cursor)[0]] == [(entry.id, True)]
    with pytest.raises(ContainerNotFound):
        make(url, state, shared_drive="Nobody's").check()


def test_rate_limits_carry_retry_after_and_server_errors_on_reads_are_retried(
    drive: tuple[str, DriveState],
) -> None:
    url, state = drive
    p = make(url, state)
    put(p, "x.txt", b"x")
    state.fail_next(403, "userRateLimitExceeded", retry_after=7)
    with pytest.raises(TransientError) as info:
        list(p.list(""))
    assert info.value.retry_after == 7 and info.value.retryable
    state.fail_next(429, "rateLimitExceeded")
    with pytest.raises(TransientError):
        list(p.list(""))
    state.fail_next(503, "backendError")
    assert {e.path for e in p.list("")} == {"x.txt"}  # one 5xx on a read: tried again


def test_quota_and_the_workspace_policy_are_one_clear_error(drive: tuple[str, DriveState]) -> None:
    url, state = drive
    p = make(url, state)
    state.quota = 10
    with pytest.raises(QuotaExceeded) as quota:
        put(p, "too-big.bin", b"x" * 11)
    assert "quota" in str(quota.value)
    state.quota = None
    state.domain_policy = True
    with pytest.raises(PermissionDenied) as policy:
        p.check()
    assert DRIVE_SDK_DISABLED in str(policy.value) and "\n" not in str(policy.value)


def test_rereads_keep_another_clients_version(drive: tuple[str, DriveState]) -> None:
    url, state = drive
    p = make(url, state)
    seen = put(p, "c.txt", b"ours")
    found = state.find("c.txt")
    assert found is not None
    state.write(found.id, b"theirs, written since the listing")
    with pytest.raises(PreconditionFailed):
        put(p, "c.txt", b"ours again", expect=Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        p.delete("c.txt", expect=Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        put(p, "c.txt", b"new", expect=Expect.absent())
    with pytest.raises(PreconditionFailed):
        p.move("c.txt", "d.txt", seen)
    out = io.BytesIO()
    p.download("c.txt", out)
    assert out.getvalue() == b"theirs, written since the listing"


def test_a_refused_token_is_refreshed_once_and_a_revoked_sign_in_needs_a_login() -> None:
    oauth = FakeOAuthServer(rotate=False).start()
    try:
        state = DriveState(token_check=oauth.access_valid)
        with running(state) as (url, _):
            issued = oauth.issue()
            token = {**issued, "expiry": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))}
            p = GDriveProvider({"client_id": oauth.client_id, "api_url": url, "token_url": oauth.token_url,
                                "token": json.dumps(token)})
            assert p.account_id() == state.permission_id
            # The access token dies early (revoked on the service); the refresh token still works.
            with oauth._lock:
                oauth._access.pop(str(issued["access_token"]))
            p.check()
            assert oauth.counts["refresh_token"] == 1
            oauth.revoke_all()
            with pytest.raises(ReauthRequired):
                p.check()
    finally:
        oauth.stop()
