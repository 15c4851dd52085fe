"""The container as written and read: round trips, the published vector, and its exact structure."""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import shutil
import string
import struct

import lz4.frame
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from engine.crypto import (
    MAGIC,
    AccountKey,
    CryptoError,
    DecryptingWriter,
    EncryptingReader,
    decrypt_stream,
    encrypt_file,
    password_hash,
    read_metadata,
    verify_password,
)
from engine.crypto.kdf import check_salted_hash, evp_bytes_to_key, salted_hash

from .conftest import PASSWORD, PatternSource, sample

MiB = 1 << 20
SIZES = [0, 1, 4095, 4096, 4097, 8192, MiB + 1]


def encrypt(data: bytes, account: AccountKey, name: str = "file.bin", **kw: object) -> bytes:
    return EncryptingReader(io.BytesIO(data), account, name, **kw).read()  # type: ignore[arg-type]


def decrypt(container: bytes, step: int = 65536, **cred: object) -> bytes:
    out = io.BytesIO()
    w = DecryptingWriter(out, **cred)  # type: ignore[arg-type]
    for i in range(0, len(container), step):
        w.write(container[i : i + step])
    w.close()
    return out.getvalue()


# -- an independent reader of the object encoding, to check what we write byte by byte -------------------


def parse_objects(raw: bytes) -> list[list[tuple[str, object]]]:
    """Top-level dicts as ordered (key, value) lists; nested dicts likewise. Strict: fails on anything odd."""
    assert raw[:17] == b"__CLOUDSYNC_ENC__"
    assert raw[17:49] == b"d8d6ba7b9df02ef39a33ef912a91dc56"
    pos = 49
    out = []

    def value(p: int) -> tuple[object, int]:
        tag = raw[p]
        if tag == 0x01:
            n = raw[p + 1]
            return int.from_bytes(raw[p + 2 : p + 2 + n], "big"), p + 2 + n
        if tag in (0x10, 0x11):
            (n,) = struct.unpack(">H", raw[p + 1 : p + 3])
            body = raw[p + 3 : p + 3 + n]
            assert len(body) == n
            return (body.decode("utf-8") if tag == 0x10 else body), p + 3 + n
        assert tag == 0x42, hex(tag)
        p += 1
        items = []
        while raw[p] != 0x40:
            assert raw[p] == 0x10
            k, p = value(p)
            v, p = value(p)
            items.append((k, v))
        return items, p + 1

    while pos < len(raw):
        obj, pos = value(pos)
        out.append(obj)  # type: ignore[arg-type]
    return out


def lz4_blocks(frame: bytes) -> list[int]:
    """Compressed sizes of the blocks of an LZ4 frame without content size (header is 7 bytes)."""
    pos = 7
    sizes = []
    while True:
        (word,) = struct.unpack("<I", frame[pos : pos + 4])
        pos += 4
        if word == 0:
            break
        size = word & 0x7FFFFFFF
        sizes.append(size)
        pos += size
    assert len(frame) == pos + 4  # then only the 4-byte content checksum
    return sizes


# -- key derivation ----------------------------------------------------------------------------------------


def test_published_derivation_vector() -> None:
    key, iv = evp_bytes_to_key(b"synocrypto", b"hnEnPWyu", 1000)
    assert iv.hex() == "0b18273c8a0231910d7f771ef33196d2"
    assert key.hex().startswith("29a63e04")
    assert key.hex().endswith("15ab4eca")
    assert len(key) == 32


def test_unsalted_derivation_is_openssl_md5_single_round() -> None:
    # With count 1 and no salt this is `openssl enc -md md5 -nosalt`: D1 = MD5(pw), D2 = MD5(D1 || pw), ...
    d1 = hashlib.md5(b"pw").digest()
    d2 = hashlib.md5(d1 + b"pw").digest()
    d3 = hashlib.md5(d2 + b"pw").digest()
    assert evp_bytes_to_key(b"pw", b"", 1) == (d1 + d2, d3)


