"""The app's side of signing in: the wizard's Google Drive and Dropbox paths at 80x24 against the fakes (sign-in by
pasting the final address or the shown code, the shared drive chosen from the account's), Escape cancelling a
sign-in cleanly, "sign in again" (l) on a connection whose sign-in is gone, the trial add that neither reads the
account nor writes the token store, and the pipe console's line sorting."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

from engine import providers
from engine.auth.oauth import OAuthSpec
from engine.auth.signin import Console
from engine.auth.tokens import Token, TokenStore
from engine.config import Connection, Home
from engine.errors import UsageError
from tests.fakes.dropbox_server import DropboxFake
from tests.fakes.gdrive_server import DriveState, running
from tests.fakes.oauth_server import FakeOAuthServer
from tests.tui.helpers import FakeEngine, text_of, wait_for
from tests.tui.test_flows import make_app, type_into
from tui import bridge
from tui.screens.connection_wizard import AdvancedStep, ConnectionForm, ProviderStep
from tui.screens.main import MainScreen
from tui.screens.signin import DriveStep, SignInScreen
from tui.signin_session import SignInSession, classify

KIND = "oauth-test"
TARGET = "tests.auth.oauth_kind:OAuthTestProvider"


def no_redirect(url: str) -> str:
    """What a browser on another computer ends up showing: the 302's Location, not followed."""

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    try:
        urllib.request.build_opener(Stop).open(url)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302
        return str(exc.headers["Location"])
    raise AssertionError("no redirect")


def shown_code(url: str) -> str:
    """The code Dropbox's page shows (no redirect at all)."""
    with urllib.request.urlopen(url) as page:
        found = re.search(r"<code>([^<]+)</code>", page.read().decode())
    assert found is not None
    return found.group(1)


@pytest.fixture
def oauth() -> Iterator[FakeOAuthServer]:
    server = FakeOAuthServer().start()  # rotating refresh tokens: stricter than Google
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dbx() -> Iterator[DropboxFake]:
    fake = DropboxFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def test_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(providers._REGISTRY, KIND, TARGET)
    return KIND


@pytest.fixture
def home_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


async def choose_kind(pilot: Pilot, kind: str) -> None:
    """Step 1 by keyboard: down until the kind is highlighted, then Enter."""
    app: Any = pilot.app
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, ProviderStep), what="provider step")
    options = app.screen.query_one(OptionList)
    for _ in range(options.option_count):
        if options.highlighted_option is not None and options.highlighted_option.id == kind:
            break
        await pilot.press("down")
    assert options.highlighted_option.id == kind
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ConnectionForm), what="form")


async def fill_advanced(pilot: Pilot, values: dict[str, str]) -> None:
    app: Any = pilot.app
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, AdvancedStep), what="advanced step")
    assert not app.screen.query("#opt-account_id")  # read at sign-in, never typed
    for key, value in values.items():
        await type_into(pilot, f"#opt-{key}", value)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen) and bool(app.screen.address),
                   what="the sign-in address")


pytestmark = pytest.mark.anyio


