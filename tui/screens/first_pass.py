"""The new-task wizard's last step: what the first pass will do, from a real dry run, before anything moves.

The task is saved paused before this step (a dry run reads the task as the engine will), so nothing syncs
while the user reads; Start unpauses it, Back and Cancel remove it again (the caller does both).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.worker import Worker, WorkerState

from engine.events import Event
from engine.names import shown
from engine.reconcile import (
    COMPARE,
    CONFLICT,
    DELETE_LOCAL,
    DELETE_REMOTE,
    DOWNLOAD,
    HELD_DELETIONS,
    KEEP_LOCAL_COPY,
    KEEP_REMOTE_COPY,
    MOVE_LOCAL,
    MOVE_REMOTE,
    SKIP,
    UPLOAD,
)
from tui import bridge
from tui.screens.wizard import BACK, discard_confirmed
from tui.widgets.fields import button

# The review's lines, in the order a user weighs them: what is sent, fetched, kept twice, removed.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("uploads", (UPLOAD,)),
    ("downloads", (DOWNLOAD,)),
    ("conflicts (both versions kept)", (CONFLICT, KEEP_LOCAL_COPY, KEEP_REMOTE_COPY)),
    # On both sides with no history: compared; equal content is no conflict, different content becomes one.
    ("on both sides, compared (a conflict if they differ)", (COMPARE,)),
    ("deletions", (DELETE_LOCAL, DELETE_REMOTE)),
    ("moves", (MOVE_LOCAL, MOVE_REMOTE)),
)
SHOWN_REASONS = 6


@dataclass(frozen=True, slots=True)
class FirstPass:
    """A dry run's plan counted for the review: per group, and the skips per reason (most frequent first)."""

    counts: dict[str, int] = field(default_factory=dict)
    skips: list[tuple[str, int]] = field(default_factory=list)
    held: int = 0

    @property
    def skipped(self) -> int:
        return sum(n for _reason, n in self.skips)


def first_pass(planned: list[tuple[str, str, str]], summary: dict[str, int] | None = None) -> FirstPass:
    """Count a dry run's planned (kind, path, detail) entries; `summary` gives the held-back deletions."""
    kinds = Counter(kind for kind, _path, _detail in planned)
    counts = {label: sum(kinds[k] for k in members) for label, members in GROUPS}
    reasons = Counter(detail or "no reason given" for kind, _path, detail in planned if kind == SKIP)
    skips = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return FirstPass(counts, skips, int((summary or {}).get(HELD_DELETIONS, 0)))


def describe(result: FirstPass) -> Text:
    """The review's words: every group with its count (zero too: 'no deletion' is news), then the skips."""
    text = Text()
    text.append("The first pass will do:\n", "bold")
    for label, _members in GROUPS:
        n = result.counts.get(label, 0)
        style = "bold yellow" if n and label.startswith(("deletions", "conflicts")) else ""
        text.append(f"  {n:>7,}  {label}\n", style)
    if result.held:
        text.append(f"  {result.held:>7,}  deletions held back by the mass-delete guard\n", "yellow")
    text.append(f"  {result.skipped:>7,}  skipped", "")
    text.append(" (left alone on both sides):\n" if result.skips else "\n")
    for reason, n in result.skips[:SHOWN_REASONS]:
        text.append(f"  {n:>7,}  {shown(reason)}\n", "dim")
    rest = result.skips[SHOWN_REASONS:]
    if rest:
        text.append(f"  {sum(n for _r, n in rest):>7,}  for {len(rest)} other reasons (the log names each)\n", "dim")
    return text


class FirstPassReview(ModalScreen[bool | str | None]):
    """True: start syncing; BACK: the filter step; None: cancel the new task."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="review.cancel"),
        Binding("ctrl+s", "start", "Start syncing", id="review.start"),
        Binding("ctrl+b", "back", "Back", id="review.back"),
    ]

    def __init__(self, home_path: str, task: str, step: str = "4/4") -> None:
        super().__init__()
        self.home_path = home_path
        self.task_name = task
        self.step = step
        self.result: FirstPass | None = None
        self.error = ""
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"New sync task '{self.task_name}' · {self.step} review", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Static("Computing what the first pass will do (a dry run: nothing is changed)…",
                             id="review", classes="status busy")
            yield Label("The task is saved paused: nothing syncs until you start it.", classes="hint")
            with Horizontal(classes="buttons"):
                yield button("Cancel", id="cancel")
                yield button("Back", id="back")
                yield button("Start syncing", id="start", variant="primary")
            yield Label("Ctrl+S start syncing   Ctrl+B back   Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#start", Button).disabled = True  # enabled once the user can see what it will do
        self.query_one("#back", Button).focus()
        self._dry_run()

    @work(thread=True, exclusive=True, exit_on_error=False, group="first-pass")
    def _dry_run(self) -> FirstPass:
        def ignore(_event: Event) -> None:
            return None

        res = bridge.run_pass(self.home_path, self.task_name, dry_run=True, on_event=ignore, cancel=self._stop)
        if res.error:
            raise RuntimeError(res.error)
        return first_pass(res.planned, res.summary)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "first-pass" or not self.is_mounted:
            return
        review = self.query_one("#review", Static)
        if event.state == WorkerState.ERROR:
            self.error = str(event.worker.error) or event.worker.error.__class__.__name__
            review.update(Text(f"The dry run failed: {shown(self.error)}\nThe first pass would stop the same way; "
                               "Back to change the task, or start it anyway.", "red"))
            review.set_classes("status error")
        elif event.state == WorkerState.SUCCESS and isinstance(event.worker.result, FirstPass):
            self.result = event.worker.result
            review.update(describe(self.result))
            review.set_classes("status")
        else:
            return
        start = self.query_one("#start", Button)
        start.disabled = False
        start.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"start": self.action_start, "back": self.action_back}.get(str(event.button.id), self.action_cancel)()

    def action_start(self) -> None:
        if self.query_one("#start", Button).disabled:
            self.notify("Still computing what the first pass will do…", severity="warning")
            return
        self.dismiss(True)

    def action_back(self) -> None:
        self._stop.set()
        self.dismiss(BACK)

    @work(exclusive=True, group="discard")
    async def action_cancel(self) -> None:
        if not await discard_confirmed(self.app):
            return
        self._stop.set()
        self.dismiss(None)
