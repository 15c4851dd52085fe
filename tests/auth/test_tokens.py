"""Token parsing, the token store's file and its refresh rule, against the fake OAuth server."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import time

import pytest

from engine.auth import oauth
from engine.auth.oauth import OAuthSpec
from engine.auth.tokens import Token, TokenError, TokenStore
from engine.providers.base import AuthError, NetworkError, ReauthRequired
from tests.fakes.oauth_server import FakeOAuthServer

RCLONE = (
    '{"access_token":"ya29.a0","token_type":"Bearer","refresh_token":"1//0g",'
    '"expiry":"2024-03-01T10:00:00.123456789+01:00"}'
)


def spec_for(server: FakeOAuthServer) -> OAuthSpec:
    return OAuthSpec(server.client_id, None, server.auth_url, server.token_url)


def test_rclone_shape_is_read_with_nanoseconds_and_offset() -> None:
    token = Token.from_json(RCLONE)
    assert token.access_token == "ya29.a0" and token.refresh_token == "1//0g"
    assert token.expiry == pytest.approx(1709283600.123456)
    again = Token.from_json(token.to_json())
    assert again == token


def test_the_whole_output_of_rclone_authorize_can_be_piped() -> None:
    printed = (
        '2024/03/01 10:00:00 NOTICE: Make sure your Redirect URL is set to "http://127.0.0.1:53682/"\n'
        "Paste the following into your remote machine --->\n" + RCLONE + "\n<---End paste\n"
    )
    assert Token.from_json(printed) == Token.from_json(RCLONE)


def test_go_zero_time_means_no_expiry_and_expires_in_is_counted_from_now() -> None:
    assert Token.from_json('{"access_token":"a","expiry":"0001-01-01T00:00:00Z"}').expiry is None
    token = Token.from_dict({"access_token": "a", "expires_in": 100}, now=1000.0)
    assert token.expiry == 1100.0


@pytest.mark.parametrize(
    ("text", "why"),
    [("not json", "not JSON"), ("[1]", "not a JSON object"), ('{"token_type":"Bearer"}', "no 'access_token'"),
     ('{"access_token":"a","expiry":"yesterday"}', "RFC 3339")],
)
def test_bad_tokens_are_one_line_without_the_text(text: str, why: str) -> None:
    with pytest.raises(TokenError, match=why) as info:
        Token.from_json(text)
    assert "\n" not in str(info.value) and "yesterday" not in str(info.value)


def test_repr_hides_the_secrets() -> None:
    assert "ya29" not in repr(Token.from_json(RCLONE)) and "1//0g" not in repr(Token.from_json(RCLONE))


def test_store_file_is_0600_in_a_0700_folder_and_written_whole(tmp_path) -> None:
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_json(RCLONE))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.folder).st_mode) == 0o700
    assert store.load() == Token.from_json(RCLONE)
    assert [n for n in os.listdir(store.folder) if n.endswith(".tmp")] == []


def test_a_token_whose_expiry_is_ahead_is_used_without_the_token_endpoint(tmp_path, oauth_server) -> None:
    store = TokenStore(str(tmp_path), "c")
    issued = Token.from_dict(oauth_server.issue())
    store.save(issued)
    calls = []
    got = store.current(lambda t: calls.append(t) or oauth.refresh(spec_for(oauth_server), t))
    assert got.access_token == issued.access_token and calls == [] and oauth_server.counts["refresh_token"] == 0


def test_an_expiring_token_is_refreshed_and_the_rotated_refresh_token_saved(tmp_path, oauth_server) -> None:
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_dict(oauth_server.issue(access_ttl=30)))  # inside the 60 s margin
    old = store.load()
    got = store.current(lambda t: oauth.refresh(spec_for(oauth_server), t))
    assert got.access_token != old.access_token and oauth_server.access_valid(got.access_token)
    assert store.load().refresh_token == got.refresh_token
    assert oauth_server.valid_refresh_tokens() == {got.refresh_token}  # the old one is dead: only ours is valid


def test_a_service_that_does_not_rotate_keeps_the_refresh_token(tmp_path, oauth_server) -> None:
    oauth_server.rotate = False
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_dict(oauth_server.issue(access_ttl=0)))
    first = store.load().refresh_token
    got = store.current(lambda t: oauth.refresh(spec_for(oauth_server), t))
    assert got.refresh_token == first and store.load().refresh_token == first


def test_a_rejected_access_token_is_refreshed_even_before_its_expiry(tmp_path, oauth_server) -> None:
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_dict(oauth_server.issue()))
    old = store.load()
    got = store.current(lambda t: oauth.refresh(spec_for(oauth_server), t), rejected=old.access_token)
    assert got.access_token != old.access_token
    # another process refreshed already: the token it saved is not the rejected one, so it is used as it is
    again = store.current(lambda t: oauth.refresh(spec_for(oauth_server), t), rejected=old.access_token)
    assert again.access_token == got.access_token and oauth_server.counts["refresh_token"] == 1


def test_a_revoked_refresh_token_marks_sign_in_needed_and_stops_asking(tmp_path, oauth_server) -> None:
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_dict(oauth_server.issue(access_ttl=0)))
    oauth_server.revoke_all()
    with pytest.raises(ReauthRequired):
        store.current(lambda t: oauth.refresh(spec_for(oauth_server), t))
    assert store.needs_signin() and json.loads(pathlib.Path(store.path).read_text())["needs_signin"] is True
    with pytest.raises(ReauthRequired):
        store.current(lambda t: oauth.refresh(spec_for(oauth_server), t))
    assert oauth_server.counts["refresh_token"] == 1  # the second attempt did not ask again
    store.save(Token.from_dict(oauth_server.issue()))  # a new sign-in clears it
    assert not store.needs_signin()


def test_no_token_and_a_damaged_file_are_sign_in_needed(tmp_path) -> None:
    store = TokenStore(str(tmp_path), "c")
    with pytest.raises(ReauthRequired, match="not signed in"):
        store.current(lambda t: t)
    os.makedirs(store.folder, exist_ok=True)
    with open(store.path, "w") as f:
        f.write("{broken")
    assert store.needs_signin()
    with pytest.raises(ReauthRequired):
        store.current(lambda t: t)


def test_refresh_errors(oauth_server) -> None:
    token = Token.from_dict(oauth_server.issue())
    bad_client = OAuthSpec("someone-else", None, oauth_server.auth_url, oauth_server.token_url)
    with pytest.raises(AuthError) as info:  # invalid_client: the app's settings, not a dead refresh token
        oauth.refresh(bad_client, token)
    assert not isinstance(info.value, ReauthRequired) and token.refresh_token not in str(info.value)
    unreachable = OAuthSpec("x", None, "http://127.0.0.1:9/a", "http://127.0.0.1:9/token")
    with pytest.raises(NetworkError):
        oauth.refresh(unreachable, token)


def test_an_unexpired_token_is_not_refreshed_by_a_margin_of_zero(tmp_path) -> None:
    store = TokenStore(str(tmp_path), "c")
    store.save(Token("a", expiry=time.time() + 5))
    assert store.current(lambda t: pytest.fail("refreshed"), margin=0).access_token == "a"
