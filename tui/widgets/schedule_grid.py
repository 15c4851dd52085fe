"""The 7 x 24 schedule grid: which hours of the week a connection may sync (Monday 00:00 first).

Arrows move, shift+arrows select a rectangle, space toggles the cell or the selection, `d` a whole day,
`h` a whole hour across the week, `a` everything. The value is the config's 168-character string of 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LABEL = 5  # width of the day column


@dataclass(frozen=True, slots=True)
class Cell:
    day: int
    hour: int


class ScheduleGrid(Widget, can_focus=True):
    # The grid's keys are listed on the hint line under it and in help (F1); in the footer they pushed Quit and
    # the palette off an 80-column screen.
    BINDINGS = [
        Binding("up", "move(0,-1)", "Up", show=False),
        Binding("down", "move(0,1)", "Down", show=False),
        Binding("left", "move(-1,0)", "Left", show=False),
        Binding("right", "move(1,0)", "Right", show=False),
        Binding("shift+up", "extend(0,-1)", "Select up", show=False),
        Binding("shift+down", "extend(0,1)", "Select down", show=False),
        Binding("shift+left", "extend(-1,0)", "Select left", show=False),
        Binding("shift+right", "extend(1,0)", "Select right", show=False),
        Binding("space", "toggle", "Toggle", show=False, id="schedule.toggle"),
        Binding("d", "toggle_day", "Day", show=False, id="schedule.day"),
        Binding("h", "toggle_hour", "Hour", show=False, id="schedule.hour"),
        Binding("a", "toggle_all", "All", show=False, id="schedule.all"),
    ]

    DEFAULT_CSS = """
    ScheduleGrid { height: 10; width: 55; }
    """

    cursor: reactive[Cell] = reactive(Cell(0, 0))
    anchor: reactive[Cell | None] = reactive(None)

    class Changed(Message):
        def __init__(self, grid: ScheduleGrid, value: str) -> None:
            super().__init__()
            self.grid = grid
            self.value = value

        @property
        def control(self) -> ScheduleGrid:
            return self.grid

    def __init__(self, value: str = "1" * 168, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cells = [c == "1" for c in value]

    @property
    def value(self) -> str:
        return "".join("1" if c else "0" for c in self.cells)

    def set_value(self, value: str) -> None:
        self.cells = [c == "1" for c in value]
        self.anchor = None
        self.refresh()

    # -- selection -------------------------------------------------------------------------------------------
    def selection(self) -> list[Cell]:
        a, c = self.anchor or self.cursor, self.cursor
        return [
            Cell(d, h)
            for d in range(min(a.day, c.day), max(a.day, c.day) + 1)
            for h in range(min(a.hour, c.hour), max(a.hour, c.hour) + 1)
        ]

    def _index(self, cell: Cell) -> int:
        return cell.day * 24 + cell.hour

    def _set(self, cells: list[Cell], on: bool) -> None:
        for cell in cells:
            self.cells[self._index(cell)] = on
        self.refresh()
        self.post_message(self.Changed(self, self.value))

    def _moved(self, dx: int, dy: int) -> Cell:
        return Cell(max(0, min(6, self.cursor.day + dy)), max(0, min(23, self.cursor.hour + dx)))

    def action_move(self, dx: int, dy: int) -> None:
        self.anchor = None
        self.cursor = self._moved(dx, dy)

    def action_extend(self, dx: int, dy: int) -> None:
        if self.anchor is None:
            self.anchor = self.cursor
        self.cursor = self._moved(dx, dy)

    def action_toggle(self) -> None:
        # A selection takes the opposite of the cursor cell, so one key press makes it uniform.
        self._set(self.selection(), not self.cells[self._index(self.cursor)])

    def _toggle_group(self, cells: list[Cell]) -> None:
        self._set(cells, not all(self.cells[self._index(c)] for c in cells))

    def action_toggle_day(self) -> None:
        self._toggle_group([Cell(self.cursor.day, h) for h in range(24)])

    def action_toggle_hour(self) -> None:
        self._toggle_group([Cell(d, self.cursor.hour) for d in range(7)])

    def action_toggle_all(self) -> None:
        self._toggle_group([Cell(d, h) for d in range(7) for h in range(24)])

    def watch_cursor(self) -> None:
        self.refresh()

    def watch_anchor(self) -> None:
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------------------------
    def render(self) -> Text:
        text = Text(no_wrap=True)
        text.append(" " * LABEL + "".join(f" {h // 10 if h >= 10 else ' '}" for h in range(24)) + "\n", "dim")
        text.append(" " * LABEL + "".join(f" {h % 10}" for h in range(24)) + "\n", "dim")
        selected = set(self.selection()) if self.anchor is not None else set()
        focused = self.has_focus
        for day, name in enumerate(DAYS):
            text.append(f"{name:<{LABEL}}", "bold" if day == self.cursor.day else "")
            for hour in range(24):
                cell = Cell(day, hour)
                on = self.cells[self._index(cell)]
                style = "green" if on else "grey50"
                if cell in selected:
                    style += " on dark_blue"
                if cell == self.cursor and focused:
                    style = "reverse " + style
                text.append(" " + ("█" if on else "·"), style)
            text.append("\n")
        text.append("█ sync allowed   · paused", "dim")
        return text

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
