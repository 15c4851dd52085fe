"""Dry-run preview: what one pass of a task would do, computed in a worker, nothing changed."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static
from textual.worker import Worker, WorkerState

from engine.events import Event, LogRecord, PassFinished
from engine.names import shown
from tui.screens.dialogs import DetailScreen
from tui.text import cell, plain


class DryRunScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="dryrun.close"),
        Binding("enter", "detail", "Details", id="dryrun.detail"),
    ]

    def __init__(self, task: str) -> None:
        super().__init__()
        self.task_name = task
        self.records: list[LogRecord] = []
        self.finished: PassFinished | None = None
        self.planned: list[tuple[str, str, str]] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            yield Label(f"Dry run · '{self.task_name}' · nothing is changed", classes="dialog-title")
            table: DataTable[str] = DataTable(id="plan", cursor_type="row", zebra_stripes=True)
            table.add_column("Action")
            table.add_column("Path")
            yield table
            # The highlighted row in full, wrapped: a long path or a skip's reason runs off an 80-column table.
            yield Static("", id="dry-detail")
            yield Label("Computing the plan…", id="summary", classes="status busy")
            yield Label("Esc: close", classes="hint")

    def on_mount(self) -> None:
        self._plan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="dry-run")
    def _plan(self) -> object:
        def collect(event: Event) -> None:
            if isinstance(event, LogRecord):
                self.records.append(event)
            elif isinstance(event, PassFinished):
                self.finished = event

        return self.app.host.dry_run(self.task_name, collect)  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        summary = self.query_one("#summary", Label)
        if event.state == WorkerState.ERROR:
            summary.update(plain(f"Dry run failed: {event.worker.error}"))
            summary.set_classes("status error")
        elif event.state == WorkerState.SUCCESS:
            table = self.query_one("#plan", DataTable)
            planned = getattr(event.worker.result, "planned", None)
            if planned is None:
                planned = [(r.kind, r.path, r.message) for r in self.records]
            self.planned = list(planned)
            counts: dict[str, int] = {}
            # Keyed by position: the row a key names is the plan's entry the detail line and Enter describe.
            for i, (kind, path, detail) in enumerate(planned):
                table.add_row(cell(kind), cell(path + (f"  ({detail})" if detail else "")), key=str(i))
                counts[kind] = counts.get(kind, 0) + 1
            if planned:
                table.move_cursor(row=0)
                self._describe(0)
            parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
            summary.update(f"Would do: {parts}" + (" · Enter: details" if planned else ""))
            summary.set_classes("status ok")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._describe(int(event.row_key.value))

    def _describe(self, index: int) -> None:
        if 0 <= index < len(self.planned):
            kind, path, detail = self.planned[index]
            self.query_one("#dry-detail", Static).update(plain(f"{kind}: {path}" + (f" — {detail}" if detail else "")))

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        row = self.query_one("#plan", DataTable).cursor_row
        if 0 <= row < len(self.planned):
            kind, path, detail = self.planned[row]
            body = f"Path:    {shown(path)}\n\n{shown(detail) or 'No detail.'}"
            self.app.push_screen(DetailScreen(f"Planned · {shown(kind)}", body))

    def action_close(self) -> None:
        self.dismiss(None)
