"""The connection wizard: provider → form (secrets masked, presets) → connection test → advanced settings.

Each step is a ModalScreen returning a typed result with `dismiss` (posting's new-request modal); BACK goes one
step back. The connection test reaches the service, so it runs in a thread worker and the form stays live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from engine.config import POLLING_DEFAULT, POLLING_MAX, POLLING_MIN, Home
from engine.errors import UsageError
from engine.providers.base import OptionSpec
from tui import bridge
from tui.screens.dialogs import ConfirmScreen
from tui.text import plain
from tui.widgets.fields import Field, Required, WholeNumber, button, first_failure, number, select

BACK: Final = "back"
# The provider list's last entry: not a kind, the way to bring an rclone remote (tui.screens.rclone_import).
RCLONE_ENTRY: Final = "rclone-import"
LIMIT_MAX = 10_000_000


@dataclass
class ConnectionDraft:
    kind: str
    name: str = ""
    options: dict[str, str] = field(default_factory=dict)
    polling_period: int = POLLING_DEFAULT
    upload_limit: int = 0
    download_limit: int = 0


class ProviderStep(ModalScreen[str | None]):
    """Step 1: every registered provider kind."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="wizard.cancel")]

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New connection · 1/3 · choose the cloud service", classes="dialog-title")
            options = [Option(f"{p.title}  ({p.kind})", id=p.kind) for p in bridge.providers()]
            options.append(Option("Import from rclone…  (a remote of your rclone.conf)", id=RCLONE_ENTRY))
            yield OptionList(*options, id="providers")
            # the rclone entry sits last, below the fold at 80x24: the hint says how to reach it
            yield Label("↑↓ choose   Enter: next   End: import from rclone   Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        providers = self.query_one("#providers", OptionList)
        if self.current is not None:
            try:
                providers.highlighted = providers.get_option_index(self.current)
            except Exception:  # the provider is no longer registered
                pass
        providers.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class BucketRule(Validator):
    """The provider's bucket-name rules from engine.policy, checked as the user types."""

    def __init__(self, screen: ConnectionForm) -> None:
        super().__init__()
        self.form = screen

    def validate(self, value: str) -> ValidationResult:
        problem = bridge.bucket_problem(self.form.draft.kind, value.strip(), self.form.preset())
        return self.failure(problem) if problem else self.success()


class AsksBeforeDiscarding:
    """Esc on a wizard step that holds typed work asks before throwing it away (it discarded a half-filled
    wizard without a word)."""

    def _snapshot(self) -> tuple[tuple[str, str], ...]:
        widgets = [*self.query(Field), *self.query(Select)]  # type: ignore[attr-defined]
        return tuple((str(w.id), str(w.value)) for w in widgets)

    def holds_work(self) -> bool:
        return self._snapshot() != getattr(self, "_start", ())

    @work(exclusive=True, group="discard")
    async def ask_discard(self, always: bool = False) -> None:
        if always or self.holds_work():
            body = "What you typed in this wizard is not saved yet. Leave it and lose it?"
            if not await self.app.push_screen_wait(  # type: ignore[attr-defined]
                    ConfirmScreen("Discard the new connection?", body, "Discard")):
                return
        self.dismiss(None)  # type: ignore[attr-defined]


def _field_id(name: str) -> str:
    return f"opt-{name}"


class ConnectionForm(AsksBeforeDiscarding, ModalScreen[ConnectionDraft | str | None]):
    """Step 2: the connection's name and provider options; Next tests the connection first."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="wizard.cancel"),
        Binding("ctrl+t", "test", "Test connection", id="wizard.test"),
        Binding("ctrl+n", "next", "Next", id="wizard.next"),
        Binding("ctrl+b", "back", "Back", id="wizard.back"),
    ]

    def __init__(self, home_path: str, draft: ConnectionDraft) -> None:
        super().__init__()
        self.home_path = home_path
        self.draft = draft
        info = next((p for p in bridge.providers() if p.kind == draft.kind), None)
        self.specs: tuple[OptionSpec, ...] = tuple(bridge.editable(info.options)) if info else ()
        self.title_text = info.title if info else draft.kind
        self.note = info.note if info else ""
        self._advance = False  # a passing test from Next (not from Test) moves on
        # An OAuth service is reached only after its sign-in (the wizard's last steps), and only once: a test
        # here would read the account with the pasted token and could spend its refresh token.
        self.signs_in = bridge.signs_in(draft.kind)

    def main_specs(self) -> list[OptionSpec]:
        return [s for s in self.specs if not s.advanced]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"New connection · 2/3 · {self.title_text}", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                if self.note:
                    yield Static(self.note, id="setup-note", classes="note")
                yield Label("Connection name")
                yield Field(self.draft.name, placeholder="e.g. photos-backup", id="name",
                            validators=[Required("the connection name")])
                for spec in self.main_specs():
                    yield option_label(spec)
                    value = self.draft.options.get(spec.name, spec.default or "")
                    if spec.choices:
                        # A list with a default has no blank entry (it wrapped onto an empty line at 80x24).
                        yield select([(c, c) for c in spec.choices], value=value if value in spec.choices
                                     else Select.NULL, allow_blank=not (spec.required or spec.default),
                                     id=_field_id(spec.name))
                        continue
                    validators: list[Validator] = []
                    if spec.required:
                        validators.append(Required(spec.name))
                    if spec.name in bridge.BUCKET_OPTIONS:
                        validators.append(BucketRule(self))
                    yield Field(value, password=spec.secret, placeholder=spec.help, id=_field_id(spec.name),
                                validators=validators)
            yield Label("", id="form-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Back", id="back")
                yield button("Test", id="test")
                yield button("Next", id="next", variant="primary")
            yield Label("Ctrl+T test   Ctrl+N next   Ctrl+B back   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#name", Field).focus()
        # typed on an earlier visit (Back) counts as work too
        self._start = () if self.draft.name or self.draft.options else self._snapshot()

    def on_input_changed(self, event: Field.Changed) -> None:
        """Bucket rules as the user types (every broken rule); any other edit clears an error it may have fixed."""
        if event.input.id in {_field_id(n) for n in bridge.BUCKET_OPTIONS}:
            problem = bridge.bucket_problem(self.draft.kind, event.value.strip(), self.preset())
            if problem:
                self._status(problem, "error")
                return
        if self.query_one("#form-status", Label).has_class("error"):
            self._status("")

    def on_select_changed(self, _event: Select.Changed) -> None:
        if self.query_one("#form-status", Label).has_class("error"):
            self._status("")

    def preset(self) -> str | None:
        try:
            select = self.query_one(f"#{_field_id('preset')}", Select)
        except Exception:
            return None
        return None if select.value is Select.NULL else str(select.value)

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for spec in self.main_specs():
            widget = self.query_one(f"#{_field_id(spec.name)}")
            if isinstance(widget, Select):
                if widget.value is not Select.NULL:
                    out[spec.name] = str(widget.value)
            elif isinstance(widget, Field) and widget.value.strip():
                out[spec.name] = widget.value.strip()
        # advanced options chosen earlier in this wizard are kept (Back from step 3)
        advanced = {spec.name for spec in self.specs if spec.advanced}
        for k, v in self.draft.options.items():
            if k in advanced:
                out[k] = v
        return out

    def _status(self, text: str, kind: str = "") -> None:
        label = self.query_one("#form-status", Label)
        label.update(plain(text))
        label.set_classes(f"status {kind}")

    def _checked_values(self) -> dict[str, str] | None:
        fields = [self.query_one("#name", Field), *self.query(Field).exclude("#name")]
        problem = first_failure(*fields)
        if problem is not None:
            self._status(problem, "error")
            return None
        values = self.values()
        try:
            bridge.check_new_connection(Home(self.home_path), self.query_one("#name", Field).value.strip(),
                                        self.draft.kind, values)
        except UsageError as exc:
            self._status(str(exc), "error")
            return None
        return values

    def action_test(self) -> None:
        values = self._checked_values()
        if values is None:
            return
        if self.signs_in:
            self._status("The settings are fine. The connection is tested after the sign-in (Ctrl+N).", "ok")
            return
        self._advance = False
        self._status("Testing the connection…", "busy")
        self._run_test(values)

    def action_next(self) -> None:
        values = self._checked_values()
        if values is None:
            return
        if self.signs_in:
            self.draft.name = self.query_one("#name", Field).value.strip()
            self.draft.options = values
            self.dismiss(self.draft)
            return
        self._advance = True
        self._status("Testing the connection…", "busy")
        self._run_test(values)

    @work(thread=True, exclusive=True, exit_on_error=False, group="connection-test")
    def _run_test(self, values: dict[str, str]) -> dict[str, str]:
        bridge.test_connection(self.draft.kind, values)
        return values

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "connection-test":
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self._status(f"Connection test failed: {error}", "error")
        elif event.state == WorkerState.SUCCESS:
            values = event.worker.result
            self._status("Connection test passed.", "ok")
            if self._advance and isinstance(values, dict):
                self.draft.name = self.query_one("#name", Field).value.strip()
                self.draft.options = values
                self.dismiss(self.draft)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"back": self.action_back, "test": self.action_test, "next": self.action_next}[str(event.button.id)]()

    def action_back(self) -> None:
        self.dismiss(BACK)

    def action_cancel(self) -> None:
        self.ask_discard()


class AdvancedStep(AsksBeforeDiscarding, ModalScreen[ConnectionDraft | str | None]):
    """Step 3: polling period, traffic control and the provider's advanced options (storage class, part size)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="wizard.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="wizard.apply"),
        Binding("ctrl+b", "back", "Back", id="wizard.back"),
    ]

    def __init__(self, draft: ConnectionDraft) -> None:
        super().__init__()
        self.draft = draft
        info = next((p for p in bridge.providers() if p.kind == draft.kind), None)
        self.specs = [s for s in bridge.editable(info.options if info else ()) if s.advanced]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New connection · 3/3 · advanced settings", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield from common_fields(self.draft.polling_period, self.draft.upload_limit,
                                         self.draft.download_limit)
                yield from option_fields(self.specs, self.draft.options)
            yield Label("", id="form-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Back", id="back")
                yield button("Apply", id="apply", variant="primary")
            yield Label("Ctrl+S apply   Ctrl+B back   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#polling", Field).focus()

    def action_apply(self) -> None:
        problem = first_failure(*self.query(Field))
        if problem is not None:
            status = self.query_one("#form-status", Label)
            status.update(problem)
            status.set_classes("status error")
            return
        self.draft.polling_period = number(self.query_one("#polling", Field).value)
        self.draft.upload_limit = number(self.query_one("#upload-limit", Field).value)
        self.draft.download_limit = number(self.query_one("#download-limit", Field).value)
        self.draft.options.update(read_options(self, self.specs))
        self.dismiss(self.draft)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.action_back()
        else:
            self.action_apply()

    def action_back(self) -> None:
        self.dismiss(BACK)

    def action_cancel(self) -> None:
        self.ask_discard(always=True)  # the draft holds the steps before it


