"""Sign-in of `yandex` through `.venv/bin/skysync` on a pseudo-terminal, against the Yandex Disk fake's own OAuth
endpoints (Yandex's device-code flow: `verification_url`, `grant_type=device_code` with the code as `code`): the
client secret typed without echo, the address and the code printed, the code approved on "another computer",
the Disk's uid saved as the account, a pass that works; then a revoked sign-in that the pass and doctor report
and `connection login` repairs with the task's state kept, and a login as another account refused."""

from __future__ import annotations

import pathlib
import urllib.request
from collections.abc import Iterator

import pytest

from engine.auth.tokens import TokenStore
from tests.auth.cli_helpers import Terminal, run
from tests.auth.test_cli_drives import sign_in_needed, state_digest
from tests.auth.test_cli_signin import config
from tests.fakes.yandex_server import YandexFake


@pytest.fixture
def fake() -> Iterator[YandexFake]:
    server = YandexFake().start()
    server.oauth.device_interval = 0.2
    server.mkdirs("Sync")
    try:
        yield server
    finally:
        server.stop()


def approve(term: Terminal) -> None:
    """What the user does on another computer: open the printed address and enter the printed code."""
    uri = term.expect(r"\n(http://127\.0\.0\.1:\d+/device)\r?\n").group(1)
    code = term.expect(r"\n([A-Z]{4}-[A-Z]{4})\r?\n").group(1)
    with urllib.request.urlopen(f"{uri}?user_code={code}") as page:
        assert page.status == 200


def test_device_sign_in_then_revoked_and_recovered(tmp_path, fake: YandexFake) -> None:
    home = str(tmp_path / "home")
    term = Terminal.start("yandex", home, "connection", "add", "y", "--provider", "yandex",
                          "--option", "client_id=yandex-app", "--option", "client_secret=-",
                          "--option", f"api_url={fake.api_url}", "--option", f"auth_url={fake.url}")  # fmt: skip
    term.expect("client_secret: ")
    term.type("yandex-secret")
    approve(term)
    assert term.finish() == 0, term.text
    assert "yandex-secret" not in term.text  # typed without echo
    assert config(home)["connections"]["y"]["options"]["account_id"] == fake.uid
    assert fake.oauth.counts["device_code"] >= 1
    secrets = pathlib.Path(home, "secrets.toml").read_text()
    assert "yandex-secret" in secrets and "access_token" not in secrets

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    assert run("yandex", home, "task", "add", "t", "--connection", "y", "--local", str(local), "--remote",
               "/Sync", "--direction", "bidirectional").returncode == 0  # fmt: skip
    done = run("yandex", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert fake.get("Sync/a.txt").data == b"hello"
    digest = state_digest(home)

    fake.oauth.revoke_all()
    done = run("yandex", home, "sync", "t")
    assert done.returncode == 2 and "connection login y" in done.stderr, done.stderr
    assert TokenStore(home, "y").needs_signin()
    assert "sign-in needed" in sign_in_needed(home, "y")
    assert state_digest(home) == digest  # the refused pass changed nothing

    term = Terminal.start("yandex", home, "connection", "login", "y")
    approve(term)
    assert term.finish() == 0, term.text
    assert "connection 'y' is signed in" in term.text
    assert state_digest(home) == digest
    (local / "b.txt").write_text("again")
    done = run("yandex", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert fake.get("Sync/b.txt").data == b"again"

    # Signing in as another Yandex account is refused: the connection's state belongs to the first one.
    fake.uid = "1130000002"
    term = Terminal.start("yandex", home, "connection", "login", "y")
    approve(term)
    assert term.finish() == 2, term.text
    assert config(home)["connections"]["y"]["options"]["account_id"] == "1130000001"
