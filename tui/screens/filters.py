"""The file filter: excluded extensions, names (globs), maximum size and case, with a live preview."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Label, Static

from engine.config import Task
from engine.errors import UsageError
from tui.filter_preview import Preview, Rules, normalize_exts, parse_size, preview, split_list
from tui.text import plain
from tui.widgets.fields import Field, button


class FileFilterScreen(ModalScreen[Task | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
        Binding("ctrl+s", "save", "Save", id="filter.save"),
    ]

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.draft = task
        self._debounce: Timer | None = None
        self.last_preview: Preview | None = None

    def compose(self) -> ComposeResult:
        t = self.draft
        with Vertical(classes="dialog"):
            yield Label(f"File filter · '{t.name}'", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Label("Excluded extensions (e.g. tmp, iso)")
                yield Field(", ".join(t.exclude_exts), id="exts")
                yield Label("Excluded names (globs, e.g. *.bak, Thumbs*)")
                yield Field(", ".join(t.exclude_names), id="names")
                yield Label("Maximum file size (0 = no limit; 10M, 2G…)")
                yield Field(str(t.max_size), id="max-size")
                yield Checkbox("Case-insensitive names and extensions", t.case_insensitive, id="case")
                yield Static("", id="preview")
            yield Label("", id="form-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                yield button("Save", id="save", variant="primary")
            yield Label("Tab next field   Ctrl+S save   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#exts", Field).focus()
        self._schedule()

    def rules(self) -> Rules:
        return Rules(
            exts=tuple(normalize_exts(split_list(self.query_one("#exts", Field).value))),
            names=tuple(split_list(self.query_one("#names", Field).value)),
            max_size=parse_size(self.query_one("#max-size", Field).value),
            case_insensitive=self.query_one("#case", Checkbox).value,
        )

    def on_input_changed(self, _event: Field.Changed) -> None:
        self._schedule()

    def on_checkbox_changed(self, _event: Checkbox.Changed) -> None:
        self._schedule()

    def _schedule(self) -> None:
        # Typing fires many changes; wait for a short pause before walking the folder again.
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.15, self._start_preview)

    def _start_preview(self) -> None:
        status = self.query_one("#form-status", Label)
        try:
            rules = self.rules()
        except UsageError as exc:
            status.update(plain(exc))
            status.set_classes("status error")
            return
        status.update("")
        self._compute(rules)

    @work(thread=True, exclusive=True, exit_on_error=False, group="filter-preview")
    def _compute(self, rules: Rules) -> None:
        result = preview(self.draft.local, rules, tuple(self.draft.exclude_folders))
        self.app.call_from_thread(self._show, result)

    def _show(self, result: Preview) -> None:
        self.last_preview = result
        text = Text()
        more = "+" if result.truncated else ""
        text.append(f"Preview: {result.excluded:,}{more} of {result.files:,}{more} local files excluded\n", "bold")
        for rule, count in (result.by_rule or {}).items():
            text.append(f"  {rule:<24} {count:>7,} files\n")
        self.query_one("#preview", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        try:
            rules = self.rules()
        except UsageError as exc:
            status = self.query_one("#form-status", Label)
            status.update(plain(exc))
            status.set_classes("status error")
            return
        self.dismiss(
            replace(
                self.draft,
                exclude_exts=list(rules.exts),
                exclude_names=list(rules.names),
                max_size=rules.max_size,
                case_insensitive=rules.case_insensitive,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
