"""Import from rclone: the new-connection list's way to bring an rclone remote (engine.manage's import-rclone,
the same mapping and refusals as `skysync connection import-rclone`).

The user names the rclone config (default: rclone's own), picks a remote from its list (name and type), says
the bucket or folder after the colon where the remote needs one, and may rename the connection. Reading the
file is local and quick; the import tests the connection, which reaches the service, so it runs in a thread
worker. Every refusal is the engine's one line, shown in the status line.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from engine.errors import SkysyncError
from engine.providers.base import ProviderError
from tui import bridge
from tui.screens.connection_wizard import BACK
from tui.text import plain
from tui.widgets.fields import Field, button


def remote_spec(remote: str, target: str) -> str:
    """REMOTE or REMOTE:TARGET, as the CLI takes it (the bucket or container, and a folder in it)."""
    target = target.strip().lstrip(":")
    return f"{remote}:{target}" if target else remote


class RcloneImportScreen(ModalScreen[str | None]):
    """Returns the new connection's name, BACK (to the provider list) or None (cancelled)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="rclone.cancel"),
        Binding("ctrl+s", "import_remote", "Import", id="rclone.import"),
        Binding("ctrl+r", "load", "Read the config file", id="rclone.load"),
        Binding("ctrl+b", "back", "Back", id="rclone.back"),
    ]

    def __init__(self, home_path: str, config: str | None = None) -> None:
        super().__init__()
        self.home_path = home_path
        self.config = config or bridge.rclone_config_path()
        self.remotes: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New connection · import from rclone", classes="dialog-title")
            yield Label("rclone config file (Enter reads it)")
            yield Field(self.config, id="rclone-config")
            yield OptionList(id="rclone-remotes")
            yield Label("Bucket or container, and folder (what follows REMOTE: in rclone; empty if none)")
            yield Field("", placeholder="e.g. my-bucket", id="rclone-target")
            yield Label("Connection name")
            yield Field("", placeholder="the remote's name", id="rclone-name")
            yield Label("", id="rclone-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Back", id="back")
                yield button("Import", id="import", variant="primary")
            yield Label("Ctrl+S import   Ctrl+R reread   Ctrl+B back   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.action_load()

    def _status(self, text: object, kind: str = "") -> None:
        label = self.query_one("#rclone-status", Label)
        label.update(plain(text))
        label.set_classes(f"status {kind}")

    def action_load(self) -> None:
        """List the remotes of the named file (a missing, encrypted or broken file: the engine's one line)."""
        listing = self.query_one("#rclone-remotes", OptionList)
        listing.clear_options()
        self.remotes = []
        self.config = self.query_one("#rclone-config", Field).value.strip()
        try:
            self.remotes = bridge.rclone_remotes(self.config)
        except SkysyncError as exc:
            self._status(exc, "error")
            self.query_one("#rclone-config", Field).focus()
            return
        if not self.remotes:
            self._status("This rclone config has no remotes.", "error")
            return
        listing.add_options([Option(plain(f"{name}  ({rtype or 'no type'})"), id=name) for name, rtype in self.remotes])
        listing.highlighted = 0
        listing.focus()
        self._status(f"{len(self.remotes)} remote(s). Choose one, then Ctrl+S to import it.")

    def on_input_submitted(self, event: Field.Submitted) -> None:
        event.stop()
        if event.input.id == "rclone-config":
            self.action_load()
        else:
            self.action_import_remote()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # the connection is named after the remote unless the user typed another name
        name = self.query_one("#rclone-name", Field)
        known = {remote for remote, _ in self.remotes}
        if not name.value or name.value in known:
            name.value = str(event.option.id or "")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#rclone-target", Field).focus()

    def chosen(self) -> str | None:
        listing = self.query_one("#rclone-remotes", OptionList)
        if listing.highlighted is None or not self.remotes:
            return None
        return str(listing.get_option_at_index(listing.highlighted).id)

    def action_import_remote(self) -> None:
        remote = self.chosen()
        if remote is None:
            self._status("Choose a remote first (Enter on the config file lists them).", "error")
            return
        spec = remote_spec(remote, self.query_one("#rclone-target", Field).value)
        name = self.query_one("#rclone-name", Field).value.strip() or None
        self._status(f"Importing '{remote}' and testing the connection…", "busy")
        self._import(spec, name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rclone-import")
    def _import(self, spec: str, name: str | None) -> str:
        conn, self.notes = bridge.import_rclone(self.home_path, self.config, spec, name)
        return conn.name

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "rclone-import":
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, (SkysyncError, ProviderError)):
                self._status(str(error).splitlines()[0] if str(error) else type(error).__name__, "error")
            else:  # a provider's surprise: one line, and only its kind (its text could hold a credential)
                self._status(f"The import failed ({type(error).__name__}); try skysync connection import-rclone",
                             "error")
        elif event.state == WorkerState.SUCCESS:
            for note in self.notes:
                self.app.notify(note, title="Imported from rclone", timeout=8)
            self.dismiss(str(event.worker.result))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "back":
            self.action_back()
        else:
            self.action_import_remote()

    def action_back(self) -> None:
        self.dismiss(BACK)

    def action_cancel(self) -> None:
        self.dismiss(None)
