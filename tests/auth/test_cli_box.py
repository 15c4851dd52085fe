"""Box sign-in through `.venv/bin/skysync` on a pseudo-terminal, against the Box fake's OAuth endpoints (the
fake's API knows only the tokens that server issued): the client secret typed without echo, the bare URL
printed with a 127.0.0.1 redirect (Box has no device flow), the final address pasted back from another
computer's browser, the account id read and saved, a pass that works; then a revoked sign-in that doctor
reports and `connection login` repairs (the browser on this box this time, caught by the listener) with the
task's state kept."""

from __future__ import annotations

import pathlib
import urllib.request
from collections.abc import Iterator

import pytest

from engine.auth.tokens import TokenStore
from tests.auth.cli_helpers import Terminal, run
from tests.auth.test_cli_drives import sign_in_needed, state_digest, url_in
from tests.auth.test_cli_signin import config
from tests.auth.test_signin_flows import no_redirect
from tests.fakes.box_server import ACCOUNT, CLIENT_ID, CLIENT_SECRET, BoxFake


@pytest.fixture
def box() -> Iterator[BoxFake]:
    fake = BoxFake().start()
    try:
        fake.mkdir("Sync")
        yield fake
    finally:
        fake.stop()


def test_box_signed_in_over_ssh_then_revoked_and_recovered(tmp_path: pathlib.Path, box: BoxFake) -> None:
    home = str(tmp_path / "home")
    options = ["--option", f"client_id={CLIENT_ID}", "--option", "client_secret=-",
               "--option", f"api_url={box.api_url}", "--option", f"upload_url={box.upload_url}",
               "--option", f"token_url={box.oauth.token_url}", "--option", f"auth_url={box.oauth.auth_url}"]
    term = Terminal.start("box", home, "connection", "add", "bx", "--provider", "box", *options)
    term.expect("client_secret: ")
    term.type(CLIENT_SECRET)
    url = url_in(term, box.oauth.auth_url)
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url and "response_type=code" in url
    term.expect("paste it")
    term.type(no_redirect(url))  # the browser ran on another computer: its final address is pasted
    assert term.finish() == 0, term.text
    assert CLIENT_SECRET not in term.text  # typed without echo
    assert config(home)["connections"]["bx"]["options"]["account_id"] == ACCOUNT
    assert "token" not in pathlib.Path(home, "secrets.toml").read_text()
    assert box.oauth.counts["authorization_code"] == 1

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    assert run("box", home, "task", "add", "t", "--connection", "bx", "--local", str(local), "--remote", "/Sync",
               "--direction", "bidirectional").returncode == 0
    done = run("box", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert box.files() == {"Sync/a.txt": b"hello"}
    digest = state_digest(home)

    box.oauth.revoke_all()
    done = run("box", home, "sync", "t")
    assert done.returncode == 2 and "login" in done.stderr, done.stderr
    assert TokenStore(home, "bx").needs_signin()
    assert "sign-in needed" in sign_in_needed(home, "bx")
    assert state_digest(home) == digest  # the refused pass changed nothing

    term = Terminal.start("box", home, "connection", "login", "bx")
    url = url_in(term, box.oauth.auth_url)
    with urllib.request.urlopen(url) as page:  # the browser is on this box: the listener catches the redirect
        assert page.status == 200
    assert term.finish() == 0, term.text
    assert "connection 'bx' is signed in" in term.text
    assert state_digest(home) == digest
    (local / "b.txt").write_text("again")
    done = run("box", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert box.files() == {"Sync/a.txt": b"hello", "Sync/b.txt": b"again"}
