"""The per-connection pacer: spacing, backoff that grows and resets, Retry-After honoured and capped, shared
by threads and by everything that opens the same account; and the executor driving it (no real sleeps)."""

from __future__ import annotations

import itertools
import threading

import pytest

from engine.pacer import MAX_WAIT, Pacer, WaitTooLong, pacer_for, pacer_of
from engine.providers.base import NotFound, TransientError
from engine.providers.local import LocalProvider


class FakeTime:
    """A clock that only sleeping moves; thread-safe so two threads can share it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()
        self.slept: list[float] = []

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def make(t: FakeTime, spacing: float = 0.0, **kw) -> Pacer:
    return Pacer(spacing, clock=t.clock, sleep=t.sleep, jitter=lambda: 0.0, **kw)


def test_spacing_between_calls():
    t = FakeTime()
    p = make(t, spacing=0.25)
    starts = []
    for _ in range(4):
        p.wait()
        starts.append(t.now)
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts)] == [0.25, 0.25, 0.25]


def test_no_spacing_means_no_wait():
    t = FakeTime()
    p = make(t)
    for _ in range(100):
        p.wait()
    assert t.slept == []


def test_two_threads_share_the_spacing():
    """Both threads take slots from one schedule: the 20th call of two threads starts no sooner than 19
    spacings after the first could (each thread alone would need only 9). Real time: a wait can only be late."""
    import time

    p = Pacer(0.02)
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            p.wait()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(2)]
    begun = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(starts) == 20
    assert max(starts) - begun >= 19 * 0.02


def test_backoff_grows_and_resets_on_success():
    t = FakeTime()
    p = make(t, base=0.5)
    waits = [p.failed(TransientError("busy")) - t.now for _ in range(4)]
    assert waits == [0.5, 1.0, 2.0, 4.0]
    p.succeeded()
    assert p.failed(TransientError("busy")) - t.now == 0.5


def test_backoff_is_capped_and_jittered_upwards_only():
    t = FakeTime()
    p = Pacer(clock=t.clock, sleep=t.sleep, jitter=lambda: 0.999, base=1.0, max_backoff=8.0)
    waits = [p.failed(TransientError("busy")) - t.now for _ in range(8)]
    assert waits[0] >= 1.0 and waits[0] < 1.5
    assert max(waits) < 8.0 * 1.5


def test_retry_after_is_never_undercut():
    t = FakeTime()
    p = make(t, base=0.5)
    until = p.failed(TransientError("429", retry_after=2))
    assert until - t.now == 2.0
    start = t.now
    p.wait()  # the hold covers the whole connection
    assert t.now - start >= 2.0


def test_retry_after_above_the_cap_gives_up_with_the_message():
    t = FakeTime()
    p = make(t)
    with pytest.raises(WaitTooLong) as info:
        p.failed(TransientError("daily quota spent", retry_after=MAX_WAIT + 1))
    assert "daily quota spent" in str(info.value) and "later pass" in str(info.value)
    assert not info.value.retryable
    p.wait()
    assert t.slept == []  # giving up holds nothing


def test_an_item_only_failure_does_not_hold_the_connection():
    t = FakeTime()
    p = make(t)
    p.failed(TransientError("being rewritten"), whole_connection=False)
    p.wait()
    assert t.slept == []


def test_a_hold_set_while_another_thread_waits_is_honoured():
    t = FakeTime()
    p = make(t, spacing=1.0)
    p.wait()
    hits = []

    def sleep(seconds: float) -> None:
        if not hits:
            hits.append(1)
            p.failed(TransientError("429", retry_after=5))  # another thread is throttled meanwhile
        t.sleep(seconds)

    p._sleep = sleep
    start = t.now
    p.wait()
    assert t.now - start >= 5.0


def test_cancel_interrupts_a_wait():
    t = FakeTime()
    p = make(t)
    p.failed(TransientError("429", retry_after=600))
    with pytest.raises(InterruptedError):
        p.wait(cancelled=lambda: True)
    assert t.now < 1000.0 + 600


def test_call_retries_retryable_errors_after_the_wait():
    t = FakeTime()
    p = make(t)
    calls: list[float] = []

    def flaky() -> str:
        calls.append(t.now)
        if len(calls) < 3:
            raise TransientError("503", retry_after=2)
        return "ok"

    assert p.call(flaky) == "ok"
    assert calls[1] - calls[0] >= 2 and calls[2] - calls[1] >= 2
    assert p.failures == 0


def test_call_raises_other_errors_at_once():
    t = FakeTime()
    p = make(t)
    with pytest.raises(NotFound):
        p.call(lambda: (_ for _ in ()).throw(NotFound("gone")))
    assert t.slept == []


def test_one_pacer_per_account(tmp_path):
    a = LocalProvider({"root": str(tmp_path / "a")})
    again = LocalProvider({"root": str(tmp_path / "a")})
    other = LocalProvider({"root": str(tmp_path / "b")})
    assert pacer_of(a) is pacer_of(again)
    assert pacer_of(a) is not pacer_of(other)
    assert pacer_for("some-key") is pacer_for("some-key")


def test_an_encrypted_task_shares_its_services_pacer(tmp_path):
    from engine.crypto.keys import AccountKey
    from engine.crypto.provider import EncryptedProvider

    inner = LocalProvider({"root": str(tmp_path / "c")})
    key = AccountKey.create("a password")
    wrapped = EncryptedProvider(LocalProvider({"root": str(tmp_path / "c")}), key.to_secrets())
    assert pacer_of(wrapped) is pacer_of(inner)
