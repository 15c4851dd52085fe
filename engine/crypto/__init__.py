"""Client-side encryption in Synology Cloud Sync's container format (versions 1.0, 3.0 and 3.1).

Independent of the engine: the sync code plugs `EncryptingReader` into uploads and `DecryptingWriter` into
downloads; `recovery` decrypts files and folders without a connection and exports the key as key.zip.
"""

from engine.crypto.errors import (
    CorruptError,
    CryptoError,
    NotEncryptedError,
    TruncatedError,
    UnsupportedFormatError,
    WrongKeyError,
    WrongPasswordError,
)
from engine.crypto.keys import AccountKey, load_private_key, password_hash, verify_password
from engine.crypto.reader import DecryptingWriter, decrypt_stream, read_metadata
from engine.crypto.wire import MAGIC
from engine.crypto.writer import EncryptingReader, encrypt_file

__all__ = [
    "MAGIC",
    "AccountKey",
    "CorruptError",
    "CryptoError",
    "DecryptingWriter",
    "EncryptingReader",
    "NotEncryptedError",
    "TruncatedError",
    "UnsupportedFormatError",
    "WrongKeyError",
    "WrongPasswordError",
    "decrypt_stream",
    "encrypt_file",
    "load_private_key",
    "password_hash",
    "read_metadata",
    "verify_password",
]
