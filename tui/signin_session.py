"""The CLI's sign-in (engine.auth.signin) driven from the app instead of a terminal.

`engine.auth.signin.sign_in` talks to a `Console`: it prints the address (and a device code) and reads the
pasted answer, while its loopback listener catches a browser that runs on this box. The app hands it a console
whose input is a pipe the sign-in screen writes the pasted answer into, and whose output is split into lines
the screen shows: the same flow, the same words and checks, with no second implementation to drift apart. No
browser is ever opened: the address is shown for the user to open wherever their browser is.

Escape closes the pipe (the flow reads end of input: `SignInCancelled`) and wakes a device-code wait.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from typing import Literal

from engine.auth.oauth import OAuthSpec
from engine.auth.signin import Console, SignInCancelled, sign_in
from engine.auth.tokens import Token

LineKind = Literal["url", "code", "text"]
Flow = Callable[[OAuthSpec, Console], Token]

# The terminal's words that mean something else in the app.
_APP_WORDS = {"Waiting for the sign-in to be approved (Ctrl-C stops)...": "Waiting for the sign-in to be approved "
              "(Esc stops)…"}
# Lines the screen says in its own way (the device code comes with its own label).
_SAID_BY_THE_SCREEN = frozenset({"and enter this code:"})


def classify(line: str, *, device: bool, url_seen: bool) -> tuple[LineKind, str] | None:
    """What one line of the sign-in's output is for the screen: the address to open (the first bare http(s)
    line), the device code (a device flow's one-word line after the address), or words to show; None for a
    blank line. The prompt the flow writes before reading ("> ") is dropped."""
    while line.startswith("> "):
        line = line[2:]
    line = line.strip()
    if not line or line in _SAID_BY_THE_SCREEN:
        return None
    bare = " " not in line
    if bare and line.startswith(("https://", "http://")) and not url_seen:
        return "url", line
    if device and url_seen and bare and not line.endswith(":"):
        return "code", line
    return "text", _APP_WORDS.get(line, line)


class _LineWriter(io.TextIOBase):
    """The console's output: complete lines go to `on_line` (called on the sign-in's thread)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        super().__init__()
        self._on_line = on_line
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._on_line(line)
        return len(text)


class SignInSession:
    """One sign-in from the app. `sign_in(spec)` blocks (call it from a worker thread); `answer` and `cancel`
    come from the UI thread. `on_line(kind, text)` is called on the worker thread: post a message from it."""

    def __init__(self, on_line: Callable[[LineKind, str], None], flow: Flow = sign_in) -> None:
        self._on_line = on_line
        self._flow = flow
        self._lock = threading.Lock()
        self._write_fd: int | None = None
        self._cancelled = threading.Event()
        self._device = False
        self._url_seen = False

    def sign_in(self, spec: OAuthSpec) -> Token:
        """The same sign-in `skysync connection login` runs, answered from the screen."""
        if self._cancelled.is_set():
            raise SignInCancelled("the sign-in was cancelled")
        self._device = bool(spec.device_url)
        read_fd, write_fd = os.pipe()
        with self._lock:
            self._write_fd = write_fd
        inp = os.fdopen(read_fd, "r", encoding="utf-8")
        console = Console(inp, _LineWriter(self._line), sleep=self._sleep)
        try:
            return self._flow(spec, console)
        finally:
            self._close_input()
            inp.close()

    def _line(self, raw: str) -> None:
        found = classify(raw, device=self._device, url_seen=self._url_seen)
        if found is None:
            return
        self._url_seen = self._url_seen or found[0] == "url"
        self._on_line(*found)

    def _sleep(self, seconds: float) -> None:
        """A device-code wait that Escape ends at once."""
        if self._cancelled.wait(seconds):
            raise SignInCancelled("the sign-in was cancelled")

    def answer(self, text: str) -> bool:
        """Hand the pasted final address (or code) to the flow; False when it no longer waits for one."""
        line = " ".join(text.split()) + "\n"  # one line, whatever the paste carried
        with self._lock:
            if self._write_fd is None:
                return False
            try:
                os.write(self._write_fd, line.encode("utf-8"))
            except OSError:
                return False
        return True

    def cancel(self) -> None:
        self._cancelled.set()
        self._close_input()

    def _close_input(self) -> None:
        with self._lock:
            fd, self._write_fd = self._write_fd, None
        if fd is not None:
            os.close(fd)
