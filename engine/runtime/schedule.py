"""The per-connection week x hour grid: when may a connection's tasks transfer?

`Connection.schedule` is 168 characters of "0"/"1", one per hour of the week in local time, Monday 00:00 first
(index = weekday * 24 + hour). Pure functions over that string and a datetime; the engine passes the time from
its (injectable) clock, so tests can walk across hour boundaries without waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

HOURS_PER_WEEK = 168


def slot(when: datetime) -> int:
    """The grid index of the hour `when` falls in."""
    return when.weekday() * 24 + when.hour


def allowed(schedule: str, when: datetime) -> bool:
    """True when transfers may run at `when`. A malformed grid (wrong length) allows everything, so a bad
    config never silently stops syncing; config.parse_schedule refuses such grids on input."""
    if len(schedule) != HOURS_PER_WEEK:
        return True
    return schedule[slot(when)] == "1"


def _hour_start(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def next_change(schedule: str, when: datetime) -> datetime | None:
    """The start of the next hour whose allowed-ness differs from that of `when`; None if it never does."""
    if len(schedule) != HOURS_PER_WEEK:
        return None
    now_allowed = allowed(schedule, when)
    start = _hour_start(when)
    for k in range(1, HOURS_PER_WEEK + 1):
        # Adding hours to a naive local datetime walks wall-clock hours, which is what the grid means.
        candidate = start + timedelta(hours=k)
        if allowed(schedule, candidate) != now_allowed:
            return candidate
    return None


def next_allowed(schedule: str, when: datetime) -> datetime | None:
    """`when` itself if allowed now, else the start of the next allowed hour; None if no hour is allowed."""
    if allowed(schedule, when):
        return when
    return next_change(schedule, when)


def window_end(schedule: str, when: datetime) -> datetime | None:
    """When the allowed window containing `when` closes; None if it never closes or `when` is outside."""
    if not allowed(schedule, when):
        return None
    return next_change(schedule, when)


def describe(schedule: str) -> str:
    """A short human summary for status output: "always", "never" or "N of 168 hours"."""
    if len(schedule) != HOURS_PER_WEEK or set(schedule) == {"1"}:
        return "always"
    n = schedule.count("1")
    return "never" if n == 0 else f"{n} of 168 hours"
