"""Poll timers and change feeds."""

from __future__ import annotations

from engine.providers.base import Capabilities, Change, CursorExpired, HashKind, MtimeMode
from engine.runtime.poll import FULL_PASS_EVERY, ChangeFeed, PollTimer, clamp_period, poll_once


class FeedProvider:
    capabilities = Capabilities(HashKind.NONE, MtimeMode.NATIVE, changes=True)

    def __init__(self) -> None:
        self.version = 0
        self.oldest = 0  # cursors older than this are expired
        self.asked: list[str] = []

    def changes_start(self, folder: str) -> str:
        return str(self.version)

    def changes(self, folder: str, cursor: str):
        self.asked.append(cursor)
        if int(cursor) < self.oldest:
            raise CursorExpired("too old")
        return iter([Change(str(v), None) for v in range(int(cursor), self.version)]), str(self.version)


def test_clamp_period_keeps_the_spec_bounds():
    assert clamp_period(1) == 10
    assert clamp_period(60) == 60
    assert clamp_period(10**6) == 86_400


def test_timer_is_due_at_each_period():
    t = PollTimer(60, next_due=1000)
    assert not t.due(999) and t.due(1000)
    t.polled(1000)
    assert t.next_due == 1060
    t.set_period(30, 1010)  # shortened: the next poll is 30 s after the last one
    assert t.next_due == 1030
    t.set_period(5, 1010)  # below the minimum: clamped to 10 s
    assert t.next_due == 1010


def test_without_a_feed_every_poll_is_a_pass():
    t = PollTimer(60)
    assert poll_once(None, t, 100.0) and t.next_due == 160


def test_change_feed_asks_for_a_pass_only_when_something_changed():
    p = FeedProvider()
    assert ChangeFeed.supported(p)  # type: ignore[arg-type]
    feed = ChangeFeed(p)  # type: ignore[arg-type]
    t = PollTimer(60)
    assert poll_once(feed, t, 0.0)  # first poll: take a cursor, and pass once to cover everything so far
    assert not poll_once(feed, t, 60.0)
    p.version += 1
    assert poll_once(feed, t, 120.0)
    assert not poll_once(feed, t, 180.0)
    assert p.asked == ["0", "0", "1"]
    assert t.full_asked == 0.0  # passes for what the feed named are not full passes
    assert not poll_once(feed, t, FULL_PASS_EVERY - 1.0)
    assert poll_once(feed, t, FULL_PASS_EVERY + 1.0)  # an hour after the last full pass: the safety net
    assert t.full_asked == FULL_PASS_EVERY + 1.0
    feed.reset()
    assert poll_once(feed, t, FULL_PASS_EVERY + 181.0)  # after an error: fresh cursor, one pass


def test_providers_without_a_feed_are_detected():
    from engine.providers.local import LocalProvider

    assert not ChangeFeed.supported(LocalProvider({"root": "/tmp"}))


def test_an_expired_cursor_asks_for_a_pass_and_starts_afresh():
    p = FeedProvider()
    feed = ChangeFeed(p)  # type: ignore[arg-type]
    t = PollTimer(60)
    assert poll_once(feed, t, 0.0)
    p.version, p.oldest = 5, 3  # the service forgot cursor "0"
    assert poll_once(feed, t, 60.0)  # expired: a pass (it lists everything) and a fresh cursor
    assert not poll_once(feed, t, 120.0)
    assert p.asked == ["0", "5"]
