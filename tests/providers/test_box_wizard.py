"""The app's connection wizard for Box at 80x24 against the Box fake: the option labels the wizard shows, the
advanced step's address overrides, the sign-in step with the 127.0.0.1 redirect (Box has no device code), the
final address pasted from another computer's browser, and the connection saved with the account id read at
sign-in and the token in the token store only."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.providers.box import BoxProvider
from tests.fakes.box_server import ACCOUNT, CLIENT_ID, CLIENT_SECRET, BoxFake
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app, type_into
from tests.tui.test_signin import choose_kind, fill_advanced, no_redirect
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def box() -> Iterator[BoxFake]:
    fake = BoxFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def test_every_option_has_a_label_and_help_and_only_the_secret_is_secret() -> None:
    for spec in BoxProvider.option_specs:
        assert spec.help and spec.title
    assert {s.name for s in BoxProvider.option_specs if s.secret} == {"client_secret", "token"}
    main = [s.name for s in BoxProvider.option_specs if not s.advanced and s.name != "token"]
    assert main == ["client_id", "client_secret"]


async def test_box_wizard_signs_in_by_the_pasted_address(tmp_path: pathlib.Path, box: BoxFake) -> None:
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    app: Any = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await choose_kind(pilot, "box")
        assert "127.0.0.1" in text_of(app.screen.query_one("#setup-note"))  # the redirect URI the app needs
        await type_into(pilot, "#name", "bx")
        await type_into(pilot, "#opt-client_id", CLIENT_ID)
        await type_into(pilot, "#opt-client_secret", CLIENT_SECRET)
        await fill_advanced(pilot, {"api_url": box.api_url, "upload_url": box.upload_url,
                                    "token_url": box.oauth.token_url, "auth_url": box.oauth.auth_url})
        screen = app.screen
        assert screen.address.startswith(box.oauth.auth_url + "?")
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in screen.address
        final = await asyncio.to_thread(no_redirect, screen.address)  # the browser ran on another computer
        await type_into(pilot, "#signin-answer", final)
        await pilot.press("enter")
        await wait_for(pilot, lambda: Home(str(home_dir)).has_connection("bx"), what="saved")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
    conn = Home(str(home_dir)).connection("bx")
    assert conn.provider == "box" and conn.options["account_id"] == ACCOUNT
    saved = TokenStore(str(home_dir), "bx").load()
    assert saved is not None and box.oauth.valid_refresh_tokens() == {saved.refresh_token}
    assert "refresh_token" not in (home_dir / "config.toml").read_text()
    assert CLIENT_SECRET not in (home_dir / "config.toml").read_text()
