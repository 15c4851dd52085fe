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
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

KIND = "gcs"
EXTRA = {"multipart_hash": "exact"}  # resumable uploads still end as one object with its MD5

_lock = threading.Lock()
_state: dict[str, Any] = {}
_counter = itertools.count()


def _emulator() -> Any:
    """An in-memory emulator on a free port of 127.0.0.1 (not started)."""
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server._api.daemon = True  # a non-daemon server thread would keep its process alive at exit
    # The emulator re-serialises the metadata of every object after each write, even in memory, so a write
    # costs O(objects) and 1,000 uploads take a minute; nothing reads that file back in memory mode.
    server._storage._write_config_to_file = lambda: None
    return server


def _stop() -> None:
    proc = _state.pop("proc", None)
    if proc is not None:
        proc.stdin.close()  # the emulator exits when its stdin closes (also if this process dies)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def endpoint() -> str:
    """The session's emulator, started on first use in a child process: its single-threaded HTTP server
    then runs on the second core instead of competing with the tests for this process's GIL."""
    with _lock:
        if "url" not in _state:
            repo = str(pathlib.Path(__file__).resolve().parents[3])
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.providers.servers.gcs"],
                cwd=repo, env={**os.environ, "PYTHONPATH": repo},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            _state["proc"] = proc
            atexit.register(_stop)
            line = proc.stdout.readline().decode().strip() if proc.stdout else ""
            if not line.startswith("http://"):
                _stop()
                raise RuntimeError("the GCS emulator did not start")
            _state["url"] = line
        return _state["url"]


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


if __name__ == "__main__":  # the session emulator's child process: serve until stdin closes
    emulator = _emulator()
    emulator.start()
    print(f"http://127.0.0.1:{emulator._api._httpd.server_address[1]}", flush=True)
    sys.stdin.read()
    emulator.stop()
