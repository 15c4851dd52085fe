"""What can go wrong with an encrypted container: each error is one line, with no secret in it."""

from __future__ import annotations

from engine.errors import SkysyncError


class CryptoError(SkysyncError):
    """Base of every encryption error; `str(err)` is one clear line fit for the user."""

    exit_code = 1  # the item failed; other items of the same run may still succeed


class NotEncryptedError(CryptoError):
    """The data does not start with the Cloud Sync container magic."""


class UnsupportedFormatError(CryptoError):
    """A container we recognise but cannot read (unknown version or digest)."""


class WrongPasswordError(CryptoError):
    """The password is not the one the file was encrypted with."""


class WrongKeyError(CryptoError):
    """The RSA private key does not match the public key the file was encrypted with."""


class TruncatedError(CryptoError):
    """The container ends before its final checksum record."""


class CorruptError(CryptoError):
    """The container is damaged: a structure, padding, LZ4 or MD5 check failed."""
