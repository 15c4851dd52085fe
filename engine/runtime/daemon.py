"""`skysync run`: the headless engine in the foreground, logging to stderr, until SIGINT or SIGTERM (or SIGHUP).

Log lines are one event each, `key=value` after a local ISO timestamp, so `grep task=photos` or
`grep ' error '` work:  2026-11-25T10:00:00 skysync task=photos uploaded path=a/b.jpg
A pass stopped before its end says so:  ... task=photos pass-finished ok=0 stopped=1 reason=engine-stop uploaded=3

`skysync run --system` is the same engine run by root for every user of the machine (admin mode): its home
defaults to /var/lib/skysync, and its control socket (engine.runtime.control.SystemControlServer) answers each
user for their own connections only (engine.runtime.system).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any, TextIO

from engine.errors import SkysyncError
from engine.events import Event, LogRecord, PassFinished, PassStarted, TransferProgress
from engine.names import shown
from engine.runtime.engine import Engine

SYSTEM_HOME = "/var/lib/skysync"
STOP_TIMEOUT = 5.0  # "stop within a few seconds": passes are cancelled, then joined for at most this long


def _stamp(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() if t is None else t))


def _value(text: str) -> str:
    """A value that stays one token for grep and cut: quoted (JSON rules) only when it has to be."""
    text = shown(text)
    if text and not any(c.isspace() or c in "\"'=\\" or not c.isprintable() for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def format_event(event: Event) -> str | None:
    """One log line for an event, or None for events too chatty for a log (transfer progress)."""
    if isinstance(event, TransferProgress):
        return None
    if isinstance(event, LogRecord):
        parts = [_stamp(event.time), "skysync"]
        if event.task:
            parts.append(f"task={_value(event.task)}")
        parts.append(event.kind)
        if event.path:
            parts.append(f"path={_value(event.path)}")
        if event.message:
            parts.append(f"message={_value(event.message)}")
        return " ".join(parts)
    if isinstance(event, PassStarted):
        return f"{_stamp()} skysync task={_value(event.task)} pass-started"
    if isinstance(event, PassFinished):
        counts = " ".join(f"{k}={v}" for k, v in sorted(event.summary.items()))
        line = f"{_stamp()} skysync task={_value(event.task)} pass-finished ok={int(event.ok)}"
        if event.stopped:  # stopped before its end (a signal, the schedule, a pause): the rest is left for later
            line += f" stopped=1 reason={_value(event.stopped)}"
        if counts:
            line += " " + counts
        if event.error:
            line += f" error={_value(event.error)}"
        return line
    return None


class StderrLog:
    """An engine subscriber writing one line per event; a lock keeps lines from interleaving."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = format_event(event)
        if line is not None:
            self.write(line)

    def write(self, line: str) -> None:
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # stderr closed (a detached service): keep syncing
                pass


def run_forever(home_path: str, *, engine_factory: Any = Engine, system: bool = False) -> int:
    """Run the engine for `home_path` until SIGINT/SIGTERM (SIGHUP too, unless it is ignored). Returns the process
    exit code:
    0 after a clean stop, 2 when the engine cannot start (another engine runs, bad config, --system not root), 1
    when it stopped by itself (its home's lock file deleted or replaced: engine.runtime.engine).

    `system`: serve every user of the machine (admin mode) through the system socket instead of the home's."""
    log = StderrLog()
    if system and os.geteuid() != 0:
        print("skysync: run --system serves every user and must run as root (or use 'skysync run')",
              file=sys.stderr)
        return 2
    engine = engine_factory(home_path, control=False) if system else engine_factory(home_path)
    control: Any = None
    engine.subscribe(log)
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals.append(signum)
        stop.set()

    stopping = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        # The terminal it ran in went away (a dropped SSH session): stop as cleanly as on SIGTERM, not by
        # SIGHUP's default (the process simply ends). Under nohup, which ignores SIGHUP, it keeps running.
        stopping.append(signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in stopping}
    try:
        try:
            engine.start()
            if system:
                from engine.runtime.control import SystemControlServer
                from engine.runtime.system import SystemGate

                control = SystemControlServer(home_path, SystemGate(engine, home_path).handle)
                control.start()
        except SkysyncError as exc:
            engine.stop(STOP_TIMEOUT)
            print(f"skysync: {exc}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:  # the home is not writable, the socket cannot be bound...
            engine.stop(STOP_TIMEOUT)
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"skysync: cannot start the engine: {exc.strerror or exc}{where}", file=sys.stderr)
            return 2
        home = _value(os.path.abspath(home_path))
        mode = " mode=system" if system else ""
        log.write(f"{_stamp()} skysync engine running pid={os.getpid()} home={home}{mode}")
        # Event.wait with a timeout keeps the main thread responsive to signals.
        while not stop.wait(1.0):
            if getattr(engine, "ended", None):
                break  # it stopped by itself (its home's lock file gone): nothing left to run
        ended = getattr(engine, "ended", None) if not signals else None
        name = ended or (signal.Signals(signals[0]).name if signals else "signal")
        log.write(f"{_stamp()} skysync engine stopping reason={name}")
        if control is not None:
            control.stop()
        engine.stop(STOP_TIMEOUT)
        log.write(f"{_stamp()} skysync engine stopped")
        return 1 if ended else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
