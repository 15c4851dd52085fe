"""One moto S3 server for the whole session, behind a gate that checks the access key and counts requests.

moto accepts any credentials, so the gate answers 403 InvalidAccessKeyId (S3's own error XML) to requests
signed with another access key id than `ACCESS_KEY_ID`; signatures themselves are not verified. The counter
(GET /__skysync/requests, POST /__skysync/reset) lets tests assert how many requests a pass makes.

The server runs in a child process: in-process, moto and the client under test share one GIL and every test
that makes many requests takes twice as long.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ACCESS_KEY_ID = "skysync-test-key"
SECRET_ACCESS_KEY = "skysync-test-secret-0123456789"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/|X-Amz-Credential=([^/&%]+)")

_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code>'
    b"<Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>"
)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class RequestLog:
    """Thread-safe counts of requests by (method, query-less kind)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, environ: Environ) -> None:
        query = environ.get("QUERY_STRING", "")
        params = {part.partition("=")[0] for part in query.split("&")}
        kind = " uploads" if "uploads" in params else " list" if "list-type" in params or "prefix" in params else ""
        label = environ["REQUEST_METHOD"] + kind
        with self._lock:
            self.counts[label] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


class _Gate:
    def __init__(self, app: Any, log: RequestLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/__skysync/populate":
            _populate(json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))))
            start_response("204 No Content", [])
            return []
        if path.startswith("/__skysync/"):
            if environ["REQUEST_METHOD"] == "POST":
                self.log.reset()
            body = json.dumps(dict(self.log.counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        self.log.add(environ)
        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "") + " " + environ.get("QUERY_STRING", ""))
        key = (found.group(1) or found.group(2)) if found else None
        if key != ACCESS_KEY_ID:
            start_response(
                "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(_DENIED)))]
            )
            return [_DENIED]
        return self.app(environ, start_response)


def _populate(job: dict[str, Any]) -> None:
    """Create many small objects straight in moto's backend (a thousand PUTs through HTTP take seconds)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in job["keys"]:
        backend.put_object(job["bucket"], key, job["data"].encode())


class GatedMotoServer(ThreadedMotoServer):
    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.log = RequestLog()

    def _server_entry(self) -> None:
        # Straight to the S3 app: moto's host-based dispatcher stats hundreds of module folders per request.
        app = _Gate(create_backend_app("s3"), self.log)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


_process: subprocess.Popen[str] | None = None
_endpoint: str | None = None
_lock = threading.Lock()


def _stop() -> None:
    if _process is not None:
        _process.terminate()
        _process.wait(10)


def endpoint() -> str:
    """The URL of the session's server, started on first use."""
    global _process, _endpoint
    with _lock:
        if _endpoint is None:
            _process = subprocess.Popen(
                [sys.executable, __file__], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
            )
            atexit.register(_stop)
            line = _process.stdout.readline() if _process.stdout else ""
            if not line.startswith("http://127.0.0.1:"):
                raise RuntimeError(f"the moto server did not start: {line!r}")
            _endpoint = line.strip()
        return _endpoint


def request_counts() -> dict[str, int]:
    with urllib.request.urlopen(endpoint() + "/__skysync/requests") as response:
        return json.loads(response.read())


def reset_counts() -> None:
    urllib.request.urlopen(urllib.request.Request(endpoint() + "/__skysync/reset", method="POST")).close()


def populate(bucket: str, keys: list[str], data: str = "x") -> None:
    body = json.dumps({"bucket": bucket, "keys": keys, "data": data}).encode()
    request = urllib.request.Request(endpoint() + "/__skysync/populate", data=body, method="POST")
    urllib.request.urlopen(request).close()


def new_bucket(prefix: str = "t") -> str:
    """A fresh bucket on the shared server, named by the strictest rule of the S3 family (JD Cloud's)."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:20]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint(),
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    client.create_bucket(Bucket=name)
    client.close()
    return name


def _main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = GatedMotoServer()
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    parent = os.getppid()
    try:
        while os.getppid() == parent:  # until the parent terminates us, or dies without doing so
            time.sleep(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _main()
