"""Traffic control: a token bucket per connection and direction, shared by all its concurrent transfers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import BinaryIO


class TokenBucket:
    """`consume(n)` blocks until n bytes may pass at `rate` bytes/s; rate 0 means unlimited.

    The rate can change while transfers run. Burst is capped at a quarter second of traffic so a pause in
    one transfer does not let the next one exceed the limit.
    """

    def __init__(self, rate: float = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rate = float(rate)
        self._tokens = 0.0
        self._stamp = clock()

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self._rate = float(rate)
            self._tokens = min(self._tokens, self._burst())

    def _burst(self) -> float:
        return max(self._rate / 4, 16 * 1024)

    def consume(self, n: int) -> None:
        while True:
            with self._lock:
                if self._rate <= 0:
                    return
                now = self._clock()
                self._tokens = min(self._burst(), self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                # Take what is there; a request larger than the burst goes through in debt, paid by waiting.
                self._tokens -= n
                if self._tokens >= 0:
                    return
                wait = -self._tokens / self._rate
            time.sleep(wait)
            return


class MeteredReader:
    """Wraps a readable file: throttles, reports progress, and can be cancelled between chunks."""

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

    def read(self, n: int = -1) -> bytes:
        if self._cancelled and self._cancelled():
            raise InterruptedError("transfer cancelled")
        if n is None or n < 0:
            n = 1 << 20
        data = self._f.read(min(n, 1 << 20) if self._bucket and self._bucket.rate else n)
        if data:
            if self._bucket:
                self._bucket.consume(len(data))
            self.count += len(data)
            if self._progress:
                self._progress(self.count)
        return data

    def __getattr__(self, name: str):  # seek/tell/fileno for SDKs that need them
        return getattr(self._f, name)


class MeteredWriter:
    """Wraps a writable file the same way, for downloads."""

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

    def write(self, data: bytes) -> int:
        if self._cancelled and self._cancelled():
            raise InterruptedError("transfer cancelled")
        if self._bucket:
            self._bucket.consume(len(data))
        n = self._f.write(data)
        self.count += len(data)
        if self._progress:
            self._progress(self.count)
        return n if n is not None else len(data)

    def __getattr__(self, name: str):
        return getattr(self._f, name)
