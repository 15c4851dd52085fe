"""The app's connection wizard for `yandex` at 80x24 against the Yandex Disk fake: the kind chosen, the client
id and secret typed, the address overrides on the advanced step, then the sign-in step showing Yandex's device
address and code; approving the code elsewhere saves the connection with the Disk's uid and the token in the
token store (never in secrets.toml)."""

from __future__ import annotations

import asyncio
import pathlib
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from engine.auth.tokens import TokenStore
from engine.config import Home
from tests.fakes.yandex_server import YandexFake
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app, type_into
from tests.tui.test_signin import choose_kind, fill_advanced
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> Iterator[YandexFake]:
    server = YandexFake().start()
    server.oauth.device_interval = 0.2
    try:
        yield server
    finally:
        server.stop()


def approve(address: str, code: str) -> None:
    with urllib.request.urlopen(f"{address}?user_code={code}") as page:
        assert page.status == 200


async def test_yandex_wizard_signs_in_by_device_code(tmp_path: pathlib.Path, fake: YandexFake) -> None:
    home = tmp_path / "home"
    home.mkdir()
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await choose_kind(pilot, "yandex")
        await type_into(pilot, "#name", "yd")
        await type_into(pilot, "#opt-client_id", "yandex-app")
        await type_into(pilot, "#opt-client_secret", "yandex-secret")
        await fill_advanced(pilot, {"api_url": fake.api_url, "auth_url": fake.url})
        screen: Any = app.screen
        assert screen.address == fake.url + "/device"
        await wait_for(pilot, lambda: bool(re.search(r"[A-Z]{4}-[A-Z]{4}", text_of(screen.query_one("#signin-code")))),
                       what="the device code")  # fmt: skip
        code = re.search(r"[A-Z]{4}-[A-Z]{4}", text_of(screen.query_one("#signin-code"))).group(0)
        await asyncio.to_thread(approve, screen.address, code)
        await wait_for(pilot, lambda: Home(str(home)).has_connection("yd"), what="saved", timeout=20)
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
    assert Home(str(home)).connection("yd").options["account_id"] == fake.uid
    assert TokenStore(str(home), "yd").load() is not None
    assert "access_token" not in (home / "secrets.toml").read_text()
