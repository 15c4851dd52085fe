"""What the new-task wizard's steps share: the Back result, and asking before typed work is thrown away."""

from __future__ import annotations

from typing import Final

from textual.app import App

from tui.screens.dialogs import ConfirmScreen

BACK: Final = "back"  # a step's result: go to the step before, keeping what was typed


async def discard_confirmed(app: App, what: str = "the new task") -> bool:
    """Esc on a wizard that holds typed work: ask before losing it (it used to vanish without a word)."""
    body = "What you set up in this wizard is not saved. Leave it and lose it?"
    return bool(await app.push_screen_wait(ConfirmScreen(f"Discard {what}?", body, "Discard")))
