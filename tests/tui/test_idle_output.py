"""Cheap over SSH: with nothing changing, the app writes (almost) nothing to the terminal.

The app runs on the demo home with its real engine and a fast status poll; a driver that counts what would reach
the terminal measures the bytes written over a few idle seconds after the first screen settled, extrapolated to a
minute. Before the fix every poll rebuilt the lists and tables (~44 KB/s over SSH in the demo).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.drivers import headless_driver

from engine.demo import prepare
from tests.tui.helpers import wait_for
from tui.app import SkysyncApp
from tui.screens.main import MainScreen

pytestmark = pytest.mark.anyio

IDLE_SECONDS = 3.0
POLL = 0.25  # polls far more often than the app's default: each one is a chance to redraw for nothing


class CountingDriver(headless_driver.HeadlessDriver):
    """A headless driver the app treats as a real terminal: it renders every update, and we count its bytes."""

    written = 0

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        CountingDriver.written += len(data.encode("utf-8"))

    def flush(self) -> None:
        pass


async def test_idle_app_writes_almost_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    home = prepare(str(tmp_path / "demo"))
    monkeypatch.setattr(headless_driver, "HeadlessDriver", CountingDriver)
    app = SkysyncApp(home, poll_interval=POLL, steady=True, hostname="test")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and app.host.running, what="engine")
        await wait_for(pilot, lambda: app.status.get("tasks", {}).get("my-files", {}).get("state") == "idle",
                       what="the demo task idle")
        await pilot.pause(1.0)  # let the first screen settle (notifications, first status)
        app.clear_notifications()
        await pilot.pause(0.2)
        start, t0 = CountingDriver.written, time.monotonic()
        await pilot.pause(IDLE_SECONDS)
        idle_bytes = CountingDriver.written - start
        per_minute = idle_bytes * 60 / (time.monotonic() - t0)
    # printed once the app gave stdout back (it captures print while it runs)
    print(f"\nidle terminal output: {idle_bytes} bytes in {IDLE_SECONDS:.0f} s = {per_minute:,.0f} bytes/minute")
    assert CountingDriver.written > 0, "the counting driver saw no output at all: the measure is broken"
    assert per_minute < 2_000, f"{per_minute:,.0f} bytes per idle minute"
