"""Key derivation and salted hashes exactly as Synology Cloud Sync uses them (MD5, for compatibility)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

KEY_LEN = 32  # AES-256
IV_LEN = 16
HASH_SALT_LEN = 10  # the random prefix of key1_hash, key2_hash and session_key_hash
SALT_LEN = 8  # the `salt` metadata field of version 3.x
PASSWORD_ROUNDS = 1000  # EVP_BytesToKey count when a salt is given; 1 without


def evp_bytes_to_key(secret: bytes, salt: bytes, count: int) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey with MD5: a 32-byte AES key and a 16-byte IV from a secret and a salt.

    Each round D_i = MD5^count(D_{i-1} || secret || salt); the stream is cut into key then IV.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    stream = b""
    prev = b""
    while len(stream) < KEY_LEN + IV_LEN:
        digest = hashlib.md5(prev + secret + salt).digest()
        for _ in range(count - 1):
            digest = hashlib.md5(digest).digest()
        stream += digest
        prev = digest
    return stream[:KEY_LEN], stream[KEY_LEN : KEY_LEN + IV_LEN]


def random_letters(n: int) -> str:
    """Random ASCII letters, the alphabet Cloud Sync uses for its salts."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(n))


def salted_hash(data: bytes, salt: str | None = None) -> str:
    """`salt || hex MD5(salt || data)` with a fresh 10-letter salt unless one is given."""
    if salt is None:
        salt = random_letters(HASH_SALT_LEN)
    return salt + hashlib.md5(salt.encode("ascii") + data).hexdigest()


def check_salted_hash(expected: str, data: bytes) -> bool:
    """True when `expected` is a salted hash of `data` (constant-time comparison)."""
    if len(expected) != HASH_SALT_LEN + 32 or not expected.isascii():
        return False
    return hmac.compare_digest(salted_hash(data, expected[:HASH_SALT_LEN]), expected)
