"""What only WebDAV does: mtime through X-OC-Mtime or PROPPATCH (or not at all), presets, Cubby-safe rmdir."""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from engine import manage
from engine.config import Home, Task
from engine.providers.base import InvalidOption, ProviderError
from engine.providers.webdav import PRESETS, UNLISTABLE_REASON, WebDAVProvider
from engine.state import StateDB
from engine.sync import run_pass

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


def missing_when_listed(path: str, on: dict[str, bool]) -> Callable[[Any], Any]:
    """A middleware that answers 404 to a PROPFIND of `path` while `on["flaky"]`, though its parent lists it."""

    def wrap(app: Any) -> Any:
        def flaky(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if on["flaky"] and environ["REQUEST_METHOD"] == "PROPFIND" and environ["PATH_INFO"].rstrip("/") == path:
                start_response("404 Not Found", [("Content-Length", "0")])
                return [b""]
            return app(environ, start_response)

        return flaky

    return wrap


def test_a_subfolder_that_cannot_be_listed_is_reported_not_taken_for_empty(tmp_path: pathlib.Path) -> None:
    served = tmp_path / "dav"
    (served / "data/sub/deeper").mkdir(parents=True)
    for name in ("data/top", "data/sub/f0", "data/sub/f1", "data/sub/deeper/f2"):
        (served / name).write_bytes(b"x")
    on = {"flaky": True}
    with server.running(server.config(str(served)), missing_when_listed("/data/sub", on)) as url:
        p = WebDAVProvider({"url": url, "user": server.USER, "password": server.PASSWORD})
        skipped: list[tuple[str, str]] = []
        assert {e.path for e in p.list_reporting("data", lambda *s: skipped.append(s))} == {"top", "sub"}
        assert skipped == [("sub", UNLISTABLE_REASON)]
        with pytest.raises(ProviderError, match="/data/sub"):  # list() has nobody to tell: it fails
            list(p.list("data"))
        p.close()


def test_a_pass_never_deletes_local_files_under_a_folder_it_could_not_list(tmp_path: pathlib.Path) -> None:
    served = tmp_path / "dav"
    (served / "data/sub").mkdir(parents=True)
    for name in ("data/top", "data/sub/f0", "data/sub/f1"):
        (served / name).write_bytes(b"x")
    local = tmp_path / "local"
    local.mkdir()
    on = {"flaky": False}
    with server.running(server.config(str(served)), missing_when_listed("/data/sub", on)) as url:
        home = Home(str(tmp_path / "home"))
        manage.add_connection(home, "c", "webdav", {"url": url, "user": server.USER, "password": server.PASSWORD})
        manage.add_task(home, Task("t", "c", str(local), "/data", direction="bidirectional"))
        home.save()
        assert run_pass(Home(home.path), "t", hostname="testhost").exit_code == 0
        assert sorted(p.name for p in (local / "sub").iterdir()) == ["f0", "f1"]
        on["flaky"] = True
        result = run_pass(Home(home.path), "t", hostname="testhost")
        assert not result.error and not result.failed, result.as_dict()
        assert sorted(p.name for p in (local / "sub").iterdir()) == ["f0", "f1"]
        db = StateDB(home.setting("database-path"))
        try:
            assert db.skipped(db.task_id("t")) == {"sub": UNLISTABLE_REASON}
        finally:
            db.close()
        on["flaky"] = False  # listed again: nothing changed on either side, nothing moves
        again = run_pass(Home(home.path), "t", hostname="testhost")
        assert again.exit_code == 0 and not again.summary.get("downloaded") and not again.summary.get("deleted")
        assert sorted(p.name for p in (local / "sub").iterdir()) == ["f0", "f1"]
