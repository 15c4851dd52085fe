"""App-wide settings: concurrency, maximum log records (5..100,000), database location, admin ordering."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select

from engine.config import LOG_MAX, LOG_MIN, Home
from engine.errors import UsageError
from tui import bridge
from tui.text import plain
from tui.widgets.fields import Field, Required, WholeNumber, button, first_failure, select

ORDER_LABELS = (("By user (as created)", "user"), ("By cloud type", "cloud-type"))


class SettingsScreen(ModalScreen[bool]):
    """Dismisses True when the settings were saved."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="settings.apply"),
    ]

    def __init__(self, home_path: str) -> None:
        super().__init__()
        self.home_path = home_path
        self.current = Home(home_path).settings()

    def compose(self) -> ComposeResult:
        s = self.current
        with Vertical(classes="dialog"):
            yield Label("App settings · every connection", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Label("Concurrent uploads/downloads")
                yield select([(str(n), str(n)) for n in range(1, 21)], value=str(s["concurrency"]),
                             allow_blank=False, id="concurrency")
                yield Label(f"Maximum records in the history log ({LOG_MIN}..{LOG_MAX:,})")
                yield Field(str(s["log-max-records"]), id="log-max-records",
                            validators=[WholeNumber("Maximum log records", LOG_MIN, LOG_MAX)])
                yield Label("Database location (absolute path of the state database)")
                yield Field(str(s["database-path"]), id="database-path",
                            validators=[Required("the database location")])
                yield Label("Admin view: order connections")
                yield select(ORDER_LABELS, value=str(s["admin-order"]), allow_blank=False, id="admin-order")
            yield Label("", id="form-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                yield button("Apply", id="apply", variant="primary")
            yield Label("Ctrl+S apply   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#concurrency", Select).focus()

    def _error(self, text: str) -> None:
        status = self.query_one("#form-status", Label)
        status.update(plain(text))
        status.set_classes("status error")

    def action_apply(self) -> None:
        problem = first_failure(*self.query(Field))
        if problem is not None:
            self._error(problem)
            return
        values = {
            "concurrency": str(self.query_one("#concurrency", Select).value),
            "log-max-records": self.query_one("#log-max-records", Field).value.strip().replace(",", ""),
            "database-path": self.query_one("#database-path", Field).value.strip(),
            "admin-order": str(self.query_one("#admin-order", Select).value),
        }
        try:
            bridge.set_settings(Home(self.home_path), values)
        except UsageError as exc:  # the engine's own one-line refusal
            self._error(str(exc))
            return
        self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_apply()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(False)
