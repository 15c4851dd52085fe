"""The app leaves when its terminal is hung up (a dropped SSH session, a killed tmux server), SIGHUP or not."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tui import hangup

ROOT = Path(__file__).resolve().parents[2]


def test_a_hung_up_terminal_is_noticed_and_keys_are_not() -> None:
    master, slave = os.openpty()
    hung_up = threading.Event()
    try:
        thread = hangup.watch(slave, hung_up.set)
        assert thread is not None
        os.write(master, b"typing does not wake the watch\r")
        assert not hung_up.wait(0.3)
        os.close(master)
        master = -1
        assert hung_up.wait(5), "the hangup went unnoticed"
    finally:
        if master >= 0:
            os.close(master)
        os.close(slave)


def test_no_watch_without_a_terminal(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:
        assert hangup.watch(f.fileno(), lambda: None) is None


def _read_until_drawn(master: int, deadline: float) -> bytes:
    seen = b""
    while time.monotonic() < deadline and b"demo-cloud" not in seen:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return seen


def test_the_app_ends_when_its_terminal_goes_and_no_sighup_comes(tmp_path: Path) -> None:
    """`make demo` as a tmux window's command: make leads the session and takes the SIGHUP, the app gets none
    (simulated by ignoring it). Before tui.hangup the app span at ~95 % of a core until killed by hand."""
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    app = subprocess.Popen(
        [sys.executable, "-m", "tui.demo", str(tmp_path / "demo")], cwd=ROOT, env=env,
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    os.close(slave)
    try:
        drawn = _read_until_drawn(master, time.monotonic() + 60)
        assert b"demo-cloud" in drawn, f"the app did not draw: {drawn[-300:]!r}"
        os.close(master)  # the terminal goes away; nobody reads what the app writes any more
        master = -1
        assert app.wait(timeout=30) == hangup.EXIT_HUNG_UP
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        if master >= 0:
            os.close(master)
