"""The encrypted provider wrapper and the account key, on the `local` provider (fast, no server).

What the engine relies on: upload() returns what list() reports; what cannot be known from ciphertext is
declared so in the capabilities; @SynologyCloudSync exists after the first write and is never listed;
every decryption failure is a non-retryable ProviderError with one line, whatever the inner provider did
with it; providers that need an exact size get one.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import shutil
import threading
from collections.abc import Mapping
from typing import Any, BinaryIO

import pytest

from engine.config import Home
from engine.crypto import MAGIC, AccountKey, EncryptingReader
from engine.crypto.account import enable_encryption, has_encryption, verify_remote_password
from engine.crypto.keys import SECRET_PASSWORD, SECRET_PRIVATE_KEY, SECRET_PUBLIC_KEY
from engine.crypto.provider import DecryptionFailed, EncryptedProvider
from engine.errors import UsageError
from engine.providers.base import HashKind, MtimeMode, ProviderError, RemoteEntry, TransientError
from engine.providers.local import LocalProvider

from .conftest import PASSWORD, sample


class CountingLocal(LocalProvider):
    """The local provider, counting calls and remembering the `size` each upload was given."""

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.calls: list[str] = []
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def list_reporting(self, folder: str, on_skip):  # type: ignore[override]
        # list() comes here too: one count per listing, whichever entry point was used
        with self._lock:
            self.calls.append(f"list {folder}")
        return super().list_reporting(folder, on_skip)

    def mkdir(self, path: str) -> RemoteEntry:
        with self._lock:
            self.calls.append(f"mkdir {path}")
        return super().mkdir(path)

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, **kw: Any) -> RemoteEntry:
        self.sizes.append(size)
        return super().upload(path, src, size, mtime, **kw)


class ExactSizeProvider(CountingLocal):
    """A service whose SDK needs the exact length up front (as b2 and gcs do) and a seekable source."""

    kind = "exact-size-test"
    capabilities = dataclasses.replace(LocalProvider.capabilities, needs_size_before_upload=True)

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, **kw: Any) -> RemoteEntry:
        assert src.seekable()
        data = src.read()
        assert len(data) == size, (len(data), size)
        return super().upload(path, io.BytesIO(data), size, mtime, **kw)


class WrappingProvider(LocalProvider):
    """A provider that turns any failure while downloading into a retryable error of its own."""

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        try:
            return super().download(path, out)
        except Exception:
            raise TransientError(f"reading /{path}: the service is busy") from None


@pytest.fixture
def cloud(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "cloud"
    root.mkdir()
    return root


def wrap(inner: LocalProvider, account: AccountKey) -> EncryptedProvider:
    return EncryptedProvider(inner, account.to_secrets())


def download(provider: EncryptedProvider, path: str) -> bytes:
    out = io.BytesIO()
    provider.download(path, out)
    return out.getvalue()


def test_capabilities_and_identity_pass_through(cloud: pathlib.Path, account: AccountKey) -> None:
    inner = LocalProvider({"root": str(cloud)})
    enc = wrap(inner, account)
    assert enc.kind == "local" and enc.options == inner.options
    assert enc.identity({"root": str(cloud)}) == LocalProvider.identity({"root": str(cloud)})
    caps = enc.capabilities
    assert caps.hash_kind == HashKind.NONE and not caps.plain_sizes and caps.hash_in_listing
    assert caps.mtime_mode == MtimeMode.NATIVE == inner.capabilities.mtime_mode
    assert caps.canonical_order == inner.capabilities.canonical_order
    assert inner.capabilities.plain_sizes and inner.capabilities.hash_kind == HashKind.MD5  # not changed
    assert enc.file_hash("anything") is None


def test_upload_returns_what_list_reports_and_the_cloud_holds_containers(
    cloud: pathlib.Path, account: AccountKey
) -> None:
    inner = CountingLocal({"root": str(cloud)})
    enc = wrap(inner, account)
    data = sample(100_000)
    entry = enc.upload("photos/a.jpg", io.BytesIO(data), len(data), 1_700_000_000.0)
    listed = {e.path: e for e in enc.list("")}
    assert listed["photos/a.jpg"] == entry
    assert entry.size == (cloud / "photos/a.jpg").stat().st_size != len(data)
    assert (cloud / "photos/a.jpg").read_bytes().startswith(MAGIC)
    assert inner.sizes == [-1]  # the local provider streams: no size needed, none guessed
    assert download(enc, "photos/a.jpg") == data
    # Listed relative to a subfolder, the same entry (paths relative to it).
    assert [e.path for e in enc.list("photos")] == ["a.jpg"]


def test_the_system_folder_is_made_once_and_never_listed(cloud: pathlib.Path, account: AccountKey) -> None:
    inner = CountingLocal({"root": str(cloud)})
    enc = wrap(inner, account)
    assert list(enc.list("")) == [] and not (cloud / "@SynologyCloudSync").exists()  # listing writes nothing
    threads = [threading.Thread(target=enc.upload, args=(f"f{i}.txt", io.BytesIO(b"x"), 1, 0.0)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (cloud / "@SynologyCloudSync").is_dir()
    assert list((cloud / "@SynologyCloudSync").iterdir()) == []  # no made-up cloudsync_encrypt.info
    assert inner.calls.count("mkdir @SynologyCloudSync") == 1, inner.calls
    assert sorted(e.path for e in enc.list("")) == [f"f{i}.txt" for i in range(8)]
    # A new provider (the next pass) that has listed the root does not even look for it again.
    inner2 = CountingLocal({"root": str(cloud)})
    enc2 = wrap(inner2, account)
    list(enc2.list(""))
    enc2.mkdir("newdir")
    assert inner2.calls == ["list ", "mkdir newdir"]
    # Only at the connection root: a user folder of that name deeper down is the policy's business.
    (cloud / "newdir" / "@SynologyCloudSync").mkdir()
    assert "newdir/@SynologyCloudSync" in {e.path for e in enc2.list("")}


def test_a_service_that_needs_the_exact_size_gets_it(cloud: pathlib.Path, account: AccountKey) -> None:
    inner = ExactSizeProvider({"root": str(cloud)})
    enc = wrap(inner, account)
    for size in (0, 1, 9_000, 3 << 20):
        data = sample(size)
        entry = enc.upload(f"s{size}.bin", io.BytesIO(data), size, 0.0)
        assert entry.size == inner.sizes[-1] == (cloud / f"s{size}.bin").stat().st_size
        assert download(enc, f"s{size}.bin") == data


def test_decryption_failures_are_one_line_and_not_retryable(
    cloud: pathlib.Path, account: AccountKey, other_account: AccountKey
) -> None:
    good = sample(50_000)
    (cloud / "good.bin").write_bytes(EncryptingReader(io.BytesIO(good), account, "good.bin").read())
    container = (cloud / "good.bin").read_bytes()
    (cloud / "foreign.bin").write_bytes(EncryptingReader(io.BytesIO(good), other_account, "foreign.bin").read())
    (cloud / "truncated.bin").write_bytes(container[:-40])
    flipped = bytearray(container)
    flipped[len(flipped) // 2] ^= 0x01
    (cloud / "flipped.bin").write_bytes(bytes(flipped))
    (cloud / "plain.txt").write_bytes(b"never encrypted")
    expected = {
        "foreign.bin": "wrong password",
        "truncated.bin": "truncated container",
        "flipped.bin": "damaged container",
        "plain.txt": "not a Cloud Sync encrypted file",
    }
    for inner_cls in (LocalProvider, WrappingProvider):
        enc = wrap(inner_cls({"root": str(cloud)}), account)
        assert download(enc, "good.bin") == good
        for name, reason in expected.items():
            with pytest.raises(DecryptionFailed) as info:
                download(enc, name)
            message = str(info.value)
            assert message.startswith(f"cannot decrypt /{name}: {reason}"), message
            assert "\n" not in message and PASSWORD not in message
            assert not info.value.retryable and isinstance(info.value, ProviderError)


def test_a_cancelled_download_is_not_a_decryption_failure(cloud: pathlib.Path, account: AccountKey) -> None:
    enc = wrap(LocalProvider({"root": str(cloud)}), account)
    data = sample(3 << 20)
    enc.upload("big.bin", io.BytesIO(data), len(data), 0.0)

    class Cancelling(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
            raise InterruptedError("transfer cancelled")

    with pytest.raises(InterruptedError):
        enc.download("big.bin", Cancelling())  # type: ignore[arg-type]


def test_a_missing_key_is_a_configuration_error(cloud: pathlib.Path) -> None:
    with pytest.raises(UsageError, match="encryption key is missing from the secrets store"):
        EncryptedProvider(LocalProvider({"root": str(cloud)}), {SECRET_PASSWORD: "only the password"})


# -- the account key ---------------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: pathlib.Path, cloud: pathlib.Path) -> Home:
    from engine import manage

    home = Home(str(tmp_path / "home"))
    manage.add_connection(home, "c", "local", {"root": str(cloud)})
    return home


def test_the_first_password_makes_the_key_and_later_ones_must_match(home: Home) -> None:
    assert not has_encryption(home, "c")
    key = enable_encryption(home, "c", PASSWORD)
    secrets = home.secrets("c")
    assert {SECRET_PASSWORD, SECRET_PRIVATE_KEY, SECRET_PUBLIC_KEY} <= set(secrets)
    assert secrets[SECRET_PRIVATE_KEY].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert key.public_key.key_size == 2048
    again = enable_encryption(home, "c", PASSWORD)
    assert again.private_pem == key.private_pem  # the same key: one per account
    with pytest.raises(UsageError, match=r"^the encryption password does not match the one this connection"):
        enable_encryption(home, "c", PASSWORD + " ")
    assert home.secrets("c") == secrets
    with pytest.raises(UsageError, match="must not be empty"):
        enable_encryption(home, "c", "")
    home.save()  # the caller saves; the key survives a reload and stays out of config.toml
    reloaded = Home(home.path)
    assert AccountKey.from_secrets(reloaded.secrets("c")).private_pem == key.private_pem
    config = pathlib.Path(home.config_path).read_text()
    assert PASSWORD not in config and "PRIVATE KEY" not in config


def test_an_incomplete_key_is_reported_not_replaced(home: Home) -> None:
    home.set_secret("c", SECRET_PASSWORD, PASSWORD)
    with pytest.raises(UsageError, match="incomplete"):
        enable_encryption(home, "c", PASSWORD)
    assert set(home.secrets("c")) == {SECRET_PASSWORD}


def test_a_new_key_must_open_what_the_cloud_account_already_holds(
    home: Home, cloud: pathlib.Path, account: AccountKey, other_account: AccountKey
) -> None:
    (cloud / "@SynologyCloudSync").mkdir()
    (cloud / "@SynologyCloudSync" / "cloudsync_encrypt.info").write_bytes(b"not ours to read")
    (cloud / "notes.txt").write_bytes(b"a plain file the user keeps in the account")
    (cloud / "empty.txt").write_bytes(b"")
    plain = LocalProvider({"root": str(cloud)})
    assert verify_remote_password(plain, "anything") is None  # nothing encrypted there yet
    enc = wrap(LocalProvider({"root": str(cloud)}), other_account)  # another device's task
    enc.upload("photos/2024/a.jpg", io.BytesIO(sample(200_000)), 200_000, 0.0)

    with pytest.raises(UsageError) as info:
        enable_encryption(home, "c", PASSWORD)
    assert str(info.value) == (
        "the encryption password does not match the one the files already in this cloud account were "
        "encrypted with (/photos/2024/a.jpg)"
    )
    assert not has_encryption(home, "c")
    assert verify_remote_password(plain, other_account.password) is True
    assert verify_remote_password(plain, other_account.password, "photos") is True
    assert verify_remote_password(plain, PASSWORD, max_reads=1) is None  # gave up at the plain file
    key = enable_encryption(home, "c", other_account.password)
    assert key.private_pem != other_account.private_pem  # its own pair; the password opens both
    assert download(wrap(LocalProvider({"root": str(cloud)}), key), "photos/2024/a.jpg")


def test_the_remote_check_can_be_skipped_and_survives_an_unreachable_service(
    home: Home, cloud: pathlib.Path, other_account: AccountKey
) -> None:
    enc = wrap(LocalProvider({"root": str(cloud)}), other_account)
    enc.upload("a.bin", io.BytesIO(b"x" * 100), 100, 0.0)
    enable_encryption(home, "c", PASSWORD, check_remote=False)
    assert has_encryption(home, "c")
    shutil.rmtree(cloud)  # the connection's folder is gone: no check possible, the key is made anyway
    home2 = Home(str(cloud.parent / "home2"))
    from engine import manage

    manage.add_connection(home2, "c", "local", {"root": str(cloud)})
    enable_encryption(home2, "c", PASSWORD)
    assert has_encryption(home2, "c")
