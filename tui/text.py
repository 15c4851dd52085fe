"""Engine text on screen: a path, a log message or an error is shown as it is, never read as markup.

Names come from disks and services: one may hold a newline, an escape sequence, bytes that are not UTF-8
(which no terminal write accepts) or Textual markup (`[red]x[/red]`, or an unbalanced `[/b]` that would raise).
Every such string reaches a widget through one of these two, both escaping as `engine.names.shown` does.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from engine.names import shown


def plain(text: object, style: str = "") -> Text:
    """`text` as literal text, for labels, statics and tree nodes: control characters and undecodable bytes
    as `\\xNN`, markup left as typed."""
    return Text(shown(str(text)), style=style)


def cell(text: object, style: str = "") -> str:
    """`text` for a DataTable cell, which reads a str as markup: escaped the same way and kept a str (so a cell
    still compares equal to the name it shows when the name is ordinary)."""
    literal = escape(shown(str(text)))
    return f"[{style}]{literal}[/]" if style else literal
