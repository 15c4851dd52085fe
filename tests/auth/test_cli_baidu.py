"""Baidu's device-code sign-in through `.venv/bin/skysync` on a pseudo-terminal, against the Baidu fake's own OAuth
endpoints (`auth_url`: Baidu's `device/code` with `response_type=device_code`, then `token` with its
`device_token` grant and the code as `code`, client id and secret both checked): the address and code printed,
the SecretKey typed without echo, the code approved on "another device", the account's uk read and saved, a pass
that works; then a revoked sign-in that doctor reports and `connection login` repairs with the sync state kept,
and a single-use refresh token spent and replaced in the token store."""

from __future__ import annotations

import json
import pathlib
import urllib.request
from collections.abc import Iterator

import pytest

from engine.auth.tokens import TokenStore
from tests.auth.cli_helpers import Terminal, run
from tests.auth.test_cli_drives import sign_in_needed, state_digest
from tests.auth.test_cli_signin import config, secrets_text
from tests.fakes.baidu_server import BaiduFake

APP_KEY, SECRET_KEY = "baidu-app-key", "baidu-secret-key"


@pytest.fixture
def baidu() -> Iterator[BaiduFake]:
    fake = BaiduFake(APP_KEY, SECRET_KEY).start()
    fake.device_interval = 0.2
    try:
        yield fake
    finally:
        fake.stop()


def options(fake: BaiduFake) -> list[str]:
    return ["--option", f"app_key={APP_KEY}", "--option", "secret_key=-", "--option", "app_name=skysync",
            "--option", f"api_url={fake.url}", "--option", f"content_url={fake.url}",
            "--option", f"auth_url={fake.url}"]  # fmt: skip


def approve_on_another_device(term: Terminal, fake: BaiduFake) -> None:
    """Read the address and code the terminal shows and approve them, as the user would in a browser."""
    address = term.expect(r"\n(http://127\.0\.0\.1:\d+/oauth/2\.0/device)\r?\n").group(1)
    code = term.expect(r"enter this code:\s*\n\s*\n([0-9a-f]+)\r?\n").group(1)
    with urllib.request.urlopen(f"{address}?code={code}") as page:
        assert json.loads(page.read())["approved"]


def test_baidu_device_sign_in_then_revoked_and_recovered(tmp_path: pathlib.Path, baidu: BaiduFake) -> None:
    uk = baidu.new_account("skysync")[0]
    baidu.mkdir(uk, "Sync")
    baidu.pending_uk = uk  # the account that approves the code
    home = str(tmp_path / "home")
    term = Terminal.start("baidu", home, "connection", "add", "b", "--provider", "baidu", *options(baidu))
    term.expect("secret_key: ")
    term.type(SECRET_KEY)  # typed without echo
    approve_on_another_device(term, baidu)
    assert term.finish() == 0, term.text
    assert SECRET_KEY not in term.text
    assert config(home)["connections"]["b"]["options"]["account_id"] == str(uk)
    assert "access_token" not in secrets_text(home) and SECRET_KEY in secrets_text(home)
    assert baidu.counts["token-device_token"] >= 1

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    assert run("baidu", home, "task", "add", "t", "--connection", "b", "--local", str(local), "--remote", "/Sync",
               "--direction", "bidirectional").returncode == 0
    done = run("baidu", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert baidu.files(uk).get("Sync/a.txt") == b"hello"
    digest = state_digest(home)

    # An access token about to expire is renewed with the single-use refresh token, and the new pair is saved.
    store = TokenStore(home, "b")
    token = store.load()
    assert token is not None and token.refresh_token is not None
    spent = token.refresh_token
    data = json.loads(pathlib.Path(store.path).read_text())
    pathlib.Path(store.path).write_text(json.dumps({**data, "expiry": "2000-01-01T00:00:00Z"}))
    assert run("baidu", home, "sync", "t").returncode == 0
    renewed = store.load()
    assert renewed is not None and renewed.refresh_token not in (None, spent)
    assert spent not in baidu.refresh and renewed.refresh_token in baidu.refresh
    digest = state_digest(home)

    baidu.revoke(uk)
    done = run("baidu", home, "sync", "t")
    assert done.returncode == 2 and "login" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "sign-in needed" in sign_in_needed(home, "b")
    assert state_digest(home) == digest  # the refused pass changed nothing

    term = Terminal.start("baidu", home, "connection", "login", "b")
    approve_on_another_device(term, baidu)
    assert term.finish() == 0, term.text
    assert state_digest(home) == digest
    (local / "b.txt").write_text("again")
    done = run("baidu", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert baidu.files(uk).get("Sync/b.txt") == b"again"


def test_no_terminal_and_no_token_is_one_line_without_the_secret(tmp_path: pathlib.Path, baidu: BaiduFake) -> None:
    home = str(tmp_path / "home")
    done = run("baidu", home, "connection", "add", "b", "--provider", "baidu", "--option", f"app_key={APP_KEY}",
               "--option", "secret_key=wrong-secret", "--option", "app_name=skysync",
               "--option", f"auth_url={baidu.url}", "--option", f"api_url={baidu.url}")  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "wrong-secret" not in done.stderr
