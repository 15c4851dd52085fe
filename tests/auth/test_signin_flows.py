"""The sign-in flows through `engine.auth.signin` with a console on real pipes, against the fake OAuth server."""

from __future__ import annotations

import io
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from engine.auth.oauth import OAuthSpec
from engine.auth.signin import Console, SignInCancelled, sign_in
from engine.auth.tokens import Token
from engine.providers.base import AuthError
from tests.fakes.oauth_server import FakeOAuthServer


class _Out(io.StringIO):
    """Captured output that a test can wait on."""

    def wait_for(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = re.search(pattern, self.getvalue())
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} never printed; output: {self.getvalue()!r}")


@contextmanager
def running(spec: OAuthSpec, sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[_Out, int, dict]]:
    """A sign-in in a thread: (its output, the fd to type into, {"token" or "error": ...} once it ends)."""
    r, w = os.pipe()
    inp = os.fdopen(r, "r")
    out = _Out()
    result: dict = {}

    def run() -> None:
        try:
            result["token"] = sign_in(spec, Console(inp, out, sleep))
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield out, w, result
        thread.join(20)
        assert not thread.is_alive(), out.getvalue()
    finally:
        os.close(w)
        inp.close()


def code_spec(server: FakeOAuthServer, redirect: str = "loopback") -> OAuthSpec:
    return OAuthSpec(server.client_id, None, server.auth_url, server.token_url, scopes=("files",),
                     redirect=redirect)  # type: ignore[arg-type]


def no_redirect(url: str) -> str:
    """What a browser on another computer ends up showing: the 302's Location, not followed."""

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    try:
        urllib.request.build_opener(Stop).open(url)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302
        return exc.headers["Location"]
    raise AssertionError("no redirect")


def typed(w: int, text: str) -> None:
    os.write(w, (text + "\n").encode())


def test_loopback_caught_when_the_browser_is_on_this_box(oauth_server) -> None:
    with running(code_spec(oauth_server)) as (out, _w, result):
        url = out.wait_for(r"\n(http://127\.0\.0\.1:\d+/authorize\?\S+)\n").group(1)
        with urllib.request.urlopen(url) as page:  # follows the redirect to the listener, like a browser
            assert b"Signed in" in page.read()
    token: Token = result["token"]
    assert oauth_server.access_valid(token.access_token) and token.refresh_token


def test_the_final_address_pasted_from_another_computer(oauth_server) -> None:
    with running(code_spec(oauth_server)) as (out, w, result):
        url = out.wait_for(r"\n(http://127\.0\.0\.1:\d+/authorize\?\S+)\n").group(1)
        assert "code_challenge_method=S256" in url and "redirect_uri=http%3A%2F%2F127.0.0.1" in url
        final = no_redirect(url)
        typed(w, "http://127.0.0.1:1/?code=forged&state=wrong")  # another sign-in's answer: refused, asked again
        out.wait_for("state does not match")
        typed(w, final)
    assert oauth_server.access_valid(result["token"].access_token), result


def test_a_bare_code_when_the_service_shows_it(oauth_server) -> None:
    with running(code_spec(oauth_server, redirect="none")) as (out, w, result):
        url = out.wait_for(r"\n(http://127\.0\.0\.1:\d+/authorize\?\S+)\n").group(1)
        assert "redirect_uri" not in url
        with urllib.request.urlopen(url) as page:
            code = page.read().decode().split("Code: ")[1].strip()
        typed(w, "  " + code + "  ")
    assert oauth_server.access_valid(result["token"].access_token), result


def test_a_refused_consent_ends_the_sign_in(oauth_server) -> None:
    oauth_server.approve = False
    with running(code_spec(oauth_server)) as (out, w, result):
        url = out.wait_for(r"\n(http://127\.0\.0\.1:\d+/authorize\?\S+)\n").group(1)
        typed(w, no_redirect(url))
    assert isinstance(result["error"], AuthError) and "access_denied" in str(result["error"])


def test_end_of_input_cancels(oauth_server) -> None:
    spec = code_spec(oauth_server, redirect="none")
    r, w = os.pipe()
    os.close(w)
    with os.fdopen(r) as inp, pytest.raises(SignInCancelled):
        sign_in(spec, Console(inp, io.StringIO()))


def device_spec(server: FakeOAuthServer) -> OAuthSpec:
    return OAuthSpec(server.client_id, None, server.auth_url, server.token_url, device_url=server.device_url)


def test_device_code_polls_at_the_servers_pace_and_honours_slow_down(oauth_server) -> None:
    oauth_server.device_interval = 0.3
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.05 if len(waits) == 2 else seconds)  # the second wait is cut short: the server says slow down

    with running(device_spec(oauth_server), sleep) as (out, _w, result):
        uri = out.wait_for(r"\n(http://127\.0\.0\.1:\d+/device)\n").group(1)
        code = out.wait_for(r"\n([A-Z]{4}-[A-Z]{4})\n").group(1)
        while len(waits) < 3:  # the slow_down came back: approve during the longer wait
            time.sleep(0.02)
        with urllib.request.urlopen(f"{uri}?user_code={code}") as page:
            assert page.status == 200
    assert oauth_server.access_valid(result["token"].access_token), result
    assert oauth_server.counts["slow_down"] == 1
    assert waits[0] == pytest.approx(0.3) and waits[2] == pytest.approx(5.3)  # the interval grew by 5 s


def test_device_code_stops_at_expiry_with_one_line(oauth_server) -> None:
    oauth_server.device_interval = 0.1
    oauth_server.device_ttl = 0.5
    with running(device_spec(oauth_server)) as (_out, _w, result):
        pass
    assert isinstance(result["error"], AuthError)
    assert "expired" in str(result["error"]) and "\n" not in str(result["error"])
