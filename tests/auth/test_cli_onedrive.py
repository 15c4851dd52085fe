"""Device-code sign-in of `onedrive` through `.venv/bin/skysync` on a pseudo-terminal, against the Graph fake and
its identity endpoints served over TLS with the test's own certificate (`ca_file`): the address and the code
printed, polling (through MSAL) until the code is approved, the account read and saved, a pass that works; two
processes refreshing the rotating token at once keep one valid refresh token; a revoked sign-in is "sign-in
needed"."""

from __future__ import annotations

import os
import pathlib
import re
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from engine.auth.tokens import Token, TokenStore
from tests.auth.cli_helpers import ROOT, Terminal, run
from tests.fakes.graph_server import Drive, GraphFake
from tests.fakes.oauth_server import DEVICE_GRANT


@pytest.fixture
def graph() -> Iterator[tuple[GraphFake, Drive]]:
    fake = GraphFake("test-client").start()
    try:
        drive = fake.new_drive("personal")
        fake.mkdirs(drive, "Sync")
        yield fake, drive
    finally:
        fake.stop()


def options(fake: GraphFake) -> list[str]:
    values = {"client_id": "test-client", "api_url": fake.api_url, "auth_url": fake.auth_url,
              "ca_file": fake.ca_file}
    return [arg for k, v in values.items() for arg in ("--option", f"{k}={v}")]


def approve(fake: GraphFake, term: Terminal) -> None:
    """What the user does in a browser on another computer: open the printed address, enter the code."""
    address = term.expect(r"\n(https://127\.0\.0\.1:\d+/device)\r?\n").group(1)
    code = term.expect(r"\n([A-Z]{4}-[A-Z]{4})\r?\n").group(1)
    term.expect("Waiting for the sign-in")
    polls = fake.oauth.counts[DEVICE_GRANT]
    deadline = time.time() + 20
    while fake.oauth.counts[DEVICE_GRANT] == polls and time.time() < deadline:
        time.sleep(0.02)  # approved only once the script has been told "authorization_pending"

    context = ssl.create_default_context(cafile=fake.ca_file)
    with urllib.request.urlopen(f"{address}?user_code={code}", context=context, timeout=10) as answer:
        assert answer.status == 200


def test_device_code_sign_in_through_the_console_script(tmp_path: pathlib.Path,
                                                        graph: tuple[GraphFake, Drive]) -> None:
    fake, drive = graph
    home = str(tmp_path / "home")
    term = Terminal.start("onedrive", home, "connection", "add", "od", "--provider", "onedrive", *options(fake))
    approve(fake, term)
    assert term.finish() == 0, term.text
    assert fake.oauth.counts[DEVICE_GRANT] >= 2  # polled until approved
    config = (tmp_path / "home" / "config.toml").read_text()
    assert "account_id" in config and fake.user in config and "access_token" not in config
    stored = TokenStore(home, "od").load()
    assert stored is not None and stored.refresh_token in fake.oauth.valid_refresh_tokens()
    assert fake.oauth.counts["openid_configuration"] >= 1  # signed in through MSAL, its cache kept with the token
    assert [a["local_account_id"] for a in stored.extra["msal_cache"]["Account"].values()] == [fake.user]

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_bytes(b"signed in")
    assert run("onedrive", home, "task", "add", "t", "--connection", "od", "--local", str(local), "--remote",
               "/Sync", "--direction", "bidirectional").returncode == 0  # fmt: skip
    done = run("onedrive", home, "sync", "t")
    assert done.returncode == 0, done.stderr
    assert fake.files(drive, "Sync") == {"a.txt": b"signed in"}

    # Revoked: "sign-in needed" in one line, and `connection login` brings it back.
    fake.oauth.revoke_all()
    refused = run("onedrive", home, "sync", "t")
    assert refused.returncode != 0 and "sign-in" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    term = Terminal.start("onedrive", home, "connection", "login", "od")
    approve(fake, term)
    assert term.finish() == 0, term.text
    (local / "b.txt").write_bytes(b"again")
    assert run("onedrive", home, "sync", "t").returncode == 0
    assert fake.files(drive, "Sync") == {"a.txt": b"signed in", "b.txt": b"again"}


REFRESH = """
import sys, time
from engine.connect import open_provider
from engine.config import Home
home, start_at = sys.argv[1], float(sys.argv[2])
while time.time() < start_at:
    time.sleep(0.001)
provider = open_provider(Home(home), "od")
print(provider.account_id())
"""


def test_two_processes_refreshing_at_once_keep_one_valid_refresh_token(
    tmp_path: pathlib.Path, graph: tuple[GraphFake, Drive]
) -> None:
    fake, _drive = graph
    home = str(tmp_path / "home")
    issued = fake.oauth.issue()
    token = Token.from_dict(issued)
    done = run("onedrive", home, "connection", "add", "od", "--provider", "onedrive", *options(fake),
               "--option", "token=-", stdin=token.to_json())  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = TokenStore(home, "od")
    saved = store.load()
    assert saved is not None
    store.save(Token(saved.access_token, saved.token_type, saved.refresh_token, time.time() - 10, saved.extra))
    fake.oauth.refresh_delay = 0.5  # the second process arrives while the first refreshes
    start_at = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", REFRESH, home, str(start_at)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": ROOT}) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == [fake.user, fake.user]
    final = store.load()
    assert final is not None and fake.oauth.valid_refresh_tokens() == {final.refresh_token}
    assert "msal_cache" in final.extra  # the imported refresh token was renewed through MSAL, its cache saved
    assert fake.oauth.counts["refresh_refused"] == 0


def test_a_wrong_certificate_is_one_line(tmp_path: pathlib.Path, graph: tuple[GraphFake, Drive]) -> None:
    fake, _drive = graph
    args = [a if not a.startswith("ca_file=") else "ca_file=" + os.devnull for a in options(fake)]
    done = run("onedrive", str(tmp_path / "home"), "connection", "add", "od", "--provider", "onedrive", *args)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert re.search(r"sign-in|certificate|reach", done.stderr), done.stderr
