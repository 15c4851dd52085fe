"""The contract every provider keeps, run against each kind's local test server (see servers/__init__.py)."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import io
import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.hashing import hasher_for
from engine.providers.base import (
    AuthError,
    Change,
    ContainerNotFound,
    CursorExpired,
    Expect,
    HashKind,
    MtimeMode,
    NetworkError,
    NotFound,
    PreconditionFailed,
    Provider,
    ProviderError,
    RemoteEntry,
    TransientError,
    order_key,
    retry_after_seconds,
    sorted_entries,
)
from tests.fakes.httpserver import QuietServer

from .conftest import Harness

MTIME = 1_600_000_123.0


def put(p: Provider, path: str, data: bytes, mtime: float = MTIME) -> RemoteEntry:
    return p.upload(path, io.BytesIO(data), len(data), mtime)


def get(p: Provider, path: str) -> tuple[bytes, RemoteEntry]:
    out = io.BytesIO()
    entry = p.download(path, out)
    return out.getvalue(), entry


def listing(p: Provider, folder: str = "") -> dict[str, RemoteEntry]:
    entries = list(p.list(folder))
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths)), "a path was listed twice"
    return {e.path: e for e in entries}


def digest(kind: HashKind, data: bytes) -> str:
    """`data`'s hash in the form the service reports it (each kind's own hasher: Dropbox's is not a hashlib one)."""
    hasher = hasher_for(kind)
    hasher.update(data)
    return hasher.text()


def sized(p: Provider, entry: RemoteEntry, n: int) -> bool:
    """Whether `entry` reports a file of `n` plaintext bytes: exactly, or, where listed sizes are those of a
    ciphertext (EncryptedProvider, `plain_sizes` False), at least that many plus a container's overhead."""
    return entry.size == n if p.capabilities.plain_sizes else entry.size > n


def assert_same_file(uploaded: RemoteEntry, listed: RemoteEntry) -> None:
    """The engine records what upload() returned; the next pass must see exactly that in the listing."""
    assert not listed.is_dir and not uploaded.is_dir
    assert (uploaded.path, uploaded.size, uploaded.revision, uploaded.hash) == (
        listed.path,
        listed.size,
        listed.revision,
        listed.hash,
    )
    assert uploaded.signature() == listed.signature()


def assert_user_message(exc: BaseException, harness: Harness) -> None:
    message = str(exc)
    assert message.strip(), "empty error message"
    assert "\n" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message
    for secret in harness.secrets():
        assert secret not in message, "a secret leaked into the error message"


# -- listing -------------------------------------------------------------------------------------------------


def test_fresh_namespace_is_empty_and_options_are_valid(harness: Harness, provider: Provider) -> None:
    type(provider).validate_options(harness.options)
    provider.check()
    assert listing(provider) == {}


def test_nested_files_report_their_folders(provider: Provider) -> None:
    put(provider, "a/b/c.txt", b"abc")
    put(provider, "a/top.txt", b"t")
    got = listing(provider)
    assert set(got) == {"a", "a/b", "a/b/c.txt", "a/top.txt"}
    assert got["a"].is_dir and got["a/b"].is_dir
    assert not got["a/b/c.txt"].is_dir and sized(provider, got["a/b/c.txt"], 3)


def test_list_subfolder_gives_relative_paths(provider: Provider) -> None:
    put(provider, "top/x/y.txt", b"y")
    put(provider, "top/z.txt", b"z")
    put(provider, "topper.txt", b"not inside top")
    assert set(listing(provider, "top")) == {"x", "x/y.txt", "z.txt"}


def test_list_missing_folder_raises_container_not_found(provider: Provider) -> None:
    put(provider, "present/f.txt", b"f")
    with pytest.raises(ContainerNotFound):
        list(provider.list("absent"))


def test_empty_folders_survive(provider: Provider) -> None:
    if not provider.capabilities.folders:
        pytest.skip("this provider keeps no folders")
    made = provider.mkdir("empty/inner")
    assert made.is_dir and made.path == "empty/inner"
    provider.mkdir("empty/inner")  # existing: not an error
    provider.mkdir("empty")
    got = listing(provider)
    assert set(got) == {"empty", "empty/inner"}
    assert all(e.is_dir for e in got.values())
    assert set(listing(provider, "empty")) == {"inner"}
    assert listing(provider, "empty/inner") == {}


