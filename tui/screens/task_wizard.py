"""The task wizard's settings step: local folder, remote folder, direction and options (also "edit task").

In the wizard Ctrl+N goes on to the next step; editing a task, Ctrl+S saves (as everywhere else) and nothing
else does. The direction's radio buttons say which one is on with a mark, and the arrow keys choose.
"""

from __future__ import annotations

from dataclasses import replace

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, RadioButton, RadioSet

from engine.config import Home, Task
from engine.errors import UsageError
from tui import bridge
from tui.screens.pickers import LocalFolderPicker, RemoteFolderBrowser
from tui.screens.wizard import discard_confirmed
from tui.text import plain
from tui.widgets.fields import Field, Required, button, first_failure
from tui.widgets.marks import MarkedCheckbox, MarkedRadioButton

DIRECTION_LABELS = {
    "bidirectional": "Bidirectional",
    "upload": "Upload local changes only",
    "download": "Download remote changes only",
}


class ArrowRadioSet(RadioSet):
    """Arrow keys choose the option they move to, as radio buttons do elsewhere (they only moved a highlight)."""

    def action_next_button(self) -> None:
        super().action_next_button()
        self._press_selected()

    def action_previous_button(self) -> None:
        super().action_previous_button()
        self._press_selected()

    def _press_selected(self) -> None:
        if self._selected is not None:
            button = self._nodes[self._selected]
            if isinstance(button, RadioButton) and not button.value:
                button.value = True


