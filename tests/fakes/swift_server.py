"""A protocol fake of OpenStack Swift that python-swiftclient talks to over HTTP on 127.0.0.1.

What it speaks (enough for the `swift` provider and its contract suite):

- TempAuth v1: `GET /auth/v1.0` with `X-Auth-User: account:user` (or `user`) and `X-Auth-Key`; answers
  `X-Storage-Url`, `X-Auth-Token`, `X-Storage-Token`, or 401. Every storage request needs a valid token (401).
- Accounts: `HEAD`, `GET ?format=json` (container list).
- Containers: `PUT` (201/202), `HEAD` (204 with object count and bytes, 404), `DELETE` (204, 409 when not
  empty, 404), `GET ?format=json` listings with `prefix`, `marker`, `end_marker`, `limit` (at most
  `listing_limit`, 1,000 by default, so clients must page), `delimiter` (`subdir` entries), sorted by the
  UTF-8 bytes of the names, each item with name, bytes, hash, last_modified, content_type.
- Objects: `PUT` (Content-Length or chunked body; `ETag` checked, 422 on mismatch; `X-Object-Meta-*`,
  `Content-Type` and `X-Object-Manifest` stored; `If-None-Match: *` refused with 412 over an existing object;
  `X-Copy-From: /<container>/<object>` copies an object of the same account with its metadata),
  `GET`/`HEAD` (metadata headers, `Etag`, `Last-Modified`, `X-Timestamp`), `DELETE` (204, 404),
  `POST` (replaces the user metadata).
- Dynamic Large Objects: an object with `X-Object-Manifest: <container>/<prefix>` (URL-encoded) is served as
  the concatenation of the segments under that prefix in name order, with `Content-Length` their total and
  `Etag` the quoted MD5 of their concatenated ETags, as Swift does; its listing entry keeps the manifest's
  own size (0) and hash.

- Keystone v3 password auth: `POST /v3/auth/tokens` with a password identity (user name in the `Default`
  domain) scoped to a project by name; the user is `<project>:<user>` of the same table as TempAuth. Answers
  201 with `X-Subject-Token` and a token whose catalog has one `object-store` endpoint (public, in region
  `REGION`), or 401 with Keystone's JSON error.

What it does not cover: Keystone v2 and version discovery, user or project ids instead of names, domains other
than `Default`, token expiry and revocation, Static Large Objects, `Range` and the other conditional (`If-*`)
requests, the `COPY` verb, account/container metadata and ACLs, object versioning, expiring objects, bulk
operations, storage policies, rate limiting, and Swift's eventual consistency (every write is visible at once).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.fakes.httpserver import QuietServer

REGION = "RegionOne"


@dataclass
class StoredObject:
    data: bytes
    etag: str
    content_type: str
    timestamp: float
    meta: dict[str, str] = field(default_factory=dict)  # lower-case header name -> value
    manifest: str | None = None  # "container/prefix", decoded

    def listing_item(self, name: str) -> dict[str, object]:
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.timestamp))
        return {
            "name": name,
            "bytes": len(self.data),
            "hash": self.etag,
            "last_modified": f"{iso}.{int(self.timestamp % 1 * 1e6):06d}",
            "content_type": self.content_type,
        }


class SwiftState:
    """Accounts, tokens and the object store, shared by all request threads."""

    def __init__(self, users: dict[str, str], listing_limit: int = 1000) -> None:
        self.users = users  # "account:user" -> key
        self.listing_limit = listing_limit
        self.tokens: dict[str, str] = {}  # token -> account
        self.containers: dict[str, dict[str, dict[str, StoredObject]]] = {}  # account -> container -> objects
        self.lock = threading.Lock()
        self._clock = 0.0

    def now(self) -> float:
        # Strictly increasing timestamps, like Swift's X-Timestamp.
        with self.lock:
            self._clock = max(time.time(), self._clock + 1e-5)
            return self._clock

    def create_container(self, account: str, container: str) -> None:
        with self.lock:
            self.containers.setdefault(account, {}).setdefault(container, {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- helpers ---------------------------------------------------------------------------------------------

    @property
    def state(self) -> SwiftState:
        return self.server.state

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Trans-Id", "tx" + secrets.token_hex(8))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self) -> tuple[str, str | None, str | None, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        segments = parts.path.split("/", 4)  # "", "v1", "AUTH_x", container, object
        if len(segments) < 3 or segments[1] != "v1":
            return "", None, None, query
        account = unquote(segments[2])
        container = unquote(segments[3]) if len(segments) > 3 and segments[3] else None
        obj = unquote(segments[4]) if len(segments) > 4 and segments[4] else None
        return account, container, obj, query

    def _authorised(self, account: str) -> bool:
        token = self.headers.get("X-Auth-Token", "")
        return self.state.tokens.get(token) == account

    # -- verbs -----------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/auth/v1.0":
            self._auth()
            return
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/v3/auth/tokens":
            self._keystone_v3()
            return
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _auth(self) -> None:
        user, key = self.headers.get("X-Auth-User", ""), self.headers.get("X-Auth-Key", "")
        if user not in self.state.users or not secrets.compare_digest(self.state.users[user], key):
            self._reply(401, b"Unauthorized")
            return
        account = "AUTH_" + user.split(":", 1)[0]
        token = "AUTH_tk" + secrets.token_hex(16)
        self.state.tokens[token] = account
        self.state.containers.setdefault(account, {})
        host, port = self.server.server_address[:2]
        url = f"http://{host}:{port}/v1/{quote(account)}"
        self._reply(200, b"", {"X-Storage-Url": url, "X-Auth-Token": token, "X-Storage-Token": token})

    def _keystone_v3(self) -> None:
        try:
            auth = json.loads(self._body())["auth"]
            password = auth["identity"]["password"]["user"]
            user, key = password["name"], password["password"]
            user_domain = password.get("domain", {}).get("name") or password.get("domain", {}).get("id")
            project = auth["scope"]["project"]
            project_domain = project.get("domain", {}).get("name") or project.get("domain", {}).get("id")
            project_name = project["name"]
        except (ValueError, KeyError, TypeError):
            self._reply(400, b'{"error": {"code": 400, "title": "Bad Request", "message": "malformed"}}',
                        {"Content-Type": "application/json"})
            return
        known = self.state.users.get(f"{project_name}:{user}")
        domains_ok = {user_domain, project_domain} <= {"Default", "default"}
        if known is None or not domains_ok or not secrets.compare_digest(known, key):
            body = json.dumps({"error": {"code": 401, "title": "Unauthorized",
                                         "message": "The request you have made requires authentication."}}).encode()
            self._reply(401, body, {"Content-Type": "application/json"})
            return
        account = "AUTH_" + project_name
        token = "gAAAA" + secrets.token_hex(16)
        self.state.tokens[token] = account
        self.state.containers.setdefault(account, {})
        host, port = self.server.server_address[:2]
        domain = {"id": "default", "name": "Default"}
        now = time.time()
        stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(t))  # noqa: E731
        body = {"token": {
            "methods": ["password"], "issued_at": stamp(now), "expires_at": stamp(now + 3600),
            "user": {"id": "u-" + user, "name": user, "domain": domain},
            "project": {"id": "p-" + project_name, "name": project_name, "domain": domain},
            "catalog": [{"type": "object-store", "name": "swift", "id": "swift-service", "endpoints": [{
                "id": "swift-public", "interface": "public", "region": REGION, "region_id": REGION,
                "url": f"http://{host}:{port}/v1/{quote(account)}",
            }]}],
        }}
        self._reply(201, json.dumps(body).encode(), {"Content-Type": "application/json", "X-Subject-Token": token})

    def _dispatch(self) -> None:
        account, container, obj, query = self._route()
        if not account:
            self._reply(404, b"Not Found")
            return
        if not self._authorised(account):
            if self.command in ("PUT", "POST"):
                self._body()
            self._reply(401, b"Unauthorized")
            return
        if container is None:
            self._account(account)
        elif obj is None:
            self._container(account, container, query)
        else:
            self._object(account, container, obj)

    def _account(self, account: str) -> None:
        names = sorted(self.state.containers.get(account, {}))
        if self.command == "GET":
            body = json.dumps([{"name": n, "count": 0, "bytes": 0} for n in names]).encode()
            self._reply(200, body, {"Content-Type": "application/json; charset=utf-8"})
        else:
            self._reply(204, b"", {"X-Account-Container-Count": str(len(names))})

    def _container(self, account: str, container: str, query: dict[str, list[str]]) -> None:
        store = self.state.containers.setdefault(account, {})
        if self.command == "PUT":
            self._body()
            existed = container in store
            self.state.create_container(account, container)
            self._reply(202 if existed else 201)
            return
        objects = store.get(container)
        if objects is None:
            self._reply(404, b"Not Found")
            return
        if self.command == "DELETE":
            if objects:
                self._reply(409, b"Conflict: container not empty")
            else:
                del store[container]
                self._reply(204)
            return
        if self.command == "HEAD":
            total = sum(len(o.data) for o in objects.values())
            self._reply(204, b"", {"X-Container-Object-Count": str(len(objects)), "X-Container-Bytes-Used": str(total)})
            return
        if self.command != "GET":
            self._reply(405, b"Method Not Allowed")
            return

        def arg(name: str) -> str:
            return query.get(name, [""])[0]

        prefix, marker, end_marker, delimiter = arg("prefix"), arg("marker"), arg("end_marker"), arg("delimiter")
        limit = min(int(arg("limit") or self.state.listing_limit), self.state.listing_limit)
        with self.state.lock:
            items = sorted(objects.items(), key=lambda kv: kv[0].encode())
        result: list[dict[str, object]] = []
        seen_subdirs: set[str] = set()
        for name, stored in items:
            if not name.startswith(prefix) or (marker and name.encode() <= marker.encode()):
                continue
            if end_marker and name.encode() >= end_marker.encode():
                break
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    subdir = name[: cut + len(delimiter)]
                    if subdir not in seen_subdirs and not (marker and subdir.encode() <= marker.encode()):
                        seen_subdirs.add(subdir)
                        result.append({"subdir": subdir})
                    if len(result) >= limit:
                        break
                    continue
            result.append(stored.listing_item(name))
            if len(result) >= limit:
                break
        if arg("format") == "json" or "json" in self.headers.get("Accept", ""):
            body = json.dumps(result).encode()
            content_type = "application/json; charset=utf-8"
        else:
            body = "".join(f"{r.get('name', r.get('subdir'))}\n" for r in result).encode()
            content_type = "text/plain; charset=utf-8"
        self._reply(200 if result else 204, body if result else b"", {"Content-Type": content_type})

    def _segments(self, account: str, manifest: str) -> list[StoredObject]:
        seg_container, _, prefix = manifest.partition("/")
        objects = self.state.containers.get(account, {}).get(seg_container, {})
        with self.state.lock:
            names = sorted((n for n in objects if n.startswith(prefix)), key=str.encode)
            return [objects[n] for n in names]

    def _object(self, account: str, container: str, name: str) -> None:
        objects = self.state.containers.get(account, {}).get(container)
        if objects is None:
            if self.command in ("PUT", "POST"):
                self._body()
            self._reply(404, b"Not Found")
            return
        if self.command == "PUT":
            self._put_object(objects, name)
            return
        stored = objects.get(name)
        if stored is None:
            if self.command == "POST":
                self._body()
            self._reply(404, b"Not Found")
            return
        if self.command == "DELETE":
            with self.state.lock:
                objects.pop(name, None)
            self._reply(204)
            return
        if self.command == "POST":
            self._body()
            stored.meta = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-object-meta-")}
            self._reply(202)
            return
        # GET / HEAD
        data, etag = stored.data, stored.etag
        headers = {
            "Content-Type": stored.content_type,
            "Last-Modified": email.utils.formatdate(stored.timestamp, usegmt=True),
            "X-Timestamp": f"{stored.timestamp:.5f}",
            "Accept-Ranges": "bytes",
            **{k.title(): v for k, v in stored.meta.items()},
        }
        if stored.manifest is not None:
            segments = self._segments(account, stored.manifest)
            data = b"".join(s.data for s in segments)
            etag = '"' + hashlib.md5("".join(s.etag for s in segments).encode()).hexdigest() + '"'
            headers["X-Object-Manifest"] = quote(stored.manifest)
        headers["Etag"] = etag
        headers["Content-Length"] = str(len(data))
        self._reply(200, data, headers)

    def _put_object(self, objects: dict[str, StoredObject], name: str) -> None:
        data = self._body()
        if self.headers.get("If-None-Match", "").strip() == "*" and name in objects:
            self._reply(412, b"Precondition Failed")
            return
        copy_from = self.headers.get("X-Copy-From")
        if copy_from:
            self._copy_object(objects, name, copy_from)
            return
        etag = hashlib.md5(data).hexdigest()
        expected = self.headers.get("ETag", "").strip('"')
        if expected and expected != etag:
            self._reply(422, b"Unprocessable Entity: ETag mismatch")
            return
        manifest = self.headers.get("X-Object-Manifest")
        stored = StoredObject(
            data=data,
            etag=etag,
            content_type=self.headers.get("Content-Type") or "application/octet-stream",
            timestamp=self.state.now(),
            meta={k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-object-meta-")},
            manifest=unquote(manifest) if manifest else None,
        )
        with self.state.lock:
            objects[name] = stored
        self._reply(201, b"", {"Etag": etag, "Last-Modified": email.utils.formatdate(stored.timestamp, usegmt=True)})


    def _copy_object(self, objects: dict[str, StoredObject], name: str, copy_from: str) -> None:
        """PUT with X-Copy-From: /<container>/<object> (URL-encoded), in the same account: the data, content
        type and metadata of the source, with the request's own X-Object-Meta-* laid over them."""
        container, _, source_name = unquote(copy_from).lstrip("/").partition("/")
        account = self._route()[0]
        with self.state.lock:
            source = self.state.containers.get(account, {}).get(container, {}).get(source_name)
        if source is None:
            self._reply(404, b"Not Found")
            return
        meta = {**source.meta, **{k.lower(): v for k, v in self.headers.items()
                                  if k.lower().startswith("x-object-meta-")}}
        stored = StoredObject(data=source.data, etag=source.etag, content_type=source.content_type,
                              timestamp=self.state.now(), meta=meta, manifest=source.manifest)
        with self.state.lock:
            objects[name] = stored
        self._reply(201, b"", {"Etag": stored.etag,
                               "Last-Modified": email.utils.formatdate(stored.timestamp, usegmt=True)})


class _Server(QuietServer):
    state: SwiftState


@contextlib.contextmanager
def running(users: dict[str, str], listing_limit: int = 1000) -> Iterator[tuple[str, SwiftState]]:
    """A fake Swift on 127.0.0.1 (free port); yields (auth URL, state)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = SwiftState(users, listing_limit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/auth/v1.0", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
