"""A fake Yandex Disk (REST API v1 and Yandex OAuth) on 127.0.0.1 (port 0), for the real `yadisk` client.

One HTTP server speaks both hosts: the API under `/v1/disk` (the `api_url` option is `<url>/v1/disk`) and the
OAuth endpoints at its root (the `auth_url` option is `<url>`).

What it speaks:

- `GET /v1/disk`: the disk's `total_space`, `used_space` and `user` (`uid`, `login`).
- `GET /v1/disk/resources?path=disk:/...`: a resource (`type`, `name`, `path`, `created`, `modified`, `size`,
  `md5`, `sha256`, `revision`, `resource_id`, `custom_properties`); a folder's children in `_embedded` with
  `limit`/`offset`/`total` paging (sorted by name, `limit` at most 1000 as the real service allows). 404
  `DiskNotFoundError`.
- `PUT /v1/disk/resources` (mkdir, 201): 409 `DiskPathPointsToExistentDirectoryError` for a folder already there,
  `DiskResourceAlreadyExistsError` for a file, `DiskPathDoesntExistsError` when the parent is missing.
- `PATCH /v1/disk/resources` with `{"custom_properties": {...}}`: merged, `null` removes a key; the resource back.
- `DELETE /v1/disk/resources` (204; `permanently=false` moves it to `trash`); with `md5`, a file of other content
  is refused with 409 `MD5DifferError`.
- `GET /v1/disk/resources/upload?path&overwrite` -> an `href` on this server; `PUT` of the bytes there (plain or
  chunked) stores the file: 201, or with `upload_delay` 202 and the file appears that many seconds later;
  `overwrite=false` over an existing name is 409 `DiskResourceAlreadyExistsError`; a full disk is 507.
  A new upload drops the old custom properties (it is a new version).
- `GET /v1/disk/resources/download?path` -> an `href`; `GET` there streams the bytes.
- `POST /v1/disk/resources/move|copy?from&path&overwrite` (201, synchronous; the custom properties travel).
- Access tokens checked on every API call (`Authorization: OAuth <token>`), against the embedded
  `FakeOAuthServer` (tests/fakes/oauth_server.py), whose grants the root endpoints serve in Yandex's own shape:
  `POST /device/code` answers `verification_url` (Yandex's spelling), `POST /token` takes Yandex's
  `grant_type=device_code` with the device code as `code` as well as the refresh and authorization-code grants,
  `GET /device?user_code=` approves a device code, `GET /authorize` the code flow.
- Faults for tests: `fail_next(route, status, error, retry_after)` answers the next matching API request with that
  error (429 `TooManyRequestsError`, 423 `DiskResourceLockedError`, 503...), `locked` paths answer 423 to writes,
  `total_space` makes a disk full, `list_delay` slows each listing request. `calls` counts requests per route,
  `max_listing` the most listing requests in flight at once.

What it does not cover: asynchronous operations (202 and `/v1/disk/operations`: every move, copy and delete
finishes at once), `/resources/files` and `last-uploaded`, public links and the trash API, previews, `fields` filtering
(every field is always sent), `sort`, media types, the upload speed limit for unknown user agents, the hourly
upload traffic limit, OAuth scopes and consent screens, names the service refuses, and case-insensitivity (the
fake, like rclone's Yandex backend, treats names as case-sensitive).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.hostile import Faults, half
from tests.fakes.httpserver import QuietServer
from tests.fakes.oauth_server import DEVICE_GRANT, FakeOAuthServer

API = "/v1/disk"
MAX_LIMIT = 1000


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def norm(path: str) -> str:
    """"disk:/a/b", "/a/b" and "a/b" -> "a/b"; the root is ""."""
    if path.startswith("disk:"):
        path = path[5:]
    return "/".join(p for p in path.split("/") if p)


@dataclass
class Node:
    is_dir: bool
    created: float
    modified: float
    data: bytes = b""
    revision: int = 0
    resource_id: str = ""
    props: dict[str, object] = field(default_factory=dict)


@dataclass
class _Fault:
    route: str
    status: int
    error: str
    retry_after: str | None


class _EmbeddedOAuth(FakeOAuthServer):
    """The OAuth fake's grants, served from the Yandex fake's own port (it runs no server of its own)."""

    home: YandexFake | None = None

    @property
    def url(self) -> str:
        assert self.home is not None
        return self.home.url


class YandexFake:
    def __init__(self, client_id: str = "yandex-app", client_secret: str | None = "yandex-secret") -> None:
        self.oauth = _EmbeddedOAuth(client_id=client_id, client_secret=client_secret, account_id="",
                                    rotate=False, require_pkce=False)  # fmt: skip
        self.oauth.home = self
        self.uid = "1130000001"
        self.login = "test.user"
        self.total_space = 10 * 1024**3
        self.nodes: dict[str, Node] = {"": Node(True, time.time(), time.time())}
        self.trash: dict[str, Node] = {}
        self.locked: set[str] = set()
        self.calls: Counter = Counter()
        self._faults: list[_Fault] = []
        self.faults = Faults()  # tests/fakes/hostile.py: 500s, 401s, cut answers, held requests
        self.shown: dict[str, str] = {}  # path -> the name listings give it instead (hostile names)
        self._uploads: dict[str, str] = {}  # upload id -> path
        # Seconds an upload stays invisible after its PUT, which is then answered 202 (a large file the real
        # service is still moving into the Disk); 0: stored at once, 201.
        self.upload_delay = 0.0
        self._pending: dict[str, tuple[float, bytes]] = {}
        # Seconds each `GET /resources` takes (outside the lock), and the most that were in flight at once.
        self.list_delay = 0.0
        self.max_listing = 0
        self._listing = 0
        self._revision = 1000
        self._lock = threading.RLock()
        self._httpd: QuietServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> YandexFake:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + API

    # -- what tests do -------------------------------------------------------------------------------------
    def issue_token(self, ttl: float = 3 * 3600) -> dict[str, object]:
        return self.oauth.issue(access_ttl=ttl)

    def put(self, path: str, data: bytes, props: dict[str, object] | None = None) -> Node:
        """Store a file as another client would (parents made as needed)."""
        with self._lock:
            path = norm(path)
            self._parents(path)
            node = self._store(path, data)
            node.props = dict(props or {})
            return node

    def mkdirs(self, path: str) -> None:
        with self._lock:
            self._parents(norm(path) + "/x")

    def get(self, path: str) -> Node | None:
        with self._lock:
            return self.nodes.get(norm(path))

    def fail_next(self, route: str, status: int, error: str, retry_after: str | None = None, times: int = 1) -> None:
        """The next `times` API requests whose path and query contain `route` get this error."""
        with self._lock:
            self._faults += [_Fault(route, status, error, retry_after)] * times

    # -- the model (under the lock) ------------------------------------------------------------------------
    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder not in self.nodes:
                self.nodes[folder] = Node(True, time.time(), time.time(), resource_id=self._rid())
                self._revision += 1

    def _rid(self) -> str:
        return f"{self.uid}:{secrets.token_hex(16)}"

    def _store(self, path: str, data: bytes) -> Node:
        self._revision += 1
        old = self.nodes.get(path)
        now = time.time()
        node = Node(False, old.created if old else now, now, data, self._revision,
                    old.resource_id if old else self._rid())  # fmt: skip
        self.nodes[path] = node
        return node

    def _settle(self) -> None:
        """Uploads whose delay is over become files."""
        now = time.time()
        for path, (due, data) in list(self._pending.items()):
            if due <= now:
                del self._pending[path]
                self._store(path, data)

    def used(self) -> int:
        return sum(len(n.data) for n in self.nodes.values())

    def resource(self, path: str, node: Node) -> dict[str, object]:
        parent, _, name = path.rpartition("/") if path else ("", "", "disk")
        if path in self.shown:  # a name the service hands out as it is, whatever it holds
            name = self.shown[path]
            path = f"{parent}/{name}" if parent else name
        out: dict[str, object] = {
            "type": "dir" if node.is_dir else "file", "name": name, "path": "disk:/" + path,
            "created": _iso(node.created), "modified": _iso(node.modified), "resource_id": node.resource_id,
            "revision": node.revision,
        }  # fmt: skip
        if node.props:
            out["custom_properties"] = dict(node.props)
        if not node.is_dir:
            out.update(size=len(node.data), md5=hashlib.md5(node.data).hexdigest(),
                       sha256=hashlib.sha256(node.data).hexdigest(), mime_type="application/octet-stream",
                       media_type="data")  # fmt: skip
        return out

    def children(self, path: str) -> list[str]:
        prefix = path + "/" if path else ""
        return sorted(p for p in self.nodes if p.startswith(prefix) and p != path and "/" not in p[len(prefix):])


class _Cut(Exception):
    """The client's connection ended inside its request's body."""


def _error(status: int, error: str, description: str = "") -> tuple[int, dict[str, object]]:
    return status, {"error": error, "description": description or error, "message": description or error}


class _Handler(BaseHTTPRequestHandler):
    fake: YandexFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- plumbing ------------------------------------------------------------------------------------------
    def _send(self, status: int, body: object = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> None:  # fmt: skip
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if getattr(self, "cut", False):  # a hostile test's cut answer: half the body, then the line drops
            self.wfile.write(half(data))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        """The request's body; _Cut when the client went away before its end (a killed upload is not a file)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                line = self.rfile.readline()
                if not line:
                    raise _Cut
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                part = self.rfile.read(size)
                if len(part) < size:
                    raise _Cut
                parts.append(part)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _Cut
        return body

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        kind, _, token = auth.partition(" ")
        return kind in ("OAuth", "Bearer") and self.fake.oauth.access_valid(token.strip())

    def _fault(self, route: str) -> _Fault | None:
        with self.fake._lock:
            for i, fault in enumerate(self.fake._faults):
                if fault.route in route:
                    return self.fake._faults.pop(i)
        return None

    def _dispatch(self) -> None:
        try:
            body = self._body()
        except _Cut:
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        query = self._query()
        route = f"{self.command} {parts.path}"
        fake = self.fake
        fake.calls[route] += 1
        action = fake.faults.take(f"{route}?{parts.query}")
        if action in ("500", "401"):
            self._send(*_error(int(action), "InternalServerError" if action == "500" else "UnauthorizedError"))
            return
        self.cut = action == "truncate"
        if parts.path.startswith("/upload-target/") or parts.path.startswith("/download-target/"):
            status, answer, raw = self._transfer(parts.path, body)
            self._send(status, answer, raw=raw)
            return
        if not parts.path.startswith(API):
            status, answer = self._oauth(parts.path, query, body)
            if isinstance(answer, str):
                self._send(status, raw=answer.encode())
            else:
                self._send(status, answer)
            return
        fault = self._fault(f"{route}?{parts.query}")
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, _error(fault.status, fault.error)[1], headers)
            return
        if not self._authorized():
            self._send(*_error(401, "UnauthorizedError", "Unauthorized"))
            return
        listing = route == f"GET {API}/resources"
        if listing:
            with fake._lock:
                fake._listing += 1
                fake.max_listing = max(fake.max_listing, fake._listing)
            time.sleep(fake.list_delay)
        try:
            with fake._lock:
                fake._settle()
                status, answer = self._api(parts.path[len(API):] or "/", query, body)
        finally:
            if listing:
                with fake._lock:
                    fake._listing -= 1
        self._send(status, answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch

    # -- OAuth (Yandex's shapes over the embedded fake's grants) ----------------------------------------------
    def _oauth(self, path: str, query: dict[str, str], body: bytes) -> tuple[int, object]:
        oauth = self.fake.oauth
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if self.command == "POST" and path == "/token":
            if form.get("grant_type") == "device_code":  # Yandex's name, with the device code as `code`
                form = {**form, "grant_type": DEVICE_GRANT, "device_code": form.get("code", "")}
            return oauth.token_grant(form)
        if self.command == "POST" and path == "/device/code":
            status, answer = oauth.device_code(form)
            if status == 200:
                answer["verification_url"] = self.fake.url + "/device"  # Yandex says _url
                answer.pop("verification_uri", None)
            return status, answer
        if self.command == "GET" and path == "/device":
            ok = oauth.approve_device(query.get("user_code", ""))
            return (200, "approved\n") if ok else (404, "unknown code\n")
        if self.command == "GET" and path == "/authorize":
            status, headers, text = oauth.authorize(query)
            if status == 302:
                return 200, f"Redirect: {headers['Location']}\n"
            return status, text
        return 404, "not found\n"

    # -- transfers -----------------------------------------------------------------------------------------
    def _transfer(self, path: str, body: bytes) -> tuple[int, object, bytes | None]:
        fake = self.fake
        key = path.rpartition("/")[2]
        with fake._lock:
            target = fake._uploads.get(key) if path.startswith("/upload-target/") else None
            if self.command == "PUT" and target is not None:
                if target in fake.locked:
                    return 423, _error(423, "DiskResourceLockedError")[1], None
                old = fake.nodes.get(target)
                if fake.used() - (len(old.data) if old else 0) + len(body) > fake.total_space:
                    return 507, _error(507, "DiskQuotaExceeded", "Insufficient storage")[1], None
                del fake._uploads[key]
                parent = target.rpartition("/")[0]
                if parent not in fake.nodes or not fake.nodes[parent].is_dir:
                    return 409, _error(409, "DiskPathDoesntExistsError")[1], None
                if fake.upload_delay:
                    fake._pending[target] = (time.time() + fake.upload_delay, body)
                    return 202, None, b""
                fake._store(target, body)
                return 201, None, b""
            if self.command == "GET" and path.startswith("/download-target/"):
                node = fake.nodes.get(norm(self._query().get("path", "")))
                if node is None or node.is_dir:
                    return 404, _error(404, "DiskNotFoundError")[1], None
                return 200, None, node.data
        return 404, _error(404, "NotFound")[1], None

    # -- the API -------------------------------------------------------------------------------------------
    def _api(self, route: str, query: dict[str, str], body: bytes) -> tuple[int, object]:
        fake = self.fake
        path = norm(query.get("path", ""))
        node = fake.nodes.get(path)
        if route == "/" and self.command == "GET":
            return 200, {"total_space": fake.total_space, "used_space": fake.used(), "trash_size": 0,
                         "user": {"uid": fake.uid, "login": fake.login, "display_name": "Test User"}}
        if route == "/resources" and self.command == "GET":
            if node is None:
                return _error(404, "DiskNotFoundError", "Resource not found.")
            answer = fake.resource(path, node)
            if node.is_dir:
                names = fake.children(path)
                limit = min(int(query.get("limit") or 20), MAX_LIMIT)
                offset = int(query.get("offset") or 0)
                answer["_embedded"] = {
                    "items": [fake.resource(p, fake.nodes[p]) for p in names[offset:offset + limit]],
                    "limit": limit, "offset": offset, "total": len(names), "path": "disk:/" + path, "sort": "name",
                }  # fmt: skip
            return 200, answer
        if route == "/resources" and self.command == "PUT":
            if node is not None:
                return _error(409, "DiskPathPointsToExistentDirectoryError" if node.is_dir
                              else "DiskResourceAlreadyExistsError")  # fmt: skip
            parent = fake.nodes.get(path.rpartition("/")[0])
            if parent is None or not parent.is_dir:
                return _error(409, "DiskPathDoesntExistsError", "Specified path doesn't exist.")
            fake._revision += 1
            fake.nodes[path] = Node(True, time.time(), time.time(), revision=fake._revision, resource_id=fake._rid())
            return 201, self._link(path)
        if route == "/resources" and self.command == "PATCH":
            if node is None:
                return _error(404, "DiskNotFoundError")
            try:
                props = json.loads(body or b"{}").get("custom_properties") or {}
            except ValueError:
                return _error(400, "FieldValidationError")
            for key, value in props.items():
                if value is None:
                    node.props.pop(key, None)
                else:
                    node.props[key] = value
            return 200, fake.resource(path, node)
        if route == "/resources" and self.command == "DELETE":
            if node is None:
                return _error(404, "DiskNotFoundError")
            if path in fake.locked:
                return _error(423, "DiskResourceLockedError")
            if query.get("md5") and (node.is_dir or hashlib.md5(node.data).hexdigest() != query["md5"]):
                return _error(409, "MD5DifferError", "MD5 hash does not match.")
            prefix = path + "/"
            for p in [p for p in fake.nodes if p == path or p.startswith(prefix)]:
                gone = fake.nodes.pop(p)
                if query.get("permanently") != "true":
                    fake.trash[p] = gone
            return 204, None
        if route == "/resources/upload" and self.command == "GET":
            if node is not None and node.is_dir:
                return _error(409, "DiskPathPointsToExistentDirectoryError")
            if node is not None and query.get("overwrite") != "true":
                return _error(409, "DiskResourceAlreadyExistsError", "Resource already exists.")
            parent = fake.nodes.get(path.rpartition("/")[0])
            if parent is None or not parent.is_dir:
                return _error(409, "DiskPathDoesntExistsError", "Specified path doesn't exist.")
            if path in fake.locked:
                return _error(423, "DiskResourceLockedError")
            key = secrets.token_hex(12)
            fake._uploads[key] = path
            return 200, {"href": f"{fake.url}/upload-target/{key}", "method": "PUT", "templated": False,
                         "operation_id": key}
        if route == "/resources/download" and self.command == "GET":
            if node is None:
                return _error(404, "DiskNotFoundError")
            return 200, {"href": f"{fake.url}/download-target/{secrets.token_hex(8)}?{urlencode({'path': path})}",
                         "method": "GET", "templated": False}
        if route in ("/resources/move", "/resources/copy") and self.command == "POST":
            src = norm(query.get("from", ""))
            source = fake.nodes.get(src)
            if source is None:
                return _error(404, "DiskNotFoundError")
            target = fake.nodes.get(path)
            if target is not None and query.get("overwrite") != "true":
                return _error(409, "DiskResourceAlreadyExistsError")
            parent = fake.nodes.get(path.rpartition("/")[0])
            if parent is None or not parent.is_dir:
                return _error(409, "DiskPathDoesntExistsError")
            if src in fake.locked:
                return _error(423, "DiskResourceLockedError")
            moves = [p for p in sorted(fake.nodes) if p == src or p.startswith(src + "/")]
            for p in moves:
                old = fake.nodes[p]
                new = Node(old.is_dir, old.created, old.modified, old.data, old.revision, old.resource_id,
                           dict(old.props))  # fmt: skip
                if route.endswith("copy"):
                    fake._revision += 1
                    new.revision, new.resource_id = fake._revision, fake._rid()
                else:
                    del fake.nodes[p]
                fake.nodes[path + p[len(src):]] = new
            return 201, self._link(path)
        return _error(404, "NotFound", f"no route {self.command} {route}")

    def _link(self, path: str) -> dict[str, object]:
        return {"href": f"{self.fake.api_url}/resources?{urlencode({'path': 'disk:/' + path})}", "method": "GET",
                "templated": False}