UNICODE_NAMES = [
    "Ünïcödé/日本語 ファイル.txt",
    "emoji 😀 smile.bin",
    "two  spaces and trailing dots...txt",
    # Punctuation the spec's per-service exclusions leave to every kind (no % + ? # ~ [ ] and the like).
    "amp& eq= comma, semi; (parens) 'quoted' bang!.txt",
    "ελληνικά/кириллица.md",
]


def test_unicode_names_round_trip(provider: Provider) -> None:
    for i, name in enumerate(UNICODE_NAMES):
        put(provider, name, f"content {i}".encode())
    got = listing(provider)
    for i, name in enumerate(UNICODE_NAMES):
        assert name in got, f"{name!r} missing from {sorted(got)}"
        assert get(provider, name)[0] == f"content {i}".encode()


def test_order(provider: Provider) -> None:
    names = ["a-b.txt", "a/x.txt", "a.txt", "a0", "B", "b/c/d", "b/c.txt", "é.txt", "a/y/z"]
    if provider.capabilities.case_insensitive:  # "B" and "b/" are one name there: a file and a folder clash
        names[names.index("B")] = "C"
    for name in names:
        put(provider, name, b"o")
    entries = list(provider.list(""))
    if provider.capabilities.canonical_order:
        assert [e.path for e in entries] == [e.path for e in sorted_entries(entries)]
    # Whatever the provider's own order, the engine's sort puts each folder right before its subtree.
    ordered = [e.path for e in sorted_entries(entries)]
    assert ordered.index("a") < ordered.index("a/x.txt") < ordered.index("a/y") < ordered.index("a-b.txt")
    assert ordered == sorted(ordered, key=order_key)


def test_listing_pages_past_1000_entries(harness: Harness, provider: Provider) -> None:
    count = 1005
    paths = [f"many/f{i:04d}" for i in range(count)]
    populate = getattr(harness.module, "populate", None)
    if populate is not None:  # the server can create them faster than a thousand uploads
        populate(harness.options, paths)
    else:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda path: put(provider, path, b"x"), paths))
    got = listing(provider, "many")
    assert set(got) == {f"f{i:04d}" for i in range(count)}
    assert all(sized(provider, e, 1) and not e.is_dir for e in got.values())


# -- transfer ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x00"], ids=["empty", "one-byte"])
def test_small_files_round_trip(provider: Provider, data: bytes) -> None:
    uploaded = put(provider, "dir/small.bin", data)
    assert sized(provider, uploaded, len(data)) and uploaded.path == "dir/small.bin"
    content, entry = get(provider, "dir/small.bin")
    assert content == data and sized(provider, entry, len(data))
    assert_same_file(uploaded, listing(provider)["dir/small.bin"])


def test_upload_returns_what_list_reports(provider: Provider) -> None:
    uploaded = {p: put(provider, p, p.encode() * 3) for p in ["one.txt", "d/two.txt", "d/e/three.txt"]}
    got = listing(provider)
    for path, entry in uploaded.items():
        assert_same_file(entry, got[path])


def test_multipart_upload_round_trip(harness: Harness) -> None:
    small = getattr(harness.module, "SMALL_PART_OPTIONS", {})
    p = harness.make({**harness.options, **small})
    threshold = p.capabilities.multipart_threshold
    # Just over the threshold, when it is small enough to keep the test fast.
    size = (3 << 20) + 1 if threshold is None or threshold > 32 << 20 else threshold + (1 << 20) + 7
    data = os.urandom(size)
    uploaded = put(p, "big/large.bin", data)
    content, _ = get(p, "big/large.bin")
    assert len(content) == size and hashlib.sha256(content).digest() == hashlib.sha256(data).digest()
    listed = listing(p)["big/large.bin"]
    assert sized(p, listed, size)
    assert_same_file(uploaded, listed)
    if p.capabilities.hash_kind is HashKind.NONE or not p.capabilities.hash_in_listing:
        return
    expected = digest(p.capabilities.hash_kind, data)
    rule = harness.extra("multipart_hash", "any") if threshold is not None and size > threshold else "exact"
    if rule == "none":
        assert listed.hash is None
    elif rule == "exact":
        assert listed.hash == expected
    else:
        assert listed.hash in (None, expected)