def test_salted_hashes() -> None:
    h = salted_hash(b"data")
    assert len(h) == 42 and all(c in string.ascii_letters for c in h[:10])
    assert h[10:] == hashlib.md5(h[:10].encode() + b"data").hexdigest()
    assert check_salted_hash(h, b"data")
    assert not check_salted_hash(h, b"datb")
    assert not check_salted_hash(h[:-1], b"data")
    stored = password_hash("pässwörd")
    assert verify_password("pässwörd", stored)
    assert not verify_password("passwörd", stored)


# -- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("by", ["password", "private_key"])
def test_round_trip(size: int, by: str, account: AccountKey) -> None:
    data = sample(size)
    container = encrypt(data, account)
    cred = {"password": PASSWORD} if by == "password" else {"private_key": account.private_pem.encode()}
    assert decrypt(container, **cred) == data
    # Odd write sizes split objects, lengths and magic at every possible place.
    assert decrypt(container, step=997, **cred) == data


def test_round_trip_64_mib_by_private_key(account: AccountKey, tmp_path: pytest.TempPathFactory) -> None:
    size = 64 * MiB
    src = PatternSource(size)
    enc = EncryptingReader(src, account, "big.bin")  # type: ignore[arg-type]
    expected = hashlib.md5()
    check = PatternSource(size)
    while chunk := check.read(MiB):
        expected.update(chunk)
    sink = io.BytesIO()  # the ciphertext of mixed data: ~1/2 the size thanks to LZ4
    shutil.copyfileobj(enc, sink, 256 * 1024)
    assert enc.plain_size == size and enc.plain_md5 == expected.hexdigest()
    assert enc.cipher_size == len(sink.getvalue())
    sink.seek(0)

    class Md5Out:
        def __init__(self) -> None:
            self.md5 = hashlib.md5()

        def write(self, b: bytes) -> int:
            self.md5.update(b)
            return len(b)

    out = Md5Out()
    w = decrypt_stream(sink, out, private_key=account.private_pem)  # type: ignore[arg-type]
    assert out.md5.hexdigest() == expected.hexdigest() == w.plain_md5
    assert w.plain_size == size and w.file_name == "big.bin"


def test_non_ascii_password_and_name() -> None:
    acct = AccountKey.create("mot de passe où 密码")
    data = sample(10000)
    container = encrypt(data, acct, name="résumé 文件.txt")
    out = io.BytesIO()
    w = DecryptingWriter(out, password="mot de passe où 密码")
    w.write(container)
    w.close()
    assert out.getvalue() == data and w.file_name == "résumé 文件.txt"


def test_file_helpers(account: AccountKey, tmp_path: os.PathLike[str]) -> None:
    src = os.path.join(tmp_path, "a.txt")
    data = sample(50000)
    with open(src, "wb") as f:
        f.write(data)
    enc = os.path.join(tmp_path, "a.enc")
    assert encrypt_file(src, enc, account) == hashlib.md5(data).hexdigest()
    with open(enc, "rb") as f:
        meta = read_metadata(f)
    assert meta["file_name"] == "a.txt" and meta["version"] == {"major": 3, "minor": 1}
    with open(enc, "rb") as f:
        out = io.BytesIO()
        decrypt_stream(f, out, password=PASSWORD)
    assert out.getvalue() == data


def test_reader_is_a_file_object(account: AccountKey) -> None:
    data = sample(100000)
    r = EncryptingReader(io.BytesIO(data), account, "x")
    assert r.readable() and not r.writable()
    buffered = io.BufferedReader(r, buffer_size=3000)  # readinto() path, as some uploaders use
    container = b""
    while chunk := buffered.read(1234):
        container += chunk
    assert decrypt(container, password=PASSWORD) == data
    # Reading past the end keeps returning b"".
    assert r.read(10) == b""


