"""Recovery without a connection: decrypt downloaded containers, and export the account key as key.zip.

This is what Synology's own decryption tool does, so a user can always get their files back from whatever
they downloaded from the cloud, with the password or the exported private key.
"""

from __future__ import annotations

import os
import secrets
import zipfile
from collections.abc import Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.crypto.errors import CryptoError
from engine.crypto.keys import load_private_key, public_pem_of
from engine.crypto.reader import decrypt_stream

SYSTEM_FOLDER = "@SynologyCloudSync"  # Cloud Sync's bookkeeping folder on the remote, never user data
_TMP_SUFFIX = ".skysync-part"


def decrypt_paths(
    srcs: list[str],
    out_dir: str,
    password: str | None = None,
    private_key_pem: bytes | None = None,
) -> tuple[int, list[str]]:
    """Decrypt files and whole folders of Cloud Sync containers into `out_dir`.

    Each SRC lands under `out_dir` by its own base name, as `cp -r` does: a file `a/x.jpg` becomes
    `out_dir/x.jpg`, a folder `a/photos` becomes `out_dir/photos/...` with its relative paths kept (the
    `@SynologyCloudSync` bookkeeping folder is skipped). Each file is written under a hidden temporary name in
    its destination folder and renamed into place only after its MD5 verified, so a failure leaves nothing
    under the destination name (an existing file there is left as it was). Files keep the source's mtime.

    Give `password`, `private_key_pem` (PEM bytes, PKCS#1 or PKCS#8) or both. Returns the number of files
    decrypted and one line per failure (`"<path>: <reason>"`); raises CryptoError before writing anything if
    no credential is given or the private key cannot be read.
    """
    if password is None and private_key_pem is None:
        raise CryptoError("a password or a private key is needed to decrypt")
    key = load_private_key(private_key_pem) if private_key_pem is not None else None
    ok = 0
    failures: list[str] = []
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        return 0, [f"{out_dir}: cannot create the output folder: {exc.strerror or exc}"]
    out_real = os.path.realpath(out_dir)
    for src in srcs:
        if not os.path.lexists(src):
            failures.append(f"{src}: no such file or folder")
            continue
        for src_file, dst_file in _pairs(src, out_dir, out_real, failures):
            try:
                _decrypt_one(src_file, dst_file, password, key)
                ok += 1
            except CryptoError as exc:
                failures.append(f"{src_file}: {exc}")
            except OSError as exc:
                failures.append(f"{src_file}: {exc.strerror or exc}")
    return ok, failures


def _pairs(src: str, out_dir: str, out_real: str, failures: list[str]) -> Iterator[tuple[str, str]]:
    """(source file, destination file) for one SRC, creating destination folders on the way."""
    name = os.path.basename(os.path.normpath(src))
    if not os.path.isdir(src):
        yield src, os.path.join(out_dir, name)
        return
    dst_root = os.path.join(out_dir, name)

    def on_error(exc: OSError) -> None:
        failures.append(f"{exc.filename or src}: {exc.strerror or exc}")

    for dirpath, dirnames, filenames in os.walk(src, onerror=on_error):
        # Skip Cloud Sync's bookkeeping and our own output, should it sit inside the source.
        dirnames[:] = sorted(
            d for d in dirnames if d != SYSTEM_FOLDER and os.path.realpath(os.path.join(dirpath, d)) != out_real
        )
        rel = os.path.relpath(dirpath, src)
        dst_dir = os.path.normpath(os.path.join(dst_root, rel))
        try:
            os.makedirs(dst_dir, exist_ok=True)
        except OSError as exc:
            failures.append(f"{dst_dir}: {exc.strerror or exc}")
            continue
        for fname in sorted(filenames):
            if fname.endswith(_TMP_SUFFIX):
                continue  # a leftover of an interrupted run of ours
            yield os.path.join(dirpath, fname), os.path.join(dst_dir, fname)


def _decrypt_one(src: str, dst: str, password: str | None, key: rsa.RSAPrivateKey | None) -> None:
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise CryptoError("the output would overwrite the encrypted source; choose another --out folder")
    # A short hidden name in the destination folder: same file system for the rename, and no risk of
    # exceeding the name-length limit that a long source name plus a suffix could hit.
    tmp = os.path.join(os.path.dirname(dst) or ".", f".{secrets.token_hex(6)}{_TMP_SUFFIX}")
    try:
        with open(src, "rb") as f, open(tmp, "xb") as out:
            decrypt_stream(f, out, password=password, private_key=key)
            out.flush()
            os.fsync(out.fileno())
        st = os.stat(src)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def export_key_zip(public_pem: str | bytes, private_pem: str | bytes, out_path: str) -> None:
    """Write `key.zip` as Synology exports it: `public.pem` and `private.pem`, both PKCS#1 PEM.

    Checks that the two keys belong together; the zip holds a private key, so it is created mode 0600 and
    renamed into place complete. Raises CryptoError (one line) on a bad key and OSError on I/O failure.
    """
    private = load_private_key(private_pem)
    public_text = public_pem.decode("ascii") if isinstance(public_pem, bytes) else public_pem
    derived = public_pem_of(private)
    if public_text.strip() != derived.strip():
        raise CryptoError("the public and private keys of this connection do not belong together")
    private_pkcs1 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    folder = os.path.dirname(os.path.abspath(out_path))
    tmp = os.path.join(folder, f".{secrets.token_hex(6)}{_TMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("public.pem", derived)
            zf.writestr("private.pem", private_pkcs1)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_private_key_file(path: str) -> bytes:
    """The private key PEM from a `private.pem` file or from a Synology `key.zip` (its `private.pem`)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if os.path.basename(n) == "private.pem"]
                if not names:
                    raise CryptoError(f"{path}: the zip holds no private.pem")
                return zf.read(names[0])
        with open(path, "rb") as f:
            return f.read()
    except (OSError, zipfile.BadZipFile) as exc:
        raise CryptoError(f"{path}: cannot read the private key ({_reason(exc)})") from None


def read_password_file(path: str) -> str:
    """A password from a file: its first line, without the line ending (UTF-8)."""
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline()
    except UnicodeDecodeError:
        raise CryptoError(f"{path}: the password file is not UTF-8 text") from None
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read the password file ({_reason(exc)})") from None
    password = line.rstrip("\r\n")
    if not password:
        raise CryptoError(f"{path}: the password file is empty")
    return password


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