class TaskForm(ModalScreen[Task | None]):
    """Returns the task as the user set it; the caller saves it (new tasks: after the wizard's other steps)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="task.cancel"),
        Binding("ctrl+l", "browse_local", "Local folder", id="task.local"),
        Binding("ctrl+r", "browse_remote", "Remote folder", id="task.remote"),
        Binding("ctrl+n", "next", "Next", id="task.next"),
        Binding("ctrl+s", "save", "Save", id="task.save"),
    ]

    def __init__(self, home_path: str, connection: str, task: Task | None = None, *,
                 draft: Task | None = None, step: str = "1/4", password: str = "") -> None:
        """`task`: the task to edit. `draft`: a new task's settings typed earlier (the wizard came back here),
        with its encryption `password` (kept in memory only, like the rest of the draft)."""
        super().__init__()
        self.home_path = home_path
        self.connection = connection
        self.editing = task is not None
        self.step = step
        self.draft = task or draft or Task(name="", connection=connection, local="", remote="/")
        self.password = password
        self._start: tuple[object, ...] = ()
        # Google online documents can only be exported (there is no way back): offered on Google Drive only.
        self.exports_documents = _provider_of(home_path, connection) == "gdrive"

    def compose(self) -> ComposeResult:
        t = self.draft
        title = (f"Edit task '{t.name}'" if self.editing
                 else f"New sync task on '{self.connection}' · {self.step} settings")
        with Vertical(classes="dialog"):
            yield Label(title, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Label("Task name")
                yield Field(t.name, id="name", disabled=self.editing, validators=[Required("the task name")])
                yield Label("Local folder (Ctrl+L browse)")
                with Horizontal(classes="row"):
                    yield Field(t.local, placeholder="/path/to/folder", id="local",
                                validators=[Required("the local folder")])
                    yield button("Browse…", id="browse-local")
                yield Label("Remote folder (Ctrl+R browse; / is the root)")
                with Horizontal(classes="row"):
                    yield Field(t.remote, id="remote", validators=[Required("the remote folder")])
                    yield button("Browse…", id="browse-remote")
                yield Label("Sync direction")
                with ArrowRadioSet(id="direction"):
                    for key, label in DIRECTION_LABELS.items():
                        yield MarkedRadioButton(label, value=t.direction == key, id=f"dir-{key}")
                yield MarkedCheckbox("No-delete: keep files in the destination when the source removes them",
                               t.no_delete, id="no-delete")
                yield MarkedCheckbox("Advanced consistency check (compare hashes too)", t.consistency_check,
                               id="consistency")
                yield MarkedCheckbox("Convert Google online documents to docx/xlsx/pptx/jpg (download only)",
                               t.convert_google_docs, id="convert-docs")
                yield MarkedCheckbox("Data encryption (cannot be turned off later)", t.encrypt, id="encrypt",
                               disabled=self.editing)
                yield Field(self.password, password=True, placeholder="encryption password", id="password")
            yield Label("", id="form-status", classes="status")
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                if self.editing:
                    yield button("Save", id="save", variant="primary")
                else:
                    yield button("Next", id="next", variant="primary")
            keys = "Ctrl+S save" if self.editing else "Ctrl+N next"
            yield Label(f"{keys}   ↑↓ direction   Ctrl+L/Ctrl+R browse   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self._sync_visibility()
        self.query_one("#local" if self.editing else "#name", Field).focus()
        self._start = self._typed()

    def _typed(self) -> tuple[object, ...]:
        return (*(f.value for f in self.query(Field)), *(c.value for c in self.query(Checkbox)), self._direction())

    def holds_work(self) -> bool:
        return self._typed() != self._start or (not self.editing and bool(self.draft.name))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Ctrl+N is Next where there is a next step; Ctrl+S saves an edit. Neither does the other's job.
        if action == "next":
            return not self.editing
        if action == "save":
            return self.editing
        return True

    def _direction(self) -> str:
        pressed = self.query_one("#direction", RadioSet).pressed_button
        return str(pressed.id).removeprefix("dir-") if pressed is not None else "bidirectional"

    def _sync_visibility(self) -> None:
        one_way = self._direction() != "bidirectional"
        no_delete = self.query_one("#no-delete", Checkbox)
        no_delete.disabled = not one_way
        if not one_way:
            no_delete.value = False
        convert = self.query_one("#convert-docs", Checkbox)
        convert.display = self.exports_documents
        convert.disabled = self._direction() != "download"
        if convert.disabled:
            convert.value = False
        self.query_one("#password", Field).display = self.query_one("#encrypt", Checkbox).value and not self.editing

    def on_radio_set_changed(self, _event: RadioSet.Changed) -> None:
        self._sync_visibility()

    def on_checkbox_changed(self, _event: Checkbox.Changed) -> None:
        self._sync_visibility()

    def action_browse_local(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.query_one("#local", Field).value = path
                self.app.last_local_folder = path  # type: ignore[attr-defined]  # the next picker opens here

        last = str(getattr(self.app, "last_local_folder", ""))
        self.app.push_screen(LocalFolderPicker(self.query_one("#local", Field).value, last=last), chosen)

    def action_browse_remote(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.query_one("#remote", Field).value = path

        self.app.push_screen(
            RemoteFolderBrowser(self.home_path, self.connection, self.query_one("#remote", Field).value), chosen
        )

    def collect(self) -> Task:
        remote = self.query_one("#remote", Field).value.strip()
        return replace(
            self.draft,
            name=self.query_one("#name", Field).value.strip(),
            local=self.query_one("#local", Field).value.strip(),
            remote="/" + remote.strip("/"),
            direction=self._direction(),
            no_delete=self.query_one("#no-delete", Checkbox).value,
            consistency_check=self.query_one("#consistency", Checkbox).value,
            convert_google_docs=self.query_one("#convert-docs", Checkbox).value,
            encrypt=self.query_one("#encrypt", Checkbox).value,
        )

    def action_save(self) -> None:
        self.action_next()

    def action_next(self) -> None:
        status = self.query_one("#form-status", Label)
        problem = first_failure(*[f for f in self.query(Field) if f.id != "password"])
        password = self.query_one("#password", Field)
        if problem is None and password.display and not password.value:
            problem = "an encryption password is required"
        if problem is not None:
            status.update(problem)
            status.set_classes("status error")
            return
        task = self.collect()
        try:
            bridge.check_task(Home(self.home_path), task, replacing=task.name if self.editing else None)
        except UsageError as exc:
            status.update(plain(exc))
            status.set_classes("status error")
            return
        self.password = self.query_one("#password", Field).value
        self.dismiss(task)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "browse-local": self.action_browse_local,
            "browse-remote": self.action_browse_remote,
            "next": self.action_next,
            "save": self.action_save,
            "cancel": self.action_cancel,
        }
        actions[str(event.button.id)]()

    @work(exclusive=True, group="discard")
    async def action_cancel(self) -> None:
        what = f"the changes to '{self.draft.name}'" if self.editing else "the new task"
        if self.holds_work() and not await discard_confirmed(self.app, what):
            return
        self.dismiss(None)


def _provider_of(home_path: str, connection: str) -> str | None:
    try:
        return Home(home_path).connection(connection).provider
    except UsageError:  # a connection removed meanwhile: the save says so
        return None
