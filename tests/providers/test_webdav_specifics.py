"""What only WebDAV does: mtime through X-OC-Mtime or PROPPATCH (or not at all), presets, Cubby-safe rmdir."""

from __future__ import annotations

import io
import pathlib
from collections.abc import Iterator

import pytest

from engine.providers.base import InvalidOption, ProviderError
from engine.providers.webdav import PRESETS, WebDAVProvider

from .servers import webdav as server

MTIME = 1_600_000_123.0


@pytest.fixture
def options(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with server.serve(tmp_path) as opts:
        yield opts


def own_server(tmp_path: pathlib.Path, **overrides: object) -> Iterator[dict[str, str]]:
    with server.running(server.config(str(tmp_path), **overrides)) as url:
        yield {"url": url, "user": server.USER, "password": server.PASSWORD}


def test_x_oc_mtime_sets_the_listed_time(options: dict[str, str]) -> None:
    p = WebDAVProvider(options)
    entry = p.upload("d/a.txt", io.BytesIO(b"abc"), 3, MTIME)
    listed = {e.path: e for e in p.list("")}["d/a.txt"]
    assert entry == listed and listed.mtime == MTIME and listed.hash is None
    p.close()


def test_proppatch_sets_the_time_when_the_header_is_ignored(tmp_path: pathlib.Path) -> None:
    for opts in own_server(tmp_path, honor_mtime_header=False):
        p = WebDAVProvider(opts)
        entry = p.upload("a.txt", io.BytesIO(b"abc"), 3, MTIME)
        assert entry.mtime == MTIME and not p._proppatch_refused
        assert list(p.list("")) == [entry]
        p.close()


def test_a_server_that_keeps_its_own_time_is_asked_once(tmp_path: pathlib.Path) -> None:
    for opts in own_server(tmp_path, honor_mtime_header=False, mutable_live_props=[]):
        p = WebDAVProvider(opts)
        first = p.upload("a.txt", io.BytesIO(b"abc"), 3, MTIME)
        assert first.mtime != MTIME and p._proppatch_refused
        second = p.upload("b.txt", io.BytesIO(b"def"), 3, MTIME)
        assert {e.path: e for e in p.list("")} == {"a.txt": first, "b.txt": second}
        p.close()


def test_rmdir_never_deletes_a_folder_with_content(options: dict[str, str]) -> None:
    # Cubby recreates a deleted folder that had files (spec note 5); deleting only empty folders avoids it.
    p = WebDAVProvider(options)
    p.upload("A/keep.txt", io.BytesIO(b"k"), 1, MTIME)
    with pytest.raises(ProviderError, match="not empty"):
        p.rmdir("A")
    assert {e.path for e in p.list("")} == {"A", "A/keep.txt"}
    p.delete("A/keep.txt")
    p.rmdir("A")
    assert list(p.list("")) == []
    p.close()


def test_presets_fill_the_url() -> None:
    for preset, url in PRESETS.items():
        opts = {"preset": preset, "user": "me", "password": "pw"}
        WebDAVProvider.validate_options(opts)
        assert WebDAVProvider(opts).url == url
        assert WebDAVProvider.identity(opts) == f"webdav:me@{url.split('://')[1]}"
    with pytest.raises(InvalidOption):
        WebDAVProvider.validate_options({"user": "me", "password": "pw"})
    with pytest.raises(InvalidOption):
        WebDAVProvider.validate_options({"url": "ftp://host/", "user": "me", "password": "pw"})
