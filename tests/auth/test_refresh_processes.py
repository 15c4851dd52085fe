"""Two real processes refreshing one connection's token at once, against a service that rotates refresh tokens
and kills the used one at once: exactly one valid refresh token is left, it is the one saved, and both
processes get a working access token."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from engine.auth.tokens import Token, TokenStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = """
import sys, time
from engine.auth import oauth
from engine.auth.oauth import OAuthSpec
from engine.auth.tokens import TokenStore
home, server, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
spec = OAuthSpec("test-client", None, server + "/authorize", server + "/token")
while time.time() < start_at:
    time.sleep(0.001)
print(TokenStore(home, "c").current(lambda t: oauth.refresh(spec, t)).access_token)
"""


def test_two_processes_refreshing_at_once_leave_one_valid_refresh_token(tmp_path, oauth_server) -> None:
    oauth_server.refresh_delay = 0.5  # a refresh that takes a while: the other process arrives meanwhile
    store = TokenStore(str(tmp_path), "c")
    store.save(Token.from_dict(oauth_server.issue(access_ttl=0)))
    start_at = time.time() + 1.5  # both interpreters are up by then, and start together
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path), oauth_server.url, str(start_at)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    tokens = [out.strip() for out, _ in outs]
    assert all(oauth_server.access_valid(t) for t in tokens)
    saved = store.load()
    assert oauth_server.valid_refresh_tokens() == {saved.refresh_token}
    assert oauth_server.counts["refresh_refused"] == 0
    assert oauth_server.counts["refresh_token"] == 1  # the second process found the first one's fresh token


def test_without_the_lock_the_second_refresh_is_refused(tmp_path, oauth_server) -> None:
    """Why the lock is there: the same two refreshes made from one file without it lose a refresh token (the
    second presents the one the first just spent), which is what the test above rules out."""
    from engine.auth import oauth
    from engine.auth.oauth import OAuthSpec
    from engine.providers.base import ReauthRequired

    token = Token.from_dict(oauth_server.issue(access_ttl=0))
    spec = OAuthSpec("test-client", None, oauth_server.auth_url, oauth_server.token_url)
    oauth.refresh(spec, token)
    try:
        oauth.refresh(spec, token)
    except ReauthRequired:
        pass
    else:
        raise AssertionError("a spent refresh token was accepted: the fake does not rotate")
