"""Admin mode (spec: Settings > Admin mode): every user's connections of the system engine, for root.

The list comes from the system engine over its socket (`connections`, engine.runtime.system), which answers
root with every user's connections; a thread worker asks it, so a slow engine never freezes the screen. The
rows are ordered by user account or by cloud type (the spec's two orders); `o` switches between them, starting
from the `admin-order` setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from engine.errors import SkysyncError
from engine.names import shown

ORDER_NAMES = {"user": "user account", "cloud-type": "cloud type"}
COLUMNS = ("User", "Connection", "Cloud type", "Tasks")

Fetch = Callable[[], list[dict[str, Any]]]


def ordered(rows: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    """The admin list's rows by user account (then name) or by cloud type (then user, then name)."""
    if order == "cloud-type":
        return sorted(rows, key=lambda r: (str(r["provider"]), str(r["user"]).casefold(), str(r["name"]).casefold()))
    return sorted(rows, key=lambda r: (str(r["user"]).casefold(), str(r["name"]).casefold()))


def other_order(order: str) -> str:
    return "cloud-type" if order == "user" else "user"


def default_fetch(home_path: str) -> Fetch:
    def fetch() -> list[dict[str, Any]]:
        from engine.runtime.client import EngineClient

        return EngineClient(home_path).connections()

    return fetch


class AdminScreen(Screen[None]):
    """Every user's connections, one row each: user, connection, cloud type, tasks."""

    BINDINGS = [
        Binding("o", "toggle_order", "Order: user / cloud type", id="admin.toggle-order"),
        Binding("r", "refresh", "Refresh", id="admin.refresh"),
        Binding("escape", "close", "Back", id="admin.close"),
    ]

    def __init__(self, home_path: str, order: str = "user", fetch: Fetch | None = None) -> None:
        super().__init__()
        self.home_path = home_path
        self.order = order if order in ORDER_NAMES else "user"
        self._fetch = fetch or default_fetch(home_path)
        self.rows: list[dict[str, Any]] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="admin-title")
        yield DataTable(id="admin-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        self._title()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="admin-list")
    def load(self) -> list[dict[str, Any]]:
        return self._fetch()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "admin-list":
            return
        if event.state == WorkerState.SUCCESS:
            self.rows, self.error = list(event.worker.result or []), None
            self.show_rows()
        elif event.state == WorkerState.ERROR:
            exc = event.worker.error
            self.error = str(exc) if isinstance(exc, SkysyncError | OSError) else f"{type(exc).__name__}: {exc}"
            self._title()

    def _title(self) -> None:
        users = len({r["user"] for r in self.rows})
        if self.error:
            text = f"All users' connections: {shown(self.error)}"
        else:
            text = (f"All users' connections ({len(self.rows)}, {users} user{'s' * (users != 1)}), ordered by "
                    f"{ORDER_NAMES[self.order]}. o: order by {ORDER_NAMES[other_order(self.order)]}")
        self.query_one("#admin-title", Static).update(text)

    def show_rows(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in ordered(self.rows, self.order):
            tasks = ", ".join(shown(t) for t in row.get("tasks") or []) or "(no task)"
            table.add_row(shown(str(row["user"])), shown(str(row["name"])), str(row["provider"]), tasks)
        self._title()

    def action_toggle_order(self) -> None:
        self.order = other_order(self.order)
        self.show_rows()

    def action_refresh(self) -> None:
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)
