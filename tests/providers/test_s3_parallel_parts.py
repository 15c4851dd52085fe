"""Parallel parts of one large file on S3 (issue 19 item 3): `upload_concurrency` parts really travel at once
(seen at a proxy in front of moto), the object reads back byte for byte, and a failed part aborts the upload
after the parts still in flight are done, leaving neither an object nor an unfinished upload behind."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest

from engine.providers.base import InvalidOption, PermissionDenied
from engine.providers.s3 import S3Provider, send_parts
from tests.fakes.faulty_proxy import FaultyProxy

from .servers import _moto, s3

MIB = 1 << 20
MTIME = 1_700_000_000.5


class MeetingProxy(FaultyProxy):
    """Holds the first `parties` UploadPart requests until that many are inside the proxy at the same time.

    Parts sent one after another never meet: the first waits alone until `timeout` and the meeting is recorded
    as failed. No sleeping: the test waits for the meeting itself."""

    def __init__(self, upstream: str, parties: int, timeout: float = 10.0) -> None:
        super().__init__(upstream)
        self.meeting = threading.Barrier(parties, timeout=timeout)
        self.parties = parties
        self.arrived = 0
        self.met = False
        self.broken = False
        self._count_lock = threading.Lock()

    def decide(self, method: str, target: str) -> str | None:
        params = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
        if method == "PUT" and "partNumber" in params:
            with self._count_lock:
                self.arrived += 1
                waits = self.arrived <= self.parties
            if waits:
                try:
                    self.meeting.wait()
                    self.met = True
                except threading.BrokenBarrierError:
                    self.broken = True
        return super().decide(method, target)


def _client() -> Any:
    return boto3.client("s3", endpoint_url=_moto.endpoint(), region_name="us-east-1",
                        aws_access_key_id=_moto.ACCESS_KEY_ID, aws_secret_access_key=_moto.SECRET_ACCESS_KEY)


@pytest.fixture
def bucket() -> str:
    return _moto.new_bucket("par")


@pytest.fixture
def client() -> Iterator[Any]:
    made = _client()
    yield made
    made.close()


def test_parts_of_one_file_travel_together_and_read_back_identical(bucket: str, client: Any) -> None:
    data = os.urandom(5 * 5 * MIB + 12345)  # six 5 MiB parts, the last one short
    with MeetingProxy(_moto.endpoint(), parties=4) as proxy:
        provider = S3Provider({**s3.options(bucket), "endpoint": proxy.endpoint, "part_size": "5",
                               "upload_concurrency": "4"})
        try:
            entry = provider.upload("big/file.bin", io.BytesIO(data), len(data), MTIME)
        finally:
            provider.close()
        parts = [target for method, target, _ in proxy.trace if method == "PUT" and "partNumber=" in target]
    assert proxy.met and not proxy.broken, "four parts were never inside the proxy at the same time"
    assert len(parts) == 6
    assert entry.size == len(data) and entry.revision.endswith("-6")
    body = client.get_object(Bucket=bucket, Key="big/file.bin")
    assert body["Body"].read() == data
    assert body["ETag"].strip('"') == entry.revision
    assert body["Metadata"]["mtime"] == "1700000000.5"


def test_one_part_at_a_time_when_asked(bucket: str, client: Any) -> None:
    data = os.urandom(3 * 5 * MIB + 1)
    with MeetingProxy(_moto.endpoint(), parties=2, timeout=1.0) as proxy:
        provider = S3Provider({**s3.options(bucket), "endpoint": proxy.endpoint, "part_size": "5",
                               "upload_concurrency": "1"})
        try:
            provider.upload("one.bin", io.BytesIO(data), len(data), MTIME)
        finally:
            provider.close()
    assert proxy.broken and not proxy.met  # sequential parts never meet
    assert client.get_object(Bucket=bucket, Key="one.bin")["Body"].read() == data


class _Refused:
    """A raw body for botocore: S3's AccessDenied error XML."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
               b"<Message>Access Denied</Message></Error>")


def test_a_failed_part_aborts_the_upload_after_the_parts_in_flight(bucket: str, client: Any) -> None:
    from botocore.awsrequest import AWSResponse

    data = os.urandom(8 * 5 * MIB)
    provider = S3Provider({**s3.options(bucket), "part_size": "5", "upload_concurrency": "3"})
    events: list[tuple[str, int]] = []
    lock = threading.Lock()

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        params = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
        with lock:
            if request.method == "DELETE" and "uploadId" in params:
                events.append(("abort", 0))
            elif "partNumber" in params:
                number = int(params["partNumber"])
                events.append(("sent", number))
                if number == 3:  # refused for good (AccessDenied is not retried)
                    return AWSResponse(request.url, 403, {"Content-Type": "application/xml"}, _Refused())
        return None

    def after_part(http_response: Any = None, model: Any = None, **_: Any) -> None:
        with lock:
            events.append(("answered", 0))

    provider.client.meta.events.register("before-send.s3", before_send)
    provider.client.meta.events.register("after-call.s3.UploadPart", after_part)
    try:
        with pytest.raises(PermissionDenied, match=r"writing /broken\.bin"):
            provider.upload("broken.bin", io.BytesIO(data), len(data), MTIME)
    finally:
        provider.close()
    sent = [number for what, number in events if what == "sent"]
    assert 3 in sent and len(sent) < 8  # the reading stopped: not every part was sent
    abort = events.index(("abort", 0))
    assert abort == len(events) - 1  # after every part sent had its answer
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_send_parts_keeps_order_and_bounds_what_is_read_ahead() -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def numbered() -> Iterator[tuple[int, bytes]]:
        for number in range(1, 11):
            yield number, bytes([number]) * number

    def upload_part(number: int, body: bytes) -> int:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            if in_flight == 3:
                release.set()
        release.wait(5)  # the first parts wait until three are out together
        with lock:
            in_flight -= 1
        return number * 100

    answers, total = send_parts(numbered(), upload_part, 3)
    assert answers == [n * 100 for n in range(1, 11)]
    assert total == sum(range(1, 11))
    assert most == 3  # never more than the setting, and the setting was reached


@pytest.mark.parametrize("value", ["0", "17", "two", "-1"])
def test_upload_concurrency_out_of_range_is_one_line(value: str) -> None:
    with pytest.raises(InvalidOption, match=r"option 'upload_concurrency' must be a whole number, 1\.\.16"):
        S3Provider.validate_options({**s3.options("some-bucket"), "upload_concurrency": value})


def test_the_option_has_a_label_and_help() -> None:
    spec = {s.name: s for s in S3Provider.option_specs}["upload_concurrency"]
    assert spec.label and spec.help and spec.advanced and spec.default == "4"
