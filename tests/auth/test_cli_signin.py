"""Sign-in through the console script: `connection add` without a token on a terminal, `connection login`,
`token=-` from a pipe, no terminal and no token, a refresh, and a revoked sign-in that doctor reports and
`connection login` repairs with the connection's tasks and state kept."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sqlite3
import time
import tomllib
import urllib.request

import pytest

from engine.auth.tokens import Token, TokenStore
from tests.auth.cli_helpers import Terminal, run
from tests.auth.oauth_kind import KIND
from tests.auth.test_signin_flows import no_redirect

URL = r"\n(http://127\.0\.0\.1:\d+/authorize\?\S+)\r?\n"


@pytest.fixture
def home(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    return str(path)


def base_options(server, flow: str) -> list[str]:
    return ["--option", f"client_id={server.client_id}", "--option", f"server={server.url}", "--option", f"flow={flow}"]


def config(home: str) -> dict:
    return tomllib.loads(pathlib.Path(home, "config.toml").read_text())


def secrets_text(home: str) -> str:
    path = pathlib.Path(home, "secrets.toml")
    return path.read_text() if path.exists() else ""


def assert_saved(home: str, server, name: str = "c") -> Token:
    token = TokenStore(home, name).load()
    assert token is not None and server.access_valid(token.access_token)
    assert config(home)["connections"][name]["options"]["account_id"] == server.account_id
    assert token.access_token not in secrets_text(home) and "token" not in secrets_text(home)
    assert token.access_token not in pathlib.Path(home, "config.toml").read_text()
    return token


def test_add_on_a_terminal_prints_the_url_and_takes_the_pasted_code(home, oauth_server) -> None:
    term = Terminal.start(KIND, home, "connection", "add", "c", "--provider", KIND,
                          *base_options(oauth_server, "code-none"))
    url = term.expect(URL).group(1)
    with urllib.request.urlopen(url) as page:  # the user's browser, on another computer
        code = page.read().decode().split("Code: ")[1].strip()
    term.expect("paste the code")
    term.type(code)
    assert term.finish() == 0, term.text
    assert "connection 'c' added" in term.text
    assert_saved(home, oauth_server)


def test_add_on_a_terminal_takes_the_pasted_final_address(home, oauth_server) -> None:
    term = Terminal.start(KIND, home, "connection", "add", "c", "--provider", KIND,
                          *base_options(oauth_server, "code-loopback"))
    url = term.expect(URL).group(1)
    term.expect("paste it")
    term.type(no_redirect(url))
    assert term.finish() == 0, term.text
    assert_saved(home, oauth_server)


def test_device_code_sign_in_on_a_terminal(home, oauth_server) -> None:
    oauth_server.device_interval = 0.2
    term = Terminal.start(KIND, home, "connection", "add", "c", "--provider", KIND,
                          *base_options(oauth_server, "device"))
    uri = term.expect(r"\n(http://127\.0\.0\.1:\d+/device)\r?\n").group(1)
    code = term.expect(r"\n([A-Z]{4}-[A-Z]{4})\r?\n").group(1)
    with urllib.request.urlopen(f"{uri}?user_code={code}"):
        pass
    assert term.finish() == 0, term.text
    assert_saved(home, oauth_server)


def test_without_a_terminal_and_without_a_token_one_line_says_how(home, oauth_server) -> None:
    done = run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "skysync connection login c" in lines[0] and "token=-" in lines[0], done.stderr
    assert "c" not in config(home).get("connections", {}) if pathlib.Path(home, "config.toml").exists() else True


def test_token_from_a_pipe_is_imported_to_the_token_store(home, oauth_server) -> None:
    issued = oauth_server.issue()
    done = run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", stdin=json.dumps(issued) + "\n")
    assert done.returncode == 0, done.stderr
    token = assert_saved(home, oauth_server)
    assert token.access_token == issued["access_token"]
    assert issued["refresh_token"] not in " ".join(done.args)  # never in argv


def test_a_bad_token_is_one_line_without_its_text(home, oauth_server) -> None:
    done = run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", stdin='{"refresh_token": "secret-rt"}')
    assert done.returncode == 2 and "secret-rt" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "access_token" in done.stderr


def test_an_expiring_token_is_refreshed_and_saved(home, oauth_server) -> None:
    issued = oauth_server.issue(access_ttl=10)  # inside the refresh margin
    assert run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", "--no-test", stdin=json.dumps(issued)).returncode == 0
    # reading the account refreshed it already, and the rotated token is the one saved (the imported one is dead)
    saved = TokenStore(home, "c").load()
    assert saved.refresh_token != issued["refresh_token"] and oauth_server.counts["refresh_token"] == 1
    assert oauth_server.valid_refresh_tokens() == {saved.refresh_token}
    TokenStore(home, "c").save(Token.from_dict({**saved.to_dict(), "expiry": time.time() + 10}))
    done = run(KIND, home, "connection", "test", "c")
    assert done.returncode == 0, done.stderr
    saved = TokenStore(home, "c").load()
    assert oauth_server.counts["refresh_token"] == 2 and not saved.expires_within(600)
    assert oauth_server.valid_refresh_tokens() == {saved.refresh_token}
    # still valid for an hour: the next command uses it without the token endpoint
    after = oauth_server.counts["refresh_token"]
    assert run(KIND, home, "connection", "test", "c").returncode == 0
    assert oauth_server.counts["refresh_token"] == after


def state_digest(home: str) -> str:
    db = sqlite3.connect(os.path.join(home, "state.db"))
    try:
        return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    finally:
        db.close()


def seed_state(home: str, task: str) -> None:
    """A task's state as passes leave it (its pairing and last pass): what a new sign-in must keep."""
    from engine.config import Home
    from engine.state import StateDB

    db = StateDB(Home(home).setting("database-path"))
    try:
        db.set_pairing(db.task_id(task), "oauth-test:dbid:test-user-1", None, False)
        db.pass_started(task)
        db.pass_finished(task, True, {"uploaded": 3}, None)
    finally:
        db.close()


