"""The line that says which conflict mode a connection's passes use, and why (spec: "Default action for
conflicted copy"). Asking may reach the service (a bucket's versioning), so it runs in a thread worker and the
line says "checking" until the answer comes."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from engine.names import shown
from tui import bridge

# What each mode means for the user, in the words of the spec's setting.
MODE_WORDS = {
    "revision": "the cloud's version is saved as one revision",
    "copy": "both versions are kept (conflict copy)",
}


def describe(mode: str, why: str) -> Text:
    return Text.assemble(("Conflicts: ", "bold"), MODE_WORDS.get(mode, mode), (f"  ({why})", "dim"))


class ConflictModeLine(Static):
    def __init__(self, home_path: str, connection: str, *, id: str | None = None) -> None:
        super().__init__(Text("Conflicts: checking…", style="dim"), id=id)
        self.home_path = home_path
        self.connection = connection

    def on_mount(self) -> None:
        self._ask()

    @work(thread=True, exclusive=True, exit_on_error=False, group="conflict-mode")
    def _ask(self) -> tuple[str, str]:
        return bridge.conflict_mode(self.home_path, self.connection)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "conflict-mode":
            return
        event.stop()
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, tuple):
            self.update(describe(*event.worker.result))
        elif event.state == WorkerState.ERROR:
            # no answer (sign-in needed, the service unreachable): said so, never a guessed mode
            lines = str(event.worker.error).splitlines()
            self.update(Text.assemble(("Conflicts: ", "bold"), "not checked",
                                      (f"  ({shown(lines[0]) if lines else 'no answer'})", "dim")))
