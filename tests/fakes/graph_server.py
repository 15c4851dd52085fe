"""A Microsoft Graph fake (OneDrive, OneDrive for Business, SharePoint document libraries) on 127.0.0.1, with the
Microsoft identity platform's OAuth endpoints beside it over TLS (MSAL-style authorities must be https).

Two servers, one `GraphFake`:

- **Graph** (plain http, behind the `api_url` override): `GET /me`, `/me/drive`, `/drives/{d}`,
  `/sites/{site}` (an id, or `host:/sites/path` as Graph takes a site URL), `/sites/{site}/drive(s)`; items by
  `/drives/{d}/root`, `/drives/{d}/items/{id}` and `/drives/{d}/root:/{path}:` (names compared without case),
  each followed by nothing (metadata), `/children` (paged by `$top`, `@odata.nextLink`), `/content` (GET: a 302 to
  an unauthenticated `/download/...` address; PUT: simple upload up to 4 MiB with `@microsoft.graph.
  conflictBehavior` fail/replace and `If-Match`), `/createUploadSession` (then `PUT` fragments with
  `Content-Range`: each must start at the next expected byte and, but the last, be a multiple of 320 KiB, else
  416; `GET` the session for `nextExpectedRanges`; `DELETE` cancels), `/delta` (from the drive root only:
  `token=latest`, paged, deleted items as `deleted` facets, every ancestor of a changed item reported too, as
  the service does; Business and SharePoint delta items leave out `cTag`, which Graph does not promise there;
  an unknown or forgotten token is 410 `resyncRequired`), `/copy` (202 and a monitor address
  that reports `completed`); `POST .../children` makes a folder (409 `nameAlreadyExists` with `fail`); `PATCH`
  renames, moves and sets `fileSystemInfo`; `DELETE` honours `If-Match` (412). Items carry `eTag` (changes with
  any change), `cTag` (content), `file.hashes.quickXorHash`, `fileSystemInfo`, `parentReference`.
- **Identity** (https, behind `auth_url`), what MSAL asks of it: `GET /{tenant}/v2.0/.well-known/openid-
  configuration` (issuer, authorization, token and device authorization endpoints; an unknown tenant is 400, as
  Microsoft answers), `/{tenant}/oauth2/v2.0/token` and `/devicecode` served by a `FakeOAuthServer` (rotating
  refresh tokens, device code at a one-second interval, `approve_device`); a token answer to a request with
  `client_info=1` (MSAL always sends it) carries `client_info` (uid, utid) and an unsigned `id_token`, from which
  MSAL records the account. `GET /device?user_code=` approves. The certificate is self-signed for 127.0.0.1,
  made per fake (`ca_file`).

Account kinds: `personal` keeps the `fileSystemInfo` it is given; `business` and `documentLibrary` (SharePoint)
ignore it (the spec's table: no mtime there) and report the upload time. A SharePoint library rewrites Office files
(`.docx`, `.xlsx`, `.pptx`) once an upload completes, as SharePoint adds its metadata: the upload's answer
describes the bytes sent, a later read the rewritten file (new size, hash, eTag).

Faults a test asks for: `throttle(n, status, retry_after)` (the next n Graph calls, or fragments),
`cut_fragment(n)` (the n-th fragment of the next upload session is stored, the last one commits the file, but
its answer never comes: the connection is closed), `forget_deltas()` (every delta token 410), a drive `quota`
(507 `quotaLimitReached`), `add_onenote` and `add_remote_item` (a notebook and a folder shared by someone else),
`revoke_all` and `expire_access_tokens` on the identity side.

What it does not cover: `$select`/`$expand`/`$filter`, sharing and permissions, thumbnails, versions, the
`If-None-Match`, `Prefer` and `deltashowremoteitemsaliasid` headers, webhooks, batch requests, special folders,
search, the 60 MiB fragment maximum, upload-session expiry by time, name rules of the service (the engine's
policy applies them before any call), eventual consistency (every answer reflects every earlier write); on the
identity side, instance discovery (MSAL is told not to ask), id token signatures and keys (`jwks_uri`), scopes
(recorded, never enforced), conditional access and claims challenges, and family refresh tokens.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from engine.hashing import hasher_for
from engine.providers.base import HashKind
from tests.fakes.hostile import Faults, half
from tests.fakes.httpserver import QuietServer
from tests.fakes.oauth_server import FakeOAuthServer

FRAGMENT = 320 * 1024
SIMPLE_MAX = 4 * 1024 * 1024
PAGE = 200
OFFICE = (".docx", ".xlsx", ".pptx")
SHAREPOINT_STAMP = b"\n<!-- SharePoint metadata -->"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def quickxor(data: bytes) -> str:
    hasher = hasher_for(HashKind.QUICKXOR)
    hasher.update(data)
    return hasher.text()


@dataclass
class Item:
    id: str
    name: str
    parent: str | None
    folder: bool
    data: bytes = b""
    mtime: float = field(default_factory=time.time)
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    version: int = 1
    content_version: int = 1
    package: str | None = None  # "oneNote"
    remote: bool = False  # a folder shared by someone else (remoteItem)
    deleted: bool = False
    seq: int = 0  # the change counter value of its last change


@dataclass
class Drive:
    id: str
    drive_type: str  # personal, business, documentLibrary
    name: str = "OneDrive"
    owner: str = "user-1"
    quota: int | None = None
    items: dict[str, Item] = field(default_factory=dict)
    root: str = ""
    seq: int = 0
    forgotten_below: int = 0  # delta tokens below this are 410

    def __post_init__(self) -> None:
        self.root = "root-" + self.id
        self.items[self.root] = Item(self.root, "root", None, True)

    def children(self, item_id: str) -> list[Item]:
        return sorted((i for i in self.items.values() if i.parent == item_id and not i.deleted),
                      key=lambda i: i.name.casefold())

    def child(self, item_id: str, name: str) -> Item | None:
        for i in self.items.values():
            if i.parent == item_id and not i.deleted and i.name.casefold() == name.casefold():
                return i
        return None

    def at(self, path: str) -> Item | None:
        node = self.items[self.root]
        for part in [p for p in path.split("/") if p]:
            found = self.child(node.id, part)
            if found is None:
                return None
            node = found
        return node

    def path_of(self, item: Item) -> str:
        parts: list[str] = []
        while item.parent is not None:
            parts.append(item.name)
            item = self.items[item.parent]
        return "/".join(reversed(parts))

    def touch(self, item: Item, *, content: bool = False) -> None:
        """Record a change of `item` (and, as Graph reports them in delta, of its ancestors)."""
        self.seq += 1
        item.seq = self.seq
        item.version += 1
        item.modified = time.time()
        if content:
            item.content_version += 1
        parent = item.parent
        while parent is not None:
            node = self.items[parent]
            node.seq = self.seq
            node.version += 1
            parent = node.parent

    def used(self) -> int:
        return sum(len(i.data) for i in self.items.values() if not i.deleted)


@dataclass
class Session:
    drive: str
    parent: str
    name: str
    existing: str | None
    mtime: float | None
    size: int | None = None
    data: bytearray = field(default_factory=bytearray)


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message or code)
        self.status, self.code, self.message, self.headers = status, code, message or code, headers or {}


def make_certificate(folder: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (certificate path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "graph-fake.pem", folder / "graph-fake.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


# The tenant id Microsoft gives every personal account; work accounts get their organisation's.
CONSUMERS_TID = "9188040d-6c67-4c5b-b112-36a304b66dad"
WORK_TID = "72f988bf-0000-4000-8000-00000000c0de"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class _Identity(FakeOAuthServer):
    """The fake OAuth server's grants, served by the Graph fake's TLS listener under Microsoft's paths, with what
    MSAL reads besides: each tenant's OpenID configuration, and `client_info` and an `id_token` in token answers
    (MSAL records the account from them; the id token is not signed, MSAL only decodes it)."""

    base = ""
    tenants = frozenset({"consumers", "organizations", "common", CONSUMERS_TID, WORK_TID})

    @property
    def url(self) -> str:
        return self.base

    def openid_configuration(self, tenant: str) -> dict[str, Any] | None:
        if tenant not in self.tenants:
            return None
        self.counts["openid_configuration"] += 1
        tid = CONSUMERS_TID if tenant == "consumers" else WORK_TID
        endpoint = f"{self.base}/{tenant}/oauth2/v2.0"
        return {
            "issuer": f"{self.base}/{tid}/v2.0", "authorization_endpoint": f"{endpoint}/authorize",
            "token_endpoint": f"{endpoint}/token", "device_authorization_endpoint": f"{endpoint}/devicecode",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"], "tenant_region_scope": None,
        }

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working before its expiry (a password change, a policy);
        refresh tokens keep working."""
        with self._lock:
            self._access.clear()

    def tenant_grant(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        """The token endpoint of one tenant: the fake's grants, plus what MSAL asks for with `client_info=1`."""
        if tenant not in self.tenants:
            return 400, {"error": "invalid_request", "error_description": f"Tenant '{tenant}' not found."}
        status, body = self.token_grant(form)
        if status == 200 and form.get("client_info") == "1":
            tid = CONSUMERS_TID if tenant == "consumers" else WORK_TID
            body["client_info"] = _b64({"uid": self.account_id, "utid": tid})
            now = int(time.time())
            claims = {"iss": f"{self.base}/{tid}/v2.0", "aud": self.client_id, "sub": "sub-" + self.account_id,
                      "oid": self.account_id, "tid": tid, "iat": now, "nbf": now, "exp": now + 3600,
                      "preferred_username": "test.user@example.com", "name": "Test User", "ver": "2.0"}
            body["id_token"] = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
        return status, body


class GraphFake:
    """The state behind both servers; tests change it directly (as another device would) through its methods."""

    def __init__(self, client_id: str = "test-client") -> None:
        self.lock = threading.RLock()
        # Microsoft's device interval is whole seconds (MSAL counts it so); 1 s keeps sign-in tests short.
        self.oauth = _Identity(client_id=client_id, account_id="user-1", require_pkce=False,
                               device_interval=1.0)
        self.user = "user-1"
        self.drives: dict[str, Drive] = {}
        self.sites: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, Session] = {}
        self.monitors: dict[str, str] = {}
        self.downloads: dict[str, tuple[str, str]] = {}
        self._ids = itertools.count(1)
        self._throttle: list[tuple[int, str]] = []
        self._throttle_uploads: list[tuple[int, str]] = []
        self._cut: int | None = None
        self.faults = Faults()  # tests/fakes/hostile.py: 500s, 401s, cut answers, held requests
        self.counts: dict[str, int] = {}
        self._servers: list[QuietServer] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="graph-fake-")
        self.ca_file, self._key_file = make_certificate(Path(self._tmp.name))
        self.api_url = self.auth_url = ""

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> GraphFake:
        graph = self._serve(_GraphHandler, tls=False)
        auth = self._serve(_AuthHandler, tls=True)
        self.api_url = f"http://127.0.0.1:{graph.server_address[1]}/v1.0"
        self.auth_url = self.oauth.base = f"https://127.0.0.1:{auth.server_address[1]}"
        return self

    def _serve(self, base: type[BaseHTTPRequestHandler], *, tls: bool) -> QuietServer:
        fake = self

        class Handler(base):  # type: ignore[misc,valid-type]
            graph = fake

        server = QuietServer(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, self._key_file)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        self._tmp.cleanup()

    # -- accounts --------------------------------------------------------------------------------------------
    def new_id(self, prefix: str = "item") -> str:
        return f"{prefix}-{next(self._ids)}-{secrets.token_hex(3)}"

    def new_drive(self, drive_type: str = "personal", name: str = "OneDrive") -> Drive:
        with self.lock:
            drive = Drive(self.new_id("drive").upper(), drive_type, name, self.user)
            self.drives[drive.id] = drive
            return drive

    def new_site(self, host: str, path: str, libraries: list[str]) -> tuple[str, list[Drive]]:
        """A SharePoint site with document libraries (the first is the site's default): (site id, drives)."""
        with self.lock:
            site_id = f"{host},{secrets.token_hex(4)},{secrets.token_hex(4)}"
            drives = [self.new_drive("documentLibrary", name) for name in libraries]
            self.sites[site_id] = {"host": host, "path": path.strip("/"), "drives": [d.id for d in drives]}
            return site_id, drives

    def token(self) -> str:
        """A valid access token (as if signed in)."""
        return str(self.oauth.issue()["access_token"])

    def throttle(self, n: int, status: int = 429, retry_after: str = "1", *, fragments: bool = False) -> None:
        """The next n Graph calls (or, with `fragments`, the next n fragment PUTs) answer `status`."""
        with self.lock:
            if fragments:
                self._throttle_uploads = [(status, retry_after)] * n
            else:
                self._throttle = [(status, retry_after)] * n

    def cut_fragment(self, n: int) -> None:
        with self.lock:
            self._cut = n

    def forget_deltas(self, drive: Drive) -> None:
        with self.lock:
            drive.forgotten_below = drive.seq + 1

    # -- direct changes (another device) --------------------------------------------------------------------
    def put(self, drive: Drive, path: str, data: bytes, mtime: float | None = None) -> Item:
        with self.lock:
            parent = self.mkdirs(drive, path.rpartition("/")[0])
            name = path.rpartition("/")[2]
            item = drive.child(parent.id, name)
            if item is None:
                item = Item(self.new_id(), name, parent.id, False)
                drive.items[item.id] = item
            item.data = bytes(data)
            item.mtime = time.time() if mtime is None else mtime
            drive.touch(item, content=True)
            return item

    def mkdirs(self, drive: Drive, path: str) -> Item:
        with self.lock:
            node = drive.items[drive.root]
            for part in [p for p in path.split("/") if p]:
                found = drive.child(node.id, part)
                if found is None:
                    found = Item(self.new_id(), part, node.id, True)
                    drive.items[found.id] = found
                    drive.touch(found)
                node = found
            return node

    def remove(self, drive: Drive, path: str) -> None:
        with self.lock:
            item = drive.at(path)
            assert item is not None, path
            self._delete(drive, item)

    def rename(self, drive: Drive, src: str, dst: str) -> None:
        with self.lock:
            item = drive.at(src)
            assert item is not None, src
            item.parent = self.mkdirs(drive, dst.rpartition("/")[0]).id
            item.name = dst.rpartition("/")[2]
            drive.touch(item)

    def add_onenote(self, drive: Drive, path: str) -> Item:
        with self.lock:
            item = self.mkdirs(drive, path)
            item.package = "oneNote"
            self.put(drive, path + "/Section.one", b"onenote section")
            return item

    def add_remote_item(self, drive: Drive, path: str) -> Item:
        with self.lock:
            item = self.mkdirs(drive, path)
            item.remote = True
            return item

    def files(self, drive: Drive, under: str = "") -> dict[str, bytes]:
        with self.lock:
            out = {}
            for item in drive.items.values():
                if not item.folder and not item.deleted:
                    path = drive.path_of(item)
                    if not under or path.startswith(under.strip("/") + "/"):
                        out[path[len(under.strip("/")) + 1:] if under else path] = item.data
            return out

    def _delete(self, drive: Drive, item: Item) -> None:
        for child in drive.children(item.id):
            self._delete(drive, child)
        item.deleted = True
        drive.touch(item)

    # -- the wire: resources ---------------------------------------------------------------------------------
    def resource(self, drive: Drive, item: Item) -> dict[str, Any]:
        res: dict[str, Any] = {
            "id": item.id, "name": item.name, "eTag": f'"{{{item.id}}},{item.version}"',
            "cTag": f'"c:{{{item.id}}},{item.content_version}"',
            "createdDateTime": _iso(item.created), "lastModifiedDateTime": _iso(item.modified),
            "size": len(item.data) if not item.folder else sum(
                len(i.data) for i in drive.items.values() if not i.deleted and self._below(drive, i, item)),
        }
        if item.parent is not None:
            parent_path = drive.path_of(drive.items[item.parent])
            res["parentReference"] = {"driveId": drive.id, "driveType": drive.drive_type, "id": item.parent,
                                      "path": "/drive/root:" + ("/" + parent_path if parent_path else "")}
        else:
            res["root"] = {}
        if item.deleted:
            res["deleted"] = {"state": "deleted"}
            return res
        mtime = item.mtime if drive.drive_type == "personal" else item.modified
        res["fileSystemInfo"] = {"createdDateTime": _iso(item.created), "lastModifiedDateTime": _iso(mtime)}
        if item.package:
            res["package"] = {"type": item.package}
        if item.remote:
            res["remoteItem"] = {"id": "remote-" + item.id, "folder": {"childCount": 1},
                                 "parentReference": {"driveId": "OTHERDRIVE", "driveType": drive.drive_type}}
        elif item.folder:
            res["folder"] = {"childCount": len(drive.children(item.id))}
        else:
            res["file"] = {"mimeType": "application/octet-stream", "hashes": {"quickXorHash": quickxor(item.data)}}
        return res

    def _below(self, drive: Drive, item: Item, folder: Item) -> bool:
        parent = item.parent
        while parent is not None:
            if parent == folder.id:
                return True
            parent = drive.items[parent].parent
        return False

    def drive_resource(self, drive: Drive) -> dict[str, Any]:
        quota = {"used": drive.used(), "total": drive.quota or 5 * 1024**3}
        return {"id": drive.id, "driveType": drive.drive_type, "name": drive.name,
                "owner": {"user": {"id": drive.owner, "displayName": "Test User"}}, "quota": quota}


