"""Running the console script against a home, with a pipe or a pseudo-terminal, for the sign-in tests.

Built-in kinds run `.venv/bin/skysync` itself; the test kind (not part of the product) runs the same entry point
(`tui.launch.main`) after registering the kind in that process.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from tests.auth.oauth_kind import KIND, TARGET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
_WITH_TEST_KIND = (
    "import sys; from engine import providers; "
    f"providers._REGISTRY[{KIND!r}] = {TARGET!r}; "
    "from tui.launch import main; sys.argv[0] = 'skysync'; sys.exit(main())"
)


def command(kind: str, home: str, *args: str) -> list[str]:
    head = [sys.executable, "-c", _WITH_TEST_KIND] if kind == KIND else [SKYSYNC]
    return [*head, "--home", home, *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": ROOT, "SKYSYNC_HOME": "/nonexistent-use---home"}


def run(kind: str, home: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The console script with standard input a pipe (or /dev/null): no terminal anywhere."""
    return subprocess.run(
        command(kind, home, *args), input=stdin if stdin is not None else "", capture_output=True, text=True,
        env=env(), cwd=ROOT, timeout=60,
    )


@dataclass
class Terminal:
    """The console script on a pseudo-terminal (standard input, output and error), as over SSH."""

    proc: subprocess.Popen[bytes]
    master: int
    seen: bytearray = field(default_factory=bytearray)

    @classmethod
    def start(cls, kind: str, home: str, *args: str) -> Terminal:
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            command(kind, home, *args), stdin=slave, stdout=slave, stderr=slave, env=env(), cwd=ROOT,
            start_new_session=True,
        )
        os.close(slave)
        return cls(proc, master)

    def _pump(self, timeout: float) -> bool:
        readable, _, _ = select.select([self.master], [], [], timeout)
        if not readable:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.seen += chunk
        return bool(chunk)

    @property
    def text(self) -> str:
        return self.seen.decode("utf-8", "replace").replace("\r\n", "\n")

    def expect(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if not self._pump(0.1) and self.proc.poll() is not None:
                break
        raise AssertionError(f"{pattern!r} never appeared; the terminal showed: {self.text!r}")

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout: float = 30) -> int:
        deadline = time.time() + timeout
        while self.proc.poll() is None and time.time() < deadline:
            self._pump(0.1)
        while self._pump(0.05):
            if not select.select([self.master], [], [], 0)[0]:
                break
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"still running; the terminal showed: {self.text!r}")
        os.close(self.master)
        return self.proc.returncode
