"""An encrypted two-way task against moto S3, through the real engine pass.

What must hold: the bucket only ever holds Cloud Sync containers (plus folder markers and `@SynologyCloudSync`),
the local side stays plain, and changes, deletions and conflicts behave as in an unencrypted task although
every remote size and ETag is that of the ciphertext. Another device with the same account key is played by a
plain boto3 client writing containers of its own.
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from engine import manage
from engine.config import Home, Task
from engine.crypto import MAGIC, AccountKey, DecryptingWriter, EncryptingReader
from engine.crypto.keys import SECRET_PASSWORD
from engine.errors import UsageError
from engine.events import Event, LogRecord
from engine.sync import PassResult, run_pass

from .conftest import PASSWORD

# The shared moto server of the provider suite (tests/ is on sys.path: pytest's rootdir-relative imports).
from providers.servers import _moto, s3 as s3_server  # isort: skip

MiB = 1 << 20
SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"
MAGIC_TEXT = b"__CLOUDSYNC_ENC__"


@dataclass
class Env:
    home_path: str
    local: pathlib.Path
    bucket: str
    client: Any
    records: list[LogRecord] = field(default_factory=list)

    def sync(self, **kw: Any) -> PassResult:
        self.records.clear()

        def on_event(event: Event) -> None:
            if isinstance(event, LogRecord):
                self.records.append(event)

        return run_pass(Home(self.home_path), "t", hostname="h", on_event=on_event, **kw)

    def key(self) -> AccountKey:
        return AccountKey.from_secrets(Home(self.home_path).secrets("s3c"))

    def objects(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                out[item["Key"]] = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return out

    def put_container(self, key: str, data: bytes, account: AccountKey, mtime: float | None = None) -> None:
        """What another device with this account key uploads."""
        body = EncryptingReader(io.BytesIO(data), account, key.rpartition("/")[2]).read()
        meta = {"mtime": str(mtime if mtime is not None else time.time())}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=meta)

    def local_files(self) -> dict[str, bytes]:
        """Every file under the local folder, hidden ones (a temp file left behind) included."""
        out: dict[str, bytes] = {}
        for dirpath, _, names in os.walk(self.local):
            for name in names:
                full = pathlib.Path(dirpath, name)
                out[full.relative_to(self.local).as_posix()] = full.read_bytes()
        return out

    def errors(self) -> dict[str, str]:
        return {r.path: r.message for r in self.records if r.kind == "error"}


def decrypt(body: bytes, account: AccountKey, *, by: str = "private_key") -> tuple[bytes, str | None]:
    out = io.BytesIO()
    kw = {"private_key": account.private_pem} if by == "private_key" else {"password": account.password}
    writer = DecryptingWriter(out, **kw)  # type: ignore[arg-type]
    writer.write(body)
    writer.close()
    return out.getvalue(), writer.file_name


def write(path: pathlib.Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def transferred(result: PassResult) -> dict[str, int]:
    return {k: v for k, v in result.summary.items() if k not in ("skipped",)}


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    with s3_server.serve(tmp_path) as options:
        home = Home(str(tmp_path / "home"))
        local = tmp_path / "local"
        local.mkdir()
        manage.add_connection(home, "s3c", "s3", {**options, "part_size": "5"})
        manage.add_task(home, Task("t", "s3c", str(local), "/", direction="bidirectional", encrypt=True), PASSWORD)
        home.save()
        client = boto3.client(
            "s3",
            endpoint_url=options["endpoint"],
            region_name="us-east-1",
            aws_access_key_id=_moto.ACCESS_KEY_ID,
            aws_secret_access_key=_moto.SECRET_ACCESS_KEY,
        )
        try:
            yield Env(home.path, local, options["bucket"], client)
        finally:
            client.close()


def assert_only_containers(env: Env, expected_plain: dict[str, bytes]) -> None:
    """Every object is a container of the expected plaintext (by the private key) or a folder marker."""
    account = env.key()
    objects = env.objects()
    assert "@SynologyCloudSync/" in objects
    files = {k: v for k, v in objects.items() if not k.endswith("/")}
    assert set(files) == set(expected_plain)
    for key, body in files.items():
        assert body.startswith(MAGIC_TEXT) and body.startswith(MAGIC), key
        plain, name = decrypt(body, account)
        assert plain == expected_plain[key], key
        assert name == key.rpartition("/")[2]
        assert expected_plain[key] not in body or not expected_plain[key], f"{key} holds its plaintext"
    for key, body in objects.items():
        if key.endswith("/"):
            assert body == b"", key


def test_encrypted_two_way_task(env: Env, tmp_path: pathlib.Path) -> None:
    big = os.urandom(6 * MiB)  # above the 5 MiB part size: a multipart upload of a stream of unknown size
    text = b"The quick brown fox jumps over the lazy dog. " * 2000
    files = {
        "a.txt": b"alpha",
        "empty.txt": b"",
        "sub/text.txt": text,
        "sub/deep/c.txt": b"charlie",
        "sub/big.bin": big,
    }
    for rel, data in files.items():
        write(env.local / rel, data)
    (env.local / "emptydir").mkdir()

    # 1. Everything goes up as containers; the bucket holds no plaintext and the local side is untouched.
    first = env.sync()
    assert first.exit_code == 0, env.records
    assert first.summary.get("uploaded") == 5
    assert_only_containers(env, files)
    assert "emptydir/" in env.objects()
    assert env.local_files() == files
    head = env.client.head_object(Bucket=env.bucket, Key="sub/big.bin")
    assert "-" in head["ETag"]  # multipart: the container was streamed in parts
    text_size = env.client.head_object(Bucket=env.bucket, Key="sub/text.txt")["ContentLength"]
    assert text_size < len(text) // 10  # LZ4 inside the container: the listed size is not the plain size

    # 2. A second pass transfers nothing, and costs no object read or write: listed ciphertext sizes and
    # ETags match the state exactly.
    _moto.reset_counts()
    again = env.sync()
    assert transferred(again) == {}, env.records
    counts = _moto.request_counts()
    assert set(counts) <= {"GET list"}, counts

    # 3. Changes on both sides, and a deletion on the local side.
    account = env.key()
    env.put_container("a.txt", b"alpha from another device", account)
    env.put_container("new/remote.txt", b"made elsewhere", account)
    write(env.local / "sub/text.txt", text + b"more")
    (env.local / "sub/deep/c.txt").unlink()
    third = env.sync()
    assert third.exit_code == 0, env.records
    assert third.summary.get("downloaded") == 2 and third.summary.get("uploaded") == 1, third.summary
    assert third.summary.get("deleted-remote") == 1, third.summary
    files.update({"a.txt": b"alpha from another device", "new/remote.txt": b"made elsewhere"})
    files["sub/text.txt"] = text + b"more"
    del files["sub/deep/c.txt"]
    assert env.local_files() == files  # plain, and no temp file left behind
    assert_only_containers(env, files)
    assert transferred(env.sync()) == {}

    # 4. A deletion on the remote side (the file and its implicit folder, which had no marker of its own).
    env.client.delete_object(Bucket=env.bucket, Key="new/remote.txt")
    fourth = env.sync()
    assert fourth.summary == {"deleted-local": 2}, fourth.summary
    del files["new/remote.txt"]
    assert env.local_files() == files and not (env.local / "new").exists()

    # 5. Changed on both sides: the remote version becomes a conflict copy on both sides. Both sides made the
    # same new file: equal content, so no conflict although the listed size is the ciphertext's.
    write(env.local / "a.txt", b"local edit")
    env.put_container("a.txt", b"remote edit!", account)
    write(env.local / "same.txt", b"identical on both sides")
    env.put_container("same.txt", b"identical on both sides", account)
    fifth = env.sync()
    assert fifth.exit_code == 0, env.records
    assert fifth.summary.get("conflict") == 1, fifth.summary
    assert fifth.summary.get("record") == 1, fifth.summary
    local_now = env.local_files()
    copies = [p for p in local_now if p.startswith("a_h_Conflict_")]
    assert len(copies) == 1, local_now
    assert local_now["a.txt"] == b"local edit" and local_now[copies[0]] == b"remote edit!"
    files.update({"a.txt": b"local edit", copies[0]: b"remote edit!", "same.txt": b"identical on both sides"})
    assert local_now == files
    assert_only_containers(env, {**files, "same.txt": b"identical on both sides"})

    # 6. Settled: nothing more to do.
    assert transferred(env.sync()) == {}

    # 7. Whatever was downloaded from the bucket, by any means, comes back with the password alone.
    mirror = tmp_path / "mirror"
    for key, body in env.objects().items():
        target = mirror / key
        if key.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            write(target, body)
    password_file = tmp_path / "pw.txt"
    password_file.write_text(PASSWORD + "\n")
    out = tmp_path / "recovered"
    p = subprocess.run(
        [SKYSYNC, "decrypt", "--password-file", str(password_file), str(mirror), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SKYSYNC_HOME": env.home_path},
    )
    assert p.returncode == 0, p.stderr
    recovered = {
        pathlib.Path(d, n).relative_to(out / "mirror").as_posix(): pathlib.Path(d, n).read_bytes()
        for d, _, names in os.walk(out / "mirror")
        for n in names
    }
    assert recovered == files
    assert not (out / "mirror" / "@SynologyCloudSync").exists()


def test_a_wrong_key_or_a_plain_object_fails_cleanly(env: Env, other_account: AccountKey) -> None:
    write(env.local / "mine.txt", b"mine")
    assert env.sync().exit_code == 0
    # A container made with another account's key, and an object nobody encrypted.
    env.put_container("foreign.txt", b"not for you", other_account)
    env.client.put_object(Bucket=env.bucket, Key="plain.txt", Body=b"plain text")
    env.put_container("dir/ok.txt", b"fine", env.key())

    result = env.sync()
    assert result.exit_code == 1 and result.failed == 2, env.records
    assert result.summary.get("downloaded") == 1
    errors = env.errors()
    assert set(errors) == {"foreign.txt", "plain.txt"}
    assert errors["foreign.txt"] == (
        "cannot decrypt /foreign.txt: wrong password: it is not the one this file was encrypted with"
    )
    assert errors["plain.txt"].startswith("cannot decrypt /plain.txt: not a Cloud Sync encrypted file")
    assert all("\n" not in m for m in errors.values())
    assert all(PASSWORD not in m for m in errors.values())
    # Nothing under the destination names, no temporary file left behind; the good file arrived.
    assert env.local_files() == {"mine.txt": b"mine", "dir/ok.txt": b"fine"}

    # The failures repeat (nothing was recorded as synced), and nothing else moves.
    again = env.sync()
    assert again.failed == 2 and transferred(again) == {"failed": 2}, again.summary
    assert env.local_files() == {"mine.txt": b"mine", "dir/ok.txt": b"fine"}
    # The foreign file is untouched on the remote: a failed download never deletes or overwrites.
    assert env.objects()["foreign.txt"].startswith(MAGIC)


def test_the_password_is_one_per_connection(env: Env, tmp_path: pathlib.Path) -> None:
    home = Home(env.home_path)
    manage.remove_task(home, "t")  # its remote folder is the root; the key stays with the connection
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(UsageError, match="does not match the one this connection already uses"):
        manage.add_task(home, Task("t2", "s3c", str(other), "/other", encrypt=True), "not the password")
    assert not home.has_task("t2")
    manage.add_task(home, Task("t2", "s3c", str(other), "/other", encrypt=True), PASSWORD)
    home.save()
    assert Home(env.home_path).secrets("s3c")[SECRET_PASSWORD] == PASSWORD
    # Both tasks share the key: what one uploads the other's key opens.
    write(other / "x.txt", b"x")
    assert run_pass(Home(env.home_path), "t2", hostname="h").exit_code == 0
    body = env.objects()["other/x.txt"]
    assert decrypt(body, env.key(), by="password")[0] == b"x"
    assert "@SynologyCloudSync/" in env.objects()  # at the connection root, not in the task's folder
    assert "other/@SynologyCloudSync/" not in env.objects()


def test_another_device_with_the_same_password_reads_and_matches(env: Env, tmp_path: pathlib.Path) -> None:
    """A second home on the same bucket with the same password (its own RSA pair): downloads open by password,
    and files it already holds with the same content are recorded, not doubled as conflicts."""
    files = {"a.txt": b"alpha", "sub/b.txt": b"bravo" * 500, "sub/c.txt": b"charlie"}
    for rel, data in files.items():
        write(env.local / rel, data)
    assert env.sync().exit_code == 0

    home2 = Home(str(tmp_path / "home2"))
    local2 = tmp_path / "local2"
    write(local2 / "a.txt", b"alpha")  # already there, same content
    write(local2 / "sub/b.txt", b"bravo" * 500)
    manage.add_connection(home2, "s3c", "s3", s3_server.options(env.bucket))
    # A mistyped password is refused at once: it does not open the containers already in the bucket.
    _moto.reset_counts()
    with pytest.raises(UsageError, match="files already in this cloud account were encrypted with"):
        manage.add_task(home2, Task("t", "s3c", str(local2), "/", encrypt=True), PASSWORD + "!")
    assert not home2.secrets("s3c") or "encryption_password" not in home2.secrets("s3c")
    assert _moto.request_counts() == {"GET list": 1, "GET": 1}  # one listing page, one header read
    manage.add_task(home2, Task("t", "s3c", str(local2), "/", direction="bidirectional", encrypt=True), PASSWORD)
    home2.save()
    assert home2.secrets("s3c")["encryption_public_key"] != env.key().public_pem

    result = run_pass(Home(home2.path), "t", hostname="h2")
    assert result.exit_code == 0
    assert result.summary == {"record": 2, "downloaded": 1}, result.summary
    assert (local2 / "sub/c.txt").read_bytes() == b"charlie"
    assert sorted(p.name for p in local2.rglob("*") if p.is_file()) == ["a.txt", "b.txt", "c.txt"]
    assert transferred(run_pass(Home(home2.path), "t", hostname="h2")) == {}
