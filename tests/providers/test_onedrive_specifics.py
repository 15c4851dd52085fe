"""OneDrive, Business and SharePoint behaviours beyond the shared contract, against the Graph fake in process:
throttling and a full drive, a dead sign-in, the delta feed's folder filter, SharePoint's sites and libraries,
the per-kind attribute table and the options' checks."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest

from engine.auth.tokens import Token, TokenStore
from engine.providers import provider_class
from engine.providers.base import (
    ContainerNotFound,
    CursorExpired,
    HashKind,
    InvalidOption,
    MtimeMode,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    ReauthRequired,
    TransientError,
)
from engine.providers.onedrive import SKIP_ONENOTE, SKIP_REMOTE, OneDriveProvider, skip_reason
from tests.fakes.graph_server import FRAGMENT, SHAREPOINT_STAMP, GraphFake

from .servers.onedrive import CLIENT_ID, token_json

MTIME = 1_650_000_000.0


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    server = GraphFake(CLIENT_ID).start()
    try:
        yield server
    finally:
        server.stop()


def base_options(fake: GraphFake, token: str | None = None) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "api_url": fake.api_url, "auth_url": fake.auth_url, "ca_file": fake.ca_file,
            "token": token or token_json(fake.token()), "account_id": fake.user}


def personal(fake: GraphFake, **extra: str) -> OneDriveProvider:
    fake.new_drive("personal")
    return provider_class("onedrive")({**base_options(fake), **extra})  # type: ignore[return-value]


def put(p: OneDriveProvider, path: str, data: bytes) -> None:
    p.upload(path, io.BytesIO(data), len(data), MTIME)


def test_throttling_carries_retry_after_for_429_and_503(fake: GraphFake) -> None:
    p = personal(fake)
    for status in (429, 503):
        fake.throttle(1, status, "7")
        with pytest.raises(TransientError) as info:
            p.check()
        assert info.value.retryable and info.value.retry_after == 7.0
    p.check()  # the service answers again


def test_a_full_drive_is_one_clear_line(fake: GraphFake) -> None:
    p = personal(fake)
    next(iter(fake.drives.values())).quota = 10
    with pytest.raises(QuotaExceeded) as info:
        put(p, "big.bin", b"x" * 100)
    assert "quotaLimitReached" in str(info.value) and "\n" not in str(info.value)
    big = os.urandom(FRAGMENT + 10)  # the same through an upload session
    p2 = personal(fake, chunk_size="320")
    fake.drives[p2.drive()].quota = 10
    with pytest.raises(QuotaExceeded):
        put(p2, "big.bin", big)


def test_a_refused_token_with_a_dead_refresh_token_is_sign_in_needed(fake: GraphFake, tmp_path) -> None:
    issued = fake.oauth.issue()
    fake.new_drive("personal")
    p = provider_class("onedrive")(base_options(fake))
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_dict(issued))
    p.attach_tokens(store)  # type: ignore[attr-defined]
    p.check()
    fake.oauth.revoke_all()  # the access token and the refresh token die together
    with pytest.raises(ReauthRequired):
        p.account_id()


def test_a_refused_access_token_is_renewed_through_msal_and_the_call_goes_on(fake: GraphFake, tmp_path) -> None:
    fake.new_drive("personal")
    p = provider_class("onedrive")(base_options(fake))
    store = TokenStore(str(tmp_path), "c")
    imported = Token.from_dict(fake.oauth.issue())  # a bare token, as `rclone authorize` prints it
    store.save(imported)
    p.attach_tokens(store)  # type: ignore[attr-defined]
    fake.oauth.expire_access_tokens()  # Graph refuses the token although its expiry is an hour ahead
    assert p.account_id() == fake.user
    renewed = store.load()
    assert renewed is not None and renewed.access_token != imported.access_token
    valid = fake.oauth.valid_refresh_tokens()
    assert imported.refresh_token not in valid and renewed.refresh_token in valid  # rotated, the new one saved
    assert "Account" in renewed.extra["msal_cache"]  # MSAL's cache kept with it: the next renewal is silent


def test_the_feed_reports_only_the_synced_folder_and_a_move_out_as_a_deletion(fake: GraphFake) -> None:
    p = personal(fake)
    drive = fake.drives[p.drive()]
    fake.mkdirs(drive, "Sync/sub")
    fake.mkdirs(drive, "Elsewhere")
    put(p, "Sync/sub/moving.txt", b"m")
    cursor = p.changes_start("Sync")
    put(p, "Elsewhere/outside.txt", b"o")
    put(p, "Sync/sub/inside.txt", b"i")
    fake.rename(drive, "Sync/sub/moving.txt", "Elsewhere/moved.txt")
    changes, cursor = p.changes("Sync", cursor)
    seen = list(changes)
    names = {c.name for c in seen if not c.deleted}
    assert names == {"sub", "inside.txt"}  # nothing from outside, not the folder itself
    moved = drive.at("Elsewhere/moved.txt")
    assert moved is not None and any(c.deleted and c.id == moved.id for c in seen)
    again, _ = p.changes("Sync", cursor)
    assert not [c for c in again if not c.deleted]


def test_a_forgotten_or_made_up_cursor_is_cursor_expired(fake: GraphFake) -> None:
    p = personal(fake)
    cursor = p.changes_start("")
    fake.forget_deltas(fake.drives[p.drive()])
    with pytest.raises(CursorExpired):
        p.changes("", cursor)
    with pytest.raises(CursorExpired):
        p.changes("", "not-a-link")


def test_notebooks_and_shared_folders_are_reported_as_skipped(fake: GraphFake) -> None:
    p = personal(fake)
    drive = fake.drives[p.drive()]
    fake.add_onenote(drive, "Notes")
    fake.add_remote_item(drive, "Shared")
    put(p, "a.txt", b"a")
    skipped: dict[str, str] = {}
    listed = [e.path for e in p.list_reporting("", lambda path, why: skipped.__setitem__(path, why))]
    assert listed == ["a.txt"] and skipped == {"Notes": SKIP_ONENOTE, "Shared": SKIP_REMOTE}
    assert skip_reason({"file": {}}) is None and skip_reason({"folder": {}, "package": {"type": "oneNote"}})


def test_the_attribute_table_per_kind(fake: GraphFake) -> None:
    p = personal(fake)
    assert (p.capabilities.hash_kind, p.capabilities.mtime_mode) == (HashKind.QUICKXOR, MtimeMode.NATIVE)
    business = provider_class("onedrive-business")(base_options(fake))
    assert (business.capabilities.hash_kind, business.capabilities.mtime_mode) == (HashKind.NONE, MtimeMode.NONE)
    sp = provider_class("sharepoint")({**base_options(fake), "site": "x"})
    assert (sp.capabilities.hash_kind, sp.capabilities.mtime_mode) == (HashKind.QUICKXOR, MtimeMode.NONE)
    put(p, "dated.txt", b"d")
    assert next(iter(p.list(""))).mtime == MTIME  # personal keeps the time it was given
    assert p.capabilities.max_file_size == 100 * 1024**3
    assert personal(fake, max_file_size_gb="250").capabilities.max_file_size == 250 * 1024**3


def test_sharepoint_lists_libraries_and_reads_back_rewritten_office_files(fake: GraphFake) -> None:
    _site, drives = fake.new_site("contoso.sharepoint.com", "sites/Team", ["Documents", "Archive"])
    options = {**base_options(fake), "site": "https://contoso.sharepoint.com/sites/Team"}
    sp = provider_class("sharepoint")(options)
    assert sp.location_choices() == ("library", [(drives[0].id, "Documents"), (drives[1].id, "Archive")])
    assert sp.drive() == drives[0].id  # no library: the site's default one
    archive = provider_class("sharepoint")({**options, "library": "archive"})  # by name, without case
    assert archive.drive() == drives[1].id
    entry = archive.upload("deck.pptx", io.BytesIO(b"slides"), 6, MTIME)
    listed = next(iter(archive.list("")))
    assert (entry.size, entry.revision, entry.hash) == (listed.size, listed.revision, listed.hash)
    assert entry.size == len(b"slides" + SHAREPOINT_STAMP)
    with pytest.raises(ContainerNotFound):
        provider_class("sharepoint")({**options, "library": "Nope"}).check()
    with pytest.raises(ContainerNotFound):
        provider_class("sharepoint")({**options, "site": "https://contoso.sharepoint.com/sites/Nope"}).check()


@pytest.mark.parametrize(("option", "value"), [("chunk_size", "1000"), ("chunk_size", "0"),
                                               ("chunk_size", str(320 * 193)), ("max_file_size_gb", "251"),
                                               ("max_file_size_gb", "x"), ("tenant", "a/b"),
                                               ("api_url", "ftp://x"), ("api_url", "https://[::1"),
                                               ("auth_url", "https://h:70000")])  # fmt: skip
def test_bad_options_are_refused_in_one_line(option: str, value: str) -> None:
    with pytest.raises(InvalidOption) as info:
        provider_class("onedrive").validate_options({"client_id": "c", option: value})
    assert "\n" not in str(info.value) and option in str(info.value)


def test_sharepoint_needs_a_site_and_tops_at_15_gb() -> None:
    with pytest.raises(InvalidOption):
        provider_class("sharepoint").validate_options({"client_id": "c"})
    with pytest.raises(InvalidOption):
        provider_class("sharepoint").validate_options({"client_id": "c", "site": "s", "max_file_size_gb": "16"})
    with pytest.raises(InvalidOption, match="option 'site' is not a valid URL"):  # was a ValueError at sign-in
        provider_class("sharepoint").validate_options({"client_id": "c", "site": "https://[contoso/sites/a"})
    provider_class("sharepoint").validate_options({"client_id": "c", "site": "contoso.sharepoint.com,1,2"})


def test_sign_in_addresses_follow_the_tenant_and_every_option_has_a_label() -> None:
    spec = provider_class("onedrive-business").oauth_spec({"client_id": "c", "auth_url": "https://h"})  # type: ignore[attr-defined]
    assert spec.device_url == "https://h/organizations/oauth2/v2.0/devicecode"
    assert spec.token_url == "https://h/organizations/oauth2/v2.0/token" and "offline_access" in spec.scopes
    personal_spec = provider_class("onedrive").oauth_spec({"client_id": "c"})  # type: ignore[attr-defined]
    assert personal_spec.device_url == "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode"
    for kind in ("onedrive", "onedrive-business", "sharepoint"):
        for spec_ in provider_class(kind).option_specs:
            assert spec_.help and (spec_.label or spec_.name in ("token", "account_id")), (kind, spec_.name)
    assert json.dumps([s.name for s in provider_class("sharepoint").option_specs]).count("library") == 1


@pytest.mark.parametrize(("drive_type", "kind"), [("personal", "onedrive"), ("business", "onedrive-business"),
                                                  ("documentLibrary", "sharepoint")])  # fmt: skip
def test_import_rclone_maps_drive_type_to_the_kind_and_keeps_the_token_out_of_the_config(
    tmp_path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch, drive_type: str, kind: str
) -> None:
    from engine import manage
    from engine.config import Home
    from engine.providers import onedrive

    monkeypatch.setattr(onedrive, "API_URL", fake.api_url)  # rclone's config has no Graph address to override
    drive = fake.new_drive(drive_type)
    issued = fake.oauth.issue()
    token = json.dumps({**issued, "expiry": "2099-01-01T00:00:00Z"})
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[od]\ntype = onedrive\nclient_id = {CLIENT_ID}\nclient_secret = s3cr3t\ntoken = {token}\n"
                    f"drive_id = {drive.id}\ndrive_type = {drive_type}\n")
    home = Home(str(tmp_path / "home"))
    conn, notes = manage.import_rclone(home, str(conf), "od:Docs", None)
    home.save()
    assert conn.provider == kind and conn.options["drive_id"] == drive.id
    assert conn.options["account_id"] == fake.user
    stored = TokenStore(home.path, "od").load()
    assert stored is not None and stored.refresh_token == issued["refresh_token"]
    assert issued["refresh_token"] not in (tmp_path / "home" / "config.toml").read_text()
    assert any("public client" in n for n in notes) and any("--remote /Docs" in n for n in notes)


@pytest.mark.parametrize(("extra", "why"), [("", "rclone's own app"),
                                            ("client_id = c\ndrive_type = weird\n", "drive_type 'weird'"),
                                            ("client_id = c\nregion = cn\n", "national cloud")])  # fmt: skip
def test_import_rclone_refuses_what_it_cannot_renew_or_place(tmp_path, extra: str, why: str) -> None:
    from engine import manage
    from engine.config import Home
    from engine.errors import UsageError

    conf = tmp_path / "rclone.conf"
    conf.write_text('[od]\ntype = onedrive\ntoken = {"access_token":"a"}\n' + extra)
    with pytest.raises(UsageError, match=why):
        manage.import_rclone(Home(str(tmp_path / "home")), str(conf), "od", None)


@pytest.mark.parametrize("cut", [1, 3], ids=["first-fragment", "last-fragment"])
def test_an_upload_session_whose_answer_is_lost_resumes_without_sending_twice(fake: GraphFake, cut: int) -> None:
    p = personal(fake, chunk_size="320")
    data = os.urandom(2 * FRAGMENT + 999)  # three fragments
    fake.cut_fragment(cut)
    entry = p.upload("big.bin", io.BytesIO(data), len(data), MTIME)
    assert fake.counts["sessions"] == 1 and fake.counts["fragments"] == 3
    assert fake.files(fake.drives[p.drive()]) == {"big.bin": data}
    listed = next(iter(p.list("")))
    assert (entry.size, entry.revision, entry.hash, entry.mtime) == (listed.size, listed.revision, listed.hash,
                                                                     MTIME)


def test_a_folder_in_the_way_of_an_upload_is_said_as_such(fake: GraphFake) -> None:
    p = personal(fake)
    p.mkdir("Report")
    with pytest.raises(ProviderError, match="folder is in the way") as info:
        put(p, "report", b"r")  # names compare without case
    assert not isinstance(info.value, PreconditionFailed)


def test_a_throttled_fragment_is_sent_again_after_the_wait_asked(fake: GraphFake) -> None:
    p = personal(fake, chunk_size="320")
    data = os.urandom(2 * FRAGMENT + 5)
    fake.throttle(2, 503, "0", fragments=True)  # Retry-After: 0, so the test does not wait
    p.upload("t.bin", io.BytesIO(data), len(data), MTIME)
    assert fake.counts["sessions"] == 1 and fake.files(fake.drives[p.drive()]) == {"t.bin": data}
