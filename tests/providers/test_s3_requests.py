"""What one S3 upload puts on the wire (issue 19: the initial upload of many small files).

A small file's PutObject goes without `Expect: 100-continue` (no round trip to wait for "100 Continue" before a
body of a few bytes), while a body above the threshold still waits, so a refused request does not carry a large
body for nothing. Both read back byte for byte."""

from __future__ import annotations

import io
from typing import Any

from engine.providers.s3 import CONTINUE_THRESHOLD, S3Provider

from .servers import _moto, s3

MTIME = 1_700_000_000.5


def sent_headers(provider: S3Provider) -> list[tuple[str, str, dict[str, Any]]]:
    """Every request the provider's client sends from now on: (method, URL path, headers)."""
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def record(request: Any, **_: Any) -> None:
        seen.append((request.method, request.url.rsplit("/", 1)[-1], dict(request.headers)))

    provider.client.meta.events.register("before-send.s3", record)
    return seen


def test_small_puts_do_not_wait_for_continue_and_large_ones_do() -> None:
    provider = S3Provider(s3.options(_moto.new_bucket()))
    try:
        seen = sent_headers(provider)
        small = b"x" * 500
        large = b"y" * (CONTINUE_THRESHOLD + 1)
        provider.mkdir("d")
        provider.upload("d/small.txt", io.BytesIO(small), len(small), MTIME)
        provider.upload("d/large.bin", io.BytesIO(large), len(large), MTIME)
        expects = {name: headers.get("Expect") for method, name, headers in seen if method == "PUT"}
        assert expects == {"": None, "small.txt": None, "large.bin": b"100-continue"}
        for path, body in (("d/small.txt", small), ("d/large.bin", large)):
            out = io.BytesIO()
            provider.download(path, out)
            assert out.getvalue() == body
    finally:
        provider.close()
