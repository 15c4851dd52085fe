"""Beyond the spec: store names a service refuses by swapping the refused characters for look-alikes.

The spec skips a file whose name holds a character the service refuses (note 6's ":" and "\\", note 7's
lists). With the connection option `encode_names=true` such names are synced instead, the way rclone's
lib/encoder does it: each refused ASCII character is stored as its full-width twin (":" -> "：", "?" -> "？",
"#" -> "＃" ...), and the first character of a file name that starts with a refused prefix likewise (a leading
space as "␠", a leading period as "．"). Reserved names ("forms", ".bzEmpty") and NFD names are still skipped.
Coming back, `decode` turns them into the original characters, so the local name never changes.

The mapping must be reversible even for a local name that already holds one of the look-alikes: such a
character is stored behind the quote mark "‛" (U+201B), and so is a literal "‛", so `decode(encode(x)) == x`
for any x. (A name created on the service by someone else that holds a look-alike is decoded too: it then
comes back under the plain character.)

The encoding is a property of the connection (the same characters are encoded on every pass), not of a single
name: turning the option on or off later changes the remote names of such files, which the engine then sees as
a rename.
"""

from __future__ import annotations

QUOTE = "\u201b"  # ‛
LEADING_SPACE = "\u2420"  # ␠ (symbol for space), as rclone
FULLWIDTH_OFFSET = 0xFEE0  # "!" (U+0021) .. "~" (U+007E) -> U+FF01 .. U+FF5E


def lookalike(ch: str) -> str:
    """The look-alike that stands for a refused printable ASCII character."""
    if ch == " ":
        return LEADING_SPACE
    code = ord(ch)
    if not 0x21 <= code <= 0x7E:
        raise ValueError(f"no look-alike for {ch!r}")
    return chr(code + FULLWIDTH_OFFSET)


class NameEncoder:
    """Encodes and decodes single names for one connection.

    `chars`: characters refused anywhere in a name. `prefixes`: beginnings refused for file names (a leading
    space on OneDrive, ".dropbox" on Dropbox, "." on Baidu); a file name that starts with one has its first
    character encoded, and any other name keeps it.
    """

    def __init__(self, chars: str, prefixes: tuple[str, ...] = ()) -> None:
        self.chars = frozenset(chars) - {"/"}  # "/" never reaches a name: it separates them
        self.prefixes = tuple(p for p in prefixes if p and p[0] not in self.chars)
        self._anywhere = {lookalike(c): c for c in self.chars}
        # significant as the first character only
        self._first = {lookalike(p[0]): p[0] for p in self.prefixes}

    def encode(self, name: str, is_file: bool = True) -> str:
        out = []
        encode_first = is_file and name.startswith(self.prefixes) if self.prefixes else False
        for i, ch in enumerate(name):
            if ch in self.chars or (i == 0 and encode_first):
                out.append(lookalike(ch))
            elif ch == QUOTE or ch in self._anywhere or (i == 0 and ch in self._first):
                out.append(QUOTE + ch)  # a look-alike the user typed: keep it literally
            else:
                out.append(ch)
        return "".join(out)

    def decode(self, name: str) -> str:
        out = []
        i = 0
        while i < len(name):
            ch = name[i]
            if ch == QUOTE and i + 1 < len(name):
                out.append(name[i + 1])
                i += 2
                continue
            if i == 0 and ch in self._first:
                out.append(self._first[ch])
            else:
                out.append(self._anywhere.get(ch, ch))
            i += 1
        return "".join(out)
