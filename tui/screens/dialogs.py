"""Small modals: a yes/no confirmation, a one-line text prompt and a read-only detail view."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.worker import Worker, WorkerState

from tui.widgets.fields import Field, Required, button


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, body: str, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text, self.body, self.yes = title, body, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            with Horizontal(classes="buttons"):
                yield button(f"{self.yes} (y)", id="yes", variant="error")
                yield button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, placeholder: str = "") -> None:
        super().__init__()
        self.title_text, self.placeholder = title, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Field(placeholder=self.placeholder, id="prompt", validators=[Required("a name")])
            yield Label("Enter: OK   Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Field.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class DetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="detail.close")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Static(self.body, markup=False)
            yield Label("Esc/Enter: close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


QUIT_STOP, QUIT_BACKGROUND, QUIT_SERVICE = "stop", "background", "service"


class QuitScreen(ModalScreen[str | None]):
    """Quitting while this app's engine syncs: the user says whether syncing stops with it.

    Whether systemd's user manager answers is asked by `probe` (a `systemctl --user` call, which can hang for the
    bus's timeout on a box without a user session) after the question is on screen: Ctrl+Q answers at once, and
    only the service choice waits for it.
    """

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop syncing and quit", id="quit.stop"),
        Binding("b", "choose('background')", "Keep syncing in the background", id="quit.background"),
        Binding("i", "choose('service')", "Install the user service", id="quit.service"),
        Binding("escape", "choose(None)", "Stay", id="quit.cancel"),
    ]

    def __init__(self, tasks: int, systemd_problem: str | None = None,
                 probe: Callable[[], str | None] | None = None) -> None:
        super().__init__()
        self.tasks, self.systemd_problem, self.probe = tasks, systemd_problem, probe
        self.checking = probe is not None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Quit skysync", classes="dialog-title")
            yield Static(f"This app runs the engine that syncs your {self.tasks} task{'s' * (self.tasks != 1)}. "
                         "Quitting stops it unless it carries on in the background.", classes="dialog-body")
            with Vertical(id="quit-choices"):
                yield button("s  Stop syncing and quit", id="stop")
                yield button("b  Keep syncing in the background (skysync run)", id="background")
                service = button("i  Install and start the user service (systemd)", id="service")
                service.disabled = self.checking or self.systemd_problem is not None
                yield service
            hint = Label(self._service_hint(), id="service-hint", classes="hint", markup=False)
            hint.display = bool(self._service_hint())
            yield hint
            yield Label("Esc: stay in the app", classes="hint")

    def _service_hint(self) -> str:
        if self.checking:
            return "Asking systemd whether a user service can run here…"
        if self.systemd_problem is not None:
            return f"No user service: {self.systemd_problem}."
        return ""

    def on_mount(self) -> None:
        self.query_one("#background", Button).focus()
        if self.probe is not None:
            self._ask_systemd(self.probe)

    @work(thread=True, exclusive=True, exit_on_error=False, group="systemd-probe")
    def _ask_systemd(self, probe: Callable[[], str | None]) -> str | None:
        return probe()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "systemd-probe" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.checking = False
        if event.state == WorkerState.ERROR:
            self.systemd_problem = f"systemd could not be asked ({event.worker.error})"
        else:
            self.systemd_problem = event.worker.result
        self.query_one("#service", Button).disabled = self.systemd_problem is not None
        hint = self.query_one("#service-hint", Label)
        hint.update(self._service_hint())
        hint.display = bool(self._service_hint())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(str(event.button.id))

    def action_choose(self, choice: str | None) -> None:
        if choice == QUIT_SERVICE and self.checking:
            self.notify("Still asking systemd whether a user service can run here; try again in a moment.",
                        severity="warning")
            return
        if choice == QUIT_SERVICE and self.systemd_problem is not None:
            self.notify(f"No user service: {self.systemd_problem}.", severity="warning", markup=False)
            return
        self.dismiss(choice)
