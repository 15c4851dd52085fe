"""The running engine's full-rescan period is the `rescan-period` setting (issue 19: full passes stay as the
safety net on a periodic rescan whose period a user can set)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

import engine.runtime.watch as watch
from engine.runtime.retry import Backoff
from engine.runtime.runs import Core
from engine.runtime.watchers import Watchers


class _Recorder:
    made: list[float] = []

    def __init__(self, local: str, *args: Any, rescan_interval: float, **kwargs: Any) -> None:
        _Recorder.made.append(rescan_interval)

    def start(self) -> None:
        pass


def _skysync(home: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.launch", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("setting", "expected"), [(None, watch.RESCAN_INTERVAL), ("120", 120.0)])
def test_a_watcher_rescans_at_the_period_the_setting_names(tmp_path: pathlib.Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           setting: str | None, expected: float) -> None:
    if setting is not None:
        assert _skysync(tmp_path, "settings", "set", "rescan-period", setting).returncode == 0
    monkeypatch.setattr(watch, "LocalWatcher", _Recorder)
    _Recorder.made.clear()
    core = Core(str(tmp_path), time.monotonic, Backoff())
    Watchers(core, None).make(SimpleNamespace(name="t", task=SimpleNamespace(local=str(tmp_path))))  # type: ignore[arg-type]
    assert _Recorder.made == [expected]


def test_a_period_out_of_range_is_refused_in_one_line(tmp_path: pathlib.Path) -> None:
    done = _skysync(tmp_path, "settings", "set", "rescan-period", "5")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "60 to 86400" in done.stderr
    assert _skysync(tmp_path, "settings", "get", "rescan-period").stdout.strip() == "600"