def test_overwrite_changes_content_and_revision(provider: Provider) -> None:
    first = put(provider, "o.txt", b"first version")
    second = put(provider, "o.txt", b"second version", MTIME + 60)  # same size, other bytes
    assert get(provider, "o.txt")[0] == b"second version"
    assert second.signature() != first.signature()
    third = put(provider, "o.txt", b"3")
    got = listing(provider)
    assert set(got) == {"o.txt"}
    assert_same_file(third, got["o.txt"])
    assert get(provider, "o.txt")[0] == b"3"


def test_keeps_revisions_is_verified_or_says_why(provider: Provider) -> None:
    """None only where the service keeps the replaced version (a conflict then uploads over it), else a reason
    in words; where None, the version a conflict's upload would keep has an id for the log."""
    answer = provider.keeps_revisions()
    assert answer is None or (isinstance(answer, str) and answer.strip()), answer
    if answer is None:
        put(provider, "v.txt", b"the cloud's edit")
        version, _ = provider.replaced_version("v.txt", listing(provider)["v.txt"])
        assert isinstance(version, str) and version


def test_download_missing_file_raises_not_found(provider: Provider) -> None:
    with pytest.raises(NotFound):
        get(provider, "nothing-here.txt")


# -- metadata ------------------------------------------------------------------------------------------------


def test_mtime_round_trip(harness: Harness, provider: Provider) -> None:
    tolerance = float(harness.extra("mtime_tolerance", 1.0))  # type: ignore[arg-type]
    uploaded = put(provider, "m/t.txt", b"when", MTIME)
    mode = provider.capabilities.mtime_mode
    _, downloaded = get(provider, "m/t.txt")
    if mode is MtimeMode.NATIVE:
        listed = listing(provider)["m/t.txt"]
        assert listed.mtime is not None and abs(listed.mtime - MTIME) <= tolerance
        assert uploaded.mtime is not None and abs(uploaded.mtime - MTIME) <= tolerance
    if mode in (MtimeMode.NATIVE, MtimeMode.METADATA):
        assert downloaded.mtime is not None and abs(downloaded.mtime - MTIME) <= tolerance


def test_hash_reporting(provider: Provider) -> None:
    kind = provider.capabilities.hash_kind
    data = b"hash me, please"
    uploaded = put(provider, "h/file.txt", data)
    listed = listing(provider)["h/file.txt"]
    if kind is HashKind.NONE:
        # No hash of the content; an encrypted view passes the service's hash of the ciphertext through (it is
        # part of what tells a new version), but never the plaintext's.
        assert listed.hash is None or not provider.capabilities.plain_sizes
        assert listed.hash not in (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest())
        return
    expected = digest(kind, data)
    if provider.capabilities.hash_in_listing:
        assert listed.hash == expected and uploaded.hash == expected
    else:
        assert provider.file_hash("h/file.txt") in (None, expected)
        assert listed.hash in (None, expected)


# -- deletion ------------------------------------------------------------------------------------------------


def test_delete_file_is_idempotent(provider: Provider) -> None:
    put(provider, "keep.txt", b"k")
    put(provider, "d/gone.txt", b"g")
    provider.delete("d/gone.txt")
    provider.delete("d/gone.txt")
    provider.delete("never-existed.txt")
    got = listing(provider)
    assert "d/gone.txt" not in got and "keep.txt" in got


def test_rmdir_is_idempotent(provider: Provider) -> None:
    provider.mkdir("d1/d2")
    provider.rmdir("d1/d2")
    provider.rmdir("d1/d2")
    provider.rmdir("d1")
    provider.rmdir("never-existed")
    assert listing(provider) == {}


def test_folder_emptied_then_removed_disappears(provider: Provider) -> None:
    put(provider, "f/inner/a.txt", b"a")
    provider.delete("f/inner/a.txt")
    provider.rmdir("f/inner")
    provider.rmdir("f")
    assert listing(provider) == {}


# -- errors --------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_credentials_raise_auth_error(harness: Harness) -> None:
    options = harness.hook("bad_credentials")(harness.options)
    if options is None:
        pytest.skip(f"'{harness.kind}' has no credentials")
    p = harness.make(options)
    with pytest.raises(AuthError) as info:
        p.check()
    assert_user_message(info.value, harness)
    with pytest.raises(AuthError) as info:
        list(p.list(""))
    assert_user_message(info.value, harness)


