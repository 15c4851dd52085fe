"""What other tools leave in a bucket is data, never a reason to abort or delete (issues 12 and 21).

Through the real console script against moto: a bucket holding both `X` and `X/child` (legal in S3), a folder
marker that holds data, mtime metadata that makes no sense. The pass goes on for everything else, nothing the
other tool wrote is changed or deleted on either side, and the log says why.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from .servers import _moto, s3

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


class Setup:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.local = tmp / "local"
        self.local.mkdir()
        self.env = {**os.environ, "SKYSYNC_HOME": str(tmp / "home")}
        self.options = s3.options(_moto.new_bucket())
        self.bucket = self.options["bucket"]
        self.client: Any = boto3.client(
            "s3", endpoint_url=self.options["endpoint"], region_name="us-east-1",
            aws_access_key_id=self.options["access_key_id"],
            aws_secret_access_key=self.options["secret_access_key"],
        )

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([SKYSYNC, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr and "unexpected" not in p.stderr, p.stderr
        assert p.returncode == code, (args, p.stdout, p.stderr)
        return p

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def objects(self) -> dict[str, bytes]:
        out = {}
        for item in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", ()):
            out[item["Key"]] = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return out


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    opts = [a for k, v in s.options.items() for a in ("--option", f"{k}={v}")]
    s.run("connection", "add", "c", "--provider", "s3", *opts)
    s.run("task", "add", "t", "--connection", "c", "--local", str(s.local), "--remote", "/",
          "--direction", "bidirectional")
    yield s
    s.client.close()


@pytest.mark.parametrize("marker", [False, True], ids=["implicit-folder", "folder-marker"])
def test_a_file_and_a_folder_of_one_name(setup: Setup, marker: bool) -> None:
    setup.put("X", b"the file X")
    setup.put("X/child.txt", b"a child")
    if marker:
        setup.put("X/", b"")
    setup.put("fine.txt", b"fine")
    before = setup.objects()
    dry = setup.run("sync", "t", "--dry-run")
    assert "X" in dry.stdout and "both a file and a folder" in dry.stdout
    setup.run("sync", "t")
    assert (setup.local / "fine.txt").read_bytes() == b"fine"
    assert not (setup.local / "X").exists()
    (setup.local / "new.txt").write_text("new")
    setup.run("sync", "t")
    after = setup.objects()
    assert {k: v for k, v in after.items() if k != "new.txt"} == before  # nothing under X changed or went
    assert "both a file and a folder" in setup.run("log", "--task", "t").stdout


def test_a_clash_that_appears_after_the_name_was_synced(setup: Setup) -> None:
    """X was a synced folder; someone adds a file X beside it: the local folder and its files stay."""
    setup.put("X/child.txt", b"a child")
    setup.put("other.txt", b"o")
    setup.run("sync", "t")
    assert (setup.local / "X/child.txt").read_bytes() == b"a child"
    setup.put("X", b"now also a file")
    for _ in range(2):
        setup.run("sync", "t")
    assert (setup.local / "X/child.txt").read_bytes() == b"a child"
    assert setup.objects()["X/child.txt"] == b"a child" and setup.objects()["X"] == b"now also a file"


def test_a_folder_marker_that_holds_data_is_reported_never_deleted(setup: Setup) -> None:
    """Issue 21, case 4: an object `dir/` with content (another tool's) is not an empty folder to sync."""
    setup.put("dir/", b"data some tool keeps in a folder marker")
    setup.put("plain/", b"")
    setup.put("fine.txt", b"fine")
    setup.run("sync", "t")
    assert (setup.local / "plain").is_dir() and (setup.local / "fine.txt").exists()
    assert not (setup.local / "dir").exists()
    log = setup.run("log", "--task", "t").stdout
    assert "folder marker object that holds data" in log
    (setup.local / "dir").mkdir()  # the user makes a folder of that name: still nothing is deleted or replaced
    (setup.local / "dir" / "mine.txt").write_text("mine")
    setup.run("sync", "t")
    shutil.rmtree(setup.local / "dir")
    setup.run("sync", "t")
    assert setup.objects()["dir/"] == b"data some tool keeps in a folder marker"


@pytest.mark.parametrize("value", ["inf", "nan", "1e30", "-1", "soon", "1700000000123"])
def test_foreign_mtime_metadata_never_wedges_a_task(setup: Setup, value: str) -> None:
    setup.client.put_object(Bucket=setup.bucket, Key="odd.txt", Body=b"odd", Metadata={"mtime": value})
    setup.put("keep.txt", b"keep")
    setup.put("gone-later.txt", b"x")
    setup.run("sync", "t")
    assert (setup.local / "odd.txt").read_bytes() == b"odd"
    mtime = (setup.local / "odd.txt").stat().st_mtime
    if value == "1700000000123":  # milliseconds, as some tools write them
        assert abs(mtime - 1_700_000_000.123) < 0.01
    else:
        assert 1_600_000_000 < mtime < 4_000_000_000  # the service's own time, not year 2446 or an error
    (setup.local / "gone-later.txt").unlink()
    setup.run("sync", "t")  # state was written: a local deletion travels and never comes back
    assert "gone-later.txt" not in setup.objects()
    assert not (setup.local / "gone-later.txt").exists()


def test_keys_that_are_skipped_create_no_folders(setup: Setup) -> None:
    """Issue 21, case 5: a key skysync skips makes nothing locally, not even its parent folders."""
    setup.put("a//b", b"double slash")
    setup.put("deep/er/" + "n" * 300, b"a name longer than a disk takes")
    setup.put("mixed/" + "m" * 300, b"skipped")
    setup.put("mixed/kept.txt", b"kept")
    setup.put("empty-in-the-cloud/", b"")
    setup.run("sync", "t")
    made = sorted(str(p.relative_to(setup.local)) for p in setup.local.rglob("*"))
    assert made == ["empty-in-the-cloud", "mixed", "mixed/kept.txt"], made
    setup.run("sync", "t")  # and a second pass neither makes them nor fails
    assert sorted(str(p.relative_to(setup.local)) for p in setup.local.rglob("*")) == made


def test_an_object_encrypted_with_a_kms_key_downloads_without_a_hash_check() -> None:
    """Its ETag is not its MD5 (AWS computes it from the ciphertext): a download checked against it would fail
    on every pass. The answer to the download says how it is encrypted; the listing cannot."""
    from engine.providers.s3 import S3Provider

    options = s3.options(_moto.new_bucket())
    client: Any = boto3.client(
        "s3", endpoint_url=options["endpoint"], region_name="us-east-1",
        aws_access_key_id=options["access_key_id"], aws_secret_access_key=options["secret_access_key"],
    )
    client.put_object(Bucket=options["bucket"], Key="kms.txt", Body=b"sealed", ServerSideEncryption="aws:kms")
    client.put_object(Bucket=options["bucket"], Key="plain.txt", Body=b"open")
    provider = S3Provider(options)
    try:
        import io

        assert provider.download("kms.txt", io.BytesIO()).hash == ""  # nothing to check against
        assert provider.download("plain.txt", io.BytesIO()).hash  # an MD5 ETag is still checked
    finally:
        provider.close()
