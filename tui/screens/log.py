"""The live history log: filter by task and kind, search, and the reason behind each skip or error."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Select

from engine.events import LogRecord
from engine.names import shown
from tui.screens.dialogs import DetailScreen
from tui.text import cell
from tui.widgets.fields import Field, select

KINDS = ("uploaded", "downloaded", "deleted", "conflict", "skipped", "error", "renamed", "mkdir", "info")
VIEW_MAX = 5_000  # rows kept in the table; the full history stays in the state database


def kind_group(kind: str) -> str:
    """deleted-local/deleted-remote -> deleted, mkdir-* -> mkdir: the filter's coarse kinds."""
    return kind.split("-", 1)[0]


def what(record: LogRecord) -> str:
    """The path, then the message dimmed (the reason of a skip, the words of an error or an info line)."""
    parts = [cell(record.path)] if record.path else []
    if record.message:
        parts.append(cell(record.message, "dim" if record.path else ""))
    return "  ".join(parts)


class LogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="log.close"),
        Binding("slash", "search", "Search", id="log.search"),
        Binding("enter", "detail", "Details", id="log.detail"),
        Binding("end", "follow", "Follow", id="log.follow"),
    ]

    def __init__(self, tasks: list[str], task: str | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        self.initial_task = task
        self.shown: list[LogRecord] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="log-filters"):
            yield select([(t, t) for t in self.tasks], prompt="All tasks", id="log-task",
                         value=self.initial_task if self.initial_task in self.tasks else Select.NULL)
            yield select([(k, k) for k in KINDS], prompt="All kinds", id="log-kind")
            yield Field(placeholder="search paths and messages (/)", id="log-search")
        table: DataTable[str] = DataTable(id="log-table", cursor_type="row", zebra_stripes=True)
        table.add_column("Time", width=14, key="time")
        table.add_column("Task", key="task")
        table.add_column("Kind", width=14, key="kind")
        # One column for the path and the message after it: at 80 columns a column of its own for the message
        # started off-screen, so "info" rows looked blank and skip reasons were hidden.
        table.add_column("Path · message", key="path")
        yield table
        yield Label("", id="log-count", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.refill()
        self.query_one("#log-table", DataTable).focus()

    # -- filtering -------------------------------------------------------------------------------------------
    def _filters(self) -> tuple[str | None, str | None, str]:
        task = self.query_one("#log-task", Select).value
        kind = self.query_one("#log-kind", Select).value
        text = self.query_one("#log-search", Field).value.strip().casefold()
        return (
            None if task is Select.NULL else str(task),
            None if kind is Select.NULL else str(kind),
            text,
        )

    def matches(self, record: LogRecord) -> bool:
        task, kind, text = self._filters()
        if task is not None and record.task != task:
            return False
        if kind is not None and kind_group(record.kind) != kind:
            return False
        if not text:
            return True
        # what is typed may be a name as it is, or as the table shows it (escaped)
        return any(text in s.casefold() for s in (record.path, record.message, shown(record.path)))

    def refill(self) -> None:
        table = self.query_one("#log-table", DataTable)
        table.clear()
        self.shown = []
        self.append(list(self.app.records))  # type: ignore[attr-defined]

    def append(self, records: Iterable[LogRecord]) -> None:
        table = self.query_one("#log-table", DataTable)
        follow = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        fmt = self.app.format_time  # type: ignore[attr-defined]
        new = [r for r in records if self.matches(r)][-VIEW_MAX:]
        for record in new:
            kind = record.kind
            style = {"error": "bold red", "conflict": "yellow", "skipped": "grey50"}.get(kind_group(kind), "")
            table.add_row(fmt(record.time)[5:], cell(record.task), cell(kind, style), what(record))
        self.shown.extend(new)
        overflow = len(self.shown) - VIEW_MAX
        if overflow > 0:  # a bounded view keeps a long-running session light
            for key in list(table.rows)[:overflow]:
                table.remove_row(key)
            del self.shown[:overflow]
        self.query_one("#log-count", Label).update(
            f"{len(self.shown):,} records shown · Enter: details · /: search · Esc: back"
        )
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def on_select_changed(self, _event: Select.Changed) -> None:
        self.refill()

    def on_input_changed(self, _event: Field.Changed) -> None:
        self.refill()

    def on_input_submitted(self, _event: Field.Submitted) -> None:
        self.query_one("#log-table", DataTable).focus()

    # -- actions ---------------------------------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one("#log-search", Field).focus()

    def action_follow(self) -> None:
        table = self.query_one("#log-table", DataTable)
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        table = self.query_one("#log-table", DataTable)
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return
        r = self.shown[table.cursor_row]
        body = (
            f"Time:    {self.app.format_time(r.time)}\n"  # type: ignore[attr-defined]
            f"Task:    {shown(r.task)}\nKind:    {shown(r.kind)}\nPath:    {shown(r.path)}\n\n"
            f"{shown(r.message) or 'No further detail was recorded.'}"
        )
        self.app.push_screen(DetailScreen(f"Log record · {r.kind}", body))

    def action_close(self) -> None:
        self.dismiss(None)
