"""The connection list on the left of the main screen: provider badge, name and state."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from engine.config import Connection
from engine.runtime.status import SIGNIN_NEEDED

# Short badges instead of emoji: emoji widths differ between terminals and would break the 80-column layout.
BADGES = {
    "local": "LOC",
    "s3": "S3",
    "jdcloud": "JD",
    "oss": "OSS",
    "cos": "COS",
    "b2": "B2",
    "azure": "AZ",
    "gcs": "GCS",
    "swift": "SW",
    "webdav": "DAV",
    "gdrive": "GD",
    "dropbox": "DBX",
}
# The engine's words for a connection, in the product's words.
DISPLAY = {"ok": "up to date", "idle": "up to date"}
STATE_STYLE = {
    "connecting": "cyan",
    "up to date": "green",
    "idle": "green",
    "syncing": "cyan",
    "paused": "yellow",
    "error": "red",
    "waiting-schedule": "magenta",
    "no tasks": "grey50",
    # Not an error that heals by itself: the user must sign in again (l), so it stands out from "error".
    SIGNIN_NEEDED: "bold black on dark_orange",
}


def badge(kind: str) -> str:
    return BADGES.get(kind, kind[:3].upper())


def connection_state(state: str, task_states: list[str]) -> str:
    """What a connection shows: the engine's word for the connection itself ("ok": reachable) reads "up to date",
    which is untrue while one of its tasks syncs or failed; the tasks' state then tells the truth."""
    if state in ("ok", "idle"):
        for wanted in ("syncing", "error"):
            if wanted in task_states:
                return wanted
    return state


def text_key(value: object) -> object:
    """A comparable form of a cell or label: rich's Text compares equal across base styles (a green and a red
    "syncing"), so its style and spans are part of the key."""
    if isinstance(value, Text):
        return (value.plain, str(value.style), tuple(value.spans))
    return value


def state_text(state: str) -> Text:
    shown = DISPLAY.get(state, state)
    return Text(shown, STATE_STYLE.get(shown, ""))


class ConnectionList(OptionList):
    """Options are connections; the option id is the connection name."""

    def show(self, connections: list[Connection], status: dict[str, Any],
             tasks: dict[str, list[str]] | None = None) -> None:
        """List the connections; `tasks` names each connection's tasks (their states colour the connection's).
        Nothing is rebuilt when the list would look the same: a rebuilt list redraws whole."""
        current = self.highlighted_option.id if self.highlighted_option is not None else None
        states = status.get("connections", {})
        task_states = status.get("tasks", {})
        shown: list[tuple[str, str, str, str]] = []
        for conn in connections:
            words = [str(task_states.get(t, {}).get("state", "")) for t in (tasks or {}).get(conn.name, [])]
            state = connection_state(str(states.get(conn.name, {}).get("state", "…")), words)
            shown.append((conn.provider, conn.name, state, conn.name))
        if getattr(self, "shown_rows", None) == shown:
            return
        self.shown_rows = shown
        options = [
            Option(Text.assemble((f"{badge(kind):<4}", "bold magenta"), name, "\n    ", state_text(state)), id=key)
            for kind, name, state, key in shown
        ]
        self.clear_options()
        self.add_options(options)
        names = [c.name for c in connections]
        if names:
            self.highlighted = names.index(current) if current in names else 0

    @property
    def selected_name(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None
