"""The help screen (F1 or ?): what skysync does, and every key that works where the user pressed F1."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

INTRO = (
    "skysync keeps local folders in sync with cloud storage. Make a connection (n), then a sync task on it (t)."
    " While the app is open its engine syncs; on quitting, syncing can go on in the background (skysync run)"
    " or as a systemd user service. Tab moves between areas, Ctrl+P opens the command palette."
)


def key_list(keys: list[tuple[str, str]], area: list[tuple[str, str]]) -> Text:
    """Two columns as one text: it wraps at any width, and the key column never scrolls out of sight (a table
    scrolled sideways on End and hid it)."""
    width = max((len(k) for k, _ in [*keys, *area]), default=0) + 2
    text = Text()
    for key, description in keys:
        text.append(f"{key:<{width}}", "bold")
        text.append(f"{description}\n")
    if area:
        text.append("\nIn the focused area\n", "bold")
        for key, description in area:
            text.append(f"{key:<{width}}", "bold")
            text.append(f"{description}\n")
    text.rstrip()
    return text


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
                yield Static(key_list(self.keys, self.area), id="help-list")
            yield Label("↑↓ PgUp PgDn Home End scroll · Esc close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#help-keys", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
