"""Remote change detection for one connection: a timer at its polling period, the change feed if any, and a
long poll where the service can wait for changes.

Without a change feed every poll is a full pass (the pass lists the remote side). With one, a poll asks the
feed "anything since my cursor?" and only a yes costs a pass; a full pass still runs every `FULL_PASS_EVERY`
seconds as a safety net, because feeds can drop events (expired cursors, server-side hiccups).

Where the service can also wait for changes (`Capabilities.wait_for_changes`: Dropbox's longpoll), `LongPoll`
runs in its own thread per connection and triggers the connection's tasks as soon as the service says that
something changed: a remote change is seen within seconds instead of one polling period, and a wait that ends
with nothing new lists nothing. The timer's polls go on beside it, so a long poll that fails loses nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.config import POLLING_MAX, POLLING_MIN
from engine.providers.base import ChangeWait, CursorExpired, Provider
from engine.runtime.retry import Backoff

FULL_PASS_EVERY = 3600.0
LONGPOLL_TIMEOUT = 30.0  # seconds a wait asks the service to hold (Dropbox's shortest and default)
LONGPOLL_ERROR_MAX = 300.0  # the longest pause after failed waits: the timer's polls cover the gap meanwhile


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
    # When a poll last asked for a full pass (a poll without a feed, the hourly net): a task's next pass after
    # it is a full one; a pass for what the feed reported can look at the reported paths only.
    full_asked: float = 0.0

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
        timer.last_full = timer.full_asked = now
        return True
    changed = feed.changed()
    if timer.full_pass_due(now):  # an hour after the last full pass, whatever incremental ones ran since
        timer.last_full = timer.full_asked = now
        return True
    return changed


# -- long polls ------------------------------------------------------------------------------------------------


def should_wait(*, capable: bool, ready: bool, error: bool, paused: bool, allowed: bool, stopping: bool,
                active_tasks: int) -> bool:
    """Whether a connection's long poll runs: a provider that can wait, checked and working, not paused, inside
    its schedule, with a task that is not paused, and the engine not stopping. Otherwise nothing would use
    what it finds, and a paused connection must not talk to its service."""
    return capable and ready and not error and not paused and allowed and not stopping and active_tasks > 0


def pause_after(outcome: ChangeWait | BaseException, failures: int, policy: Backoff) -> float:
    """Seconds before the next wait. After an answer: the backoff the service asked for. After the n-th error
    in a row: the engine's backoff, or the service's Retry-After if longer, at most LONGPOLL_ERROR_MAX."""
    if isinstance(outcome, ChangeWait):
        return max(0.0, outcome.backoff)
    asked = getattr(outcome, "retry_after", None) or 0.0
    return min(LONGPOLL_ERROR_MAX, max(policy.after(failures), asked))


class LongPoll:
    """One connection's long-poll loop, in a daemon thread (see the module's docstring).

    Its cursor is its own, like ChangeFeed's: a pass reads the changes from the cursor saved in the state. After
    a change it takes a fresh cursor *before* calling `on_change`, so a change made later wakes the next wait
    and one made earlier is seen by the pass it triggers. Every cursor taken afresh (the first, after a cursor
    the service forgot, after an error) calls `on_change` too, as ChangeFeed's first poll does: no wait would
    report what changed before it. An error: `on_error(exc, failures)`, a pause (`pause_after`), then a fresh
    cursor.

    `stop()` ends a pause at once; a wait in progress ends when the service answers (within its timeout), and
    that answer is dropped (the owner's callbacks also check that this loop is still the current one).
    """

    def __init__(
        self, name: str, provider: Provider, on_change: Callable[[], None],
        on_error: Callable[[BaseException, int], None], policy: Backoff, timeout: float = LONGPOLL_TIMEOUT,
    ) -> None:  # fmt: skip
        self.name = name
        self.provider = provider
        self._on_change = on_change
        self._on_error = on_error
        self._policy = policy
        self._timeout = timeout
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"longpoll:{name}", daemon=True)

    def start(self) -> LongPoll:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        cursor: str | None = None
        failures = 0
        while not self._stop.is_set():
            outcome: ChangeWait | BaseException
            try:
                if cursor is None:
                    cursor = self.provider.changes_start("")
                    if self._stop.is_set():
                        return
                    # What changed before this cursor (while the loop was starting, or failing) no wait will
                    # report: a pass looks.
                    self._on_change()
                outcome = self.provider.wait_changes(cursor, self._timeout)
                failures = 0
                if outcome.changed:
                    cursor = self.provider.changes_start("")
            except CursorExpired:
                cursor, outcome = None, ChangeWait(False)  # the fresh cursor asks for a pass
            except Exception as exc:  # a provider error or an SDK's surprise: pause, the polls go on
                cursor, outcome = None, exc
                failures += 1
            if self._stop.is_set():
                return
            if isinstance(outcome, BaseException):
                self._on_error(outcome, failures)
            elif outcome.changed:
                self._on_change()
            pause = pause_after(outcome, failures, self._policy)
            if pause > 0:
                self._stop.wait(pause)
