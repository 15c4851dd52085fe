"""What only Swift does: Dynamic Large Objects above the segment size, directory markers, container rule."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
from collections.abc import Iterator

import pytest

from engine.providers.base import InvalidOption
from engine.providers.swift import DIR_TYPE, SwiftProvider
from tests.fakes.swift_server import running

from .servers import swift as server


@pytest.fixture
def provider(tmp_path: pathlib.Path) -> Iterator[SwiftProvider]:
    with server.serve(tmp_path) as options:
        p = SwiftProvider({**options, **server.SMALL_PART_OPTIONS})
        yield p
        p.close()


def segments(p: SwiftProvider) -> list[str]:
    from swiftclient.exceptions import ClientException

    try:
        return [o["name"] for o in p._conn().get_container(p.segments_container, full_listing=True)[1]]
    except ClientException:
        return []


def test_large_file_is_a_dlo_without_hash(provider: SwiftProvider) -> None:
    data = os.urandom((2 << 20) + 5)
    entry = provider.upload("v/big.bin", io.BytesIO(data), len(data), 1_600_000_000.25)
    assert entry.hash is None and entry.size == len(data)
    names = segments(provider)
    assert len(names) == 3 and all(n.startswith(f"v/big.bin/1600000000.250000/{len(data)}/1048576/") for n in names)
    headers = provider._conn().head_object(provider.container, "v/big.bin")
    assert headers["x-object-manifest"].startswith(provider.segments_container + "/")
    listed = {e.path: e for e in provider.list("")}["v/big.bin"]
    assert (listed.size, listed.hash, listed.revision) == (len(data), None, entry.revision)
    out = io.BytesIO()
    got = provider.download("v/big.bin", out)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()
    assert got.mtime == 1_600_000_000.25 and got.hash is None


def test_replacing_or_deleting_a_dlo_removes_its_segments(provider: SwiftProvider) -> None:
    data = os.urandom((1 << 20) + 1)
    provider.upload("f.bin", io.BytesIO(data), len(data), 1_600_000_000)
    first = segments(provider)
    provider.upload("f.bin", io.BytesIO(data), len(data), 1_600_000_001)  # a new DLO: new segment prefix
    second = segments(provider)
    assert len(second) == 2 and not set(first) & set(second)
    small = provider.upload("f.bin", io.BytesIO(b"tiny"), 4, 1_600_000_002)
    assert segments(provider) == [] and small.hash == hashlib.md5(b"tiny").hexdigest()
    provider.upload("g.bin", io.BytesIO(data), len(data), 1_600_000_000)
    provider.delete("g.bin")
    assert segments(provider) == [] and {e.path for e in provider.list("")} == {"f.bin"}


def test_folders_are_directory_markers(provider: SwiftProvider) -> None:
    provider.mkdir("a/b")
    _, objects = provider._conn().get_container(provider.container)
    assert [(o["name"], o["content_type"]) for o in objects] == [("a/b/", DIR_TYPE)]
    assert {(e.path, e.is_dir) for e in provider.list("")} == {("a", True), ("a/b", True)}


def test_listings_page_through_small_server_limits(tmp_path: pathlib.Path) -> None:
    with running({"t:u": "k"}, listing_limit=3) as (url, state):
        state.create_container("AUTH_t", "c")
        p = SwiftProvider({"auth_url": url, "user": "u", "key": "k", "tenant": "t", "container": "c"})
        for i in range(8):
            p.upload(f"d/f{i}", io.BytesIO(b"x"), 1, 1_600_000_000)
        assert {e.path for e in p.list("d")} == {f"f{i}" for i in range(8)}
        p.close()


@pytest.mark.parametrize("container", ["a/b", "x" * 256])
def test_container_rule(container: str) -> None:
    with pytest.raises(InvalidOption):
        SwiftProvider.validate_options({"auth_url": "http://h/auth/v1.0", "user": "u", "key": "k",
                                        "container": container})  # fmt: skip


@pytest.fixture
def keystone_options(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    """The shared fake, reached through its Keystone v3 endpoint instead of TempAuth."""
    with server.serve(tmp_path) as options:
        yield {**options, "auth_url": options["auth_url"].replace("/auth/v1.0", "/v3"), "region": "RegionOne"}


def test_keystone_v3_auth_then_objects_round_trip(keystone_options: dict[str, str]) -> None:
    p = SwiftProvider(keystone_options)
    try:
        p.check()
        p.upload("k/a.txt", io.BytesIO(b"through keystone"), 16, 1_600_000_000.0)
        assert [e.path for e in p.list("") if not e.is_dir] == ["k/a.txt"]
        out = io.BytesIO()
        p.download("k/a.txt", out)
        assert out.getvalue() == b"through keystone"
    finally:
        p.close()


def test_keystone_v3_refused_password_is_an_auth_error_without_the_secret(keystone_options: dict[str, str]) -> None:
    from engine.providers.base import AuthError

    p = SwiftProvider({**keystone_options, "key": "not-the-password"})
    try:
        with pytest.raises(AuthError) as info:
            p.check()
        assert "not-the-password" not in str(info.value)
    finally:
        p.close()


def test_keystone_v3_region_without_object_store_is_one_clear_error(keystone_options: dict[str, str]) -> None:
    from engine.providers.base import ProviderError

    p = SwiftProvider({**keystone_options, "region": "Elsewhere"})
    try:
        with pytest.raises(ProviderError, match="no object storage"):
            p.check()
    finally:
        p.close()


def test_auth_url_must_name_its_auth_version() -> None:
    with pytest.raises(InvalidOption, match="auth_url"):
        SwiftProvider.validate_options({"auth_url": "https://keystone.example:5000", "user": "u", "key": "k",
                                        "container": "c"})
