"""Google Docs export (spec note 20) through the console script, against the Drive fake: a download-only task
with `--convert-google-docs` keeps docx/xlsx/pptx/jpg copies of the account's online documents, re-exported
when a document changes and never sent back; the option is refused where it does not apply."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from tests.fakes.gdrive_server import DriveState, running
from tests.fakes.oauth_server import FakeOAuthServer
from tests.providers.test_gdrive_e2e import Env


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    oauth = FakeOAuthServer(rotate=False).start()
    try:
        with running(DriveState(token_check=oauth.access_valid)) as (url, state):
            state.add_file("root", "Sync", None)
            local = tmp_path / "local"
            local.mkdir()
            issued = oauth.issue()
            e = Env(tmp_path / "home", local, state, oauth, issued)
            token = json.dumps({**issued, "expiry": "2999-01-01T00:00:00Z"})
            e.cli("connection", "add", "g", "--provider", "gdrive", "--option", "client_id=test-client",
                  "--option", f"api_url={url}", "--option", f"token_url={oauth.token_url}",
                  "--option", f"token={token}")
            yield e
    finally:
        oauth.stop()


def add_task(env: Env, *extra: str) -> None:
    env.cli("task", "add", "t", "--connection", "g", "--local", str(env.local), "--remote", "/Sync", *extra)


def exports(env: Env) -> int:
    return sum(1 for _, path in env.state.log if path.endswith("/export"))


def log_of(env: Env) -> list[dict[str, str]]:
    return json.loads(env.cli("log", "--task", "t", "--limit", "200", "--json").stdout)


def test_download_only_task_exports_docs_re_exports_changes_and_never_sends_anything_back(env: Env) -> None:
    folder = env.folder()
    minutes = env.state.add_doc(folder, "Minutes")
    budget = env.state.add_doc(folder, "Budget", "spreadsheet")
    deck = env.state.add_doc(folder, "Deck", "presentation")
    env.state.add_doc(folder, "Sketch", "drawing")
    sub = env.state.add_file(folder, "sub", None)
    env.state.add_doc(sub, "Plan")
    env.state.add_file(folder, "r.txt", b"a real file")
    add_task(env, "--direction", "download", "--convert-google-docs")

    done = env.sync()
    got = env.local_files()
    assert got == {
        "Minutes.docx": b"export of Minutes v1", "Budget.xlsx": b"export of Budget v1",
        "Deck.pptx": b"export of Deck v1", "Sketch.jpg": b"export of Sketch v1",
        "sub/Plan.docx": b"export of Plan v1", "r.txt": b"a real file",
    }, done.stderr
    # Each export carries its document's modifiedTime, as a downloaded file carries Drive's mtime.
    assert int((env.local / "Minutes.docx").stat().st_mtime) == int(env.state.files[minutes].modified)

    # Nothing changed: the next pass reads the change feed only, and exports nothing again.
    before = len(env.state.log)
    env.sync()
    assert env.state.log[before:] == [("GET", "/drive/v3/changes")]

    # A document edited in Google Docs is exported again (seen through the change feed); the others are not.
    env.state.edit_doc(minutes, b"minutes, second version")
    before = exports(env)
    env.sync()
    assert (env.local / "Minutes.docx").read_bytes() == b"minutes, second version"
    assert exports(env) == before + 1

    # An export edited locally is left as it is, logged once, and never uploaded or converted back.
    (env.local / "Budget.xlsx").write_bytes(b"my local figures")
    env.sync()
    env.sync()
    assert (env.local / "Budget.xlsx").read_bytes() == b"my local figures"
    notes = [r for r in log_of(env) if r["path"] == "Budget.xlsx" and "never sends local changes" in r["message"]]
    assert len(notes) == 1
    assert not any(path.startswith("/upload/") for _, path in env.state.log)
    assert env.state.files[budget].exported is None and env.state.files[budget].version == 1

    # A document whose export Google refuses (over 10 MB) is skipped with that reason, not failed: the pass
    # exits 0, and the copy exported earlier stays.
    env.state.edit_doc(deck, b"x" * (10 * 1024 * 1024 + 1))
    done = env.sync()
    assert "failed" not in done.stdout
    assert (env.local / "Deck.pptx").read_bytes() == b"export of Deck v1"
    assert any(r["path"] == "Deck.pptx" and r["kind"] == "skipped" and "10 MB" in r["message"]
               for r in log_of(env))
    # Back under the limit: exported at the next pass.
    env.state.edit_doc(deck, b"a smaller deck")
    env.sync()
    assert (env.local / "Deck.pptx").read_bytes() == b"a smaller deck"


def test_an_export_never_overwrites_a_real_file_of_its_name(env: Env) -> None:
    folder = env.folder()
    doc = env.state.add_doc(folder, "Report")
    env.state.add_file(folder, "Report.docx", b"a real Word file")
    add_task(env, "--direction", "download", "--convert-google-docs")
    env.sync()
    assert env.local_files() == {"Report.docx": b"a real Word file"}
    reasons = {r["path"]: r["message"] for r in log_of(env) if r["kind"] == "skipped"}
    assert "not exported" in reasons["Report"] and "Report.docx" in reasons["Report"]
    assert exports(env) == 0
    # Still so once the document changes (the change feed brings it in under the export's name).
    env.state.edit_doc(doc, b"new text")
    env.sync()
    assert env.local_files() == {"Report.docx": b"a real Word file"}


def test_without_the_option_docs_stay_skipped_and_turning_it_off_deletes_no_export(env: Env) -> None:
    folder = env.folder()
    env.state.add_doc(folder, "Minutes")
    add_task(env, "--direction", "download")
    env.sync()
    assert env.local_files() == {} and exports(env) == 0
    assert any("Google Docs document" in r["message"] for r in log_of(env))

    env.cli("task", "edit", "t", "--convert-google-docs")
    env.sync()
    assert env.local_files() == {"Minutes.docx": b"export of Minutes v1"}

    # Off again: the exported copy stays (the listing no longer shows it, which is no deletion in the cloud).
    env.cli("task", "edit", "t", "--no-convert-google-docs")
    assert json.loads(env.cli("task", "show", "t", "--json").stdout)["convert_google_docs"] is False
    env.sync()
    assert env.local_files() == {"Minutes.docx": b"export of Minutes v1"}


def test_the_option_is_refused_where_it_does_not_apply(env: Env, tmp_path: pathlib.Path) -> None:
    def refused(*args: str, match: str) -> None:
        done = env.cli(*args, ok=False)
        assert done.returncode == 2 and match in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr

    base = ("task", "add", "t", "--connection", "g", "--local", str(env.local), "--remote", "/Sync")
    refused(*base, "--direction", "bidirectional", "--convert-google-docs", match="download-only")
    refused(*base, "--direction", "upload", "--convert-google-docs", match="download-only")
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    env.cli("connection", "add", "l", "--provider", "local", "--option", f"root={cloud}")
    other = tmp_path / "other"
    other.mkdir()
    refused("task", "add", "lt", "--connection", "l", "--local", str(other), "--remote", "/",
            "--direction", "download", "--convert-google-docs", match="Google Drive")
    assert "convert_google_docs" not in (env.home / "config.toml").read_text()

    add_task(env, "--direction", "download", "--convert-google-docs")
    refused("task", "edit", "t", "--direction", "bidirectional", match="--no-convert-google-docs")
    refused("task", "edit", "t", "--convert-google-docs", "--no-convert-google-docs", match="not allowed")
    env.cli("task", "edit", "t", "--direction", "bidirectional", "--no-convert-google-docs")
    assert json.loads(env.cli("task", "show", "t", "--json").stdout)["direction"] == "bidirectional"


def test_listing_with_exports_and_duplicate_names(env: Env) -> None:
    """The provider's view: exports listed under their export names (size unknown, the document's modifiedTime
    as revision) and fed through the change feed under that name; duplicates name every id and list one."""
    from engine.config import Home
    from engine.connect import open_provider

    folder = env.folder()
    doc = env.state.add_doc(folder, "Minutes")
    twin = env.state.add_doc(folder, "Minutes")
    env.state.add_file(folder, "x.txt", b"one")
    second = env.state.add_file(folder, "x.txt", b"two")
    add_task(env, "--direction", "download", "--convert-google-docs")
    home = Home(str(env.home))
    p = open_provider(home, "g", home.task("t"))
    try:
        skipped: dict[str, str] = {}
        listed = {e.path: e for e in p.list_reporting("Sync", lambda path, why: skipped.__setitem__(path, why))}
        assert set(listed) == {"Minutes.docx", "x.txt"}
        export = listed["Minutes.docx"]
        assert export.id == doc and export.size == 0 and export.hash is None and export.revision
        assert doc in skipped["Minutes.docx"] and twin in skipped["Minutes.docx"]
        assert second in skipped["x.txt"] and listed["x.txt"].id in skipped["x.txt"]
        assert "none of them is synced" in skipped["x.txt"]

        cursor = p.changes_start("Sync")
        env.state.edit_doc(doc, b"v2")
        changes, _ = p.changes("Sync", cursor)
        (change,) = list(changes)
        assert change.name == "Minutes.docx" and change.entry is not None
        assert change.entry.revision != export.revision
    finally:
        p.close()


def test_a_duplicate_name_in_a_two_way_task_is_left_alone_on_both_sides(env: Env) -> None:
    folder = env.folder()
    first = env.state.add_file(folder, "x.txt", b"one")
    second = env.state.add_file(folder, "x.txt", b"two")
    (env.local / "x.txt").write_bytes(b"a local x")
    add_task(env, "--direction", "bidirectional")
    env.sync()
    env.sync()
    assert (env.local / "x.txt").read_bytes() == b"a local x"
    assert env.state.files[first].data == b"one" and env.state.files[second].data == b"two"
    assert not any(env.state.files[i].trashed for i in (first, second))
    reasons = [r["message"] for r in log_of(env) if r["path"] == "x.txt" and r["kind"] == "skipped"]
    assert reasons and first in reasons[0] and second in reasons[0]