class _Base(BaseHTTPRequestHandler):
    graph: GraphFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes | dict | None = None, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, dict):
            raw, ctype = json.dumps(body).encode(), "application/json"
        else:
            raw, ctype = body or b"", "application/octet-stream"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if getattr(self, "cut", False):  # a hostile test's cut answer: half the body, then the line drops
            self.wfile.write(half(raw))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif self.command != "HEAD":
            self.wfile.write(raw)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _AuthHandler(_Base):
    """The identity platform: /{tenant}/oauth2/v2.0/token and /devicecode, over TLS."""

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
        oauth = self.graph.oauth
        if path.endswith("/oauth2/v2.0/token"):
            status, body = oauth.tenant_grant(path.strip("/").partition("/")[0], form)
        elif path.endswith("/oauth2/v2.0/devicecode"):
            status, body = oauth.device_code(form)
        else:
            status, body = 404, {"error": "not_found"}
        self._send(status, body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        tenant, _, rest = parts.path.strip("/").partition("/")
        if rest == "v2.0/.well-known/openid-configuration":
            config = self.graph.oauth.openid_configuration(tenant)
            if config is None:  # Microsoft: AADSTS90002, tenant not found
                self._send(400, {"error": "invalid_tenant", "error_description": f"Tenant '{tenant}' not found."})
            else:
                self._send(200, config)
        elif parts.path == "/device":
            code = parse_qs(parts.query).get("user_code", [""])[0]
            ok = self.graph.oauth.approve_device(code)
            self._send(200 if ok else 404, b"approved\n" if ok else b"unknown code\n")
        else:
            self._send(404, {"error": "not_found"})


class _GraphHandler(_Base):
    """Graph's v1.0 resources (see the module's docstring)."""

    def _dispatch(self) -> None:
        fake = self.graph
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self._body()
        action = fake.faults.take(f"{self.command} {path}?{parts.query}")
        if action in ("500", "401"):
            code = "generalException" if action == "500" else "InvalidAuthenticationToken"
            return self._send(int(action), {"error": {"code": code, "message": "hostile test"}})
        self.cut = action == "truncate"
        try:
            if path.startswith("/download/"):
                return self._download(path)
            if path.startswith("/upload/"):
                with fake.lock:
                    busy = fake._throttle_uploads.pop(0) if fake._throttle_uploads and self.command == "PUT" else None
                if busy is not None:
                    raise GraphError(busy[0], "serviceNotAvailable", "slow down", {"Retry-After": busy[1]})
                return self._fragment(path.removeprefix("/upload/"), body)
            if path.startswith("/monitor/"):
                return self._monitor(path)
            with fake.lock:
                if fake._throttle:
                    status, wait = fake._throttle.pop(0)
                    raise GraphError(status, "activityLimitReached" if status == 429 else "serviceNotAvailable",
                                     "slow down", {"Retry-After": wait})
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not fake.oauth.access_valid(token):
                raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty or not valid")
            if not path.startswith("/v1.0/"):
                raise GraphError(404, "itemNotFound", "no such resource")
            with fake.lock:
                status, answer, headers = self._route(path.removeprefix("/v1.0"), query, body)
            self._send(status, answer, headers)
        except GraphError as exc:
            self._send(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        fake = self.graph
        method = self.command
        if path == "/me":
            return 200, {"id": fake.user, "displayName": "Test User"}, {}
        if path.startswith("/sites/"):
            return self._site(path.removeprefix("/sites/"))
        if path == "/me/drive" or path.startswith("/me/drive/"):
            personal = [d for d in fake.drives.values() if d.drive_type != "documentLibrary"]
            if not personal:
                raise GraphError(404, "itemNotFound", "the user has no drive")
            path = f"/drives/{personal[0].id}" + path.removeprefix("/me/drive")
        if not path.startswith("/drives/"):
            raise GraphError(404, "itemNotFound", "no such resource")
        drive_id, _, rest = path.removeprefix("/drives/").partition("/")
        drive = fake.drives.get(drive_id)
        if drive is None:
            raise GraphError(404, "itemNotFound", "no such drive")
        if not rest:
            return 200, fake.drive_resource(drive), {}
        item, action, name = self._item(drive, "/" + rest)
        if action == "delta":
            return self._delta(drive, item, query)
        if action == "content" and method == "PUT":
            return self._simple_upload(drive, item, name, query, body)
        if action == "createUploadSession":
            return self._create_session(drive, item, name, json.loads(body or b"{}"))
        if item is None:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        if action == "children" and method == "POST":
            return self._mkdir(drive, item, json.loads(body))
        if action == "children":
            return self._children(drive, item, query)
        if action == "content":
            self._count("downloads")
            token = secrets.token_urlsafe(8)
            fake.downloads[token] = (drive.id, item.id)
            return 302, None, {"Location": f"http://{self.headers['Host']}/download/{token}"}
        if action == "copy":
            return self._copy(drive, item, json.loads(body))
        if action:
            raise GraphError(400, "invalidRequest", f"unknown action {action}")
        if method == "GET":
            return 200, fake.resource(drive, item), {}
        if method == "PATCH":
            self._count("patches")
            return self._patch(drive, item, json.loads(body), query)
        if method == "DELETE":
            self._check_match(item, drive)
            fake._delete(drive, item)
            return 204, None, {}
        raise GraphError(405, "invalidRequest", "method not allowed")

    def _item(self, drive: Drive, rest: str) -> tuple[Item | None, str, str]:
        """(the item addressed or None when a path names nothing yet, the action after it, the last name)."""
        rest = unquote(rest)
        if rest.startswith("/root:"):
            inner, _, tail = rest.removeprefix("/root:").partition(":")
            item = drive.at(inner)
            return item, tail.strip("/"), inner.rpartition("/")[2]
        if rest.startswith("/root"):
            return drive.items[drive.root], rest.removeprefix("/root").strip("/"), ""
        if rest.startswith("/items/"):
            item_id, _, tail = rest.removeprefix("/items/").partition("/")
            item = drive.items.get(item_id)
            if item is None or item.deleted:
                raise GraphError(404, "itemNotFound", "The resource could not be found.")
            return item, tail, item.name
        raise GraphError(400, "invalidRequest", "bad item address")

    def _site(self, rest: str) -> tuple[int, Any, dict[str, str]]:
        fake = self.graph
        rest = unquote(rest)
        for suffix in ("/drives", "/drive"):
            if rest.endswith(suffix):
                site_ref, tail = rest[: -len(suffix)], suffix
                break
        else:
            site_ref, tail = rest, ""
        site_ref = site_ref.rstrip(":")
        site_id = None
        if site_ref in fake.sites:
            site_id = site_ref
        else:
            host, _, spath = site_ref.partition(":")
            for sid, site in fake.sites.items():
                if site["host"] == host and site["path"].casefold() == spath.strip("/").casefold():
                    site_id = sid
        if site_id is None:
            raise GraphError(404, "itemNotFound", "Requested site could not be found")
        site = fake.sites[site_id]
        drives = [fake.drive_resource(fake.drives[d]) for d in site["drives"]]
        if tail == "/drives":
            return 200, {"value": drives}, {}
        if tail == "/drive":
            return 200, drives[0], {}
        return 200, {"id": site_id, "webUrl": f"https://{site['host']}/{site['path']}",
                     "displayName": site["path"].rpartition("/")[2]}, {}

    # -- operations ------------------------------------------------------------------------------------------
    def _check_match(self, item: Item | None, drive: Drive) -> None:
        wanted = self.headers.get("If-Match")
        if wanted and (item is None or wanted not in (self.graph.resource(drive, item)["eTag"],
                                                      self.graph.resource(drive, item)["cTag"])):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value")

    def _parent_for(self, drive: Drive, name_path: str) -> Item:
        parent = drive.at(name_path)
        if parent is None or not parent.folder:
            raise GraphError(404, "itemNotFound", "the parent folder does not exist")
        return parent

    def _target(self, drive: Drive, item: Item | None, name: str, behavior: str) -> tuple[Item, Item | None]:
        """(parent folder, existing item) for a write to a `root:/path:` address."""
        inner = unquote(urlsplit(self.path).path).partition("root:")[2].partition(":")[0]
        parent = self._parent_for(drive, inner.rpartition("/")[0])
        if item is not None and item.folder:
            raise GraphError(409, "nameAlreadyExists", "a folder holds the name")
        if item is not None and behavior == "fail":
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        self._check_match(item, drive)
        return parent, item

    def _quota(self, drive: Drive, adding: int) -> None:
        if drive.quota is not None and drive.used() + adding > drive.quota:
            raise GraphError(507, "quotaLimitReached", "Insufficient Space Available")

    def _store(self, drive: Drive, parent: Item, existing: Item | None, name: str, data: bytes,
               mtime: float | None) -> Item:
        fake = self.graph
        item = existing or Item(fake.new_id(), name, parent.id, False)
        drive.items[item.id] = item
        item.data = data
        item.mtime = mtime if mtime is not None and drive.drive_type == "personal" else time.time()
        drive.touch(item, content=True)
        return item

    def _rewrite_office(self, drive: Drive, item: Item) -> None:
        """SharePoint adds its metadata to an Office file after the upload has answered."""
        if drive.drive_type == "documentLibrary" and item.name.lower().endswith(OFFICE):
            item.data += SHAREPOINT_STAMP
            drive.touch(item, content=True)

    def _count(self, what: str) -> None:
        self.graph.counts[what] = self.graph.counts.get(what, 0) + 1

    def _simple_upload(self, drive: Drive, item: Item | None, name: str, query: dict[str, str],
                       body: bytes) -> tuple[int, Any, dict[str, str]]:
        self._count("uploads")
        if len(body) > SIMPLE_MAX:
            raise GraphError(413, "requestTooLarge", "use an upload session above 4 MB")
        behavior = query.get("@microsoft.graph.conflictBehavior", "replace")
        parent, existing = self._target(drive, item, name, behavior)
        self._quota(drive, len(body))
        stored = self._store(drive, parent, existing, name, body, None)
        answer = self.graph.resource(drive, stored)
        self._rewrite_office(drive, stored)
        return (200 if existing else 201), answer, {}

    def _create_session(self, drive: Drive, item: Item | None, name: str,
                        body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        self._count("sessions")
        spec = body.get("item", {})
        behavior = spec.get("@microsoft.graph.conflictBehavior", "replace")
        parent, existing = self._target(drive, item, name, behavior)
        mtime = spec.get("fileSystemInfo", {}).get("lastModifiedDateTime")
        sid = secrets.token_urlsafe(12)
        self.graph.sessions[sid] = Session(drive.id, parent.id, name, existing.id if existing else None,
                                           _parse_iso(mtime) if mtime else None)
        return 200, {"uploadUrl": f"http://{self.headers['Host']}/upload/{sid}",
                     "expirationDateTime": _iso(time.time() + 86400), "nextExpectedRanges": ["0-"]}, {}

    def _fragment(self, sid: str, body: bytes) -> None:
        fake = self.graph
        with fake.lock:
            session = fake.sessions.get(sid)
            if session is None:
                return self._send(404, {"error": {"code": "itemNotFound", "message": "upload session not found"}})
            if self.command == "GET":
                return self._send(200, {"nextExpectedRanges": [f"{len(session.data)}-"],
                                        "expirationDateTime": _iso(time.time() + 86400)})
            if self.command == "DELETE":
                del fake.sessions[sid]
                return self._send(204)
            self._count("fragments")
            try:
                _unit, _, spec = self.headers["Content-Range"].partition(" ")
                span, _, total = spec.partition("/")
                first, _, last = span.partition("-")
                start, end, size = int(first), int(last), int(total)
            except (KeyError, ValueError):
                return self._send(400, {"error": {"code": "invalidRequest", "message": "bad Content-Range"}})
            final = end + 1 == size
            if (start != len(session.data) or end - start + 1 != len(body)
                    or (not final and len(body) % FRAGMENT) or (session.size not in (None, size))):
                return self._send(416, {"error": {"code": "invalidRange", "message": "fragment out of order",
                                                  "nextExpectedRanges": [f"{len(session.data)}-"]}})
            session.size = size
            session.data += body
            cut = False
            if fake._cut is not None:
                fake._cut -= 1
                cut = fake._cut == 0
                if cut:
                    fake._cut = None
            status, answer = self._commit(sid, session) if final else (
                202, {"nextExpectedRanges": [f"{len(session.data)}-"],
                      "expirationDateTime": _iso(time.time() + 86400)})
            if cut:
                self.close_connection = True  # done (stored, or the file committed), but the answer is lost
                self.connection.shutdown(2)
                return None
            return self._send(status, answer)

    def _commit(self, sid: str, session: Session) -> tuple[int, dict[str, Any]]:
        """The last fragment arrived: the file is stored (the session ends whatever the outcome)."""
        fake = self.graph
        del fake.sessions[sid]
        drive = fake.drives[session.drive]
        existing = drive.items.get(session.existing) if session.existing else None
        clash = drive.child(session.parent, session.name)
        if clash is not None and (existing is None or clash.id != existing.id):
            return 409, {"error": {"code": "nameAlreadyExists", "message": "name taken"}}
        try:
            self._quota(drive, len(session.data))
        except GraphError as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}
        stored = self._store(drive, drive.items[session.parent], existing, session.name, bytes(session.data),
                             session.mtime)
        answer = fake.resource(drive, stored)
        self._rewrite_office(drive, stored)
        return (201 if existing is None else 200), answer

    def _download(self, path: str) -> None:
        fake = self.graph
        with fake.lock:
            found = fake.downloads.get(path.removeprefix("/download/"))
            item = fake.drives[found[0]].items.get(found[1]) if found else None
            data = item.data if item is not None and not item.deleted else None
        if data is None:
            return self._send(404, {"error": {"code": "itemNotFound", "message": "gone"}})
        return self._send(200, data)

    def _mkdir(self, drive: Drive, parent: Item, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        name = body.get("name", "")
        if not name or "/" in name or "folder" not in body:
            raise GraphError(400, "invalidRequest", "a folder needs a name")
        existing = drive.child(parent.id, name)
        if existing is not None:
            if body.get("@microsoft.graph.conflictBehavior", "fail") == "fail" or not existing.folder:
                raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
            return 200, self.graph.resource(drive, existing), {}
        item = Item(self.graph.new_id(), name, parent.id, True)
        drive.items[item.id] = item
        drive.touch(item)
        return 201, self.graph.resource(drive, item), {}

    def _children(self, drive: Drive, item: Item, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if not item.folder:
            raise GraphError(400, "invalidRequest", "not a folder")
        top = min(int(query.get("$top", PAGE)), 1000)
        skip = int(query.get("$skiptoken", 0))
        kids = drive.children(item.id)
        page = [self.graph.resource(drive, k) for k in kids[skip:skip + top]]
        answer: dict[str, Any] = {"value": page}
        if skip + top < len(kids):
            answer["@odata.nextLink"] = (f"http://{self.headers['Host']}/v1.0/drives/{drive.id}/items/{item.id}"
                                         f"/children?$top={top}&$skiptoken={skip + top}")
        return 200, answer, {}

    def _delta(self, drive: Drive, item: Item | None, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        self._count("delta")
        if item is None or item.id != drive.root:
            raise GraphError(400, "invalidRequest", "delta is only supported on the root")
        base = f"http://{self.headers['Host']}/v1.0/drives/{drive.id}/root/delta"
        token = query.get("token", "")
        if token == "latest":
            return 200, {"value": [], "@odata.deltaLink": f"{base}?token={drive.seq}"}, {}
        try:
            since = int(token) if token else 0
        except ValueError:
            since = -1
        if since < 0 or since > drive.seq or (token and since < drive.forgotten_below):
            self._count("resync")
            raise GraphError(410, "resyncRequired", "Resync required: replace any local items with the server's")
        changed = sorted((i for i in drive.items.values() if i.seq > since), key=lambda i: i.seq)
        skip = int(query.get("$skiptoken", 0))
        page = changed[skip:skip + PAGE]
        answer: dict[str, Any] = {"value": [self._delta_item(drive, i) for i in page]}
        if skip + PAGE < len(changed):
            answer["@odata.nextLink"] = f"{base}?token={since}&$skiptoken={skip + PAGE}"
        else:
            answer["@odata.deltaLink"] = f"{base}?token={drive.seq}"
        return 200, answer, {}

    def _delta_item(self, drive: Drive, item: Item) -> dict[str, Any]:
        res = self.graph.resource(drive, item)
        if drive.drive_type != "personal":
            res.pop("cTag", None)  # not promised in delta outside personal OneDrive: clients must cope
        return res

    def _patch(self, drive: Drive, item: Item, body: dict[str, Any],
               query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        self._check_match(item, drive)
        behavior = body.get("@microsoft.graph.conflictBehavior") or query.get("@microsoft.graph.conflictBehavior",
                                                                                 "fail")
        parent_id = body.get("parentReference", {}).get("id", item.parent)
        name = body.get("name", item.name)
        if parent_id != item.parent or name != item.name:
            parent = drive.items.get(parent_id or "")
            if parent is None or parent.deleted or not parent.folder:
                raise GraphError(404, "itemNotFound", "the target folder does not exist")
            clash = drive.child(parent.id, name)
            if clash is not None and clash.id != item.id:
                if behavior == "fail":
                    raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
                self.graph._delete(drive, clash)
            item.parent, item.name = parent.id, name
        info = body.get("fileSystemInfo", {}).get("lastModifiedDateTime")
        if info and drive.drive_type == "personal":
            item.mtime = _parse_iso(info)
        drive.touch(item)
        return 200, self.graph.resource(drive, item), {}

    def _copy(self, drive: Drive, item: Item, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        fake = self.graph
        parent = drive.items.get(body.get("parentReference", {}).get("id", item.parent or ""))
        if parent is None or parent.deleted or not parent.folder or item.folder:
            raise GraphError(400, "invalidRequest", "bad copy target")
        name = body.get("name", item.name)
        monitor = secrets.token_urlsafe(8)
        if drive.child(parent.id, name) is not None:
            fake.monitors[monitor] = "failed"
        else:
            self._quota(drive, len(item.data))
            copied = Item(fake.new_id(), name, parent.id, False, item.data, item.mtime)
            drive.items[copied.id] = copied
            drive.touch(copied, content=True)
            fake.monitors[monitor] = copied.id
        return 202, None, {"Location": f"http://{self.headers['Host']}/monitor/{monitor}"}

    def _monitor(self, path: str) -> None:
        """A copy's monitor address: not under /v1.0 and taking no token, as Graph's."""
        result = self.graph.monitors.get(path.removeprefix("/monitor/"))
        if result is None:
            self._send(404, {"error": {"code": "itemNotFound", "message": "no such operation"}})
        elif result == "failed":
            self._send(200, {"status": "failed", "error": {"code": "nameAlreadyExists"}})
        else:
            self._send(200, {"status": "completed", "percentageComplete": 100, "resourceId": result})


def running() -> Iterator[GraphFake]:
    """A started fake, stopped at the end (for `with contextlib.contextmanager(running)()`)."""
    fake = GraphFake().start()
    try:
        yield fake
    finally:
        fake.stop()

