"""Leave when the terminal goes away, whether or not a SIGHUP comes.

An SSH session that drops, or a tmux server that is killed, hangs up the app's terminal. The kernel sends SIGHUP to
the session's leader only: when that is not the shell (`make demo` run as a tmux window's command, a wrapper that
ignores it), the app never hears of it. Textual's input thread then reads end-of-file in a loop (a core at
~95 %, found that way: for twenty minutes after `tmux kill-server`) while its writer waits for ever on a terminal
that takes no output, and this app's engine syncs on with nobody to see it.

The watch is one thread blocked in `poll()` on the terminal for POLLHUP alone: no timer, no wake-up while the
terminal is there (keys do not wake it), so an idle app stays idle.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

EXIT_HUNG_UP = 129  # what a shell reports for a process ended by SIGHUP (128 + 1)


def watch(fd: int, on_hangup: Callable[[], None]) -> threading.Thread | None:
    """Call `on_hangup()` (in a daemon thread) once terminal `fd` is hung up; None when `fd` is not a terminal."""
    try:
        if not os.isatty(fd):
            return None
    except OSError:
        return None
    poller = select.poll()
    poller.register(fd, select.POLLHUP | select.POLLERR)

    def wait() -> None:
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            except OSError:
                return
            if any(mask & select.POLLNVAL for _, mask in events):
                return  # the descriptor was closed: this process is on its way out anyway
            if any(mask & (select.POLLHUP | select.POLLERR) for _, mask in events):
                on_hangup()
                return

    thread = threading.Thread(target=wait, name="terminal-hangup", daemon=True)
    thread.start()
    return thread


def stop_and_leave(stop: Callable[[], None], grace: float = 15.0) -> None:
    """Stop the engine (transfers are dropped without partial files), waiting at most `grace` seconds, then end
    the process as SIGHUP would: its event loop may be stuck writing to the terminal, so nothing waits for it."""
    stopper = threading.Thread(target=stop, name="hangup-stop", daemon=True)
    stopper.start()
    stopper.join(grace)
    os._exit(EXIT_HUNG_UP)
