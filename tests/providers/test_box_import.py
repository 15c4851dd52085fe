"""`connection import-rclone` of a Box remote: rclone's token goes to the token store with the account id read
with it, the app's client id and secret come along, and remotes skysync could not use are refused in one line."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from engine import manage
from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.errors import UsageError
from engine.providers import box as box_module
from tests.fakes.box_server import ACCOUNT, CLIENT_ID, CLIENT_SECRET, BoxFake


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[BoxFake]:
    box = BoxFake().start()
    try:
        # rclone's config has no API address to override: point the provider's default at the fake
        monkeypatch.setattr(box_module, "API_URL", box.api_url)
        yield box
    finally:
        box.stop()


def rclone_conf(path: pathlib.Path, values: dict[str, str]) -> str:
    path.write_text("[bx]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return str(path)


def test_a_box_remote_carries_its_token_and_app_to_skysync(tmp_path: pathlib.Path, fake: BoxFake) -> None:
    token = fake.new_token()
    conf = rclone_conf(tmp_path / "rclone.conf", {
        "type": "box", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": token,
        "token_url": fake.oauth.token_url, "box_sub_type": "user",
    })  # fmt: skip
    home = Home(str(tmp_path / "home"))
    conn, notes = manage.import_rclone(home, conf, "bx:Photos", None)
    home.save()
    assert conn.provider == "box" and conn.options["account_id"] == ACCOUNT
    assert conn.options["token_url"] == fake.oauth.token_url
    saved = TokenStore(home.path, "bx").load()
    assert saved is not None and saved.refresh_token in fake.oauth.valid_refresh_tokens()
    assert saved.refresh_token not in pathlib.Path(home.path, "config.toml").read_text()
    assert CLIENT_SECRET not in pathlib.Path(home.path, "config.toml").read_text()
    assert any("--remote /Photos" in n for n in notes)


@pytest.mark.parametrize(
    ("values", "why"),
    [({"type": "box", "token": '{"access_token":"a"}'}, "rclone's own app"),
     ({"type": "box", "client_id": "c", "token": '{"access_token":"a"}', "box_config_file": "/etc/b.json"}, "JWT"),
     ({"type": "box", "client_id": "c", "token": '{"access_token":"a"}', "root_folder_id": "123"}, "folder id"),
     ({"type": "box", "client_id": "c", "token": '{"access_token":"a"}', "access_token": "dev"}, "developer token")],
)
def test_box_remotes_skysync_cannot_use_are_refused(tmp_path: pathlib.Path, values: dict[str, str], why: str) -> None:
    conf = rclone_conf(tmp_path / "rclone.conf", values)
    with pytest.raises(UsageError, match=why):
        manage.import_rclone(Home(str(tmp_path / "home")), conf, "bx", None)
