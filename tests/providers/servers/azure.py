"""`azure`: Azurite, Microsoft's Azure Blob emulator from npm, one process for the whole session.

`make test` installs it under .node/ and passes its path in SKYSYNC_AZURITE. It always runs with
`--disableTelemetry` (otherwise it reaches for the internet) and `--skipApiVersionCheck` (the SDK may be newer
than the emulator), bound to 127.0.0.1 on a free port. Its data stays in memory (several times faster than its
on-disk database, and `--location` cannot be combined with that); it runs in a temporary folder removed at exit.
Every `serve()` gets a fresh container.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

KIND = "azure"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SMALL_PART_OPTIONS = {"block_size": "1"}  # MiB
EXTRA = {"multipart_hash": "exact"}  # the provider commits the whole file's MD5 with the block list

_REPO = pathlib.Path(__file__).resolve().parents[3]
_lock = threading.Lock()
_server: tuple[subprocess.Popen[bytes], int, str] | None = None
_counter = itertools.count()


def _binary() -> str | None:
    candidates = [os.environ.get("SKYSYNC_AZURITE", ""), str(_REPO / ".node/node_modules/.bin/azurite-blob")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def unavailable() -> str | None:
    if _binary() is None:
        return "Azurite is not installed (make test installs it under .node/)"
    if shutil.which("node") is None:
        return "node is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop() -> None:
    global _server
    if _server is not None:
        proc, _, location = _server
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(location, ignore_errors=True)
        _server = None


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM Azurite if the test process dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def port() -> int:
    """The port of the session's Azurite, started on first use."""
    global _server
    with _lock:
        if _server is None:
            binary = _binary()
            assert binary is not None, unavailable()
            location = tempfile.mkdtemp(prefix="skysync-azurite-")
            p = _free_port()
            proc = subprocess.Popen(
                [binary, "--blobHost", "127.0.0.1", "--blobPort", str(p), "--inMemoryPersistence",
                 "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
                cwd=location,
                # PDEATHSIG fires when the forking *thread* ends, so only tie Azurite to the main thread.
                preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _server = (proc, p, location)
            atexit.register(_stop)
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", p), 0.5):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    _stop()
                    raise RuntimeError("Azurite did not start")
                time.sleep(0.1)
        return _server[1]


def endpoint() -> str:
    return f"http://127.0.0.1:{port()}/{ACCOUNT}"


def connection_string() -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint()};"


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    from azure.storage.blob import BlobServiceClient

    name = f"skysync-{os.getpid()}-{next(_counter)}"
    with BlobServiceClient.from_connection_string(connection_string()) as service:
        service.create_container(name)
        try:
            yield {"container": name, "account_name": ACCOUNT, "account_key": KEY, "endpoint": endpoint()}
        finally:
            with contextlib.suppress(Exception):
                service.delete_container(name)


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    import base64

    return {**options, "account_key": base64.b64encode(b"not the key" * 6).decode()}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "container": "no-such-container"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "endpoint": f"http://{address}/{ACCOUNT}"}
