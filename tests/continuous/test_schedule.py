"""The week x hour grid: pure functions, walked with plain datetimes."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine.runtime import schedule as sched

MON = datetime(2026, 11, 23)  # a Monday
assert MON.weekday() == 0


def grid(*hours: int) -> str:
    cells = ["0"] * 168
    for h in hours:
        cells[h] = "1"
    return "".join(cells)


def test_slot_is_monday_midnight_first():
    assert sched.slot(MON) == 0
    assert sched.slot(MON.replace(hour=23, minute=59)) == 23
    assert sched.slot(datetime(2026, 11, 29, 23, 30)) == 167  # Sunday 23:30


def test_allowed_reads_the_cell_of_the_hour():
    g = grid(9, 24 + 10)  # Monday 09:00-10:00, Tuesday 10:00-11:00
    assert sched.allowed(g, MON.replace(hour=9, minute=59, second=59))
    assert not sched.allowed(g, MON.replace(hour=10))
    assert not sched.allowed(g, MON.replace(hour=8, minute=59))
    assert sched.allowed(g, datetime(2026, 11, 24, 10, 30))


def test_always_and_never():
    when = MON.replace(hour=5)
    assert sched.allowed(sched_always := "1" * 168, when)
    assert sched.next_allowed(sched_always, when) == when
    assert sched.window_end(sched_always, when) is None
    assert not sched.allowed("0" * 168, when)
    assert sched.next_allowed("0" * 168, when) is None
    assert sched.describe("0" * 168) == "never"
    assert sched.describe(sched_always) == "always"
    assert sched.describe(grid(1, 2, 3)) == "3 of 168 hours"


def test_next_allowed_is_the_start_of_the_next_open_hour():
    g = grid(9)
    assert sched.next_allowed(g, MON.replace(hour=7, minute=12)) == MON.replace(hour=9)
    # After Monday's window, the next one is a week later.
    assert sched.next_allowed(g, MON.replace(hour=10, minute=1)) == datetime(2026, 11, 30, 9)


def test_next_allowed_wraps_from_sunday_to_monday():
    g = grid(0)
    assert sched.next_allowed(g, datetime(2026, 11, 29, 23, 59)) == datetime(2026, 11, 30, 0)


def test_window_end_spans_consecutive_hours_and_days():
    g = grid(22, 23, 24, 25)  # Monday 22:00 to Tuesday 02:00
    assert sched.window_end(g, MON.replace(hour=22, minute=30)) == datetime(2026, 11, 24, 2)
    assert sched.window_end(g, MON.replace(hour=3)) is None


@pytest.mark.parametrize("bad", ["", "1" * 167, "1" * 169])
def test_a_malformed_grid_never_stops_syncing(bad: str):
    assert sched.allowed(bad, MON)
    assert sched.next_change(bad, MON) is None