def test_missing_container_raises_container_not_found(harness: Harness) -> None:
    options = harness.hook("missing_container")(harness.options)
    if options is None:
        pytest.skip(f"'{harness.kind}' has no container")
    p = harness.make(options)
    with pytest.raises(ContainerNotFound) as info:
        p.check()
    assert_user_message(info.value, harness)
    with pytest.raises(ContainerNotFound):
        list(p.list(""))


def test_connection_refused_raises_network_error(harness: Harness) -> None:
    options = harness.hook("unreachable")(harness.options, f"127.0.0.1:{_closed_port()}")
    if options is None:
        pytest.skip(f"'{harness.kind}' uses no network")
    p = harness.make(options)
    with pytest.raises(NetworkError) as info:
        p.check()
    assert info.value.retryable
    assert_user_message(info.value, harness)


def test_errors_are_provider_errors(provider: Provider) -> None:
    with pytest.raises(ProviderError):
        get(provider, "missing/file")


def test_identity_holds_no_secret(harness: Harness) -> None:
    identity = type(harness.make()).identity(harness.options)
    assert identity
    for secret in harness.secrets():
        assert secret not in identity


# -- contract v2: one-level listing ----------------------------------------------------------------------------


def level(p: Provider, folder: str = "") -> dict[str, RemoteEntry]:
    entries = list(p.list_dir(folder))
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths)), "a name was listed twice"
    assert all("/" not in path for path in paths), f"list_dir went deeper than one level: {paths}"
    return {e.path: e for e in entries}


def test_list_dir_lists_one_level_with_implicit_and_explicit_folders(provider: Provider) -> None:
    put(provider, "a/b/c.txt", b"abc")
    put(provider, "a/top.txt", b"top")
    put(provider, "root.txt", b"r")
    put(provider, "ab.txt", b"not inside a")
    expected_root = {"a", "root.txt", "ab.txt"}
    if provider.capabilities.folders:
        provider.mkdir("made/inner")
        expected_root.add("made")
    root = level(provider)
    assert set(root) == expected_root
    assert root["a"].is_dir and not root["root.txt"].is_dir and sized(provider, root["root.txt"], 1)
    inside = level(provider, "a")
    assert set(inside) == {"b", "top.txt"}
    assert inside["b"].is_dir  # on an object store, implied by the key "a/b/c.txt" alone
    assert set(level(provider, "a/b")) == {"c.txt"}
    if provider.capabilities.folders:
        assert set(level(provider, "made")) == {"inner"} and level(provider, "made")["inner"].is_dir
        assert level(provider, "made/inner") == {}


def test_list_dir_reports_what_list_reports(provider: Provider) -> None:
    for path in ("x/one.txt", "x/two.bin", "x/deeper/three.txt"):
        put(provider, path, path.encode() * 2)
    full = {path: e for path, e in listing(provider, "x").items() if "/" not in path}
    one = level(provider, "x")
    assert set(one) == set(full)
    for name, entry in one.items():
        seen = full[name]
        assert (entry.is_dir, entry.size, entry.revision, entry.hash) == (seen.is_dir, seen.size, seen.revision,
                                                                        seen.hash)
        assert entry.signature() == seen.signature()


def test_list_dir_missing_folder_raises_container_not_found(provider: Provider) -> None:
    put(provider, "present/f.txt", b"f")
    with pytest.raises(ContainerNotFound):
        list(provider.list_dir("absent"))
    with pytest.raises(ContainerNotFound):
        list(provider.list_dir("present/absent"))


# -- contract v2: server-side copy -----------------------------------------------------------------------------


def copying(provider: Provider) -> Provider:
    if not provider.capabilities.server_side_copy:
        with pytest.raises(NotImplementedError):  # the capability is the truth: no copy means none at all
            provider.copy("a.txt", "b.txt")
        pytest.skip(f"'{provider.kind}' declares no server-side copy")
    return provider


