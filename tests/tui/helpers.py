"""Shared by the TUI tests: sample homes, a fake engine with fixed status, and a time-limited wait."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from engine.config import Connection, Home, Task
from engine.events import Event, LogRecord
from tui.app import SkysyncApp

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: every timestamp in the sample data is fixed


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds (never a bare sleep)."""
    from textual.css.query import NoMatches

    def holds() -> bool:
        try:
            return bool(condition())
        except NoMatches:  # the screen is current but has not composed yet (a loaded machine): not yet
            return False

    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}; screen {pilot.app.screen!r}")
        await pilot.pause(0.05)


def text_of(widget: Any) -> str:
    """The plain text a Static/Label shows."""
    content = widget.content
    return str(getattr(content, "plain", content))


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (T0, T0))


class FakeEngine:
    """Fixed status and no threads: what snapshot tests need from an engine."""

    def __init__(self, status: dict[str, Any]) -> None:
        self._status = status
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def start(self) -> None:
        self.calls.append(("start", ()))

    def stop(self, timeout: float = 10.0) -> None:
        self.calls.append(("stop", ()))

    def sync_now(self, task: str | None = None) -> None:
        self.calls.append(("sync_now", (task,)))

    def pause_task(self, task: str) -> None:
        self.calls.append(("pause_task", (task,)))

    def resume_task(self, task: str) -> None:
        self.calls.append(("resume_task", (task,)))

    def pause_connection(self, connection: str) -> None:
        self.calls.append(("pause_connection", (connection,)))

    def resume_connection(self, connection: str) -> None:
        self.calls.append(("resume_connection", (connection,)))

    def reload(self) -> None:
        self.calls.append(("reload", ()))

    def status(self) -> dict:
        return self._status

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return lambda: None


# -- the fixed sample used by the snapshots ------------------------------------------------------------------

SAMPLE_ROOT = Path("/tmp/skysync-tui-sample")  # fixed, because paths show on screen


def build_sample() -> Path:
    """A home with two connections and three tasks over real folders, rebuilt identically every time."""
    shutil.rmtree(SAMPLE_ROOT, ignore_errors=True)
    root = SAMPLE_ROOT
    write_tree(root / "photos", {
        "2024/beach.jpg": b"j" * 2048, "2024/notes.tmp": b"t", "2025/city.jpg": b"j" * 4096,
        "raw/big.iso": b"i" * 300_000, "raw/thumbs.db": b"x", "readme.txt": b"hello",
    })
    write_tree(root / "docs", {"work/report.pdf": b"p" * 1000, "home/": b""})
    write_tree(root / "cloud", {"photos/2024/beach.jpg": b"j" * 2048, "archive/": b"", "music/": b""})
    (root / "music").mkdir()
    home = Home(str(root / "home"))
    home.put_connection(Connection("nas-cloud", "local", {"root": str(root / "cloud")}, polling_period=300,
                                   upload_limit=512), {})
    home.put_connection(Connection("backup", "local", {"root": str(root / "backup")},
                                   schedule="0" * 24 + "1" * 120 + "0" * 24), {})
    home.put_task(Task("photos", "nas-cloud", str(root / "photos"), "/photos", exclude_folders=["raw"],
                       exclude_exts=["tmp"]))
    home.put_task(Task("docs", "nas-cloud", str(root / "docs"), "/docs", direction="upload", no_delete=True))
    home.put_task(Task("music", "backup", str(root / "music"), "/", direction="download", paused=True))
    home.set_setting("database-path", str(root / "state.db"))
    home.set_setting("log-max-records", "5000")
    home.save()
    return root


SAMPLE_STATUS: dict[str, Any] = {
    "connections": {"nas-cloud": {"state": "syncing", "error": None}, "backup": {"state": "paused", "error": None}},
    "tasks": {
        "photos": {"state": "syncing", "last_pass": {"finished": T0 + 3600, "ok": True,
                                                      "summary": {"uploaded": 12, "downloaded": 3}}},
        "docs": {"state": "error", "last_pass": {"finished": T0 + 1800, "ok": False, "summary": {"failed": 1},
                                                 "error": "writing /docs/work/report.pdf: permission denied"}},
        "music": {"state": "paused", "last_pass": None},
    },
}

SAMPLE_LOG = [
    LogRecord(T0 + 10, "photos", "uploaded", "2024/beach.jpg"),
    LogRecord(T0 + 11, "photos", "downloaded", "2025/city.jpg"),
    LogRecord(T0 + 12, "photos", "skipped", "raw/thumbs.db", "a general rule: the name thumbs.db is never synced"),
    LogRecord(T0 + 13, "docs", "error", "work/report.pdf", "writing /docs/work/report.pdf: permission denied"),
    LogRecord(T0 + 14, "photos", "conflict", "readme.txt",
              "both sides changed; the remote copy is kept as readme_nas_Conflict_20260101-000014.txt"),
    LogRecord(T0 + 15, "docs", "deleted-remote", "old/plan.txt"),
]


def sample_app(*, status: dict[str, Any] | None = None, records: bool = True, home: str | None = None) -> SkysyncApp:
    root = build_sample() if home is None else None
    home_path = home or str(SAMPLE_ROOT / "home")
    fake = FakeEngine(status if status is not None else SAMPLE_STATUS)
    app = SkysyncApp(home_path, engine_factory=lambda _p: fake, steady=True, hostname="nas",
                     timezone=UTC, home_label="~/.config/skysync", poll_interval=3600)
    if records:
        app.records.extend(SAMPLE_LOG)
    if root is not None:
        app.transfers[("photos", "2025/city.jpg")] = {"direction": "up", "started": T0, "done": 2048,
                                                      "total": 4096, "rate": 1_572_864.0}
    app.fake = fake  # type: ignore[attr-defined]
    return app


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    await asyncio.sleep(0.05)
    await pilot.pause()
