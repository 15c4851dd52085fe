"""The container's object encoding: magic, then typed objects (int, string, bytes, dict).

Writing is plain functions; reading is `ObjectParser`, which is fed arbitrary slices of the stream and hands
back whole top-level dicts, so a download can be decrypted as it arrives with a bounded buffer.
"""

from __future__ import annotations

import hashlib
from typing import Union

from engine.crypto.errors import CorruptError, NotEncryptedError

_MAGIC_WORD = b"__CLOUDSYNC_ENC__"
MAGIC = _MAGIC_WORD + hashlib.md5(_MAGIC_WORD).hexdigest().encode("ascii")  # 17 + 32 bytes

T_INT = 0x01
T_STR = 0x10
T_BYTES = 0x11
T_DICT = 0x42
T_END = 0x40

MAX_LEN = 0xFFFF  # strings and bytes carry a u16 length
# A top-level dict in a sane container is a header (< 2 KB) or one data piece (8 KB); anything this large
# without a complete object is damage, and refusing it keeps memory bounded.
MAX_OBJECT = 1 << 20
_MAX_DEPTH = 8

Value = Union[int, str, bytes, "dict[str, Value]"]


def encode(value: Value) -> bytes:
    """One object; dict keys are written in byte-wise sorted order, as Cloud Sync does."""
    if isinstance(value, bool):
        raise TypeError("booleans have no encoding; use 0 or 1")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("only unsigned integers can be encoded")
        width = max(1, (value.bit_length() + 7) // 8)
        return bytes((T_INT, width)) + value.to_bytes(width, "big")
    if isinstance(value, str):
        return _sized(T_STR, value.encode("utf-8"))
    if isinstance(value, bytes | bytearray | memoryview):
        return _sized(T_BYTES, bytes(value))
    if isinstance(value, dict):
        items = sorted(((k.encode("utf-8"), v) for k, v in value.items()), key=lambda kv: kv[0])
        return bytes((T_DICT,)) + b"".join(_sized(T_STR, k) + encode(v) for k, v in items) + bytes((T_END,))
    raise TypeError(f"cannot encode {type(value).__name__}")


def _sized(tag: int, raw: bytes) -> bytes:
    if len(raw) > MAX_LEN:
        raise ValueError(f"object of {len(raw)} bytes exceeds the format's {MAX_LEN}-byte limit")
    return bytes((tag,)) + len(raw).to_bytes(2, "big") + raw


# A data piece {data: <bytes>, type: "data"} is written 30,000 times per 256 MiB: build it from fixed parts.
_DATA_HEAD = bytes((T_DICT,)) + _sized(T_STR, b"data") + bytes((T_BYTES,))
_DATA_TAIL = _sized(T_STR, b"type") + _sized(T_STR, b"data") + bytes((T_END,))


def encode_data_piece(piece: bytes | memoryview) -> bytes:
    if len(piece) > MAX_LEN:
        raise ValueError("data piece too large")
    return b"".join((_DATA_HEAD, len(piece).to_bytes(2, "big"), piece, _DATA_TAIL))


class _Incomplete(Exception):
    """More input is needed to finish the object being read."""


def _decode(buf: bytearray, pos: int, depth: int = 0) -> tuple[Value, int]:
    if pos >= len(buf):
        raise _Incomplete
    tag = buf[pos]
    pos += 1
    if tag == T_INT:
        if pos >= len(buf):
            raise _Incomplete
        width = buf[pos]
        end = pos + 1 + width
        if end > len(buf):
            raise _Incomplete
        return int.from_bytes(buf[pos + 1 : end], "big"), end
    if tag in (T_STR, T_BYTES):
        if pos + 2 > len(buf):
            raise _Incomplete
        end = pos + 2 + int.from_bytes(buf[pos : pos + 2], "big")
        if end > len(buf):
            raise _Incomplete
        raw = bytes(buf[pos + 2 : end])
        if tag == T_BYTES:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            raise CorruptError("damaged container: a text field is not valid UTF-8") from None
    if tag == T_DICT:
        if depth >= _MAX_DEPTH:
            raise CorruptError("damaged container: objects nested too deeply")
        out: dict[str, Value] = {}
        while True:
            if pos >= len(buf):
                raise _Incomplete
            if buf[pos] == T_END:
                return out, pos + 1
            if buf[pos] != T_STR:
                raise CorruptError(f"damaged container: dict key of type 0x{buf[pos]:02x}")
            key, pos = _decode(buf, pos, depth + 1)
            value, pos = _decode(buf, pos, depth + 1)
            out[key] = value  # type: ignore[index]
    raise CorruptError(f"damaged container: unknown object type 0x{tag:02x}")


class ObjectParser:
    """Incremental reader of the container: `feed()` bytes, get back the top-level dicts completed so far."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._magic_seen = False
        self.consumed = 0  # bytes of the stream fully parsed

    def feed(self, data: bytes | bytearray | memoryview) -> list[dict[str, Value]]:
        self._buf += data
        out: list[dict[str, Value]] = []
        if not self._magic_seen:
            head = bytes(self._buf[: len(MAGIC)])
            if not MAGIC.startswith(head):
                raise NotEncryptedError("not a Cloud Sync encrypted file (no container magic)")
            if len(head) < len(MAGIC):
                return out
            del self._buf[: len(MAGIC)]
            self.consumed += len(MAGIC)
            self._magic_seen = True
        pos = 0
        buf = self._buf
        while pos < len(buf):
            if buf.startswith(_DATA_HEAD, pos):
                # Fast path for the common {data, type: "data"} piece: no generic decoding per field.
                start = pos + len(_DATA_HEAD) + 2
                end = start + int.from_bytes(buf[start - 2 : start], "big")
                if end + len(_DATA_TAIL) > len(buf):
                    break
                if buf.startswith(_DATA_TAIL, end):
                    out.append({"data": bytes(buf[start:end]), "type": "data"})
                    pos = end + len(_DATA_TAIL)
                    continue
            if buf[pos] != T_DICT:
                raise CorruptError(f"damaged container: top-level object of type 0x{buf[pos]:02x}")
            try:
                obj, end = _decode(buf, pos)
            except _Incomplete:
                if len(buf) - pos > MAX_OBJECT:
                    raise CorruptError("damaged container: an object is impossibly large") from None
                break
            out.append(obj)  # type: ignore[arg-type]
            pos = end
        if pos:
            del self._buf[:pos]
            self.consumed += pos
        return out

    @property
    def magic_seen(self) -> bool:
        return self._magic_seen

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete object (non-zero at the end means truncation)."""
        return len(self._buf)
