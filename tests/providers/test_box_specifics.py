"""Box specifics against the Box fake (tests/fakes/box_server.py): single-use refresh tokens refreshed by two
processes at once, a dead refresh token as ReauthRequired, 429 with Retry-After, bookmarks and Box Notes left out
with the spec's reason, the account's largest file enforced before a byte is sent, conditional writes checked by
Box, a part of an upload session cut mid-way sent again, and the /events feed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.auth.tokens import Token, TokenStore
from engine.providers.base import (
    ChangeWait,
    CursorExpired,
    Expect,
    PreconditionFailed,
    QuotaExceeded,
    ReauthRequired,
    TransientError,
)
from engine.providers.box import BOOKMARK, BOXNOTE, BoxProvider
from tests.fakes.box_server import BoxFake

from .servers.box import small_parts

ROOT = pathlib.Path(__file__).resolve().parents[2]
MTIME = 1_650_000_000.0


@pytest.fixture
def fake() -> Iterator[BoxFake]:
    box = small_parts(BoxFake().start())
    try:
        yield box
    finally:
        box.stop()


def provider(fake: BoxFake, **extra: str) -> BoxProvider:
    return BoxProvider({**fake.options(), **extra})


def put(p: BoxProvider, path: str, data: bytes, expect: Expect | None = None):  # type: ignore[no-untyped-def]
    return p.upload(path, io.BytesIO(data), len(data), MTIME, expect=expect)


# -- sign-in -------------------------------------------------------------------------------------------------

SCRIPT = """
import sys, time
from engine.auth.tokens import TokenStore
from engine.providers.box import BoxProvider
home, options, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
import json
p = BoxProvider(json.loads(options))
p.attach_tokens(TokenStore(home, "c"))
while time.time() < start_at:
    time.sleep(0.001)
print(p.account_id())
print(p.access_token())
"""


def test_two_processes_refreshing_at_once_leave_exactly_one_valid_refresh_token(tmp_path, fake) -> None:
    """Box kills a refresh token as it is used: without the token store's cross-process lock the second process
    would present a dead one (and the first one's new token would be the only valid one, or none would be)."""
    fake.oauth.refresh_delay = 0.5  # a slow refresh: the other process arrives while it runs
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_json(fake.new_token(access_ttl=0)))  # expired: both processes must refresh first
    options = {k: v for k, v in fake.options(token="none").items() if k != "token"}  # no second token issued
    start_at = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), json.dumps(options), str(start_at)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    for out, _ in outs:
        account, access = out.split()
        assert account == "11446498" and fake.oauth.access_valid(access)
    assert fake.oauth.valid_refresh_tokens() == {store.load().refresh_token}  # exactly one, and it is saved
    assert fake.oauth.counts["refresh_token"] == 1 and fake.oauth.counts["refresh_refused"] == 0


def test_a_refused_token_is_refreshed_once_and_a_dead_refresh_token_is_reauth_required(tmp_path, fake) -> None:
    p = BoxProvider({k: v for k, v in fake.options(token="none").items() if k != "token"})
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_json(fake.new_token()))
    p.attach_tokens(store)
    p.check()
    fake.oauth._access.clear()  # Box dropped the access token early (a password change...)
    p.check()  # a 401, one refresh through the store, the request again
    assert fake.oauth.counts["refresh_token"] == 1
    fake.oauth.revoke_all()
    with pytest.raises(ReauthRequired):
        p.check()


def test_a_429_carries_boxs_retry_after(fake) -> None:
    p = provider(fake)
    fake.throttle(1, retry_after=7)
    with pytest.raises(TransientError) as info:
        p.check()
    assert info.value.retry_after == 7.0 and info.value.retryable
    p.check()  # the SDK did not retry on its own: the throttle was one request


# -- what is not synced -----------------------------------------------------------------------------------------


def test_bookmarks_and_box_notes_are_left_out_with_the_specs_reason(fake) -> None:
    p = provider(fake)
    fake.put("d/real.txt", b"r")
    fake.add_web_link("d/Company site")
    fake.put("d/minutes.boxnote", b'{"doc": "a Box Note"}')
    skipped: list[tuple[str, str]] = []
    listed = {e.path for e in p.list_reporting("d", lambda path, reason: skipped.append((path, reason)))}
    assert listed == {"real.txt"}
    assert sorted(skipped) == [("Company site", BOOKMARK), ("minutes.boxnote", BOXNOTE)]
    assert "bookmark" in BOOKMARK and "bookmark" in BOXNOTE  # the spec's words: "The type of the file is bookmark"
    assert {e.path for e in p.list_dir("d")} == {"real.txt"}
    # Nothing below a folder that holds one is removed: the folder is not empty.
    p.delete("d/real.txt")
    with pytest.raises(Exception, match="not empty"):
        p.rmdir("d")
    assert fake.find("d/Company site") is not None


def test_a_file_above_the_accounts_limit_is_refused_before_a_byte_is_sent(fake) -> None:
    fake.max_upload_size = 1000
    p = provider(fake)
    uploads = fake.calls["POST files/content"]
    with pytest.raises(QuotaExceeded, match="exceeds your account limit"):
        put(p, "big.bin", b"x" * 1001)
    assert fake.calls["POST files/content"] == uploads and fake.find("big.bin") is None
    put(p, "fits.bin", b"x" * 1000)
    assert fake.files() == {"fits.bin": b"x" * 1000}
    fake.max_upload_size = 500  # lowered since it was read (another plan): Box's own refusal says the same
    with pytest.raises(QuotaExceeded, match="exceeds your account limit"):
        put(p, "late.bin", b"x" * 501)


