"""Toggles whose state shows as a mark, not by colour alone: Textual draws both states of a checkbox and a
radio button with the same glyph in two colours, which a monochrome terminal, a screen reader's text or a
colour-blind user cannot tell apart."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox, RadioButton


class MarkedCheckbox(Checkbox):
    """[x] when on, [ ] when off."""

    @property
    def _button(self) -> Content:
        return Content.styled("[x]" if self.value else "[ ]", self.get_visual_style("toggle--label"))


class MarkedRadioButton(RadioButton):
    """(•) when chosen, ( ) when not."""

    @property
    def _button(self) -> Content:
        return Content.styled("(•)" if self.value else "( )", self.get_visual_style("toggle--label"))
