"""Deciding when the screen must be drawn again: over SSH every redraw costs bytes on a slow link.

The status poll and the engine's progress events arrive often; most of them change nothing the user sees. These
pure functions say whether something did: the status without its countdowns, and the config files' stamps (so
the config is read again when it changes, not on every tick).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from engine.config import CONFIG_NAME, SECRETS_NAME

# Countdowns and live counters the engine puts in its status: they move on every poll, and the screens show them
# through other means (transfers come as progress events) or not at all.
VOLATILE = frozenset({"next_poll_in", "retry_in", "transfers", "last_check", "checks"})

# A few redraws a second are as fast as a person reads a progress bar.
PROGRESS_INTERVAL = 0.25


def _steady(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [_steady(v) for v in value]
    return value


def status_view(status: Mapping[str, Any]) -> dict[str, Any]:
    """What of a status the screens show: equal views mean nothing to redraw."""
    return _steady(status)


Stamp = tuple[tuple[int, int, int] | None, ...]


def config_stamp(home_path: str) -> Stamp:
    """The config and secrets files' identity and version: a change to either (an edit by the CLI, a save by
    another process) changes the stamp."""
    out: list[tuple[int, int, int] | None] = []
    for name in (CONFIG_NAME, SECRETS_NAME):
        try:
            st = os.stat(os.path.join(home_path, name))
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def remember_work(known: Mapping[str, Mapping[str, Any]], status: Mapping[str, Any]) -> dict[str, Any]:
    """Each task's last pass that changed something: a follow-up pass with nothing to do replaces the status's
    last pass, and "nothing to do" right after an 11-file download reads as if nothing happened."""
    out = dict(known)
    for name, task in (status.get("tasks") or {}).items():
        last = (task or {}).get("last_pass") or {}
        if any((last.get("summary") or {}).values()):
            out[name] = dict(last)
    return out
