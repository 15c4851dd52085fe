"""Messages the app's parts exchange; engine events cross from engine threads through `post_message`."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class LogBatchReady(Message):
    """New history records are waiting in the app's buffer.

    Queued copies merge (`can_replace`), so a burst of thousands of records costs one redraw, as in toolong.
    """

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LogBatchReady)


class StatusUpdated(Message):
    """A fresh engine status (the dict of `Engine.status()`)."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__()
        self.status = status


class ConfigChanged(Message):
    """The home's config was saved: lists and tabs re-read it, and the engine reloads."""


class TransferUpdated(Message):
    """A transfer made progress (merged while queued: only the latest counts)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TransferUpdated)


class PassChanged(Message):
    """A pass started or finished somewhere in the engine: time to refresh the status."""

    def __init__(self, task: str, finished: bool, ok: bool = True, error: str | None = None) -> None:
        super().__init__()
        self.task = task
        self.finished = finished
        self.ok = ok
        self.error = error


class SignInLine(Message):
    """A line of the sign-in's output, from its worker thread: the address, a device code, or words."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__()
        self.kind = kind
        self.text = text
