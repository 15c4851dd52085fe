"""The local file a download writes into, kept apart from the network's failures.

Some SDKs (boxsdk, yadisk) turn every exception raised inside their download loop into their own network error,
so a full local disk would reach the user as "the connection broke" and be retried as one. Writing through
`LocalWrite` remembers the disk's own OSError, and the provider raises that instead of the SDK's translation.
"""

from __future__ import annotations

from typing import BinaryIO


class LocalWrite:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.failed: OSError | None = None

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:
        try:
            return self.out.write(data) or len(data)
        except OSError as exc:
            self.failed = exc
            raise

    def raise_if_failed(self) -> None:
        """Raise the local disk's error, if writing failed; called where the SDK's error was caught."""
        if self.failed is not None:
            raise self.failed
