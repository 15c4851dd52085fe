"""One pacer per connection: spacing between calls, exponential backoff with jitter, and the service's own
`Retry-After` honoured, shared by every thread and pass that talks to the same account.

A throttled service (HTTP 429, S3's SlowDown, Azure's ServerBusy) answers every client of the account the same
way, so a wait it asks for holds the whole connection, not just the item that heard it: the transfers running
beside it wait too instead of earning 429s of their own. A success resets the backoff (rclone's pacer decays
it; a reset is simpler and the cap keeps a flapping service from being hammered).

The registry is keyed by the account (`Provider.identity`, which the spec makes unique per connection), so the
running engine's passes, a one-off `skysync sync` in the same process and the connection checks all reach the
same pacer through `pacer_of(provider)`, however the provider was opened.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from engine.providers.base import ProviderError

if TYPE_CHECKING:
    from engine.providers.base import Provider

T = TypeVar("T")

BASE_BACKOFF = 0.5  # seconds before the first retry
MAX_BACKOFF = 60.0  # our own backoff never grows past this
# A service may ask for a longer wait than we would choose (a daily quota spent); up to this long it is obeyed
# within the pass. Beyond it the item is given up for this pass with the service's message: a worker blocked
# for hours would hold the pass (and the task's lock) hostage.
MAX_WAIT = 15 * 60.0
WAIT_SLICE = 0.1  # waits are sliced so a cancelled pass stops within this time


class WaitTooLong(ProviderError):
    """The service asked for a longer wait than `MAX_WAIT`: the item is tried again at a later pass."""


class Pacer:
    """Paces the calls of one connection. Thread-safe; `clock` and `sleep` are injectable for tests.

    `wait()` before each call (it keeps `spacing` seconds between call starts and honours a hold that a
    throttled call put on the connection), `succeeded()` after a call that went through, `failed(exc)` after a
    retryable failure: it returns the moment before which the retry must not start.
    """

    def __init__(
        self,
        spacing: float = 0.0,
        *,
        base: float = BASE_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.spacing = max(0.0, spacing)
        self.base = base
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self._next_slot = 0.0  # the earliest start of the next call (spacing)
        self._hold = 0.0  # no call before this (a throttled call's backoff or Retry-After)
        self.failures = 0  # retryable failures since the last success, across the connection

    def wait(self, cancelled: Callable[[], bool] | None = None, not_before: float = 0.0) -> None:
        """Block until a call may start: `spacing` after the previous one, after any hold on the connection,
        and not before `not_before` (a clock() value). Raises InterruptedError when `cancelled()` turns true."""
        with self._lock:
            start = max(self._clock(), self._next_slot, self._hold, not_before)
            self._next_slot = start + self.spacing if self.spacing else 0.0
        while True:
            with self._lock:
                # A hold put on the connection while this thread waited counts too.
                remaining = max(start, self._hold) - self._clock()
            if remaining <= 0:
                return
            if cancelled is not None and cancelled():
                raise InterruptedError("cancelled while waiting for the service")
            self._sleep(min(WAIT_SLICE, remaining))

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0

    def failed(self, exc: ProviderError, *, whole_connection: bool = True) -> float:
        """Record a retryable failure; returns the clock() value before which its retry must not start.

        The wait is the exponential backoff (base × 2^(failures-1), capped, with up to 50 % jitter) or the
        service's `retry_after`, whichever is longer: never sooner than asked. `whole_connection` holds every
        call of the connection until then (throttling, an unreachable service); False keeps the wait to the
        caller (a file still being rewritten in the cloud says nothing about the service). Raises WaitTooLong
        when the service asks for more than `max_wait`.
        """
        asked = exc.retry_after
        if asked is not None and asked > self.max_wait:
            raise WaitTooLong(
                f"{exc}; the service asked to wait {_duration(asked)}, longer than {_duration(self.max_wait)}, so "
                "it is tried again at a later pass"
            )
        with self._lock:
            self.failures += 1
            delay = min(self.max_backoff, self.base * 2 ** min(self.failures - 1, 32))
            delay = min(self.max_wait, delay * (1 + self._jitter() / 2))
            if asked is not None:
                delay = max(delay, asked)
            until = self._clock() + delay
            if whole_connection:
                self._hold = max(self._hold, until)
            return until

    def call(self, fn: Callable[[], T], *, attempts: int = 3, cancelled: Callable[[], bool] | None = None) -> T:
        """`fn()` paced, retried on retryable ProviderErrors up to `attempts` times (for a provider's own calls
        and the connection checks; the executor drives `wait`/`failed` itself to keep per-item outcomes)."""
        for attempt in range(1, attempts + 1):
            self.wait(cancelled)
            try:
                result = fn()
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                until = self.failed(exc)
                if attempt == attempts:
                    raise
                self.wait(cancelled, not_before=until)
                continue
            self.succeeded()
            return result
        raise AssertionError("unreachable")  # the loop returns or raises


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_registry: dict[str, Pacer] = {}
_registry_lock = threading.Lock()


def pacer_for(key: str, spacing: float = 0.0) -> Pacer:
    """The process-wide pacer of `key` (an account), made on first use; `spacing` is the service's own."""
    with _registry_lock:
        pacer = _registry.get(key)
        if pacer is None:
            pacer = _registry[key] = Pacer(spacing)
        else:
            pacer.spacing = max(0.0, spacing)
        return pacer


def pacer_of(provider: Provider) -> Pacer:
    """The pacer of the account `provider` talks to (an encrypting wrapper shares its service's pacer).

    The key is a digest of the provider's kind and `identity()`: identities of key-based services hold the
    key itself, and the registry must not keep a second copy of a secret in plain text.
    """
    cls = _service_class(provider)
    identity = cls.identity(provider.options)
    key = hashlib.sha256(f"{provider.kind}\0{identity}".encode("utf-8", "surrogateescape")).hexdigest()
    return pacer_for(key, cls.min_call_spacing)


def _service_class(provider: Provider) -> type[Provider]:
    """The registered class of the provider's service (an EncryptedProvider takes its inner service's kind)."""
    from engine.providers import UnknownProvider, provider_class

    try:
        cls = provider_class(provider.kind)
    except (UnknownProvider, ImportError):
        return type(provider)
    return cls if isinstance(provider, cls) or provider.kind != type(provider).kind else type(provider)
