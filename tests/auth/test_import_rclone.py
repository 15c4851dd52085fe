"""`connection import-rclone` of OAuth remotes: rclone's `token = {...}` goes to the token store (never to
secrets.toml), the account id is read with it, and remotes whose token skysync could not renew are refused."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from engine import manage
from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.errors import UsageError
from engine.providers import gdrive
from tests.fakes.gdrive_server import DriveState, running
from tests.fakes.oauth_server import FakeOAuthServer


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DriveState, FakeOAuthServer]]:
    oauth = FakeOAuthServer().start()
    try:
        with running(DriveState(token_check=oauth.access_valid)) as (url, state):
            # rclone's config has no API address to override: point the provider's default at the fake
            monkeypatch.setattr(gdrive, "API_URL", url)
            yield state, oauth
    finally:
        oauth.stop()


def rclone_conf(path: pathlib.Path, name: str, values: dict[str, str]) -> str:
    path.write_text(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return str(path)


def test_a_drive_remote_carries_its_token_to_the_token_store(tmp_path, drive) -> None:
    state, oauth = drive
    issued = oauth.issue()
    token = json.dumps({**issued, "expiry": "2099-01-01T00:00:00.123456789+01:00"})
    conf = rclone_conf(tmp_path / "rclone.conf", "gd", {
        "type": "drive", "client_id": "test-client", "scope": "drive", "token": token,
        "token_url": oauth.token_url,
    })
    home = Home(str(tmp_path / "home"))
    conn, notes = manage.import_rclone(home, conf, "gd:Photos", None)
    home.save()
    assert conn.provider == "gdrive" and conn.options["account_id"] == state.permission_id
    saved = TokenStore(home.path, "gd").load()
    assert saved is not None and saved.access_token == issued["access_token"]
    secrets = pathlib.Path(home.path, "secrets.toml")
    assert not secrets.exists() or issued["refresh_token"] not in secrets.read_text()
    assert issued["refresh_token"] not in pathlib.Path(home.path, "config.toml").read_text()
    assert any("--remote /Photos" in n for n in notes)


@pytest.mark.parametrize(
    ("values", "why"),
    [({"type": "drive", "token": '{"access_token":"a"}'}, "rclone's own app"),
     ({"type": "dropbox", "client_id": "k"}, "has no token"),
     ({"type": "drive", "client_id": "c", "scope": "drive.readonly", "token": '{"access_token":"a"}'},
      "scope 'drive.readonly'")],
)
def test_remotes_whose_token_cannot_be_used_are_refused(tmp_path, values, why) -> None:
    conf = rclone_conf(tmp_path / "rclone.conf", "r", values)
    with pytest.raises(UsageError, match=why):
        manage.import_rclone(Home(str(tmp_path / "home")), conf, "r", None)
