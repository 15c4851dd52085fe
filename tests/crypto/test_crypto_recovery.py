"""Recovery without a connection: whole folders, key.zip export, and decrypting with the exported key."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from engine.crypto import AccountKey, CryptoError, EncryptingReader
from engine.crypto.recovery import (
    decrypt_paths,
    export_key_zip,
    read_password_file,
    read_private_key_file,
)

from .conftest import PASSWORD, sample


def put_encrypted(path: Path, data: bytes, account: AccountKey, mtime: int = 1_600_000_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(EncryptingReader(io.BytesIO(data), account, path.name).read())
    os.utime(path, (mtime, mtime))


@pytest.fixture
def remote_copy(tmp_path: Path, account: AccountKey) -> tuple[Path, dict[str, bytes]]:
    """A folder as downloaded from an encrypted remote: containers, nested folders, Cloud Sync bookkeeping."""
    root = tmp_path / "download" / "photos"
    plain = {
        "a.jpg": sample(30000),
        "sub/b.txt": b"hello\n",
        "sub/deeper/empty.bin": b"",
        "sub/deeper/c d é.txt": sample(9000),
    }
    for rel, data in plain.items():
        put_encrypted(root / rel, data, account)
    (root / "@SynologyCloudSync").mkdir()
    (root / "@SynologyCloudSync" / "cloudsync_encrypt.info").write_bytes(b"opaque")
    return root, plain


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("by", ["password", "private_key"])
def test_decrypts_a_folder_keeping_relative_paths(
    by: str, remote_copy: tuple[Path, dict[str, bytes]], account: AccountKey, tmp_path: Path
) -> None:
    root, plain = remote_copy
    out = tmp_path / "restored"
    cred = {"password": PASSWORD} if by == "password" else {"private_key_pem": account.private_pem.encode()}
    ok, failures = decrypt_paths([str(root)], str(out), **cred)  # type: ignore[arg-type]
    assert (ok, failures) == (len(plain), [])
    assert tree(out / "photos") == plain  # no @SynologyCloudSync, no temporary files
    assert os.stat(out / "photos" / "a.jpg").st_mtime == 1_600_000_000


def test_files_and_folders_together_with_failures_listed(
    remote_copy: tuple[Path, dict[str, bytes]], account: AccountKey, tmp_path: Path
) -> None:
    root, plain = remote_copy
    (root / "sub" / "not-encrypted.txt").write_bytes(b"plain text")
    single = tmp_path / "elsewhere" / "single.doc"
    put_encrypted(single, b"single file", account)
    missing = tmp_path / "nope"
    out = tmp_path / "restored"
    ok, failures = decrypt_paths([str(root), str(single), str(missing)], str(out), password=PASSWORD)
    assert ok == len(plain) + 1
    assert failures == [
        f"{root / 'sub' / 'not-encrypted.txt'}: not a Cloud Sync encrypted file (no container magic)",
        f"{missing}: no such file or folder",
    ]
    assert (out / "single.doc").read_bytes() == b"single file"
    assert not (out / "photos" / "sub" / "not-encrypted.txt").exists()
    assert all(".skysync-part" not in p.name for p in out.rglob("*"))


def test_output_inside_the_source_is_not_walked_again(
    remote_copy: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, plain = remote_copy
    out = root / "restored"
    ok, failures = decrypt_paths([str(root)], str(out), password=PASSWORD)
    assert (ok, failures) == (len(plain), [])
    again_ok, again_failures = decrypt_paths([str(root)], str(out), password=PASSWORD)
    assert (again_ok, again_failures) == (len(plain), [])  # the output folder was skipped, not re-read


def test_refuses_to_overwrite_the_source(account: AccountKey, tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    put_encrypted(src, b"data", account)
    before = src.read_bytes()
    ok, failures = decrypt_paths([str(src)], str(tmp_path), password=PASSWORD)
    assert ok == 0 and len(failures) == 1 and "overwrite the encrypted source" in failures[0]
    assert src.read_bytes() == before


def test_credentials_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(CryptoError):
        decrypt_paths([str(tmp_path)], str(tmp_path / "out"))
    with pytest.raises(CryptoError, match="private key"):
        decrypt_paths([str(tmp_path)], str(tmp_path / "out"), private_key_pem=b"garbage")
    assert not (tmp_path / "out").exists()


def test_export_key_zip_and_decrypt_with_it(account: AccountKey, tmp_path: Path) -> None:
    zpath = tmp_path / "key.zip"
    export_key_zip(account.public_pem, account.private_pem, str(zpath))
    assert stat.S_IMODE(os.stat(zpath).st_mode) == 0o600
    with zipfile.ZipFile(zpath) as zf:
        assert sorted(zf.namelist()) == ["private.pem", "public.pem"]
        public = zf.read("public.pem").decode()
        private = zf.read("private.pem").decode()
    assert public == account.public_pem and public.startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----") and private.rstrip().endswith(
        "-----END RSA PRIVATE KEY-----"
    )
    assert os.listdir(tmp_path) == ["key.zip"]

    # The exported key opens files, read from the zip itself or from its private.pem.
    enc = tmp_path / "enc" / "f.txt"
    put_encrypted(enc, b"secret stuff", account)
    (tmp_path / "private.pem").write_text(private)
    for key_file in (zpath, tmp_path / "private.pem"):
        out = tmp_path / f"out-{key_file.name}"
        ok, failures = decrypt_paths([str(enc)], str(out), private_key_pem=read_private_key_file(str(key_file)))
        assert (ok, failures) == (1, [])
        assert (out / "f.txt").read_bytes() == b"secret stuff"


def test_export_refuses_a_mismatched_pair(account: AccountKey, other_account: AccountKey, tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="do not belong together"):
        export_key_zip(other_account.public_pem, account.private_pem, str(tmp_path / "key.zip"))
    assert os.listdir(tmp_path) == []


def test_key_and_password_files(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("pässword with spaces \r\nsecond line\n", encoding="utf-8")
    assert read_password_file(str(tmp_path / "pw")) == "pässword with spaces "
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CryptoError, match="empty"):
        read_password_file(str(tmp_path / "empty"))
    with pytest.raises(CryptoError, match="cannot read"):
        read_password_file(str(tmp_path / "missing"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "no key here")
    with pytest.raises(CryptoError, match=r"no private\.pem"):
        read_private_key_file(str(tmp_path / "other.zip"))
