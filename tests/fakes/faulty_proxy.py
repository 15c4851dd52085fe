"""A fault-injecting HTTP front end for an S3 server (moto in the tests): it forwards each request, or fails it.

`FaultyProxy(upstream)` listens on 127.0.0.1 (a free port, threaded, HTTP/1.1 keep-alive) and forwards every
request to `upstream` unchanged (the Host header aside). While its fault rate is above zero, each request is,
with that probability, answered with one of these faults instead of (or after) being forwarded:

- `503`: 503 Service Unavailable with `Retry-After: 1` and S3's `SlowDown` error XML; not forwarded.
- `500`: 500 Internal Server Error with S3's `InternalError` XML; not forwarded.
- `429`: 429 Too Many Requests with a `TooManyRequests` error XML and `Retry-After: 1`; not forwarded.
- `drop-before`: the request is read, then the connection is closed without an answer; not forwarded.
- `drop-after`: the request is forwarded (the write happened) and the connection is closed without an answer,
  so the client cannot tell whether it happened.
- `truncate`: the request is forwarded and the answer's status and headers are sent with its real
  Content-Length (or a made-up one for an empty body), but only half of the body follows before the
  connection is closed. Responses that cannot carry a body (HEAD, 204, 304) are dropped instead.

Which requests fail is decided by a seeded RNG keyed by (seed, method, path without its first segment -- the
bucket of a path-style request, a fresh random name in most tests --, the query's parameter names, the
how-many-th such request this is), so a run fails the same requests whatever order the client's threads send
them in. `set_rate(0)` (or `clean()`) turns faults off; `counts` tells which faults were injected.
`inject(fault, method, query)` makes the next request with that method and query parameter fail that way,
whatever the rate: targeted tests of one failure at one step.

`rewrite_target(method, target)` and `rewrite_answer(method, target, body)`, when set, change a request's target
before it is forwarded and an answer's body before it is sent back: a server that answers wrongly (a listing
page that says more follow but not where, the same page over and over).

What it does not cover: slow or stalled answers (timeouts), bodies corrupted in place (S3 clients catch those
with Content-MD5 and ETags), faults on the request body's way in (a cut upload), TLS, redirects, clock skew,
and errors the real services send with other codes or shapes. Request bodies are read whole before anything
else happens, so very large uploads are held in memory; it is for tests with a few MiB per request.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.httpserver import QuietServer

FAULTS = ("503", "500", "429", "drop-before", "drop-after", "truncate")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)


def _error_xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>faulty-proxy</RequestId></Error>"
    ).encode()


_CANNED = {
    "503": (503, "Service Unavailable", _error_xml("SlowDown", "Please reduce your request rate."), True),
    "500": (500, "Internal Server Error", _error_xml("InternalError", "We encountered an internal error."), False),
    "429": (429, "Too Many Requests", _error_xml("TooManyRequests", "Too many requests."), True),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real S3 endpoints do; botocore pools its connections
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self, "_conn", None)
        if conn is None:
            conn = self._conn = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port,
                                                           timeout=60)
        return conn

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        target = self.path if proxy.rewrite_target is None else proxy.rewrite_target(self.command, self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = f"{self.server.upstream_host}:{self.server.upstream_port}"
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed by the server meanwhile
            conn = self._upstream()
            try:
                conn.request(self.command, target, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if proxy.rewrite_answer is not None:
                    data = proxy.rewrite_answer(self.command, self.path, data)
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                conn.close()
                self._conn = None
            return response.status, response.reason, response.getheaders(), data
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes,
              cut: bool = False) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() not in ("content-length", "date", "server"):
                self.send_header(name, value)
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if cut:
            self.send_header("Content-Length", str(max(len(body), 64)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self._drop()
            return
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        elif self.command == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length")
            if length is not None:
                self.send_header("Content-Length", length)
        self.end_headers()
        if not no_body:
            self.wfile.write(body)

    def _handle(self) -> None:
        body = self._read_body()
        fault = self.server.decide(self.command, self.path)
        if fault in _CANNED:
            status, reason, xml, retry_after = _CANNED[fault]
            headers = [("Content-Type", "application/xml"), ("x-amz-request-id", "faulty-proxy")]
            if retry_after:
                headers.append(("Retry-After", "1"))
            self._send(status, reason, headers, xml)
            return
        if fault == "drop-before":
            self._drop()
            return
        try:
            status, reason, headers, data = self._forward(body)
        except (OSError, http.client.HTTPException):
            self._send(502, "Bad Gateway", [("Content-Type", "text/plain")], b"upstream unreachable")
            return
        if fault == "truncate" and (self.command == "HEAD" or status in (204, 304)):
            fault = "drop-after"
        if fault == "drop-after":
            self._drop()
            return
        self._send(status, reason, headers, data, cut=fault == "truncate")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()


class _Server(QuietServer):
    block_on_close = False

    def __init__(self, proxy: FaultyProxy) -> None:
        split = urlsplit(proxy.upstream)
        self.upstream_host = split.hostname or "127.0.0.1"
        self.upstream_port = split.port or 80
        self.decide = proxy.decide
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


class FaultyProxy:
    """Forwards to `upstream` (http://host:port), failing a `rate` share of requests with one of `faults`."""

    def __init__(self, upstream: str, *, rate: float = 0.0, seed: int = 0, faults: Iterable[str] = FAULTS) -> None:
        self.upstream = upstream.rstrip("/")
        self.seed = seed
        self.faults = tuple(faults)
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self.rate = rate
        self.counts: Counter[str] = Counter()  # injected faults by name, plus "forwarded"
        self.trace: list[tuple[str, str, str]] = []  # (method, target, fault or "forwarded"), in arrival order
        self._seen: Counter[str] = Counter()
        self._injected: list[tuple[str, str, str]] = []  # (fault, method, query parameter name)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.rewrite_target: Callable[[str, str], str] | None = None
        self.rewrite_answer: Callable[[str, str, bytes], bytes] | None = None

    # -- life cycle ----------------------------------------------------------------------------------------------
    def start(self) -> FaultyProxy:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- faults ------------------------------------------------------------------------------------------------
    def set_rate(self, rate: float) -> None:
        with self._lock:
            self.rate = rate

    @contextlib.contextmanager
    def clean(self) -> Iterator[None]:
        """Faults off inside the block."""
        before = self.rate
        self.set_rate(0.0)
        try:
            yield
        finally:
            self.set_rate(before)

    def inject(self, fault: str, method: str, query: str = "") -> None:
        """The next `method` request whose query has parameter `query` ("" = any request) gets `fault`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        with self._lock:
            self._injected.append((fault, method.upper(), query))

    def decide(self, method: str, target: str) -> str | None:
        """The fault for this request, or None to forward it as it is."""
        split = urlsplit(target)
        params = {k for k, _ in parse_qsl(split.query, keep_blank_values=True)}
        key = f"{method} {split.path.lstrip('/').partition('/')[2]}?{','.join(sorted(params))}"
        with self._lock:
            for i, (fault, m, query) in enumerate(self._injected):
                if m == method and (not query or query in params):
                    del self._injected[i]
                    self.counts[fault] += 1
                    self.trace.append((method, target, fault))
                    return fault
            self._seen[key] += 1
            rng = random.Random(f"{self.seed}|{key}|{self._seen[key]}")
            fault = rng.choice(self.faults) if self.faults and rng.random() < self.rate else None
            self.counts[fault or "forwarded"] += 1
            self.trace.append((method, target, fault or "forwarded"))
        return fault