async def test_gdrive_wizard_signs_in_by_the_pasted_address_and_offers_the_shared_drives(
        home_dir: pathlib.Path, oauth: FakeOAuthServer) -> None:
    with running(DriveState(token_check=oauth.access_valid)) as (api, state):
        state.add_drive("Team")
        state.add_drive("Archive")
        app = make_app(home_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            await choose_kind(pilot, "gdrive")
            await type_into(pilot, "#name", "g")
            await type_into(pilot, "#opt-client_id", "test-client")
            await pilot.press("ctrl+t")  # nothing is reached before the sign-in
            assert "after the sign-in" in text_of(app.screen.query_one("#form-status"))
            await fill_advanced(pilot, {"api_url": api, "token_url": oauth.token_url, "auth_url": oauth.auth_url})
            screen = app.screen
            assert screen.address.startswith(oauth.auth_url + "?")  # the bare address, shown, not opened
            assert "code_challenge_method=S256" in screen.address
            assert screen.query_one("#signin-answer").has_focus
            final = await asyncio.to_thread(no_redirect, screen.address)  # the browser ran on another computer
            await type_into(pilot, "#signin-answer", final)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DriveStep)
                           and app.screen.query_one(OptionList).option_count == 3, what="the drives")
            labels = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
            assert labels[0] == "My Drive" and {lbl.split("  ")[0] for lbl in labels[1:]} == {"Team", "Archive"}
            while not str(app.screen.query_one(OptionList).highlighted_option.prompt).startswith("Team"):
                await pilot.press("down")
            await pilot.press("enter")
            await wait_for(pilot, lambda: Home(str(home_dir)).has_connection("g"), what="saved")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
    conn = Home(str(home_dir)).connection("g")
    assert conn.options["shared_drive"] == "Team" and conn.options["account_id"] == state.permission_id
    saved = TokenStore(str(home_dir), "g").load()
    assert saved.refresh_token in oauth.valid_refresh_tokens()
    secrets = home_dir / "secrets.toml"
    assert not secrets.exists() or "token" not in secrets.read_text()


async def test_dropbox_wizard_signs_in_by_the_shown_code(home_dir: pathlib.Path, dbx: DropboxFake) -> None:
    api = dbx.urls["api"]
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await choose_kind(pilot, "dropbox")
        await type_into(pilot, "#name", "d")
        await type_into(pilot, "#opt-app_key", "fake-app-key")
        await fill_advanced(pilot, {"api_url": api, "content_url": dbx.urls["content"],
                                    "notify_url": dbx.urls["notify"], "token_url": f"{api}/oauth2/token",
                                    "auth_url": f"{api}/oauth2/authorize"})
        screen = app.screen
        assert "redirect_uri" not in screen.address and "token_access_type=offline" in screen.address
        assert "paste the code" in text_of(screen.query_one("#signin-words"))
        await type_into(pilot, "#signin-answer", "not-the-code")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "not the answer" in text_of(screen.query_one("#signin-status"))
                       or "failed" in text_of(screen.query_one("#signin-status")), what="a refused code")
        # a wrong code is refused by the service: the sign-in ends with its words, and Ctrl+R starts again
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: bool(screen.address), what="a new address")
        code = await asyncio.to_thread(shown_code, screen.address)
        await type_into(pilot, "#signin-answer", code)
        await pilot.press("enter")
        await wait_for(pilot, lambda: Home(str(home_dir)).has_connection("d"), what="saved")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
    assert Home(str(home_dir)).connection("d").options["account_id"] in dbx.accounts
    assert TokenStore(str(home_dir), "d").load().refresh_token


async def test_escape_cancels_a_sign_in_cleanly(home_dir: pathlib.Path, oauth: FakeOAuthServer,
                                                test_kind: str) -> None:
    app = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await choose_kind(pilot, test_kind)
        await type_into(pilot, "#name", "c")
        await type_into(pilot, "#opt-client_id", "test-client")
        await type_into(pilot, "#opt-server", oauth.url)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, AdvancedStep), what="advanced step")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen) and bool(app.screen.address),
                       what="the address")
        worker = next(w for w in app.screen.workers if w.group == "signin")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await wait_for(pilot, lambda: worker.is_finished, what="the sign-in's thread to end")
    assert not Home(str(home_dir)).has_connection("c")
    assert not (home_dir / "tokens").exists() or not any((home_dir / "tokens").iterdir())
    assert oauth.counts["authorization_code"] == 0


