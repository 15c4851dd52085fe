"""The long-running engine that `skysync run` and the TUI drive, and the pieces only it uses.

`Engine` (engine.runtime.engine) is loaded on first use: the sync pass imports engine.runtime.throttle, and
the engine imports the sync pass, so an eager import here would be a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["Engine"]


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from engine.runtime.engine import Engine

        return Engine
    raise AttributeError(f"module 'engine.runtime' has no attribute {name!r}")
