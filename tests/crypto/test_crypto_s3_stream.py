"""The streaming objects plug into a real SDK as they are: boto3 multipart upload and download against moto."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto.server import ThreadedMotoServer

from engine.crypto import MAGIC, AccountKey, DecryptingWriter, EncryptingReader

from .conftest import PASSWORD, sample

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="crypto-test")
    try:
        yield client
    finally:
        server.stop()


def test_multipart_upload_and_download_through_the_container(s3: object, account: AccountKey) -> None:
    data = sample(12 * MiB)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)
    reader = EncryptingReader(io.BytesIO(data), account, "movie.mkv")
    s3.upload_fileobj(reader, "crypto-test", "movie.mkv", Config=config)  # type: ignore[attr-defined]
    head = s3.head_object(Bucket="crypto-test", Key="movie.mkv")  # type: ignore[attr-defined]
    assert head["ContentLength"] == reader.cipher_size
    assert "-" in head["ETag"]  # a multipart upload: the reader was read part by part
    first = s3.get_object(Bucket="crypto-test", Key="movie.mkv", Range="bytes=0-48")  # type: ignore[attr-defined]
    assert first["Body"].read() == MAGIC

    out = io.BytesIO()
    writer = DecryptingWriter(out, private_key=account.private_pem)
    s3.download_fileobj("crypto-test", "movie.mkv", writer, Config=config)  # type: ignore[attr-defined]
    writer.close()
    assert out.getvalue() == data and writer.file_name == "movie.mkv"


def test_sink_errors_pass_through_unchanged(account: AccountKey) -> None:
    container = EncryptingReader(io.BytesIO(os.urandom(100_000)), account, "x").read()

    class Full:
        def write(self, b: bytes) -> int:
            raise OSError(28, "No space left on device")

    class Closed:
        def write(self, b: bytes) -> int:
            raise ValueError("I/O operation on closed file")

    with pytest.raises(OSError, match="No space"):
        DecryptingWriter(Full(), password=PASSWORD).write(container)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="closed file"):
        DecryptingWriter(Closed(), password=PASSWORD).write(container)  # type: ignore[arg-type]
