"""Sign-in of the real OAuth kinds through `.venv/bin/skysync` on a pseudo-terminal: `gdrive` (loopback
redirect, against the fake OAuth server and the Drive fake that accepts its tokens) and `dropbox` (a code shown
by the service and pasted, against the Dropbox fake's own OAuth endpoints, since its API only knows the tokens
it issued). Each: the bare URL printed, the answer pasted, the account id read and saved, a pass that works, then
a revoked sign-in that doctor reports and `connection login` repairs with the task and its state kept."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import sqlite3
import urllib.request
from collections.abc import Iterator

import pytest

from engine.auth.tokens import TokenStore
from tests.auth.cli_helpers import Terminal, run
from tests.auth.test_cli_signin import config
from tests.auth.test_signin_flows import no_redirect
from tests.fakes.dropbox_server import DropboxFake
from tests.fakes.gdrive_server import DriveState, running
from tests.fakes.oauth_server import FakeOAuthServer


def state_digest(home: str) -> str:
    """The sync state (what was synced, the pairing, the feed's cursor and index), not the history log: a
    refused pass logs its refusal, and a sign-in must keep all of this."""
    db = sqlite3.connect(os.path.join(home, "state.db"))
    try:
        rows = [(t, *row) for t in ("entries", "pairings", "feeds", "rindex")
                for row in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
    finally:
        db.close()
    assert rows
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def url_in(term: Terminal, prefix: str) -> str:
    return term.expect(r"\n(" + re.escape(prefix) + r"\?\S+)\r?\n").group(1)


def sign_in_needed(home: str, name: str) -> str:
    findings = json.loads(run("gdrive", home, "doctor", "--json").stdout)["findings"]
    mine = [f["message"] for f in findings if f["subject"] == name and f["check"] == "connection"]
    assert len(mine) == 1, findings
    return mine[0]


@pytest.fixture
def drive(tmp_path: pathlib.Path) -> Iterator[tuple[str, DriveState, FakeOAuthServer]]:
    oauth = FakeOAuthServer().start()  # rotating refresh tokens: stricter than Google
    try:
        with running(DriveState(token_check=oauth.access_valid)) as (url, state):
            state.add_file("root", "Sync", None)
            yield url, state, oauth
    finally:
        oauth.stop()


def test_gdrive_sign_in_over_ssh_then_revoked_and_recovered(tmp_path, drive) -> None:
    api, state, oauth = drive
    home = str(tmp_path / "home")
    options = ["--option", "client_id=test-client", "--option", f"api_url={api}",
               "--option", f"token_url={oauth.token_url}", "--option", f"auth_url={oauth.auth_url}"]
    term = Terminal.start("gdrive", home, "connection", "add", "g", "--provider", "gdrive", *options)
    url = url_in(term, oauth.auth_url)
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url and "code_challenge_method=S256" in url
    term.expect("paste it")
    term.type(no_redirect(url))  # the browser ran on another computer: the final address is pasted
    assert term.finish() == 0, term.text
    assert config(home)["connections"]["g"]["options"]["account_id"] == state.permission_id
    assert "token" not in pathlib.Path(home, "secrets.toml").read_text()

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    assert run("gdrive", home, "task", "add", "t", "--connection", "g", "--local", str(local), "--remote", "/Sync",
               "--direction", "bidirectional").returncode == 0
    done = run("gdrive", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert state.find("Sync/a.txt") is not None
    digest = state_digest(home)

    oauth.revoke_all()
    done = run("gdrive", home, "sync", "t")
    assert done.returncode == 2 and "login" in done.stderr, done.stderr
    assert TokenStore(home, "g").needs_signin()
    assert "sign-in needed" in sign_in_needed(home, "g")
    assert state_digest(home) == digest  # the refused pass changed nothing

    term = Terminal.start("gdrive", home, "connection", "login", "g")
    url = url_in(term, oauth.auth_url)
    with urllib.request.urlopen(url) as page:  # this time the browser is on this box: the listener catches it
        assert page.status == 200
    assert term.finish() == 0, term.text
    assert "signed in" in term.text and "connection 'g' is signed in" in term.text
    assert state_digest(home) == digest
    assert "answers" in sign_in_needed(home, "g")
    (local / "b.txt").write_text("again")
    done = run("gdrive", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert state.find("Sync/b.txt") is not None


@pytest.fixture
def dbx() -> Iterator[DropboxFake]:
    fake = DropboxFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def dropbox_options(fake: DropboxFake) -> list[str]:
    api = fake.urls["api"]
    return ["--option", "app_key=fake-app-key", "--option", f"api_url={api}",
            "--option", f"content_url={fake.urls['content']}", "--option", f"notify_url={fake.urls['notify']}",
            "--option", f"token_url={api}/oauth2/token", "--option", f"auth_url={api}/oauth2/authorize"]


def shown_code(url: str) -> str:
    with urllib.request.urlopen(url) as page:
        return re.search(r"<code>([^<]+)</code>", page.read().decode()).group(1)


def test_dropbox_code_pasted_then_revoked_and_recovered(tmp_path, dbx) -> None:
    home = str(tmp_path / "home")
    term = Terminal.start("dropbox", home, "connection", "add", "d", "--provider", "dropbox", *dropbox_options(dbx))
    url = url_in(term, dbx.urls["api"] + "/oauth2/authorize")
    assert "redirect_uri" not in url and "token_access_type=offline" in url
    term.expect("paste the code")
    term.type(shown_code(url))
    assert term.finish() == 0, term.text
    account = config(home)["connections"]["d"]["options"]["account_id"]
    assert account in dbx.accounts

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    assert run("dropbox", home, "task", "add", "t", "--connection", "d", "--local", str(local), "--remote", "/Sync",
               "--direction", "bidirectional").returncode == 0
    assert run("dropbox", home, "sync", "t").returncode == 0
    assert dbx.files(account).get("/Sync/a.txt") == b"hello"
    digest = state_digest(home)

    dbx.revoke(account)
    done = run("dropbox", home, "sync", "t")
    assert done.returncode == 2, done.stderr
    assert "sign-in needed" in sign_in_needed(home, "d")

    dbx.pending_account = account  # the user signs in again with the same account
    term = Terminal.start("dropbox", home, "connection", "login", "d")
    url = url_in(term, dbx.urls["api"] + "/oauth2/authorize")
    term.type(shown_code(url))
    assert term.finish() == 0, term.text
    assert state_digest(home) == digest
    (local / "b.txt").write_text("again")
    assert run("dropbox", home, "sync", "t").returncode == 0
    assert dbx.files(account).get("/Sync/b.txt") == b"again"
