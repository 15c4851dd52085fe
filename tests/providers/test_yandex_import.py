"""`connection import-rclone` of a `yandex` remote: its token goes to the token store with the Disk's uid read,
the OAuth server comes from rclone's token_url, and a remote on rclone's own app is refused."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from engine import manage
from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.errors import UsageError
from engine.providers import yandex
from tests.fakes.yandex_server import YandexFake


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[YandexFake]:
    server = YandexFake().start()
    monkeypatch.setattr(yandex, "API_URL", server.api_url)  # rclone's config has no API address to override
    try:
        yield server
    finally:
        server.stop()


def rclone_conf(path: pathlib.Path, values: dict[str, str]) -> str:
    path.write_text("[ya]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return str(path)


def test_a_yandex_remote_carries_its_token_and_oauth_server(tmp_path: pathlib.Path, fake: YandexFake) -> None:
    issued = fake.issue_token()
    token = json.dumps({**issued, "expiry": "2099-01-01T00:00:00.123456789+03:00"})
    conf = rclone_conf(tmp_path / "rclone.conf", {
        "type": "yandex", "client_id": "yandex-app", "client_secret": "yandex-secret", "token": token,
        "token_url": fake.url + "/token", "hard_delete": "true",
    })  # fmt: skip
    home = Home(str(tmp_path / "home"))
    conn, notes = manage.import_rclone(home, conf, "ya:Photos", None)
    home.save()
    assert conn.provider == "yandex" and conn.options["account_id"] == fake.uid
    assert conn.options["auth_url"] == fake.url
    saved = TokenStore(home.path, "ya").load()
    assert saved is not None and saved.access_token == issued["access_token"]
    assert str(issued["refresh_token"]) not in pathlib.Path(home.path, "config.toml").read_text()
    assert any("--remote /Photos" in n for n in notes)
    assert any("hard_delete" in n for n in notes)  # deletions go to the trash: said, not silently dropped


def test_a_yandex_remote_on_rclones_own_app_is_refused(tmp_path: pathlib.Path) -> None:
    conf = rclone_conf(tmp_path / "rclone.conf", {"type": "yandex", "token": '{"access_token":"a"}'})
    with pytest.raises(UsageError, match="rclone's own app"):
        manage.import_rclone(Home(str(tmp_path / "home")), conf, "ya", None)
