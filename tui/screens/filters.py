"""The file filter: excluded extensions, names (globs), maximum size and case, with a live preview.

Alone (a task's `f`), Ctrl+S saves. As the new-task wizard's filter step, Ctrl+N goes on and Ctrl+B goes back.
"""

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
from tui.screens.wizard import BACK, discard_confirmed
from tui.text import plain
from tui.widgets.fields import Field, button
from tui.widgets.marks import MarkedCheckbox


class FileFilterScreen(ModalScreen[Task | str | None]):
    """Returns the task with its filter (BACK: the wizard's step before)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
        Binding("ctrl+s", "save", "Save", id="filter.save"),
        Binding("ctrl+n", "next", "Next", id="filter.next"),
        Binding("ctrl+b", "back", "Back", id="filter.back"),
    ]

    def __init__(self, task: Task, *, step: str = "", wizard: bool = False) -> None:
        super().__init__()
        self.draft = task
        self.step = step
        self.wizard = wizard
        self._debounce: Timer | None = None
        self.last_preview: Preview | None = None

    def compose(self) -> ComposeResult:
        t = self.draft
        with Vertical(classes="dialog"):
            title = (f"New sync task '{t.name}' · {self.step} file filter" if self.wizard
                     else f"File filter · '{t.name}'")
            yield Label(title, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Label("Excluded extensions (e.g. tmp, iso)")
                yield Field(", ".join(t.exclude_exts), id="exts")
                yield Label("Excluded names (globs, e.g. *.bak, Thumbs*)")
                yield Field(", ".join(t.exclude_names), id="names")
                yield Label("Maximum file size (0 = no limit; 10M, 2G…)")
                yield Field(str(t.max_size), id="max-size")
                yield MarkedCheckbox("Case-insensitive names and extensions", t.case_insensitive, id="case")
                yield Static("", id="preview")
            yield Label("", id="form-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                if self.wizard:
                    yield button("Back", id="back")
                    yield button("Next", id="save", variant="primary")
                else:
                    yield button("Save", id="save", variant="primary")
            keys = "Ctrl+N next   Ctrl+B back" if self.wizard else "Ctrl+S save"
            yield Label(f"Tab next field   {keys}   Esc cancel", classes="hint")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The wizard goes on with Ctrl+N and back with Ctrl+B; alone, Ctrl+S saves. Neither does the other's job.
        if action in ("next", "back"):
            return self.wizard
        if action == "save":
            return not self.wizard
        return True

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
        {"save": self.action_save, "back": self.action_back}.get(str(event.button.id), self.action_cancel)()

    def action_next(self) -> None:
        self.action_save()

    def action_back(self) -> None:
        self.dismiss(BACK)

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

    @work(exclusive=True, group="discard")
    async def action_cancel(self) -> None:
        changed = self.wizard
        if not changed:
            try:
                changed = self.rules() != Rules(tuple(self.draft.exclude_exts), tuple(self.draft.exclude_names),
                                                self.draft.max_size, self.draft.case_insensitive)
            except UsageError:
                changed = True
        if changed and not await discard_confirmed(self.app, "the new task" if self.wizard else "the filter changes"):
            return
        self.dismiss(None)
