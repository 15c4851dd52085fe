"""`gcs`: gcp-storage-emulator, in memory, in a thread of the test process on 127.0.0.1.

The emulator checks no credentials, so the provider talks to it with anonymous credentials through its
`endpoint` option. Bad credentials are tested the way they fail for real: a service-account key whose token
endpoint (on 127.0.0.1) refuses to issue a token. Every `serve()` gets a fresh bucket.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

KIND = "gcs"
EXTRA = {"multipart_hash": "exact"}  # resumable uploads still end as one object with its MD5

_lock = threading.Lock()
_server: Any = None
_port = 0
_counter = itertools.count()


def _stop() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def endpoint() -> str:
    global _server, _port
    with _lock:
        if _server is None:
            from gcp_storage_emulator.server import create_server

            logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
            _server = create_server("127.0.0.1", 0, in_memory=True)
            _server._api.daemon = True  # a non-daemon server thread would keep the test process alive
            # The emulator re-serialises the metadata of every object after each write, even in memory, so a
            # write costs O(objects) and 1,000 uploads take a minute; nothing reads that file back in memory
            # mode, so skip it.
            _server._storage._write_config_to_file = lambda: None
            _server.start()
            _port = _server._api._httpd.server_address[1]
            atexit.register(_stop)
    return f"http://127.0.0.1:{_port}"


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    url = endpoint()
    name = f"skysync-{os.getpid()}-{next(_counter)}"
    client = storage.Client(project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url})
    client.create_bucket(name)
    try:
        yield {"bucket": name, "project": "test", "endpoint": url}
    finally:
        client.close()


_KEY_PEM: str | None = None


def service_account_json(token_uri: str) -> str:
    """A well-formed service-account key (fresh RSA key, fake identity) whose tokens come from `token_uri`."""
    global _KEY_PEM
    if _KEY_PEM is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY_PEM = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": "0" * 40,
            "private_key": _KEY_PEM,
            "client_email": "skysync-test@test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    # The emulator has no token endpoint: the token request is refused (404), as Google refuses a revoked key.
    return {**options, "credentials_json": service_account_json(options["endpoint"] + "/token")}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "bucket": "no-such-bucket"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "endpoint": f"http://{address}"}
