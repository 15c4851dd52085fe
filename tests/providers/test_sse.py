"""Server-side encryption on S3 (issue 18 item 6): asked for on every write, and a consistency check over objects
sealed with a KMS key, whose ETag is not their MD5, flags nothing while it still catches a changed file.

moto answers the MD5 as the ETag of an SSE-KMS object, where AWS does not; these tests run their own moto server
in this process with the ETag of such objects made unlike their MD5 (as on AWS), or every check here would pass
for the wrong reason.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from engine import manage
from engine.config import Home, Task
from engine.providers import provider_class
from engine.providers.base import InvalidOption
from engine.providers.s3 import EARLY_DELETION_WARNING, S3Provider
from engine.sync import run_pass

KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/skysync-test"
ACCESS = {"access_key_id": "skysync-test-key", "secret_access_key": "skysync-test-secret"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.s3.models import FakeKey

    md5_etag = FakeKey.etag

    def aws_like_etag(self: Any) -> str:
        etag = md5_etag.fget(self)
        if self.encryption == "aws:kms" and "-" not in etag:
            return '"' + hashlib.md5(b"sealed" + etag.encode()).hexdigest() + '"'
        return etag

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeKey, "etag", property(aws_like_etag))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS["access_key_id"], aws_secret_access_key=ACCESS["secret_access_key"])


def _options(endpoint: str, **extra: str) -> dict[str, str]:
    bucket = f"sse-{uuid.uuid4().hex[:16]}"
    client = _client(endpoint)
    client.create_bucket(Bucket=bucket)
    client.close()
    return {"preset": "other", "endpoint": endpoint, "region": "us-east-1", "bucket": bucket, **ACCESS, **extra}


KMS = {"server_side_encryption": "aws:kms", "sse_kms_key_id": KEY_ID}


def test_options_are_checked_and_labelled() -> None:
    base = {"bucket": "photos", **ACCESS}
    S3Provider.validate_options({**base, **KMS})
    S3Provider.validate_options({**base, "server_side_encryption": "AES256"})
    with pytest.raises(InvalidOption, match="must be one of: AES256, aws:kms"):
        S3Provider.validate_options({**base, "server_side_encryption": "kms"})
    with pytest.raises(InvalidOption, match="needs server_side_encryption=aws:kms"):
        S3Provider.validate_options({**base, "server_side_encryption": "AES256", "sse_kms_key_id": KEY_ID})
    for kind in ("s3", "jdcloud"):
        specs = {spec.name: spec for spec in provider_class(kind).option_specs}
        for name in ("server_side_encryption", "sse_kms_key_id"):
            assert specs[name].label and specs[name].help and specs[name].advanced
    # Note 19, beside the storage class where Infrequent Access is chosen (as GCS says it for Nearline).
    storage = next(spec for spec in S3Provider.option_specs if spec.name == "storage_class")
    assert EARLY_DELETION_WARNING in storage.help and "early deletion charges" in EARLY_DELETION_WARNING


def test_every_write_asks_for_the_encryption(endpoint: str) -> None:
    options = _options(endpoint, part_size="5", **KMS)
    provider = S3Provider(options)
    client = _client(endpoint)
    try:
        small = b"small file"
        put = provider.upload("a/small.txt", io.BytesIO(small), len(small), 1_600_000_000)
        big = os.urandom(11 * 2**20)  # three parts of 5 MiB
        provider.upload("a/big.bin", io.BytesIO(big), len(big), 1_600_000_000)
        provider.mkdir("folder")
        provider.copy("a/small.txt", "copied.txt")
        provider.move("a/big.bin", "moved.bin")
        for key in ("a/small.txt", "folder/", "copied.txt", "moved.bin"):
            head = client.head_object(Bucket=options["bucket"], Key=key)
            assert head["ServerSideEncryption"] == "aws:kms", key
            assert head["SSEKMSKeyId"] == KEY_ID, key
        head = client.head_object(Bucket=options["bucket"], Key="a/small.txt")
        assert head["ETag"].strip('"') != hashlib.md5(small).hexdigest()  # as on AWS: not the MD5
        assert head["Metadata"]["md5"] == hashlib.md5(small).hexdigest()  # kept for checks
        # What the upload answers and what a HEAD finds is the content's MD5, never the sealed ETag.
        assert put.hash == hashlib.md5(small).hexdigest()
        assert provider.file_hash("copied.txt") == hashlib.md5(small).hexdigest()
        # A listing cannot tell a sealed ETag from an MD5: it shows none.
        assert {e.path: e.hash for e in provider.list("") if not e.is_dir}["a/small.txt"] is None
        assert not provider.capabilities.hash_in_listing
    finally:
        client.close()
        provider.close()


def test_aes256_keeps_md5_etags(endpoint: str) -> None:
    options = _options(endpoint, server_side_encryption="AES256")
    provider = S3Provider(options)
    try:
        data = b"sealed by S3's own keys"
        provider.upload("x.txt", io.BytesIO(data), len(data), 1_600_000_000)
        listed = {e.path: e for e in provider.list("")}
        assert listed["x.txt"].hash == hashlib.md5(data).hexdigest()  # SSE-S3 ETags are MD5s: listed
        assert provider.capabilities.hash_in_listing
    finally:
        provider.close()


def _home(tmp_path: pathlib.Path, options: dict[str, str]) -> tuple[Home, pathlib.Path]:
    home = Home(str(tmp_path / "home"))
    local = tmp_path / "local"
    local.mkdir()
    manage.add_connection(home, "c", "s3", options)
    manage.add_task(home, Task("t", "c", str(local), "/", direction="bidirectional", consistency_check=True))
    home.save()
    return home, local


def _pass(home: Home) -> dict[str, int]:
    result = run_pass(Home(home.path), "t", hostname="testhost")
    assert result.exit_code == 0, result.as_dict()
    return {kind: n for kind, n in result.summary.items() if n}


def _same_stat_rewrite(path: pathlib.Path, data: bytes) -> None:
    """New content of the same size with the old mtime: only a hash can tell."""
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_consistency_check_over_sse_kms_objects_flags_nothing(tmp_path: pathlib.Path, endpoint: str) -> None:
    options = _options(endpoint, part_size="5", **KMS)
    home, local = _home(tmp_path, options)
    (local / "notes.txt").write_bytes(b"written here, sealed there")
    (local / "big.bin").write_bytes(os.urandom(6 * 2**20))  # multipart: its MD5 is the one hashed on the way
    client = _client(endpoint)
    try:
        # Another tool's objects: one sealed with a KMS key (no md5 metadata), one plain.
        client.put_object(Bucket=options["bucket"], Key="foreign-kms.txt", Body=b"theirs, sealed",
                          ServerSideEncryption="aws:kms", SSEKMSKeyId=KEY_ID)
        client.put_object(Bucket=options["bucket"], Key="foreign-plain.txt", Body=b"theirs, plain")
        first = _pass(home)
        assert first.get("uploaded") == 2 and first.get("downloaded") == 2, first
        head = client.head_object(Bucket=options["bucket"], Key="notes.txt")
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["ETag"].strip('"') != hashlib.md5(b"written here, sealed there").hexdigest()

        assert _pass(home) == {}  # the check flags none of them
        assert _pass(home) == {}
        assert not [p for p in local.rglob("*") if "Conflict" in p.name]

        # The check still works: a same-size, same-mtime rewrite is found, on our sealed object and on both of
        # theirs (the check cannot tell which side changed: both versions are kept, as for any such finding).
        _same_stat_rewrite(local / "notes.txt", b"WRITTEN HERE, SEALED THERE")
        _same_stat_rewrite(local / "foreign-plain.txt", b"THEIRS, PLAIN")
        _same_stat_rewrite(local / "foreign-kms.txt", b"THEIRS, SEALED")
        found = _pass(home)
        assert found == {"conflict": 3}, found
        assert (local / "foreign-kms.txt").read_bytes() == b"THEIRS, SEALED"
        assert _pass(home) == {}
    finally:
        client.close()


def test_an_rclone_remote_brings_its_encryption_over() -> None:
    values = {"type": "s3", "provider": "AWS", "access_key_id": "k", "secret_access_key": "s",
              "server_side_encryption": "aws:kms", "sse_kms_key_id": KEY_ID}
    kind, options, notes = manage.rclone_connection("aws", values, "photos")
    assert kind == "s3" and options["server_side_encryption"] == "aws:kms" and options["sse_kms_key_id"] == KEY_ID
    assert not any("server_side_encryption" in note or "sse_kms_key_id" in note for note in notes)
