"""Import from rclone, the new-connection list's last entry: the rclone config (rclone's own by default) lists its
remotes with their types, the chosen one is imported under a name the user can change and tested, and every
refusal (an encrypted file, a type skysync cannot use, a missing bucket) is the engine's one line on the
screen, which stays open for another choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from engine.config import Home
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app, type_into
from tui.screens.connection_wizard import ProviderStep
from tui.screens.main import MainScreen
from tui.screens.rclone_import import RcloneImportScreen

pytestmark = pytest.mark.anyio


def write_conf(path: Path, remotes: dict[str, dict[str, str]]) -> Path:
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) + "\n"
                            for name, values in remotes.items()))
    return path


def status(app) -> str:  # type: ignore[no-untyped-def]
    return text_of(app.screen.query_one("#rclone-status"))


async def open_import(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, ProviderStep), what="the provider list")
    listing = app.screen.query_one("#providers", OptionList)
    assert "Import from rclone" in str(listing.get_option_at_index(listing.option_count - 1).prompt)
    await pilot.press("end", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RcloneImportScreen), what="the import screen", timeout=30)


def remotes_shown(app) -> list[str]:  # type: ignore[no-untyped-def]
    listing = app.screen.query_one("#rclone-remotes", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_a_remote_of_rclones_own_config_is_imported_under_the_name_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cloud").mkdir()
    conf = write_conf(tmp_path / "rclone.conf", {
        "dav": {"type": "webdav", "url": "http://127.0.0.1:9/dav", "user": "u"},
        "nas": {"type": "local", "copy_links": "true"},
    })
    monkeypatch.setenv("RCLONE_CONFIG", str(conf))  # what rclone itself reads first
    home = tmp_path / "home"
    home.mkdir()
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_import(pilot)
        assert app.screen.query_one("#rclone-config").value == str(conf)
        assert remotes_shown(app) == ["dav  (webdav)", "nas  (local)"]
        await pilot.press("down")  # nas; the name follows the remote until the user types one
        await wait_for(pilot, lambda: app.screen.query_one("#rclone-name").value == "nas", what="the name", timeout=30)
        await type_into(pilot, "#rclone-target", str(tmp_path / "cloud"))
        await type_into(pilot, "#rclone-name", "my-nas")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="back on the main screen", timeout=30)
        assert any("not carried over: copy_links" in str(n.message) for n in app._notifications)
        # the wizard's flow says so once the screen has gone (a moment later, on a loaded machine)
        await wait_for(pilot, lambda: any("imported from rclone" in str(n.message) for n in app._notifications),
                       what="the imported toast", timeout=30)
    conn = Home(str(home)).connection("my-nas")
    assert (conn.provider, conn.options["root"]) == ("local", str(tmp_path / "cloud"))


async def test_refusals_are_one_line_and_leave_the_screen_open(tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.conf"
    encrypted.write_text("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nGDuq6AVWdqpbXhOt3jg\n")
    conf = write_conf(tmp_path / "rclone.conf", {
        "sf": {"type": "sftp", "host": "example.org"},
        "aws": {"type": "s3", "provider": "AWS", "access_key_id": "AKID", "secret_access_key": "s3-secret-value"},
    })
    home = tmp_path / "home"
    home.mkdir()
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_import(pilot)
        await type_into(pilot, "#rclone-config", str(encrypted))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "is encrypted" in status(app), what="the encrypted file's line")
        assert remotes_shown(app) == [] and "\n" not in status(app)
        await type_into(pilot, "#rclone-config", str(conf))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(remotes_shown(app)) == 2, what="the remotes")
        await pilot.press("ctrl+s")  # sf, highlighted first
        await wait_for(pilot, lambda: "which skysync cannot import" in status(app), what="the type's refusal")
        await pilot.press("down", "ctrl+s")  # aws without a bucket after the colon
        await wait_for(pilot, lambda: "names no bucket" in status(app), what="the bucket's refusal")
        assert "s3-secret-value" not in status(app)
        assert isinstance(app.screen, RcloneImportScreen)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, ProviderStep), what="back to the provider list")
    assert Home(str(home)).connections() == []
