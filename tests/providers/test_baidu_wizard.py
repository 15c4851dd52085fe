"""The app's connection wizard for Baidu Netdisk at 80x24 against the Baidu fake: the option labels and the setup
note about the app folder, the advanced step's address overrides, the sign-in step with Baidu's device code
(shown on the screen, approved on "another device"), and the connection saved with the account's uk read at
sign-in, the token in the token store only and the SecretKey in secrets.toml only."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator
from typing import Any

import pytest

from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.providers.baidu import BaiduProvider
from tests.fakes.baidu_server import BaiduFake
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app, type_into
from tests.tui.test_signin import choose_kind, fill_advanced
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio
APP_KEY, SECRET_KEY = "wizard-app-key", "wizard-secret-key"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def baidu() -> Iterator[BaiduFake]:
    fake = BaiduFake(APP_KEY, SECRET_KEY).start()
    fake.device_interval = 0.2
    try:
        yield fake
    finally:
        fake.stop()


def test_the_main_step_asks_for_the_app_and_its_folder() -> None:
    main = [s.name for s in BaiduProvider.option_specs if not s.advanced and s.name != "token"]
    assert main == ["app_key", "secret_key", "app_name"]
    assert {s.name for s in BaiduProvider.option_specs if s.secret} == {"secret_key", "token"}


async def test_baidu_wizard_signs_in_with_the_device_code(tmp_path: pathlib.Path, baidu: BaiduFake) -> None:
    uk = baidu.new_account("skysync")[0]
    baidu.pending_uk = uk
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    app: Any = make_app(home_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await choose_kind(pilot, "baidu")
        assert "/apps/<app name>" in text_of(app.screen.query_one("#setup-note"))  # spec note 3, said up front
        await type_into(pilot, "#name", "pan")
        await type_into(pilot, "#opt-app_key", APP_KEY)
        await type_into(pilot, "#opt-secret_key", SECRET_KEY)
        await type_into(pilot, "#opt-app_name", "skysync")
        await fill_advanced(pilot, {"api_url": baidu.url, "content_url": baidu.url, "auth_url": baidu.url})
        screen = app.screen
        assert screen.address == baidu.url + "/oauth/2.0/device"
        await wait_for(pilot, lambda: "Code to enter" in text_of(screen.query_one("#signin-code")), what="code")
        code = re.search(r"Code to enter: (\S+)", text_of(screen.query_one("#signin-code"))).group(1)
        assert baidu.approve_device(code)  # the user approves it on a phone
        await wait_for(pilot, lambda: Home(str(home_dir)).has_connection("pan"), what="saved")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
    conn = Home(str(home_dir)).connection("pan")
    assert conn.provider == "baidu" and conn.options["account_id"] == str(uk) and conn.options["app_name"] == "skysync"
    saved = TokenStore(str(home_dir), "pan").load()
    assert saved is not None and saved.refresh_token in baidu.refresh
    config = (home_dir / "config.toml").read_text()
    assert "refresh_token" not in config and SECRET_KEY not in config
    assert SECRET_KEY in (home_dir / "secrets.toml").read_text()
