"""Signing in to an OAuth service from the app: the wizard's sign-in step and the connection's "sign in again".

The screen runs the CLI's own sign-in (tui.signin_session) in a thread worker: it shows the bare address to open
in a browser on any computer (selectable, Ctrl+Y copies it; no browser is opened here), the device code where
the service uses one, and a field for the final address the browser could not open (or the code it shows). A
browser on this box is caught by the flow's loopback listener without any paste. Escape cancels: the flow reads
end of input and its worker ends; nothing was saved.

What runs is the caller's: `run(signin)` gets the sign-in to use and returns the screen's result (the wizard
reads the account with it; "sign in again" saves the new token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from engine.auth.accounts import SignIn
from tui.messages import SignInLine
from tui.signin_session import Flow, LineKind, SignInSession
from tui.text import plain
from tui.widgets.fields import Field

BACK = "back"  # the wizard's "one step back" (tui.screens.connection_wizard.BACK)
WORDS_KEPT = 3  # the flow's latest lines after the address: its instructions, then what it said of an answer


def lines(texts: list[str]) -> Text:
    """The flow's lines, each shown literally (a service's words never read as markup)."""
    return Text("\n").join(plain(t) for t in texts)


class SignInScreen(ModalScreen[Any]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="signin.cancel"),
        Binding("ctrl+y", "copy_address", "Copy address", id="signin.copy"),
        Binding("ctrl+r", "retry", "Try again", id="signin.retry"),
        Binding("ctrl+b", "back", "Back", id="signin.back"),
    ]

    def __init__(self, title: str, run: Callable[[SignIn], Any], *, signs_in: bool = True,
                 can_go_back: bool = False, flow: Flow | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.run_with = run
        self.signs_in = signs_in  # False: a token was pasted; only the account is read
        self.can_go_back = can_go_back
        self.flow = flow  # None: the engine's sign-in (tests give a scripted one)
        self.session = self._new_session()
        self.address = ""
        self._lead: list[str] = []
        self._words: list[str] = []
        self._done = False

    def _new_session(self) -> SignInSession:
        def on_line(kind: LineKind, text: str) -> None:
            self.post_message(SignInLine(kind, text))

        return SignInSession(on_line) if self.flow is None else SignInSession(on_line, self.flow)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="signin"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static("", id="signin-lead")
            yield Static("", id="signin-url")
            yield Static("", id="signin-code")
            yield Static("", id="signin-words")
            with Vertical(id="signin-answer-row"):
                yield Label("Paste the final address (or the code) here, then Enter:")
                yield Field(placeholder="http://127.0.0.1:…/?code=…  or the code", id="signin-answer")
            yield Label("", id="signin-status", classes="status")
            back = "   Ctrl+B back" if self.can_go_back else ""
            yield Label(f"Enter send   Ctrl+Y copy address{back}   Esc cancel", classes="hint", id="signin-hint")

    def on_mount(self) -> None:
        for part in ("#signin-url", "#signin-code", "#signin-answer-row"):
            self.query_one(part).display = False
        if not self.signs_in:
            self._status("Reading the account with the pasted token…", "busy")
        else:
            self._status("Asking the service for a sign-in address…", "busy")
        self._start()

    # -- the flow's thread ------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="signin")
    def _start(self) -> Any:
        return self.run_with(self.session.sign_in)

    def on_sign_in_line(self, message: SignInLine) -> None:
        if message.kind == "url":
            self.address = message.text
            url = self.query_one("#signin-url", Static)
            url.update(Text(message.text, overflow="fold"))
            url.display = True
            self.query_one("#signin-answer-row").display = True
            self.query_one("#signin-answer", Field).focus()
            self._status("Waiting for the sign-in…", "busy")
        elif message.kind == "code":
            code = self.query_one("#signin-code", Static)
            code.update(Text.assemble("Code to enter: ", (message.text, "bold reverse")))
            code.display = True
            self.query_one("#signin-answer-row").display = False  # approved in the browser: nothing to paste
        elif not self.address:
            self._lead.append(message.text)
            self.query_one("#signin-lead", Static).update(lines(self._lead))
        else:
            self._words = [*self._words, message.text][-WORDS_KEPT:]
            self.query_one("#signin-words", Static).update(lines(self._words))
            if self._words[-1].endswith("or the code"):  # the flow refused a paste and asks again
                self._status("That was not the answer; paste the whole final address, or the code.", "error")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "signin" or self._done:
            return
        if event.state == WorkerState.SUCCESS:
            self._done = True
            self.dismiss(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#signin-answer-row").display = False
            self._status(f"{event.worker.error}", "error")
            self.query_one("#signin-hint", Label).update("Ctrl+R try again   Esc cancel")

    # -- the user ---------------------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "signin-answer" or not event.value.strip():
            return
        if self.session.answer(event.value):
            event.input.value = ""
            self._status("Checking the answer…", "busy")

    def action_copy_address(self) -> None:
        if not self.address:
            self.notify("No address yet.", severity="warning")
            return
        self.app.copy_to_clipboard(self.address)
        self.notify("Address copied to the clipboard (where the terminal allows it).")

    def action_retry(self) -> None:
        running = [w for w in self.workers if w.group == "signin" and not w.is_finished]
        if running:
            return
        self.session = self._new_session()
        self.address = ""
        self._lead, self._words = [], []
        for part in ("#signin-lead", "#signin-url", "#signin-code", "#signin-words"):
            self.query_one(part, Static).update("")
        self.on_mount()

    def _leave(self, result: Any) -> None:
        self._done = True
        self.session.cancel()  # the flow reads end of input (or wakes from a device wait) and its worker ends
        self.dismiss(result)

    def action_cancel(self) -> None:
        self._leave(None)

    def action_back(self) -> None:
        if self.can_go_back:
            self._leave(BACK)

    def on_unmount(self) -> None:
        self.session.cancel()

    def _status(self, text: str, kind: str = "") -> None:
        label = self.query_one("#signin-status", Label)
        label.update(plain(text))
        label.set_classes(f"status {kind}")


class DriveStep(ModalScreen[str | None]):
    """The wizard's drive choice after a sign-in: My Drive or one of the shared drives the account can see.
    Returns the `shared_drive` value ("" for My Drive), BACK, or None (cancelled)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="drive.cancel"),
        Binding("ctrl+b", "back", "Back", id="drive.back"),
    ]

    def __init__(self, title: str, load: Callable[[], list[tuple[str, str]]], choose: Callable[[str], str]) -> None:
        super().__init__()
        self.title_text = title
        self.load = load
        self.choose = choose  # drive id -> the option's value (tui.bridge.drive_option)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label("Which drive does this connection sync?")
            yield OptionList(id="drives")
            yield Label("Listing the shared drives…", id="drive-status", classes="status busy")
            yield Label("↑↓ choose   Enter: save   Ctrl+B back   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#drives", OptionList).focus()
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="drives")
    def _load(self) -> list[tuple[str, str]]:
        return self.load()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "drives":
            return
        status = self.query_one("#drive-status", Label)
        if event.state == WorkerState.ERROR:
            status.update(plain(f"The shared drives could not be listed: {event.worker.error}"))
            status.set_classes("status error")
            self._fill([])
        elif event.state == WorkerState.SUCCESS:
            drives = list(event.worker.result or [])
            self._fill(drives)
            status.update(f"{len(drives)} shared drive{'s' if len(drives) != 1 else ''} visible to this account."
                          if drives else "No shared drive is visible to this account.")
            status.set_classes("status")

    def _fill(self, drives: list[tuple[str, str]]) -> None:
        options = self.query_one("#drives", OptionList)
        options.clear_options()
        options.add_option(Option("My Drive", id="\x00my-drive"))
        options.add_options([Option(plain(f"{name}  ({drive_id})"), id=drive_id) for drive_id, name in drives])
        options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        chosen = str(event.option.id)
        self.dismiss("" if chosen == "\x00my-drive" else self.choose(chosen))

    def action_back(self) -> None:
        self.dismiss(BACK)

    def action_cancel(self) -> None:
        self.dismiss(None)
