"""How a path is shown to a person: in a log line, `skysync log`, the app, an error message.

A local name is whatever bytes the disk holds. Python hands us bytes that are not UTF-8 as lone surrogates
(`surrogateescape`), which SQLite, JSON and terminals refuse; and a name may hold a newline or an escape
sequence that would forge a log line or repaint a terminal. `shown()` turns both into visible `\\xNN` escapes,
so `bad\\xff.txt` reads as it does in `ls -b`. It is for display only: the engine keeps the real name.
"""

from __future__ import annotations

import re

# Lone surrogates (undecodable bytes), C0 controls, DEL and C1 controls.
_UNSHOWABLE = re.compile("[\udc80-\udcff\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        code -= 0xDC00  # the byte surrogateescape stood in for
    return f"\\x{code:02x}"


def shown(text: str) -> str:
    """`text` with undecodable bytes and control characters escaped as `\\xNN`; unchanged when clean."""
    if text.isprintable() and text.isascii():
        return text
    return _UNSHOWABLE.sub(_escape, text)


def is_valid_utf8(name: str) -> bool:
    """False for a name that holds undecodable bytes (it cannot be stored as text or sent to a service)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
