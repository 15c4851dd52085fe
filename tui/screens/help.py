"""The help screen (F1 or ?): what skysync does, and every key that works where the user pressed F1."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

INTRO = (
    "skysync keeps local folders in sync with cloud storage. Make a connection (n), then a sync task on it (t);"
    " the engine syncs in the background. Everything works from the keyboard: Tab moves between areas,"
    " Ctrl+P opens the command palette."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close", id="help.close")]

    def __init__(self, keys: list[tuple[str, str]], area: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.keys = keys
        self.area = list(area)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Help", classes="dialog-title")
            yield Static(INTRO, classes="dialog-body")
            table: DataTable[str] = DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            table.add_columns("Key", "Action")
            for key, description in self.keys:
                table.add_row(key, description)
            if self.area:
                table.add_row("", "[b]In the focused area[/b]")
                for key, description in self.area:
                    table.add_row(key, description)
            yield table
            yield Label("Esc: close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
