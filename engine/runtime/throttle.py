"""Traffic control: a token bucket per connection and direction, shared by all its concurrent transfers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import BinaryIO

# Waits are sliced so a cancelled transfer, or a limit changed while running, takes effect within this time.
WAIT_SLICE = 0.1
MIN_CHUNK = 4096
MAX_CHUNK = 1 << 20


class TokenBucket:
    """`consume(n)` blocks until n bytes may pass at `rate` bytes/s; rate 0 means unlimited.

    The rate can change while transfers run. Burst is capped at a quarter second of traffic so a pause in
    one transfer does not let the next one exceed the limit. A request larger than what is there goes through
    in debt, paid by waiting; because the debt is shared, N concurrent transfers together get `rate`, not N x.
    """

    def __init__(self, rate: float = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rate = float(rate)
        self._tokens = 0.0
        self._stamp = clock()
        self._generation = 0

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self._refill()
            self._rate = float(rate)
            self._generation += 1
            # Forget debt run up at the old rate: a limit raised (or lifted) takes effect at once.
            self._tokens = 0.0 if self._rate <= 0 else max(min(self._tokens, self._burst()), 0.0)

    def chunk(self) -> int:
        """A read/write size that keeps single waits short at the current rate (≈ 1/8 s of traffic)."""
        rate = self._rate
        if rate <= 0:
            return MAX_CHUNK
        return int(min(MAX_CHUNK, max(MIN_CHUNK, rate / 8)))

    def _burst(self) -> float:
        return max(self._rate / 4, 16 * 1024)

    def _refill(self) -> None:
        now = self._clock()
        if self._rate > 0:
            self._tokens = min(self._burst(), self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def consume(self, n: int, cancelled: Callable[[], bool] | None = None) -> None:
        """Take n bytes' worth of tokens, waiting as long as the rate requires.

        Raises InterruptedError when `cancelled()` turns true during the wait.
        """
        with self._lock:
            if self._rate <= 0:
                return
            self._refill()
            self._tokens -= n
            if self._tokens >= 0:
                return
            deadline = self._clock() + (-self._tokens / self._rate)
            generation = self._generation
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            if cancelled and cancelled():
                raise InterruptedError("transfer cancelled")
            if self._generation != generation:
                # The limit changed: the debt was reset by set_rate; wait no longer than the new rate asks.
                with self._lock:
                    if self._rate <= 0:
                        return
                    deadline = min(deadline, self._clock() + n / self._rate)
                    generation = self._generation
            time.sleep(min(WAIT_SLICE, max(remaining, 0.0)))


class _Metered:
    """What a metered file shares: the bucket, progress reporting and cancellation."""

    def __init__(
        self,
        f: BinaryIO,
        bucket: TokenBucket | None,
        progress: Callable[[int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self._f = f
        self._bucket = bucket
        self._progress = progress
        self._cancelled = cancelled
        self.count = 0
        # A failure of the local file itself (a full disk, a read error), kept here because the provider
        # around us may wrap it in an error of its own and blame the service.
        self.local_error: OSError | None = None

    def __getattr__(self, name: str):  # seek/tell/fileno/flush for SDKs that need them
        return getattr(self._f, name)


class MeteredReader(_Metered):
    """Wraps a readable file: throttles, reports progress, and can be cancelled between chunks."""

    def read(self, n: int = -1) -> bytes:
        if self._cancelled and self._cancelled():
            raise InterruptedError("transfer cancelled")
        if n is None or n < 0:
            n = MAX_CHUNK
        if self._bucket and self._bucket.rate:
            # Short reads are allowed by the file protocol; small ones keep the shared bucket fair and smooth.
            n = min(n, self._bucket.chunk())
        try:
            data = self._f.read(n)
        except OSError as exc:
            self.local_error = exc
            raise
        if data:
            if self._bucket:
                self._bucket.consume(len(data), self._cancelled)
            self.count += len(data)
            if self._progress:
                self._progress(self.count)
        return data


class MeteredWriter(_Metered):
    """Wraps a writable file the same way, for downloads."""

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        total = len(view)
        pos = 0
        # An SDK may hand over megabytes at once; pay for them piece by piece so the rate stays smooth.
        while pos < total or total == 0:
            if self._cancelled and self._cancelled():
                raise InterruptedError("transfer cancelled")
            step = self._bucket.chunk() if self._bucket and self._bucket.rate else total
            piece = view[pos : pos + max(step, 1)]
            if self._bucket:
                self._bucket.consume(len(piece), self._cancelled)
            try:
                self._f.write(piece)
            except OSError as exc:
                self.local_error = exc
                raise
            pos += len(piece)
            self.count += len(piece)
            if self._progress:
                self._progress(self.count)
            if total == 0:
                break
        return total
