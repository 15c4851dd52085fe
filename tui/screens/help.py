"""The help screen (F1 or ?): what skysync does, and every key that works where the user pressed F1."""

from __future__ import annotations

import textwrap
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.widgets import Label, Static

INTRO = (
    "skysync keeps local folders in sync with cloud storage. Make a connection (n), then a sync task on it (t)."
    " While the app is open its engine syncs; on quitting, syncing can go on in the background (skysync run)"
    " or as a systemd user service. Tab moves between areas, Ctrl+P opens the command palette."
)


def key_list(keys: list[tuple[str, str]], area: list[tuple[str, str]], width: int = 0) -> Text:
    """Two columns as one text: it wraps at any width, and the key column never scrolls out of sight (a table
    scrolled sideways on End and hid it). With `width`, a description too long for its line goes on under its
    own column, so the keys stay alone at the left edge."""
    column = max((len(k) for k, _ in [*keys, *area]), default=0) + 2
    room = width - column if width > column + 10 else 0

    def rows(pairs: list[tuple[str, str]]) -> None:
        for key, description in pairs:
            text.append(f"{key:<{column}}", "bold")
            lines = textwrap.wrap(description, room) if room else [description]
            text.append(("\n" + " " * column).join(lines or [""]) + "\n")

    text = Text()
    rows(keys)
    if area:
        text.append("\nIn the focused area\n", "bold")
        rows(area)
    text.rstrip()
    return text


class KeyList(Static):
    """The key list, wrapped for the width it has (its `content` stays the unwrapped list)."""

    def __init__(self, keys: list[tuple[str, str]], area: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(key_list(keys, area), **kwargs)
        self._pairs = (keys, area)

    def render(self) -> Text:
        return key_list(*self._pairs, self.size.width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(key_list(*self._pairs, width).wrap(self.app.console, width)) if width > 0 else 1


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close", id="help.close")]

    def __init__(self, keys: list[tuple[str, str]], area: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.keys = keys
        self.area = list(area)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Help", classes="dialog-title")
            with VerticalScroll(id="help-keys"):
                yield Static(INTRO, classes="dialog-body")
                yield KeyList(self.keys, self.area, id="help-list")
            yield Label("↑↓ PgUp PgDn Home End scroll · Esc close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#help-keys", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
