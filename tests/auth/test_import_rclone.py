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


# -- object stores behind rclone's s3 `provider` ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("values", "kind", "options"),
    [({"provider": "AWS", "access_key_id": "AKID", "secret_access_key": "sk", "region": "eu-west-1"},
      "s3", {"preset": "aws", "access_key_id": "AKID", "secret_access_key": "sk", "region": "eu-west-1"}),
     ({"provider": "Ceph", "access_key_id": "AKID", "secret_access_key": "sk", "endpoint": "https://ceph.example",
       "force_path_style": "false"},
      "s3", {"preset": "other", "endpoint": "https://ceph.example", "addressing_style": "virtual"}),
     ({"provider": "Alibaba", "access_key_id": "LTAI", "secret_access_key": "oss-secret",
       "endpoint": "oss-cn-shanghai.aliyuncs.com", "storage_class": "STANDARD_IA"},
      "oss", {"access_key_id": "LTAI", "access_key_secret": "oss-secret", "endpoint": "oss-cn-shanghai.aliyuncs.com",
              "storage_class": "IA"}),
     ({"provider": "TencentCOS", "access_key_id": "AKIDcos", "secret_access_key": "cos-secret",
       "endpoint": "cos.ap-guangzhou.myqcloud.com"},
      "cos", {"region": "ap-guangzhou", "secret_id": "AKIDcos", "secret_key": "cos-secret",
              "endpoint": "cos.ap-guangzhou.myqcloud.com"})],
    ids=["aws", "ceph", "alibaba", "tencent"],
)
def test_an_s3_remote_becomes_the_kind_of_its_provider(values, kind, options) -> None:
    got_kind, got, _ = manage.rclone_connection("r", {"type": "s3", **values}, "photos-1250000000")
    assert got_kind == kind
    assert {k: got.get(k) for k in options} == options
    assert got["bucket"] == "photos-1250000000"
    if kind != "s3":  # the S3-only names must not leak into another kind's options (it would refuse them)
        assert not {"preset", "secret_access_key", "addressing_style"} & set(got)


def test_alibaba_and_tencent_remotes_are_saved_with_the_secret_kept_apart(tmp_path) -> None:
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        "[ali]\ntype = s3\nprovider = Alibaba\naccess_key_id = LTAI\nsecret_access_key = oss-secret-value\n"
        "endpoint = oss-cn-hangzhou.aliyuncs.com\n\n"
        "[tc]\ntype = s3\nprovider = TencentCOS\naccess_key_id = AKIDcos\nsecret_access_key = cos-secret-value\n"
        "endpoint = https://cos.ap-beijing.myqcloud.com\nstorage_class = ARCHIVE\n"
    )
    home = Home(str(tmp_path / "home"))
    ali, _ = manage.import_rclone(home, str(conf), "ali:my-bucket", None)
    tc, notes = manage.import_rclone(home, str(conf), "tc:photos-1250000000", "tencent")
    home.save()
    assert (ali.provider, tc.provider, tc.name) == ("oss", "cos", "tencent")
    assert tc.options["region"] == "ap-beijing" and "storage_class" not in tc.options
    assert any("ARCHIVE" in n and "STANDARD" in n for n in notes)
    assert home.secrets("ali") == {"access_key_secret": "oss-secret-value"}
    assert home.secrets("tencent") == {"secret_key": "cos-secret-value"}
    config = pathlib.Path(home.path, "config.toml").read_text()
    assert "oss-secret-value" not in config and "cos-secret-value" not in config


@pytest.mark.parametrize(
    ("values", "why"),
    [({"provider": "TencentCOS", "access_key_id": "a", "secret_access_key": "b", "endpoint": "https://cos.example"},
      "names no region"),
     ({"provider": "Wasabi", "access_key_id": "a", "secret_access_key": "b"}, "names no endpoint"),
     ({"provider": "Alibaba", "access_key_id": "a", "secret_access_key": "b", "server_side_encryption": "AES256"},
      "server-side encryption"),
     ({"type": "sftp", "host": "h"}, "type 'sftp', which skysync cannot import")],
)
def test_what_cannot_be_carried_over_is_refused_in_one_line(values, why) -> None:
    with pytest.raises(UsageError, match=why) as raised:
        manage.rclone_connection("r", {"type": "s3", **values}, "bucket")
    assert "\n" not in str(raised.value)


def test_rclone_obscured_passwords_are_revealed() -> None:
    # vectors from rclone's fs/config/obscure tests (AES-CTR under rclone's published key, base64url)
    assert manage.reveal_rclone_password("YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ") == "potato"
    assert manage.reveal_rclone_password("YmJiYmJiYmJiYmJiYmJiYp3gcEWbAw") == "potato"
    with pytest.raises(ValueError):
        manage.reveal_rclone_password("c2hvcnQ")


def test_an_encrypted_rclone_config_is_refused_in_one_line(tmp_path) -> None:
    conf = tmp_path / "rclone.conf"
    conf.write_text("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nGDuq6AVWdqpbXhOt3jgaXg1W+L\n")
    with pytest.raises(UsageError, match="is encrypted; decrypt it first") as raised:
        manage.import_rclone(Home(str(tmp_path / "home")), str(conf), "any", None)
    assert "\n" not in str(raised.value)