def test_copy_keeps_content_size_and_mtime_and_leaves_the_source(harness: Harness, provider: Provider) -> None:
    p = copying(provider)
    tolerance = float(harness.extra("mtime_tolerance", 1.0))  # type: ignore[arg-type]
    data = b"copy me, server side"
    source = put(p, "c/src.txt", data, MTIME)
    made = p.copy("c/src.txt", "d/e/dst.txt")  # parent folders made as needed
    assert made.path == "d/e/dst.txt" and sized(p, made, len(data))
    got = listing(p)
    assert_same_file(made, got["d/e/dst.txt"])
    assert got["d"].is_dir and got["d/e"].is_dir
    content, entry = get(p, "d/e/dst.txt")
    assert content == data and sized(p, entry, len(data))
    if p.capabilities.mtime_mode in (MtimeMode.NATIVE, MtimeMode.METADATA):
        assert entry.mtime is not None and abs(entry.mtime - MTIME) <= tolerance
        assert made.mtime is not None and abs(made.mtime - MTIME) <= tolerance
    if p.capabilities.hash_kind is not HashKind.NONE and p.capabilities.hash_in_listing:
        assert got["d/e/dst.txt"].hash == digest(p.capabilities.hash_kind, data)
    assert get(p, "c/src.txt")[0] == data
    assert_same_file(source, got["c/src.txt"])


def test_copy_with_expect_absent_never_replaces_a_file(provider: Provider) -> None:
    p = copying(provider)
    put(p, "src.txt", b"the source")
    put(p, "taken.txt", b"another client's file", MTIME + 5)
    with pytest.raises(PreconditionFailed):
        p.copy("src.txt", "taken.txt", expect=Expect.absent())
    assert get(p, "taken.txt")[0] == b"another client's file"
    made = p.copy("src.txt", "free.txt", expect=Expect.absent())
    assert get(p, "free.txt")[0] == b"the source"
    assert_same_file(made, listing(p)["free.txt"])


def test_copy_without_expect_replaces_and_a_missing_source_is_not_found(provider: Provider) -> None:
    p = copying(provider)
    put(p, "src.txt", b"new content")
    put(p, "old.txt", b"old")
    made = p.copy("src.txt", "old.txt")
    assert get(p, "old.txt")[0] == b"new content"
    assert_same_file(made, listing(p)["old.txt"])
    with pytest.raises(NotFound):
        p.copy("no-such-file.txt", "elsewhere.txt")
    assert "elsewhere.txt" not in listing(p)


# -- contract v2: identity, duplicate and case-only names ------------------------------------------------------


def test_ids_are_stable_and_name_the_parent(provider: Provider) -> None:
    put(provider, "f/x.txt", b"x")
    first = listing(provider)
    if not provider.capabilities.ids:
        # Object stores, WebDAV and a local folder: an entry is its path (a rename is a new entry).
        assert all(e.id is None and e.parent_id is None for e in first.values())
        assert provider.folder_id("f") is None
        pytest.skip(f"'{provider.kind}' has no ids")
    again = listing(provider)
    assert first["f/x.txt"].id and first["f/x.txt"].id == again["f/x.txt"].id
    assert first["f"].id == again["f"].id
    assert first["f/x.txt"].parent_id == first["f"].id == provider.folder_id("f")
    put(provider, "f/x.txt", b"changed")
    assert listing(provider)["f/x.txt"].id == first["f/x.txt"].id  # a new version is the same entry


def test_case_only_names_per_capability(provider: Provider) -> None:
    put(provider, "case/Name.txt", b"upper")
    put(provider, "case/name.txt", b"lower!")
    got = listing(provider, "case")
    if provider.capabilities.case_insensitive:
        assert len(got) == 1, f"one name on a case-insensitive service, got {sorted(got)}"
        assert get(provider, "case/" + next(iter(got)))[0] == b"lower!"
    else:
        assert set(got) == {"Name.txt", "name.txt"}
        assert get(provider, "case/Name.txt")[0] == b"upper"
        assert get(provider, "case/name.txt")[0] == b"lower!"


def test_duplicate_names_are_listed_once_and_reported(harness: Harness, provider: Provider) -> None:
    if not provider.capabilities.duplicate_names:
        pytest.skip(f"'{harness.kind}' keeps one entry per name")
    put(provider, "dup/same.txt", b"first")
    harness.hook("put_duplicate")(harness.options, "dup/same.txt", b"second")
    skipped: list[tuple[str, str]] = []
    got = [e.path for e in provider.list_reporting("dup", lambda path, reason: skipped.append((path, reason)))]
    assert got.count("same.txt") == 1
    assert [path for path, _ in skipped] == ["same.txt"] and skipped[0][1]


# -- contract v2: change feeds ---------------------------------------------------------------------------------


