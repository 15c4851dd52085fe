"""Every way a container can fail to open gives one clear CryptoError and leaves nothing under the
destination name, whether it goes through the streaming writer or the recovery command's file handling."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from engine.crypto import (
    AccountKey,
    CorruptError,
    CryptoError,
    DecryptingWriter,
    EncryptingReader,
    NotEncryptedError,
    TruncatedError,
    WrongKeyError,
    WrongPasswordError,
)
from engine.crypto.recovery import decrypt_paths

from .conftest import PASSWORD, sample

DATA = sample(12 * 8192 + 1234)  # several data pieces


@pytest.fixture(scope="module")
def container(account: AccountKey) -> bytes:
    return EncryptingReader(io.BytesIO(DATA), account, "doc.txt").read()


def first_data_offset(c: bytes) -> int:
    return c.index(b"\x42\x10\x00\x04data\x11")


def trailer_offset(c: bytes) -> int:
    return c.rindex(b"\x42\x10\x00\x08file_md5")


def open_with(c: bytes, step: int = 4096, **cred: object) -> bytes:
    out = io.BytesIO()
    w = DecryptingWriter(out, **cred)  # type: ignore[arg-type]
    for i in range(0, len(c), step):
        w.write(c[i : i + step])
    w.close()
    return out.getvalue()


def recover(tmp_path: Path, c: bytes, **cred: object) -> tuple[int, list[str], list[str]]:
    """Run the recovery path on one file; returns (ok, failures, what is left in the output folder)."""
    src = tmp_path / "in" / "doc.txt"
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(c)
    out = tmp_path / "out"
    ok, failures = decrypt_paths([str(src)], str(out), **cred)  # type: ignore[arg-type]
    return ok, failures, sorted(os.listdir(out))


def assert_one_clean_failure(tmp_path: Path, c: bytes, exc_type: type[CryptoError], **cred: object) -> str:
    with pytest.raises(exc_type) as info:
        open_with(c, **cred)
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 200
    assert PASSWORD not in message
    ok, failures, left = recover(tmp_path, c, **cred)
    assert ok == 0 and len(failures) == 1 and "\n" not in failures[0]
    assert failures[0].endswith(message)
    assert left == []  # neither the destination name nor a temporary file
    return message


def test_sanity_the_container_opens(container: bytes, tmp_path: Path) -> None:
    assert len(container) > first_data_offset(container) + 3 * 8192  # several pieces, as the cuts assume
    assert open_with(container, password=PASSWORD) == DATA
    ok, failures, left = recover(tmp_path, container, password=PASSWORD)
    assert (ok, failures, left) == (1, [], ["doc.txt"])
    assert (tmp_path / "out" / "doc.txt").read_bytes() == DATA


def test_wrong_password(container: bytes, tmp_path: Path) -> None:
    msg = assert_one_clean_failure(tmp_path, container, WrongPasswordError, password=PASSWORD + "!")
    assert "wrong password" in msg


def test_wrong_private_key(container: bytes, other_account: AccountKey, tmp_path: Path) -> None:
    # DecryptingWriter takes `private_key`, decrypt_paths `private_key_pem`: check each with its own name.
    with pytest.raises(WrongKeyError) as info:
        open_with(container, private_key=other_account.private_pem)
    msg = str(info.value)
    assert "wrong private key" in msg and "\n" not in msg
    ok, failures, left = recover(tmp_path, container, private_key_pem=other_account.private_pem.encode())
    assert ok == 0 and failures == [f"{tmp_path / 'in' / 'doc.txt'}: {msg}"] and left == []


def test_either_credential_may_open(container: bytes, account: AccountKey) -> None:
    assert open_with(container, password="nope", private_key=account.private_pem) == DATA


@pytest.mark.parametrize(
    "cut",
    ["inside-magic", "after-magic", "inside-header", "after-header", "mid-piece", "before-trailer", "end-1"],
)
def test_truncated(cut: str, container: bytes, tmp_path: Path) -> None:
    data_at, trailer_at = first_data_offset(container), trailer_offset(container)
    at = {
        "inside-magic": 20,
        "after-magic": 49,
        "inside-header": 300,
        "after-header": data_at,
        "mid-piece": (data_at + trailer_at) // 2,
        "before-trailer": trailer_at,
        "end-1": len(container) - 1,
    }[cut]
    msg = assert_one_clean_failure(tmp_path, container[:at], TruncatedError, password=PASSWORD)
    assert "truncated" in msg


@pytest.mark.parametrize(
    ("where", "exc_type"),
    [
        ("magic", NotEncryptedError),
        ("first-piece", CorruptError),
        ("middle-piece", CorruptError),
        ("last-piece-padding", CorruptError),
        ("file-md5", CorruptError),
        ("session-key-hash", CorruptError),
        ("salt", CorruptError),
        ("enc-key1", CorruptError),
        ("piece-length", CorruptError),
    ],
)
def test_flipped_byte(where: str, exc_type: type[CryptoError], container: bytes, tmp_path: Path) -> None:
    data_at, trailer_at = first_data_offset(container), trailer_offset(container)
    value_of = lambda key: container.index(key) + len(key) + 3 + 5  # noqa: E731  (a byte inside the value)
    at = {
        "magic": 3,
        "first-piece": data_at + 20,
        "middle-piece": (data_at + trailer_at) // 2,
        "last-piece-padding": trailer_at - 16,  # the last ciphertext byte (before a 15-byte tail)
        "file-md5": trailer_at + 15,
        "session-key-hash": value_of(b"\x10\x00\x10session_key_hash"),
        "salt": value_of(b"\x10\x00\x04salt") - 3,
        "enc-key1": value_of(b"\x10\x00\x08enc_key1"),
        "piece-length": data_at + 9,
    }[where]
    damaged = bytearray(container)
    damaged[at] ^= 0x04  # stays printable ASCII in text fields, so the damage is not caught as bad UTF-8
    assert_one_clean_failure(tmp_path, bytes(damaged), exc_type, password=PASSWORD)


def test_any_flip_after_the_header_is_caught(container: bytes) -> None:
    rng = random.Random(9)
    start = first_data_offset(container)
    for _ in range(40):
        damaged = bytearray(container)
        at = rng.randrange(start, len(container))
        damaged[at] ^= 1 << rng.randrange(8)
        with pytest.raises(CryptoError):
            open_with(bytes(damaged), password=PASSWORD)


def test_data_after_the_trailer_is_refused(container: bytes) -> None:
    extra = container[first_data_offset(container) : first_data_offset(container) + 8192 + 26]
    with pytest.raises(CorruptError):
        open_with(container + extra, password=PASSWORD)


def test_not_a_container(tmp_path: Path) -> None:
    plain = b"just a plain text file\n" * 100
    msg = assert_one_clean_failure(tmp_path, plain, NotEncryptedError, password="x")
    assert "not a Cloud Sync encrypted file" in msg
    assert_one_clean_failure(tmp_path, b"", NotEncryptedError, password="x")


def test_existing_destination_is_left_alone_on_failure(container: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "doc.txt").write_bytes(b"precious")
    ok, failures, left = recover(tmp_path, container[:-10], password=PASSWORD)
    assert ok == 0 and len(failures) == 1 and left == ["doc.txt"]
    assert (out / "doc.txt").read_bytes() == b"precious"


def test_writer_refuses_use_after_failure(container: bytes) -> None:
    w = DecryptingWriter(io.BytesIO(), password="wrong")
    with pytest.raises(WrongPasswordError):
        w.write(container)
    with pytest.raises(CryptoError, match="already failed"):
        w.write(b"more")
    with pytest.raises(CryptoError, match="already failed"):
        w.close()


def test_a_credential_is_required() -> None:
    with pytest.raises(CryptoError):
        DecryptingWriter(io.BytesIO())
    with pytest.raises(CryptoError, match="private key"):
        DecryptingWriter(io.BytesIO(), private_key=b"-----BEGIN RSA PRIVATE KEY-----\nnope\n")
