"""The account key: one password and one 2048-bit RSA pair per cloud connection, and the session-key wrapping.

Every file gets its own random session key; the container carries it twice, once AES-encrypted under the
password (`enc_key1`) and once RSA-OAEP-encrypted under the account's public key (`enc_key2`), so either the
password or the exported private key recovers the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from engine.crypto.errors import CorruptError, CryptoError, WrongKeyError
from engine.crypto.kdf import check_salted_hash, evp_bytes_to_key, salted_hash

RSA_BITS = 2048
_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)

# Names under which an AccountKey is kept in the connection's section of the secrets store.
SECRET_PASSWORD = "encryption_password"
SECRET_PRIVATE_KEY = "encryption_private_key"
SECRET_PUBLIC_KEY = "encryption_public_key"


def password_hash(password: str) -> str:
    """A fresh salted hash of the password (the `key1_hash` form): store it to check later passwords."""
    return salted_hash(password.encode("utf-8"))


def verify_password(password: str, key1_hash: str) -> bool:
    """True when `password` is the one `key1_hash` (from a container or `password_hash`) was made from."""
    return check_salted_hash(key1_hash, password.encode("utf-8"))


def load_private_key(pem: bytes | str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 as in Synology's key.zip, or PKCS#8), unencrypted."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    return _load_private_key(data)


@lru_cache(maxsize=8)
def _load_private_key(data: bytes) -> rsa.RSAPrivateKey:
    # Cached: loading validates the key (~0.2 s for 2048 bits), and a download per file must not pay that.
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CryptoError("the private key is not a readable unencrypted RSA PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("the private key is not an RSA key")
    return key


def public_pem_of(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """PKCS#1 public PEM (`BEGIN RSA PUBLIC KEY`), the text `key2_hash` is computed over."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode("ascii")


@dataclass(frozen=True, repr=False)
class AccountKey:
    """The encryption identity of one connection. All three fields are strings for the secrets store."""

    password: str
    private_pem: str  # PKCS#1 PEM, BEGIN RSA PRIVATE KEY
    public_pem: str  # PKCS#1 PEM, BEGIN RSA PUBLIC KEY

    @classmethod
    def create(cls, password: str) -> AccountKey:
        """A new account key: the given password and a freshly generated 2048-bit RSA pair."""
        if not password:
            raise CryptoError("the encryption password must not be empty")
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, as in Synology's private.pem
            serialization.NoEncryption(),
        ).decode("ascii")
        return cls(password=password, private_pem=private_pem, public_pem=public_pem_of(private))

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> AccountKey:
        """Rebuild from a connection's secrets (see `to_secrets`)."""
        try:
            return cls(secrets[SECRET_PASSWORD], secrets[SECRET_PRIVATE_KEY], secrets[SECRET_PUBLIC_KEY])
        except KeyError:
            raise CryptoError("this connection has no encryption key in the secrets store") from None

    def to_secrets(self) -> dict[str, str]:
        return {
            SECRET_PASSWORD: self.password,
            SECRET_PRIVATE_KEY: self.private_pem,
            SECRET_PUBLIC_KEY: self.public_pem,
        }

    def verify_password(self, password: str) -> bool:
        return self.password == password

    @cached_property
    def public_key(self) -> rsa.RSAPublicKey:
        key = serialization.load_pem_public_key(self.public_pem.encode("ascii"))
        if not isinstance(key, rsa.RSAPublicKey):
            raise CryptoError("the account public key is not an RSA key")
        return key

    @property
    def fingerprint(self) -> str:
        """Short MD5 fingerprint of the public key: safe to show, to tell keys apart."""
        return hashlib.md5(self.public_pem.encode("ascii")).hexdigest()[:16]

    def __repr__(self) -> str:  # never the password or the private key
        return f"AccountKey(fingerprint={self.fingerprint})"


# --- session keys ---------------------------------------------------------------------------------


def _aes_cbc(key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def wrap_with_password(session_key: str, password: str, salt: str | None) -> str:
    """`enc_key1`: base64 of AES-256-CBC(PKCS#7) of the session-key string under (password, salt)."""
    key, iv = _password_key_iv(password, salt)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(session_key.encode("ascii")) + padder.finalize()
    enc = _aes_cbc(key, iv).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode("ascii")


def unwrap_with_password(enc_key1: str, password: str, salt: str | None) -> str:
    """Inverse of `wrap_with_password`; raises CorruptError when the result cannot be a session key."""
    key, iv = _password_key_iv(password, salt)
    raw = _b64(enc_key1, "enc_key1")
    if not raw or len(raw) % 16:
        raise CorruptError("damaged container: enc_key1 has a bad length")
    dec = _aes_cbc(key, iv).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(dec.update(raw) + dec.finalize()) + unpadder.finalize()
        return plain.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise CorruptError("the session key could not be decrypted with this password") from None


def wrap_with_public_key(session_key: str, public_key: rsa.RSAPublicKey) -> str:
    """`enc_key2`: base64 of RSA-OAEP(SHA-1, MGF1-SHA-1) of the session-key string."""
    return base64.b64encode(public_key.encrypt(session_key.encode("ascii"), _OAEP)).decode("ascii")


def unwrap_with_private_key(enc_key2: str, private_key: rsa.RSAPrivateKey) -> str:
    raw = _b64(enc_key2, "enc_key2")
    try:
        return private_key.decrypt(raw, _OAEP).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise WrongKeyError("wrong private key: it does not match the key this file was encrypted with") from None


def _password_key_iv(password: str, salt: str | None) -> tuple[bytes, bytes]:
    # Version 3.x salts the password and iterates 1000 times; version 1.0 has no salt and one round.
    if salt:
        return evp_bytes_to_key(password.encode("utf-8"), salt.encode("utf-8"), 1000)
    return evp_bytes_to_key(password.encode("utf-8"), b"", 1)


def _b64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise CorruptError(f"damaged container: {field} is not valid base64") from None


def file_key_iv(session_key: str, major: int) -> tuple[bytes, bytes]:
    """The AES key and IV of the file data: from the unhexed session key (3.x) or the raw string (1.x)."""
    if major >= 3:
        try:
            secret = bytes.fromhex(session_key)
        except ValueError:
            raise CorruptError("damaged container: the session key is not hexadecimal") from None
    else:
        secret = session_key.encode("ascii")
    return evp_bytes_to_key(secret, b"", 1)
