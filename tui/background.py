"""Keeping a home in sync after the app closes: a detached `skysync run`, or the systemd user service.

The app's own engine stops when the app quits; these start the same engine (`skysync run`, one per home, held by
its lock) in a process of its own. Both run the engine through this Python (`python -m tui.launch`), so a venv
install needs no `skysync` on PATH. Every failure is one line (a `UsageError`), never a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.errors import UsageError
from engine.names import shown
from engine.runtime.client import EngineClient

LOG_NAME = "engine.log"  # the detached engine's own log lines (it has no terminal)
UNIT_NAME = "skysync.service"
UNIT_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / UNIT_NAME
READY_TIMEOUT = 15.0


def run_command(home_path: str) -> list[str]:
    return [sys.executable, "-m", "tui.launch", "--home", os.path.abspath(home_path), "run"]


def wait_until_running(home_path: str, alive: Callable[[], bool], timeout: float = READY_TIMEOUT) -> bool:
    """True once the engine answers on its control socket; False when `alive()` says it is gone or time ran out."""
    client = EngineClient(home_path, timeout=1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.running():
            return True
        if not alive():
            return False
        time.sleep(0.1)  # a process starting: nothing to wait on but its socket
    return False


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def start_detached(home_path: str) -> int:
    """Start `skysync run` for the home in its own session (it outlives the terminal); its pid once it answers.

    Call it after the app's engine stopped: the two would hold the same home's lock."""
    log_path = os.path.join(home_path, LOG_NAME)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(run_command(home_path), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True, cwd="/")
    if wait_until_running(home_path, lambda: proc.poll() is None):
        return proc.pid
    if proc.poll() is None:
        proc.terminate()
    reason = _last_line(log_path) or f"exit code {proc.poll()}"
    raise UsageError(f"skysync run did not start: {shown(reason)}")


# -- the systemd user service ----------------------------------------------------------------------------------


def systemd_problem(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Why the user service cannot be used here (one line), or None when `systemctl --user` answers."""
    if which("systemctl") is None:
        return "systemd is not available here (no systemctl)"
    try:
        done = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "systemd's user manager does not answer here"
    if done.returncode != 0:
        return "systemd has no user manager for this login (systemctl --user fails)"
    return None


def unit_text(home_path: str, template: str) -> str:
    """The deploy/ unit with its ExecStart running this install's engine for this home."""
    command = " ".join(_quoted(part) for part in run_command(home_path))
    lines = [f"ExecStart={command}" if line.startswith("ExecStart=") else line for line in template.splitlines()]
    return "\n".join(lines) + "\n"


def _quoted(part: str) -> str:
    # systemd's own quoting: a word with spaces goes in double quotes, with \ and " escaped
    if part and not any(c in part for c in ' \t"\\'):
        return part
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def install_user_service(home_path: str) -> str:
    """Write the user unit (never over a different one) and `enable --now` it; what was done, in words.

    Call it after the app's engine stopped, so the service's engine can take the home's lock."""
    problem = systemd_problem()
    if problem is not None:
        raise UsageError(problem)
    try:
        text = unit_text(home_path, UNIT_TEMPLATE.read_text(encoding="utf-8"))
    except OSError:
        raise UsageError(f"the unit file {shown(str(UNIT_TEMPLATE))} is not installed with this copy") from None
    path = unit_path()
    if path.exists() and path.read_text(encoding="utf-8", errors="replace") != text:
        raise UsageError(f"{shown(str(path))} already exists and runs something else; edit it or remove it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    for args in (["daemon-reload"], ["enable", "--now", UNIT_NAME]):
        done = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            raise UsageError(f"systemctl --user {' '.join(args)} failed: {shown(last[-1] if last else '')}")
    if not wait_until_running(home_path, lambda: True):
        raise UsageError("the service started but its engine does not answer; see: journalctl --user -u skysync")
    return f"the user service {UNIT_NAME} is installed and running ({path})"