def test_short_reads_from_the_source_still_make_4096_byte_blocks(account: AccountKey) -> None:
    size = 5 * 4096 + 100
    src = PatternSource(size, chunk_limit=1000)  # a pipe-like source: never more than 1000 bytes per read
    container = EncryptingReader(src, account, "x").read()  # type: ignore[arg-type]
    frame = _frame_of(container, account)
    assert len(lz4_blocks(frame)) == 6


# -- structure of what we write ----------------------------------------------------------------------------


def _session_key(meta: dict[str, object], account: AccountKey) -> str:
    private = serialization.load_pem_private_key(
        account.private_pem.encode(),
        password=None,
        unsafe_skip_rsa_key_validation=True,  # test speed only
    )
    oaep = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return private.decrypt(base64.b64decode(meta["enc_key2"]), oaep).decode()  # type: ignore[union-attr,arg-type]


def _frame_of(container: bytes, account: AccountKey) -> bytes:
    """Decrypt the data pieces by hand (independently of the reader) back to the LZ4 frame."""
    objs = parse_objects(container)
    meta = dict(objs[0])
    session = _session_key(meta, account)
    major = dict(meta["version"])["major"]  # type: ignore[arg-type]
    secret = bytes.fromhex(session) if major >= 3 else session.encode()
    key, iv = evp_bytes_to_key(secret, b"", 1)
    cipher = b"".join(dict(o)["data"] for o in objs[1:-1])  # type: ignore[misc]
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(cipher) + dec.finalize()
    pad = padded[-1]
    assert 1 <= pad <= 16 and padded[-pad:] == bytes([pad]) * pad
    return padded[:-pad]


@pytest.mark.parametrize("size", [0, 3 * 4096 + 5, 100_000])
def test_structure_of_version_3_1(size: int, account: AccountKey) -> None:
    data = sample(size)
    container = encrypt(data, account, name="dir/photo.jpg")
    assert container.startswith(b"__CLOUDSYNC_ENC__d8d6ba7b9df02ef39a33ef912a91dc56")
    assert container.startswith(MAGIC)
    objs = parse_objects(container)

    meta_items = objs[0]
    keys = [k for k, _ in meta_items]
    assert keys == sorted(keys, key=lambda k: k.encode())
    assert keys == [
        "compress", "digest", "enc_key1", "enc_key2", "encrypt", "file_name", "key1_hash", "key2_hash",
        "salt", "session_key_hash", "type", "version",
    ]  # fmt: skip
    meta = dict(meta_items)
    assert meta["compress"] == 1 and meta["encrypt"] == 1 and meta["digest"] == "md5"
    assert meta["type"] == "metadata" and meta["file_name"] == "photo.jpg"
    assert meta["version"] == [("major", 3), ("minor", 1)]
    salt = meta["salt"]
    assert isinstance(salt, str) and len(salt) == 8 and salt.isascii() and salt.isalpha()
    assert check_salted_hash(meta["key1_hash"], PASSWORD.encode())  # type: ignore[arg-type]
    assert check_salted_hash(meta["key2_hash"], account.public_pem.encode())  # type: ignore[arg-type]
    session = _session_key(meta, account)
    assert len(session) == 64 and all(c in "0123456789ABCDEF" for c in session)
    assert check_salted_hash(meta["session_key_hash"], session.encode())  # type: ignore[arg-type]
    # enc_key1 is the same session key under (password, salt) with 1000 rounds
    k1, iv1 = evp_bytes_to_key(PASSWORD.encode(), salt.encode(), 1000)
    d = Cipher(algorithms.AES(k1), modes.CBC(iv1)).decryptor()
    raw = d.update(base64.b64decode(meta["enc_key1"])) + d.finalize()  # type: ignore[arg-type]
    assert raw == session.encode() + bytes([16]) * 16
    assert len(base64.b64decode(meta["enc_key2"])) == 256  # type: ignore[arg-type]  # 2048-bit RSA

    # data pieces: sorted keys, 8,192 bytes each except the last, CBC-aligned in total
    pieces = objs[1:-1]
    assert pieces and all([k for k, _ in p] == ["data", "type"] and dict(p)["type"] == "data" for p in pieces)
    lengths = [len(dict(p)["data"]) for p in pieces]  # type: ignore[arg-type]
    assert all(n == 8192 for n in lengths[:-1]) and 0 < lengths[-1] <= 8192
    assert sum(lengths) % 16 == 0

    # trailer: {file_md5, type}
    assert objs[-1] == [("file_md5", hashlib.md5(data).hexdigest()), ("type", "metadata")]

    frame = _frame_of(container, account)
    assert frame[:7] == bytes.fromhex("04224D1844405E")
    assert len(lz4_blocks(frame)) == math.ceil(size / 4096)
    assert lz4.frame.decompress(frame) == data


