"""Misbehaviour a test switches on in a drive fake (Graph, Box, Yandex, Baidu): one object per fake, `faults`.

`arm(route, action, skip=0, times=1)`: a request whose "METHOD /path?query" contains `route` gets `action`, once
`skip` such requests have gone through normally, for `times` requests (0: every one from then on):

- "500": an HTTP 500 instead of the answer (nothing is done), as a service's passing failure;
- "401": an HTTP 401, as for an access token the service no longer accepts;
- "truncate": the request is served, but only half of the answer's body follows its full Content-Length before
  the connection is closed (a download cut mid-stream);
- "hold": the request waits until `release()` (at most `HOLD_LIMIT` seconds) and is then served; `held` is set
  when it arrives, so a test can kill the client at that very moment (mid-upload).

Each fake asks `take(route)` when a request arrives, before its token is checked, and acts on the answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ACTIONS = ("500", "401", "truncate", "hold")
HOLD_LIMIT = 60.0


@dataclass
class _Rule:
    route: str
    action: str
    skip: int
    times: int  # 0: no end


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.held = threading.Event()
        self._release = threading.Event()

    def arm(self, route: str, action: str, *, skip: int = 0, times: int = 1) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        with self._lock:
            self._rules.append(_Rule(route, action, skip, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
        self.release()

    def release(self) -> None:
        self._release.set()

    def take(self, route: str) -> str | None:
        """The action for this request, if a rule matches it now (a matching rule's skips count down first)."""
        with self._lock:
            for rule in self._rules:
                if rule.route not in route:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    return None
                if rule.times == 1:
                    self._rules.remove(rule)
                elif rule.times > 1:
                    rule.times -= 1
                action = rule.action
                break
            else:
                return None
        if action == "hold":
            self.held.set()
            self._release.wait(HOLD_LIMIT)
            return None
        return action


def half(raw: bytes) -> bytes:
    """What a cut answer delivers of a body: its first half (at least one byte short of the whole)."""
    return raw[: max(0, len(raw) // 2 if len(raw) > 1 else 0)]