async def test_l_signs_a_connection_in_again_and_the_list_says_sign_in_needed(
        home_dir: pathlib.Path, oauth: FakeOAuthServer, test_kind: str) -> None:
    h = Home(str(home_dir))
    h.put_connection(Connection("c", test_kind, {"client_id": "test-client", "server": oauth.url,
                                                 "flow": "code-none", "account_id": oauth.account_id}), {})
    h.save()
    store = TokenStore(str(home_dir), "c")
    store.save(Token.from_dict({**oauth.issue(), "expiry": 0}))
    store.mark_needs_signin()
    app = make_app(home_dir, start_engine=False)  # no engine: the token file says so, as doctor reads it
    async with app.run_test(size=(80, 24)) as pilot:
        listing = app.screen.query_one("#connections", OptionList)
        await wait_for(pilot, lambda: listing.option_count == 1 and "sign-in needed" in str(
            listing.get_option_at_index(0).prompt), what="sign-in needed in the list")
        assert "Press l to sign in again" in text_of(app.screen.query_one("#overview-status"))
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen) and bool(app.screen.address),
                       what="the address")
        code = await asyncio.to_thread(shown_code_of_fake, app.screen.address)
        await type_into(pilot, "#signin-answer", code)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        assert not store.needs_signin()
        app.poll_status()
        await wait_for(pilot, lambda: "sign-in needed" not in str(listing.get_option_at_index(0).prompt),
                       what="the state cleared")


def shown_code_of_fake(url: str) -> str:
    """The fake OAuth server's page for a no-redirect sign-in shows the code in its text."""
    with urllib.request.urlopen(url) as page:
        body = page.read().decode()
    found = re.search(r"Code: (\S+)", body)
    assert found is not None, body
    return found.group(1)


async def test_l_on_a_connection_with_keys_says_there_is_nothing_to_sign_in(home_dir: pathlib.Path,
                                                                            tmp_path: pathlib.Path) -> None:
    (tmp_path / "cloud").mkdir()
    h = Home(str(home_dir))
    h.put_connection(Connection("cloud", "local", {"root": str(tmp_path / "cloud")}), {})
    h.save()
    app = make_app(home_dir, FakeEngine({"connections": {}, "tasks": {}}))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#connections", OptionList).option_count == 1)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert any("not a browser" in str(n.message) for n in app._notifications)


# -- the trial add and the account read (issue: the trial spent a rotating refresh token) -----------------------


def test_the_trial_add_reads_no_account_and_writes_no_token(home_dir: pathlib.Path, oauth: FakeOAuthServer,
                                                            test_kind: str) -> None:
    issued = oauth.issue(access_ttl=10)  # inside the refresh margin: any account read would refresh it
    options = {"client_id": "test-client", "server": oauth.url, "token": json.dumps(issued)}
    home = Home(str(home_dir))
    bridge.check_new_connection(home, "c", test_kind, options)
    assert sum(oauth.counts.values()) == 0 and not (home_dir / "tokens").exists()
    assert issued["refresh_token"] in oauth.valid_refresh_tokens()

    signed = bridge.read_account(test_kind, "c", options, None)  # once: the token is refreshed (and rotated)
    assert oauth.counts["refresh_token"] == 1 and issued["refresh_token"] not in oauth.valid_refresh_tokens()
    assert signed.account_id == oauth.account_id and "at-" not in repr(signed)
    bridge.add_signed_in_connection(home, "c", test_kind, options, {}, signed)  # with the refreshed token
    saved = TokenStore(str(home_dir), "c").load()
    assert oauth.valid_refresh_tokens() == {saved.refresh_token}
    assert Home(str(home_dir)).connection("c").options["account_id"] == oauth.account_id


def test_the_trial_add_still_gives_the_engine_refusals(home_dir: pathlib.Path, test_kind: str) -> None:
    home = Home(str(home_dir))
    with pytest.raises(UsageError, match="name"):
        bridge.check_new_connection(home, "bad name!", test_kind, {"client_id": "x", "server": "http://127.0.0.1:9"})
    with pytest.raises(UsageError, match="not a token"):
        bridge.check_new_connection(home, "c", test_kind, {"client_id": "x", "server": "http://127.0.0.1:9",
                                                           "token": '{"refresh_token": "rt"}'})
    with pytest.raises(UsageError, match="unknown option"):
        bridge.check_new_connection(home, "c", test_kind, {"client_id": "x", "nope": "1"})


