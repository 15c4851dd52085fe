"""`k` (export the encryption key), advertised on the Overview, in help and in the palette: it crashed the app
(the bridge had no such call). Without a key it says so; with one it writes key.zip (mode 0600)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.config import Home
from engine.crypto.recovery import public_pem_of
from tests.tui.helpers import wait_for
from tests.tui.test_flows import make_app, type_into, with_connection
from tui.screens.dialogs import PromptScreen
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio


async def test_k_without_a_key_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("k")
        await pilot.pause(0.3)
        assert isinstance(app.screen, MainScreen) and app.is_running
        assert any("no encryption key" in str(n.message) for n in app._notifications)


async def test_k_with_a_key_writes_key_zip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    h = Home(str(home))
    h.set_secret("cloud", "encryption_public_key", public_pem_of(key))
    h.set_secret("cloud", "encryption_private_key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode())
    h.save()
    out = tmp_path / "saved"
    out.mkdir()
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), what="where to")
        await type_into(pilot, "#prompt", str(out))
        await pilot.press("enter")
        await wait_for(pilot, lambda: (out / "key.zip").exists(), what="key.zip")
    assert stat.S_IMODE(os.stat(out / "key.zip").st_mode) == 0o600
    assert sorted(zipfile.ZipFile(out / "key.zip").namelist()) == ["private.pem", "public.pem"]
