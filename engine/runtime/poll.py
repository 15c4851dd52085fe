"""Remote change detection for one connection: a timer at its polling period, and the change feed if any.

Without a change feed every poll is a full pass (the pass lists the remote side). With one, a poll asks the
feed "anything since my cursor?" and only a yes costs a pass; a full pass still runs every `FULL_PASS_EVERY`
seconds as a safety net, because feeds can drop events (expired cursors, server-side hiccups).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.config import POLLING_MAX, POLLING_MIN
from engine.providers.base import CursorExpired, Provider

FULL_PASS_EVERY = 3600.0


def clamp_period(seconds: float) -> float:
    """The spec's bounds: at most one day between polls, and not more often than every 10 s."""
    return float(min(max(seconds, POLLING_MIN), POLLING_MAX))


class ChangeFeed:
    """Asks a provider's change feed "anything since my cursor?" for the whole connection.

    `changed()` is True when a pass is needed. The first call only takes a cursor and says True: the pass it
    triggers covers everything up to that cursor, so nothing between the cursor and the pass is lost. This
    cursor is the poll's own and lives in memory: each pass reads the changes for its task's folder from the
    cursor saved in the state database, so a peek here never consumes what a pass needs.
    """

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._cursor: str | None = None

    @staticmethod
    def supported(provider: Provider) -> bool:
        return provider.capabilities.changes

    def changed(self) -> bool:
        if self._cursor is None:
            self._cursor = self._provider.changes_start("")
            return True
        try:
            changes, self._cursor = self._provider.changes("", self._cursor)
        except CursorExpired:
            self._cursor = self._provider.changes_start("")
            return True
        return any(True for _ in changes)

    def reset(self) -> None:
        """Forget the cursor (after an error): the next check takes a fresh one and asks for a pass."""
        self._cursor = None


@dataclass
class PollTimer:
    """When is this connection's next poll due? Times are in the engine clock's seconds."""

    period: float
    next_due: float = 0.0  # 0: due at once (the start trigger)
    last_full: float = field(default=0.0)

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def polled(self, now: float) -> None:
        self.next_due = now + clamp_period(self.period)

    def set_period(self, period: float, now: float) -> None:
        """A changed period applies from the last poll, so shortening it can make a poll due at once."""
        old = clamp_period(self.period)
        self.period = period
        last = self.next_due - old
        self.next_due = last + clamp_period(period)

    def full_pass_due(self, now: float) -> bool:
        return now - self.last_full >= FULL_PASS_EVERY


def poll_once(feed: ChangeFeed | None, timer: PollTimer, now: float) -> bool:
    """One poll: returns True when the connection's tasks need a pass. Provider errors propagate.

    Without a feed, a poll is a pass. With one, a pass when the feed reports changes, or as the hourly net.
    """
    timer.polled(now)
    if feed is None:
        timer.last_full = now
        return True
    if feed.changed() or timer.full_pass_due(now):
        timer.last_full = now
        return True
    return False
