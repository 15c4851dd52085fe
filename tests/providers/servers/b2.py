"""`b2`: b2sdk's in-process RawSimulator behind the real B2Api (there is no B2 server to run locally).

The provider's `api_factory` seam is pointed at one shared simulator for the session; every `serve()` creates
a fresh bucket in it. An `endpoint` that is an http URL still gets the real HTTP client, so the
unreachable-server test exercises b2sdk's own network errors.
"""

from __future__ import annotations

import contextlib
import itertools
import pathlib
from collections.abc import Iterator
from typing import Any

from b2sdk.v2 import B2Api, B2Http, B2HttpApiConfig, B2Session, InMemoryAccountInfo, RawSimulator

from engine.providers import b2 as b2_provider

KIND = "b2"
# The simulator accepts parts of 200 bytes; serve() lowers the provider's floor (B2's 5 MiB) to 1 MiB so a
# multipart test moves about 2 MiB. part_size is in MiB.
SMALL_PART_OPTIONS = {"part_size": "1"}
EXTRA = {"multipart_hash": "none"}

_SIM = RawSimulator()
_ACCOUNT_ID, _MASTER_KEY = _SIM.create_account()
_COUNTER = itertools.count()


class _OneTryHttp(B2Http):
    """b2sdk's HTTP layer without its own retries (5 tries, 8 s of backoff on a refused connection): the
    unreachable-server test checks how the provider reports the failure, not b2sdk's patience."""

    @classmethod
    def _translate_and_retry(cls, fcn: Any, try_count: int, post_params: Any = None) -> Any:
        return super()._translate_and_retry(fcn, 1, post_params)


class _OneTrySession(B2Session):
    B2HTTP_CLASS = staticmethod(_OneTryHttp)


class _OneTryApi(B2Api):
    SESSION_CLASS = staticmethod(_OneTrySession)


def _api(realm: str) -> B2Api:
    if realm.startswith("http"):
        return _OneTryApi(InMemoryAccountInfo())
    return B2Api(InMemoryAccountInfo(), api_config=B2HttpApiConfig(_raw_api_class=lambda _http: _SIM))


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    name = f"skysync-test-{next(_COUNTER)}"
    token = _SIM.authorize_account(_SIM.API_URL, _ACCOUNT_ID, _MASTER_KEY)["authorizationToken"]
    _SIM.create_bucket(_SIM.API_URL, token, _ACCOUNT_ID, name, "allPrivate")
    previous = b2_provider.api_factory, b2_provider.min_part_size_bytes, b2_provider.max_simple_copy_bytes
    b2_provider.api_factory, b2_provider.min_part_size_bytes = _api, 1 << 20
    b2_provider.max_simple_copy_bytes = 200  # the simulator copies at most this in one b2_copy_file
    try:
        yield {"bucket": name, "key_id": _ACCOUNT_ID, "application_key": _MASTER_KEY}
    finally:
        b2_provider.api_factory, b2_provider.min_part_size_bytes, b2_provider.max_simple_copy_bytes = previous


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    return {**options, "application_key": "wrong-" + options["application_key"]}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "bucket": "no-such-bucket-here"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "endpoint": f"http://{address}"}
