"""Following a paginated listing without trusting the service to end it properly.

A listing that stops early reads as files deleted in the cloud (the engine would delete their local copies), and
one that never stops hangs the pass: a page that says more follow must say where, and never send us back to a
page already read.
"""

from __future__ import annotations

from engine.providers.base import ProviderError


class BrokenListing(ProviderError):
    """The service's pages do not make a whole listing; nothing is decided from it."""


class PageTrail:
    """The continuation tokens (or markers) of one listing, checked as it follows them."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._seen: set[str] = set()

    def next(self, more: bool, token: str | None) -> str | None:
        """The token of the next page, or None when the listing is whole."""
        if not more:
            return None
        if not token:
            raise BrokenListing(f"{self.what}: the service said more entries follow but not where; nothing was "
                                "decided from this listing")
        if token in self._seen:
            raise BrokenListing(f"{self.what}: the service sent a page already read again; nothing was decided "
                                "from this listing")
        self._seen.add(token)
        return token