def test_a_second_connection_on_the_same_account_is_refused_at_the_save(
        home_dir: pathlib.Path, oauth: FakeOAuthServer, test_kind: str) -> None:
    base = {"client_id": "test-client", "server": oauth.url}
    home = Home(str(home_dir))
    first = bridge.read_account(test_kind, "a", {**base, "token": json.dumps(oauth.issue())}, None)
    bridge.add_signed_in_connection(home, "a", test_kind, base, {}, first)
    second = bridge.read_account(test_kind, "b", {**base, "token": json.dumps(oauth.issue())}, None)
    with pytest.raises(UsageError, match="already uses this credential"):
        bridge.add_signed_in_connection(Home(str(home_dir)), "b", test_kind, base, {}, second)
    assert not Home(str(home_dir)).has_connection("b") and not os.path.exists(TokenStore(str(home_dir), "b").path)


def test_drive_option_is_the_name_unless_two_drives_share_it() -> None:
    drives = [("d1", "Team"), ("d2", "Archive"), ("d3", "Archive")]
    assert bridge.drive_option("d1", drives) == "Team"
    assert bridge.drive_option("d3", drives) == "d3"


# -- the pipe console ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "device", "url_seen", "expected"), [
    ("", False, False, None),
    ("https://accounts.example/auth?x=1", False, False, ("url", "https://accounts.example/auth?x=1")),
    ("http://127.0.0.1:5/?code=1", False, True, ("text", "http://127.0.0.1:5/?code=1")),  # only the first
    ("> https://a.example/?q", False, False, ("url", "https://a.example/?q")),
    ("ABCD-EFGH", True, True, ("code", "ABCD-EFGH")),
    ("ABCD-EFGH", True, False, ("text", "ABCD-EFGH")),
    ("and enter this code:", True, True, None),  # the screen labels the code itself
    ("Then paste the code the service shows you here.", False, True,
     ("text", "Then paste the code the service shows you here.")),
    ("Waiting for the sign-in to be approved (Ctrl-C stops)...", True, True,
     ("text", "Waiting for the sign-in to be approved (Esc stops)…")),
    ("> bad state; paste the whole final address, or the code", False, True,
     ("text", "bad state; paste the whole final address, or the code")),
])
def test_classify(line: str, device: bool, url_seen: bool, expected: tuple[str, str] | None) -> None:
    assert classify(line, device=device, url_seen=url_seen) == expected


SPEC = OAuthSpec("id", None, "https://auth.example", "https://token.example")


def test_a_session_hands_the_paste_to_the_flow_and_cancel_ends_it() -> None:
    lines: list[tuple[str, str]] = []
    got: list[str] = []

    def flow(spec: OAuthSpec, console: Console) -> Token:
        console.say("Open this address:")
        console.say("https://auth.example/?a=1")
        console.out.write("> ")
        got.append(console.inp.readline())
        got.append(console.inp.readline())  # end of input after cancel
        raise AssertionError("ended") if got[-1] else SystemExit(0)

    session = SignInSession(lambda kind, text: lines.append((kind, text)), flow)
    ended: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(ended, session.sign_in, SPEC))
    thread.start()
    while len(lines) < 2:
        thread.join(0.01)
    assert lines == [("text", "Open this address:"), ("url", "https://auth.example/?a=1")]
    assert session.answer("  http://127.0.0.1:1/?code=x\n&state=y ")
    while len(got) < 1:
        thread.join(0.01)
    session.cancel()
    thread.join(5)
    assert got == ["http://127.0.0.1:1/?code=x &state=y\n", ""] and isinstance(ended[0], SystemExit)
    assert not session.answer("late")  # nothing waits any more


def _catch(into: list[BaseException], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:
        into.append(exc)
