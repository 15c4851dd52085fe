"""Signing in from a terminal, over SSH as well as at the machine: never needs a browser on this box.

Device code where the service has one (print the address and the code, poll at the service's pace until it is
approved or expires); otherwise the authorization code with PKCE: print the address, and take the answer from
whichever comes first — a loopback listener on 127.0.0.1 (when the browser happens to run on this box) or the
user pasting the final address the browser could not open (or just the code in it).
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TextIO

from engine.auth import oauth
from engine.auth.oauth import CodeRequest, OAuthSpec, PastedAnswerError
from engine.auth.tokens import Token
from engine.providers.base import AuthError, ProviderError

_PAGE_OK = "Signed in. You can close this page and go back to the terminal.\n"
_PAGE_BAD = "This is not the answer skysync is waiting for.\n"


class SignInCancelled(AuthError):
    """The user ended the sign-in (end of input) before it was done."""


@dataclass
class Console:
    """The terminal a sign-in talks to."""

    inp: TextIO
    out: TextIO
    sleep: Callable[[float], None] = field(default=time.sleep)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()


class _Listener:
    """A one-shot HTTP listener on 127.0.0.1 that catches the browser's redirect (state checked)."""

    def __init__(self) -> None:
        self.answers: queue.Queue[str] = queue.Queue()
        self.request: CodeRequest | None = None
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                ok = listener.offer(self.path)
                body = (_PAGE_OK if ok else _PAGE_BAD).encode()
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def offer(self, path: str) -> bool:
        """Keep the redirect's path if it answers this sign-in (a stray request or a wrong state is refused)."""
        if self.request is None:
            return False
        try:
            oauth.code_from_answer(self.request, "http://127.0.0.1" + path)
        except PastedAnswerError:
            if "error=" not in path:
                return False
        self.answers.put("http://127.0.0.1" + path)
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _read_line(console: Console, listener: _Listener | None) -> str:
    """The next answer: a line the user typed, or the redirect the listener caught, whichever comes first."""
    if listener is None:
        line = console.inp.readline()
        if not line:
            raise SignInCancelled("the sign-in was cancelled (no answer was pasted)")
        return line
    fileno = console.inp.fileno()
    while True:
        with contextlib.suppress(queue.Empty):
            answer = listener.answers.get_nowait()
            console.say()
            console.say("The browser came back to this computer.")
            return answer
        readable, _, _ = select.select([fileno], [], [], 0.2)
        if readable:
            line = console.inp.readline()
            if not line:
                raise SignInCancelled("the sign-in was cancelled (no answer was pasted)")
            return line


def code_sign_in(spec: OAuthSpec, console: Console) -> Token:
    listener = _Listener() if spec.redirect == "loopback" else None
    try:
        request = oauth.code_request(spec, listener.redirect_uri if listener else None)
        if listener is not None:
            listener.request = request
        console.say("Open this address in a browser on any computer and sign in:")
        console.say()
        console.say(request.url)
        console.say()
        if listener is not None:
            console.say(
                f"The browser then goes to an address starting with {listener.redirect_uri}; if it cannot open it "
                "(the browser is on another computer), copy that whole address from the address bar and paste it "
                "here (or just the code in it)."
            )
        else:
            console.say("Then paste the code the service shows you here.")
        while True:
            console.out.write("> ")
            console.out.flush()
            answer = _read_line(console, listener)
            try:
                code = oauth.code_from_answer(request, answer)
            except PastedAnswerError as exc:
                if "refused the sign-in" in str(exc):
                    raise AuthError(str(exc)) from None
                console.say(f"{exc}; paste the whole final address, or the code")
                continue
            return oauth.exchange_code(spec, request, code)
    finally:
        if listener is not None:
            listener.close()


def show_device_code(console: Console, verification_uri: str, user_code: str) -> None:
    """What every device sign-in prints (the app's sign-in screen reads these lines, and so do tests)."""
    console.say("Open this address in a browser on any computer:")
    console.say()
    console.say(verification_uri)
    console.say()
    console.say("and enter this code:")
    console.say()
    console.say(user_code)
    console.say()
    console.say("Waiting for the sign-in to be approved (Ctrl-C stops)...")


def device_sign_in(spec: OAuthSpec, console: Console) -> Token:
    grant = oauth.device_start(spec)
    show_device_code(console, grant.verification_uri, grant.user_code)
    interval = grant.interval
    while True:
        remaining = grant.expires_at - time.time()
        if remaining <= 0:
            raise AuthError("the code expired before the sign-in was approved; run the sign-in again")
        console.sleep(min(interval, remaining))
        try:
            poll = oauth.device_poll(spec, grant, interval)
        except ProviderError as exc:
            if not exc.retryable:
                raise
            interval = max(interval, exc.retry_after or 0)  # busy or unreachable for a moment: keep polling
            continue
        interval = poll.interval
        if poll.token is not None:
            return poll.token


def sign_in(spec: OAuthSpec, console: Console) -> Token:
    """A new token for `spec`'s service, signed in through `console`."""
    if spec.msal_authority:  # Microsoft: MSAL's device code flow, its cache saved with the token
        from engine.auth import msal_cache

        return msal_cache.device_sign_in(spec, console)
    if spec.device_url:
        return device_sign_in(spec, console)
    return code_sign_in(spec, console)
