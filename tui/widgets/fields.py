"""Input fields with the app's conventions: a steady cursor when the app asks for one (snapshots)."""

from __future__ import annotations

from typing import Any

from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Select


class Field(Input):
    """A compact Input (80x24 has no room for boxes) whose cursor does not blink in fixed screenshots."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("compact", True)
        super().__init__(*args, **kwargs)

    def on_mount(self) -> None:
        if getattr(self.app, "steady", False):
            self.cursor_blink = False


class Required(Validator):
    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def validate(self, value: str) -> ValidationResult:
        return self.success() if value.strip() else self.failure(f"{self.what} is required")


class WholeNumber(Validator):
    """A whole number in [lo, hi]; the message names the field and the range, as the CLI's does."""

    def __init__(self, what: str, lo: int, hi: int) -> None:
        super().__init__()
        self.what, self.lo, self.hi = what, lo, hi

    def validate(self, value: str) -> ValidationResult:
        try:
            n = int(value.strip().replace(",", "").replace("_", ""))
        except ValueError:
            return self.failure(f"{self.what} must be a whole number from {self.lo:,} to {self.hi:,}")
        if not self.lo <= n <= self.hi:
            return self.failure(f"{self.what} must be from {self.lo:,} to {self.hi:,}, not {n:,}")
        return self.success()


def number(value: str) -> int:
    return int(value.strip().replace(",", "").replace("_", ""))


def first_failure(*fields: Input) -> str | None:
    """Validate every field; the first failure's message (and focus on that field), or None."""
    for field in fields:
        result = field.validate(field.value)
        if result is not None and not result.is_valid:
            # Focus with the text selected, whether or not it had focus already: the fix typed next replaces
            # the wrong value instead of landing after it.
            field.focus()
            field.call_after_refresh(field.select_all)
            return result.failure_descriptions[0]
    return None


def button(label: str, *, id: str, variant: Any = "default") -> Button:
    return Button(label, id=id, variant=variant, compact=True)


def select(options: Any, **kwargs: Any) -> Select:
    return Select(options, compact=True, **kwargs)
