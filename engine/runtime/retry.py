"""Backoff, and the per-item retry bookkeeping: each failing item waits on its own schedule.

A pass that ends with some items failed is not a failed pass; each failing item gets a backoff of its own
(5 s doubling up to 15 min, kept in memory) and a retry pass runs when the earliest is due. A failure counts
(and doubles the item's wait) only when the item was due: one seen early, in a pass run for other changes,
leaves its schedule as it was. So one unwritable file never delays anyone's other saves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

BACKOFF_BASE = 5.0
BACKOFF_MAX = 900.0


def backoff(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after the n-th failure in a row: base, 2 base, 4 base, ... up to cap."""
    return min(cap, base * (2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class Backoff:
    base: float = BACKOFF_BASE
    cap: float = BACKOFF_MAX

    def after(self, failures: int) -> float:
        return backoff(failures, self.base, self.cap)


@dataclass(frozen=True)
class ItemRetry:
    """One failing item's own retry schedule (engine clock seconds)."""

    failures: int
    due: float
    message: str


def item_outcome(
    items: Mapping[str, ItemRetry], failed: Mapping[str, str], n_failed: int, now: float, policy: Backoff
) -> dict[str, ItemRetry]:
    """The failing items after a pass that ran to its end: each failing one moves on its own schedule, the
    others are done. `failed` maps path -> message of the items the pass named; "" stands for the ones it
    counted without naming them."""
    named = dict(failed)
    unnamed = n_failed - len(named)
    if unnamed > 0:
        named[""] = f"{unnamed} item(s) failed"
    after: dict[str, ItemRetry] = {}
    for path, message in named.items():
        item = items.get(path)
        if item is None:
            after[path] = ItemRetry(1, now + policy.after(1), message)
        elif now >= item.due:
            after[path] = ItemRetry(item.failures + 1, now + policy.after(item.failures + 1), message)
        else:
            after[path] = dataclasses.replace(item, message=message)
    return after


def earliest_due(items: Mapping[str, ItemRetry]) -> float:
    """When the next retry pass is due (0 when no item fails)."""
    return min((i.due for i in items.values()), default=0.0)