# -- writes ------------------------------------------------------------------------------------------------------


def test_conditional_writes_are_checked_by_box(fake) -> None:
    p = provider(fake)
    seen = put(p, "c.txt", b"first")
    fake.put("c.txt", b"another device's edit")  # after the plan saw `seen`
    with pytest.raises(PreconditionFailed):
        put(p, "c.txt", b"ours", Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        p.delete("c.txt", expect=Expect.entry(seen))
    with pytest.raises(PreconditionFailed):
        put(p, "c.txt", b"ours", Expect.absent())
    assert fake.files() == {"c.txt": b"another device's edit"}
    # The same bytes under the name (an earlier attempt whose answer was lost): that file is ours, not a conflict.
    again = put(p, "c.txt", b"another device's edit", Expect.absent())
    assert again.hash == hashlib.sha1(b"another device's edit").hexdigest()
    assert fake.files() == {"c.txt": b"another device's edit"}


def test_a_part_cut_mid_way_is_sent_again_and_the_session_committed(fake) -> None:
    p = provider(fake, chunk_size="1")
    data = os.urandom((2 << 20) + 123)  # 5 parts of 512 KiB
    fake.cut_next_part()
    made = put(p, "big/video.bin", data)
    assert fake.files()["big/video.bin"] == data
    assert fake.calls["POST files/upload_sessions"] == 1
    assert fake.calls[f"PUT files/upload_sessions/{_session_id(fake)}"] == 6  # five parts, the cut one twice
    assert made.mtime == MTIME and made.hash is not None


def _session_id(fake: BoxFake) -> str:
    routes = [r for r in fake.calls if r.startswith("PUT files/upload_sessions/")]
    assert len(routes) == 1
    return routes[0].rpartition("/")[2]


def test_a_new_version_through_a_session_keeps_the_id(fake) -> None:
    p = provider(fake, chunk_size="1")
    first = put(p, "v.bin", b"small")
    second = put(p, "v.bin", os.urandom(3 << 20))
    assert second.id == first.id and second.revision != first.revision


# -- the change feed ---------------------------------------------------------------------------------------------


def test_the_feed_reports_uploads_moves_and_trash_and_a_forgotten_position_is_cursor_expired(fake) -> None:
    p = provider(fake)
    put(p, "f/a.txt", b"a")
    cursor = p.changes_start("")
    b = put(p, "f/b.txt", b"b")
    p.move("f/b.txt", "f/c.txt")
    p.delete("f/a.txt")
    fake.add_web_link("f/link")
    changes, cursor = p.changes("", cursor)
    seen = list(changes)
    assert [c.name for c in seen if not c.deleted] == ["b.txt", "c.txt"]
    assert all(c.id == b.id and c.parent_id == p.folder_id("f") for c in seen if not c.deleted)
    assert len([c for c in seen if c.deleted]) == 1
    assert list(p.changes("", cursor)[0]) == []
    fake.expire_events()
    with pytest.raises(CursorExpired):
        p.changes("", cursor)


def test_a_folder_moves_in_one_request_with_its_content(fake) -> None:
    p = provider(fake)
    put(p, "Docs/a.txt", b"a")
    put(p, "Docs/sub/b.txt", b"b")
    before = {e.path: e for e in p.list("")}
    moved = p.move("Docs", "docs", before["Docs"])  # a case-only rename, as engine/case_names.py asks for
    assert moved.is_dir and moved.id == before["Docs"].id
    after = {e.path: e for e in p.list("")}
    assert set(after) == {"docs", "docs/a.txt", "docs/sub", "docs/sub/b.txt"}
    assert after["docs/sub/b.txt"].id == before["Docs/sub/b.txt"].id
    assert fake.calls[f"PUT folders/{before['Docs'].id}"] == 1 and fake.calls["POST files/content"] == 2


def test_wait_changes_wakes_on_a_change_and_reconnects_when_nothing_happens(fake) -> None:
    p = provider(fake)
    assert p.capabilities.wait_for_changes
    cursor = p.changes_start("")
    fake.longpoll_hold = 0.2
    assert p.wait_changes(cursor, 30) == ChangeWait(False, 0.0)  # Box said reconnect: nothing to list
    put(p, "before.txt", b"b")
    assert p.wait_changes(cursor, 30).changed  # a change already after the cursor: at once
    fake.longpoll_hold = 30
    cursor = p.changes_start("")
    waits = fake.calls["GET realtime"]
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(p.wait_changes, cursor, 30)
        deadline = time.monotonic() + 10
        while fake.calls["GET realtime"] == waits and time.monotonic() < deadline:
            time.sleep(0.01)  # until the wait is held by the server
        fake.put("from-another-device.txt", b"x")
        assert waiting.result(timeout=10).changed
    assert time.monotonic() - started < 10  # woken by the change, not by the 30 s hold
    listed = {c.name for c in p.changes("", cursor)[0]}
    assert listed == {"from-another-device.txt"}


def test_a_wait_longer_than_asked_ends_as_nothing_new(fake) -> None:
    """Box holds a wait up to 610 s; the provider ends it after the caller's timeout (a stopping engine must not
    wait ten minutes) and reports nothing new rather than a network error."""
    p = provider(fake)
    fake.longpoll_hold = 60
    started = time.monotonic()
    assert p.wait_changes(p.changes_start(""), 0.2) == ChangeWait(False, 0.0)
    assert time.monotonic() - started < 10