def test_integer_encoding_is_minimal_big_endian() -> None:
    from engine.crypto.wire import encode

    assert encode(1) == b"\x01\x01\x01"
    assert encode(0) == b"\x01\x01\x00"
    assert encode(4660) == b"\x01\x02\x12\x34"
    assert encode({"minor": 1, "major": 3}) == (b"\x42\x10\x00\x05major\x01\x01\x03\x10\x00\x05minor\x01\x01\x01\x40")


# -- older versions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [(1, 0), (3, 0)])
@pytest.mark.parametrize("by", ["password", "private_key"])
def test_reads_older_versions(version: tuple[int, int], by: str, account: AccountKey) -> None:
    data = sample(3 * 8192 + 11)
    container = encrypt(data, account, version=version)
    meta = dict(parse_objects(container)[0])
    assert meta["version"] == [("major", version[0]), ("minor", version[1])]
    session = _session_key(meta, account)
    if version[0] == 1:
        assert "salt" not in meta and len(session) == 32
    else:
        assert len(meta["salt"]) == 8 and len(session) == 64  # type: ignore[arg-type]
    cred = {"password": PASSWORD} if by == "password" else {"private_key": account.private_pem}
    out = io.BytesIO()
    w = decrypt_stream(io.BytesIO(container), out, **cred)  # type: ignore[arg-type]
    assert out.getvalue() == data and w.version == version


def test_version_1_uses_the_raw_session_string_as_file_secret(account: AccountKey) -> None:
    container = encrypt(sample(5000), account, version=(1, 0))
    frame = _frame_of(container, account)  # decrypts with the raw 32-character string as the secret
    assert frame[:4] == bytes.fromhex("04224D18")


def test_unknown_version_is_refused(account: AccountKey) -> None:
    container = encrypt(b"hello", account)
    hacked = container.replace(b"\x10\x00\x05major\x01\x01\x03", b"\x10\x00\x05major\x01\x01\x07", 1)
    assert hacked != container
    with pytest.raises(CryptoError, match=r"version 7\.1"):
        decrypt(hacked, password=PASSWORD)


# -- the account key ---------------------------------------------------------------------------------------


def test_account_key(account: AccountKey) -> None:
    assert account.private_pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert account.public_pem.startswith("-----BEGIN RSA PUBLIC KEY-----\n")
    assert account.public_key.key_size == 2048
    again = AccountKey.from_secrets(account.to_secrets())
    assert again == account
    assert all(isinstance(v, str) for v in account.to_secrets().values())
    assert PASSWORD not in repr(account) and "PRIVATE" not in repr(account)
    assert account.verify_password(PASSWORD) and not account.verify_password(PASSWORD + "x")
    with pytest.raises(CryptoError):
        AccountKey.from_secrets({})
    with pytest.raises(CryptoError):
        AccountKey.create("")


def test_each_file_gets_its_own_session_key(account: AccountKey) -> None:
    a = dict(parse_objects(encrypt(b"same", account))[0])
    b = dict(parse_objects(encrypt(b"same", account))[0])
    assert _session_key(a, account) != _session_key(b, account)
    assert a["salt"] != b["salt"]
