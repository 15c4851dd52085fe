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


def state_text(state: str) -> Text:
    shown = DISPLAY.get(state, state)
    return Text(shown, STATE_STYLE.get(shown, ""))


class ConnectionList(OptionList):
    """Options are connections; the option id is the connection name."""

    def show(self, connections: list[Connection], status: dict[str, Any]) -> None:
        current = self.highlighted_option.id if self.highlighted_option is not None else None
        states = status.get("connections", {})
        options = []
        for conn in connections:
            state = str(states.get(conn.name, {}).get("state", "…"))
            prompt = Text.assemble(
                (f"{badge(conn.provider):<4}", "bold magenta"), conn.name, "\n    ", state_text(state)
            )
            options.append(Option(prompt, id=conn.name))
        self.clear_options()
        self.add_options(options)
        names = [c.name for c in connections]
        if names:
            self.highlighted = names.index(current) if current in names else 0

    @property
    def selected_name(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None
