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

from engine.config import Home
from engine.demo import prepare
from tests.tui.helpers import wait_for
from tui import bridge
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
    # Idle means nothing to show: no remote poll during the measure (a poll's pass would rightly redraw its time).
    bridge.update_connection(Home(home), "demo-cloud", None, {"polling_period": 86400})
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


async def test_progress_redraws_a_few_times_a_second(tmp_path: Path) -> None:
    """A transfer reports every chunk; the Overview follows at most a few times a second."""
    import threading

    from engine.events import TransferProgress
    from tests.tui.test_flows import make_app, with_connection

    home = tmp_path / "home"
    home.mkdir()
    with_connection(home, tmp_path / "cloud")
    app = make_app(home)
    redraws: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        real = app.refresh_main
        app.refresh_main = lambda: (redraws.append(time.monotonic()), real())  # type: ignore[method-assign]
        stop = threading.Event()

        def chunks() -> None:  # one progress event every 20 ms for a second, from an engine thread
            for i in range(50):
                if stop.wait(0.02):
                    return
                app._on_engine_event(TransferProgress("t", "big.iso", "up", i * 1024, 1 << 30))

        sender = threading.Thread(target=chunks)
        started = time.monotonic()
        sender.start()
        await wait_for(pilot, lambda: not sender.is_alive(), what="the chunks sent")
        await pilot.pause(0.4)
        elapsed = time.monotonic() - started
        stop.set()
    assert redraws, "progress never reached the screen"
    assert len(redraws) <= elapsed / 0.25 + 2, f"{len(redraws)} redraws in {elapsed:.2f} s"