def feeding(provider: Provider) -> Provider:
    """No current provider has a feed (the object stores, WebDAV and a local folder are polled); these tests run
    for the consumer drives (Google Drive, Dropbox, OneDrive...) as they arrive."""
    if not provider.capabilities.changes:
        with pytest.raises(NotImplementedError):
            provider.changes_start("")
        pytest.skip(f"'{provider.kind}' has no change feed")
    return provider


def _drain(p: Provider, folder: str, cursor: str) -> tuple[list[Change], str]:
    changes, cursor = p.changes(folder, cursor)
    return list(changes), cursor


def test_changes_report_upserts_and_deletions_by_id(provider: Provider) -> None:
    p = feeding(provider)
    put(p, "feed/keep.txt", b"k")
    cursor = p.changes_start("")
    made = put(p, "feed/new.txt", b"n")
    p.delete("feed/keep.txt")
    seen, cursor = _drain(p, "", cursor)
    upserts = {c.id: c for c in seen if not c.deleted}
    assert any(c.entry is not None and c.entry.path.endswith("new.txt") for c in upserts.values()) or any(
        c.name == "new.txt" for c in upserts.values()
    )
    if made.id is not None:
        assert made.id in upserts
    assert any(c.deleted for c in seen)
    again, _ = _drain(p, "", cursor)
    assert not [c for c in again if c.name in ("new.txt", "keep.txt") or (c.path or "").endswith(("new.txt",
                                                                                                  "keep.txt"))]


def test_changes_report_a_rename_under_the_same_id(provider: Provider) -> None:
    p = feeding(provider)
    if not p.capabilities.server_side_move:
        pytest.skip(f"'{p.kind}' cannot rename")
    before = put(p, "feed/old.txt", b"o")
    cursor = p.changes_start("")
    p.move("feed/old.txt", "feed/renamed.txt", before)
    seen, _ = _drain(p, "", cursor)
    renamed = [c for c in seen if not c.deleted and c.id == before.id]
    assert renamed, "the rename is an upsert of the same id"


def test_an_unknown_cursor_is_cursor_expired(provider: Provider) -> None:
    p = feeding(provider)
    with pytest.raises(CursorExpired):
        _drain(p, "", "expired-or-made-up-cursor")


# -- contract v2: Retry-After ----------------------------------------------------------------------------------


class _Throttling(http.server.BaseHTTPRequestHandler):
    """Every request answered 503 with Retry-After, in the error shape each SDK reads (S3/OSS/COS and Azure
    XML with Azure's error-code header, JSON for GCS, B2 and Keystone)."""

    protocol_version = "HTTP/1.1"
    retry_after = "1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if "json" in (self.headers.get("Accept") or "") or self.path.startswith(("/b2api", "/storage", "/v3")):
            body = json.dumps({"status": 503, "code": "service_unavailable", "message": "slow down",
                               "error": {"code": 503, "message": "slow down"}}).encode()
            kind = "application/json"
        else:
            body = b"<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>"
            kind = "application/xml"
        self.send_response(503)
        for name, value in (("Retry-After", self.retry_after), ("Content-Type", kind),
                            ("x-ms-error-code", "ServerBusy"), ("Content-Length", str(len(body)))):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PROPFIND = do_OPTIONS = _answer


def test_a_throttled_request_carries_the_services_retry_after(harness: Harness) -> None:
    server = QuietServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        options = harness.hook("unreachable")(harness.options, f"127.0.0.1:{server.server_address[1]}")
        if options is None:
            pytest.skip(f"'{harness.kind}' uses no network")
        p = harness.make(options)
        with pytest.raises(ProviderError) as info:
            p.check()
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(info.value, TransientError | NetworkError), repr(info.value)
    assert info.value.retryable
    assert info.value.retry_after == 1.0, f"{type(info.value).__name__}: {info.value}"
    assert_user_message(info.value, harness)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("Fri, 01 Jan 2100 00:00:10 GMT", 10.0),
     ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0), ("-5", None), ("1.5", None), ("soon", None), ("", None), (None, None),
     ("Fri, 01 Jan 2100 00:00:10", None)],  # a date without its zone is not an HTTP date
)
def test_retry_after_reads_seconds_and_http_dates(header: str | None, expected: float | None) -> None:
    now = datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC).timestamp()
    assert retry_after_seconds(header, now=now) == expected