# -- shared by the wizard and the connection's Settings tab --------------------------------------------------


def common_fields(polling: int, upload: int, download: int) -> ComposeResult:
    yield Label(f"Polling period (seconds, {POLLING_MIN}..{POLLING_MAX:,})")
    yield Field(str(polling), id="polling", validators=[WholeNumber("The polling period", POLLING_MIN, POLLING_MAX)])
    yield Label("Traffic control: upload limit (KiB/s, 0 = unlimited)")
    yield Field(str(upload), id="upload-limit", validators=[WholeNumber("The upload limit", 0, LIMIT_MAX)])
    yield Label("Traffic control: download limit (KiB/s, 0 = unlimited)")
    yield Field(str(download), id="download-limit", validators=[WholeNumber("The download limit", 0, LIMIT_MAX)])


def option_label(spec: OptionSpec) -> Label:
    """The provider's words for an option (its label, * when required) and its help, dimmed; never markup."""
    return Label(Text.assemble(f"{spec.title}{' *' if spec.required else ''}", (f"  {spec.help}", "dim")),
                 classes="option-label")


def option_fields(specs: list[OptionSpec], values: dict[str, str]) -> ComposeResult:
    for spec in specs:
        yield option_label(spec)
        value = values.get(spec.name, spec.default or "")
        if spec.choices:
            yield select([(c, c) for c in spec.choices], value=value if value in spec.choices else Select.NULL,
                         allow_blank=not spec.default, id=_field_id(spec.name))
        else:
            yield Field(value, placeholder=spec.help, id=_field_id(spec.name))


def read_options(screen: ModalScreen | object, specs: list[OptionSpec]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        widget = screen.query_one(f"#{_field_id(spec.name)}")  # type: ignore[attr-defined]
        if isinstance(widget, Select):
            out[spec.name] = "" if widget.value is Select.NULL else str(widget.value)
        elif isinstance(widget, Field):
            out[spec.name] = widget.value.strip()
    return out