def test_revoked_sign_in_doctor_says_so_and_login_recovers_with_the_state_kept(
    home, oauth_server, tmp_path, test_kind
) -> None:
    issued = oauth_server.issue(access_ttl=0)
    assert run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", "--no-test", stdin=json.dumps(issued)).returncode == 0
    local = tmp_path / "local"
    local.mkdir()
    done = run(KIND, home, "task", "add", "t", "--connection", "c", "--local", str(local), "--remote", "/",
               "--direction", "download")
    assert done.returncode == 0, done.stderr
    seed_state(home, "t")
    assert run(KIND, home, "connection", "test", "c").returncode == 0
    digest = state_digest(home)
    oauth_server.revoke_all()
    TokenStore(home, "c").save(Token.from_dict({**TokenStore(home, "c").load().to_dict(), "expiry": 1}))
    failed = run(KIND, home, "connection", "test", "c")
    assert failed.returncode == 2 and "sign" in failed.stderr.lower(), failed.stderr
    assert TokenStore(home, "c").needs_signin()
    doctor = run(KIND, home, "doctor", "--json")
    findings = [f for f in json.loads(doctor.stdout)["findings"] if f["subject"] == "c"]
    assert len(findings) == 1 and findings[0]["status"] == "fail", findings
    assert "sign-in needed" in findings[0]["message"] and "skysync connection login c" in findings[0]["message"]
    config_before = pathlib.Path(home, "config.toml").read_text()

    term = Terminal.start(KIND, home, "connection", "login", "c")
    url = term.expect(URL).group(1)
    with urllib.request.urlopen(url) as page:
        code = page.read().decode().split("Code: ")[1].strip()
    term.type(code)
    assert term.finish() == 0, term.text
    assert "connection 'c' is signed in" in term.text

    assert pathlib.Path(home, "config.toml").read_text() == config_before  # tasks and options untouched
    assert state_digest(home) == digest
    doctor = run(KIND, home, "doctor", "--json")
    assert not any("sign-in needed" in f["message"] for f in json.loads(doctor.stdout)["findings"])
    assert run(KIND, home, "connection", "test", "c").returncode == 0


def test_login_as_another_account_is_refused(home, oauth_server) -> None:
    assert run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", "--no-test", stdin=json.dumps(oauth_server.issue())).returncode == 0
    oauth_server.account_id = "dbid:someone-else"
    term = Terminal.start(KIND, home, "connection", "login", "c")
    url = term.expect(URL).group(1)
    with urllib.request.urlopen(url) as page:
        term.type(page.read().decode().split("Code: ")[1].strip())
    assert term.finish() == 2
    assert "another account" in term.text
    assert config_account(home) == "dbid:test-user-1"


def config_account(home: str) -> str:
    return config(home)["connections"]["c"]["options"]["account_id"]


def test_login_without_a_terminal_says_how(home, oauth_server) -> None:
    assert run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", "--no-test", stdin=json.dumps(oauth_server.issue())).returncode == 0
    done = run(KIND, home, "connection", "login", "c")
    assert done.returncode == 2 and "from a terminal" in done.stderr and len(done.stderr.splitlines()) == 1


def test_key_dash_reads_any_option_and_two_from_one_pipe_are_refused(home, tmp_path) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    done = run("local", home, "connection", "add", "l", "--provider", "local", "--option", "root=-",
               stdin=str(cloud) + "\n")
    assert done.returncode == 0, done.stderr
    assert config(home)["connections"]["l"]["options"]["root"] == str(cloud)
    done = run("local", home, "connection", "add", "m", "--provider", "local", "--option", "root=-",
               "--option", "polling_period=-", stdin="x")
    assert done.returncode == 2 and "both read standard input" in done.stderr


def test_a_secret_typed_on_a_terminal_is_not_echoed(home, tmp_path) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    term = Terminal.start("local", home, "connection", "add", "l", "--provider", "local", "--option", "root=-")
    term.expect("root: ")
    term.type(str(cloud))
    assert term.finish() == 0, term.text
    assert str(cloud) not in term.text.split("root: ", 1)[1].split("connection 'l' added")[0]


def test_edit_imports_a_new_token_and_reads_its_account(home, oauth_server, test_kind) -> None:
    assert run(KIND, home, "connection", "add", "c", "--provider", KIND, *base_options(oauth_server, "code-none"),
               "--option", "token=-", "--no-test", stdin=json.dumps(oauth_server.issue())).returncode == 0
    oauth_server.account_id = "dbid:other"
    issued = oauth_server.issue()
    done = run(KIND, home, "connection", "edit", "c", "--option", "token=-", stdin=json.dumps(issued))
    assert done.returncode == 0, done.stderr
    assert config_account(home) == "dbid:other"  # another account: a new pairing, its state starts afresh
    assert TokenStore(home, "c").load().access_token == issued["access_token"]
    assert "token" not in secrets_text(home)
    refused = run(KIND, home, "connection", "edit", "c", "--option", "account_id=dbid:forged")
    assert refused.returncode == 2 and "read from the service" in refused.stderr
    assert config_account(home) == "dbid:other"
