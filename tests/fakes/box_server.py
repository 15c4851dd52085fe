"""A Box API 2.0 fake that the official `boxsdk` (3.x) talks to over HTTP on 127.0.0.1, with a rotating OAuth
server beside it.

One HTTP server plays both Box hosts by prefix, so a request sent to the wrong host fails as in production:
`<url>/2.0` is `https://api.box.com/2.0` and `<url>/api/2.0` is `https://upload.box.com/api/2.0`. The OAuth
endpoints are a `FakeOAuthServer` (tests/fakes/oauth_server.py) with Box's rules: client secret required, no
PKCE, every refresh answers a new refresh token and kills the one used at once; the API accepts only the access
tokens that server issued (401 with an empty body otherwise, as Box answers).

What it speaks (JSON unless said):

- api: `GET users/me` (`id`, `max_upload_size`), `GET folders/{id}`, `GET folders/{id}/items` (marker or offset
  paging, at most 1,000 a page), `POST folders`, `PUT folders/{id}` (rename and move, content along), `DELETE
  folders/{id}` (`recursive=false` refused with `folder_not_empty`), `GET files/{id}`, `GET files/{id}/content` (the
  bytes directly; Box redirects to dl.boxcloud.com), `PUT files/{id}` (rename and move, `If-Match`), `POST
  files/{id}/copy` (keeps `content_modified_at`), `DELETE files/{id}` (`If-Match`; items go to the trash), `GET
  events` (`stream_position` `now` or a number; an unknown one is 400; `chunk_size`, `next_stream_position`, events
  with their `source`).
- real-time: `OPTIONS events` names `<url>/realtime/subscribe`, which holds a GET until an event follows its
  `stream_position` (`new_change`) or `longpoll_hold` passes (`reconnect`); no token needed, as on Box.
- upload: `POST files/content` and `POST files/{id}/content` (multipart `attributes` + `file`, `Content-MD5` as
  the sha1 Box checks, `If-Match`, `content_modified_at` kept), `POST files/upload_sessions` and
  `POST files/{id}/upload_sessions` (answering `part_size`), `PUT files/upload_sessions/{id}` (`Content-Range`
  at a multiple of the part size, `Digest: sha=` checked), `POST files/upload_sessions/{id}/commit` (the parts
  must cover the file in order, the whole file's `Digest` checked, `attributes` applied, `If-Match`).
- Errors in Box's shape (`{"type": "error", "status", "code", "message", "context_info"}`): 404 `not_found` /
  `trashed`, 409 `item_name_in_use` with `context_info.conflicts`, 412 `precondition_failed`, 413
  `file_size_limit_exceeded` (above `max_upload_size`), 400 `folder_not_empty` / `invalid_parameter`, and 429
  with `Retry-After` (`throttle()`).

Names are unique in a folder without regard to case, as on Box. Every item has an id, an `etag` that changes with
each change of the item (content, name, place) and, for files, a `file_version` id that changes with each content
and a `sha1`. Each fake is one account (its own namespace).

Test hooks: `oauth` (the OAuth server: `issue()`, `revoke_all()`, `valid_refresh_tokens()`), `new_token()`,
`throttle(n, retry_after)`, `put(path, data)`, `mkdir(path)`, `move(src, dst)`, `trash(path)`,
`add_web_link(path, url)` (a bookmark), `find(path)`, `files()`, `max_upload_size`, `part_size` and
`min_session_size` (20,000,000 bytes as on Box; tests lower them), `expire_events()` (every stream position
known so far is refused), `reset()` (an empty account again), `cut_next_part()` (the next part is stored but its
connection dropped), `calls` (requests per route).

Not covered: shared links, collaborations and other users' folders, enterprise and admin event streams, `fields`
(every answer carries every field), the offset cap, file versions listing and promotion, locks, metadata,
watermarks, retention, thumbnails, search, the trash's own endpoints (restore, purge), upload preflight and
accelerators, `GET upload_sessions/{id}` and `/parts`, aborting sessions, session expiry, byte ranges in downloads,
Box Notes' own content (a `.boxnote` is a plain file here), name rules (length, `/`, `\\`, trailing spaces), folder
sizes, and events delivered twice (Box delivers at least once; the fake exactly once).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.parser
import email.policy
import hashlib
import itertools
import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.hostile import Faults, half
from tests.fakes.httpserver import QuietServer
from tests.fakes.oauth_server import FakeOAuthServer

CLIENT_ID = "box-client"
CLIENT_SECRET = "box-secret"
ACCOUNT = "11446498"
EPOCH = 10**12


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def _parse_stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class BoxFailure(Exception):
    def __init__(self, status: int, code: str, message: str = "", context: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or code)
        self.status, self.code, self.context, self.headers = status, code, context, headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "status": self.status, "code": self.code,
                               "message": str(self), "request_id": "fake"}
        if self.context is not None:
            out["context_info"] = self.context
        return out


@dataclass
class Node:
    type: str  # "file", "folder" or "web_link"
    id: str
    name: str
    parent: str | None
    data: bytes = b""
    mtime: float = 0.0
    etag: int = 0
    version: str = ""
    status: str = "active"
    url: str = ""


@dataclass
class UploadSession:
    id: str
    folder: str | None  # a new file's folder, or None for a new version of `file`
    file: str | None
    name: str
    size: int
    part_size: int
    parts: dict[int, bytes] = field(default_factory=dict)  # offset -> bytes


class BoxFake:
    def __init__(self) -> None:
        self.oauth = FakeOAuthServer(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, account_id=ACCOUNT,
                                     rotate=True, require_pkce=False)  # fmt: skip
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified with every event, for the long poll
        self.longpoll_hold = 5.0  # seconds the real-time server holds a wait (Box: 610); tests keep it short
        self._httpd: QuietServer | None = None
        self.epoch = 0  # stream positions are epoch * EPOCH + event number; those of an earlier epoch are refused
        self._ids = itertools.count(1000)  # never reused, so an id from before a reset finds nothing
        self.reset()

    def reset(self) -> None:
        """An empty account again (a session-wide fake serving one test after another); issued tokens stay."""
        with self.lock:
            self._reset()

    def _reset(self) -> None:
        self.nodes: dict[str, Node] = {"0": Node("folder", "0", "All Files", None)}
        self.sessions: dict[str, UploadSession] = {}
        self.events: list[dict[str, Any]] = []  # position i+1 follows events[i]
        self.faults = Faults()  # tests/fakes/hostile.py: 500s, 401s, cut answers, held requests
        self.empty_pages = 0  # marker listings that answer an empty page (with a marker to go on) first
        self.epoch += 1  # positions handed out before are refused
        self.max_upload_size = 5 * 1024**3
        self.part_size = 8 * 1024 * 1024
        self.min_session_size = 20_000_000
        self.calls: Counter[str] = Counter()
        self._throttle: list[float] = []
        self._cut_part = False

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> BoxFake:
        self.oauth.start()
        fake = self

        class Handler(_Handler):
            box = fake

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        oauth = threading.Thread(target=self.oauth.stop)  # each shutdown waits for its server's poll: overlap them
        oauth.start()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        oauth.join()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/2.0"

    @property
    def upload_url(self) -> str:
        return self.url + "/api/2.0"

    def options(self, token: str | None = None) -> dict[str, str]:
        """Connection options for this fake (a fresh token unless one is given)."""
        return {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": token or self.new_token(),
            "account_id": ACCOUNT, "api_url": self.api_url, "upload_url": self.upload_url,
            "token_url": self.oauth.token_url, "auth_url": self.oauth.auth_url,
        }  # fmt: skip

    # -- hooks ---------------------------------------------------------------------------------------------

    def new_token(self, access_ttl: float | None = None) -> str:
        """A token as `rclone authorize box` prints it, issued by the OAuth server."""
        issued = self.oauth.issue(access_ttl)
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued["expires_in"]))  # type: ignore[arg-type]
        return json.dumps({"access_token": issued["access_token"], "token_type": "bearer",
                           "refresh_token": issued["refresh_token"],
                           "expiry": expiry.isoformat().replace("+00:00", "Z")})  # fmt: skip

    def throttle(self, count: int = 1, retry_after: float = 1) -> None:
        with self.lock:
            self._throttle += [retry_after] * count

    def cut_next_part(self) -> None:
        with self.lock:
            self._cut_part = True

    def expire_events(self) -> None:
        """Every stream position handed out so far is refused from now on (Box forgot them)."""
        with self.lock:
            self.epoch += 1

    def find(self, path: str) -> Node | None:
        with self.lock:
            node = self.nodes["0"]
            for name in [p for p in path.strip("/").split("/") if p]:
                child = self._child(node.id, name)
                if child is None:
                    return None
                node = child
            return node

    def put(self, path: str, data: bytes, mtime: float = 1_600_000_000.0) -> Node:
        with self.lock:
            folder, _, name = path.strip("/").rpartition("/")
            parent = self._mkdirs(folder)
            existing = self._child(parent, name)
            if existing is not None:
                return self._new_version(existing, data, mtime, "ITEM_UPLOAD")
            return self._add("file", parent, name, data=data, mtime=mtime)

    def mkdir(self, path: str) -> str:
        with self.lock:
            return self._mkdirs(path.strip("/"))

    def move(self, src: str, dst: str) -> Node:
        """Rename or move an item as another Box client would (its id stays)."""
        with self.lock:
            node = self.find(src)
            assert node is not None, src
            folder, _, name = dst.strip("/").rpartition("/")
            parent = self._mkdirs(folder)
            self._name_free(parent, name, moving=node.id)
            moved = parent != node.parent
            node.parent, node.name = parent, name
            node.etag += 1
            self._event("ITEM_MOVE" if moved else "ITEM_RENAME", node)
            return node

    def trash(self, path: str) -> None:
        with self.lock:
            node = self.find(path)
            assert node is not None, path
            self._trash(node)

    def add_web_link(self, path: str, url: str = "https://example.com/") -> Node:
        with self.lock:
            folder, _, name = path.strip("/").rpartition("/")
            return self._add("web_link", self._mkdirs(folder), name, url=url)

    def files(self) -> dict[str, bytes]:
        """Every live file by its path (as named), for assertions."""
        with self.lock:
            return {self.path_of(n): n.data for n in self.nodes.values() if n.type == "file" and self._live(n)}

    def path_of(self, node: Node) -> str:
        parts = []
        while node.parent is not None:
            parts.append(node.name)
            node = self.nodes[node.parent]
        return "/".join(reversed(parts))

    # -- the namespace (under the lock) --------------------------------------------------------------------

    def _live(self, node: Node) -> bool:
        while node.parent is not None:
            if node.status != "active":
                return False
            node = self.nodes[node.parent]
        return True

    def _children(self, parent: str) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.parent == parent and n.status == "active"),
                      key=lambda n: (n.type != "folder", n.name.casefold()))  # fmt: skip

    def _child(self, parent: str, name: str) -> Node | None:
        for node in self._children(parent):
            if node.name.casefold() == name.casefold():
                return node
        return None

    def _mkdirs(self, folder: str) -> str:
        parent = "0"
        for name in [p for p in folder.split("/") if p]:
            child = self._child(parent, name)
            if child is None:
                child = self._add("folder", parent, name)
            parent = child.id
        return parent

    def _event(self, kind: str, node: Node) -> None:
        self.events.append({"type": "event", "event_id": f"ev-{len(self.events) + 1}", "event_type": kind,
                            "created_at": _stamp(0), "source": self.item(node)})  # fmt: skip
        self.changed.notify_all()

    def _add(self, kind: str, parent: str, name: str, *, data: bytes = b"", mtime: float = 0.0,
             url: str = "") -> Node:
        self._name_free(parent, name)
        node = Node(kind, str(next(self._ids)), name, parent, data, mtime, 1, str(next(self._ids)), url=url)
        self.nodes[node.id] = node
        self._event("ITEM_CREATE" if kind != "file" else "ITEM_UPLOAD", node)
        return node

    def _name_free(self, parent: str, name: str, moving: str | None = None) -> None:
        if parent not in self.nodes or self.nodes[parent].type != "folder" or self.nodes[parent].status != "active":
            raise BoxFailure(404, "not_found", "the parent folder does not exist")
        taken = self._child(parent, name)
        if taken is not None and taken.id != moving:
            raise BoxFailure(409, "item_name_in_use", "Item with the same name already exists",
                             {"conflicts": self.item(taken) if taken.type == "folder" else [self.item(taken)]})

    def _new_version(self, node: Node, data: bytes, mtime: float, kind: str) -> Node:
        node.data, node.mtime = data, mtime
        node.etag += 1
        node.version = str(next(self._ids))
        self._event(kind, node)
        return node

    def item(self, node: Node) -> dict[str, Any]:
        out: dict[str, Any] = {"type": node.type, "id": node.id, "name": node.name, "etag": str(node.etag),
                               "item_status": node.status}  # fmt: skip
        out["parent"] = {"type": "folder", "id": node.parent} if node.parent is not None else None
        if node.type == "file":
            sha1 = hashlib.sha1(node.data).hexdigest()
            out.update(size=len(node.data), sha1=sha1, content_modified_at=_stamp(node.mtime),
                       file_version={"type": "file_version", "id": node.version, "sha1": sha1},
                       extension=node.name.rpartition(".")[2] if "." in node.name else "")  # fmt: skip
        elif node.type == "web_link":
            out["url"] = node.url
        return out

    def _get(self, item_id: str, kind: str) -> Node:
        node = self.nodes.get(item_id)
        if node is None or node.type != kind:
            raise BoxFailure(404, "not_found", "Not Found")
        if not self._live(node):
            raise BoxFailure(404, "trashed", "Item is trashed")
        return node

    @staticmethod
    def _if_match(node: Node, headers: Any) -> None:
        wanted = headers.get("If-Match")
        if wanted is not None and wanted != str(node.etag):
            raise BoxFailure(412, "precondition_failed", "The resource has been modified")

    def _trash(self, node: Node) -> None:
        node.status = "trashed"
        node.etag += 1
        self._event("ITEM_TRASH", node)

    # -- routes --------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, Any]:
        """(status, JSON value or bytes) for one request to either host."""
        if path.startswith("/api/2.0/"):
            return self._upload_route(method, path[len("/api/2.0/"):], query, headers, body)
        if path.startswith("/2.0/"):
            return self._api_route(method, path[len("/2.0/"):], query, headers, body)
        raise BoxFailure(404, "not_found", "no such host path")

    def _api_route(self, method: str, route: str, query: dict[str, str], headers: Any,
                   body: bytes) -> tuple[int, Any]:
        parts = route.split("/")
        arg = json.loads(body) if body and method in ("POST", "PUT") else {}
        if route == "users/me" and method == "GET":
            return 200, {"type": "user", "id": ACCOUNT, "name": "Fake User", "login": "fake@example.com",
                         "max_upload_size": self.max_upload_size}  # fmt: skip
        if route == "events" and method == "GET":
            return 200, self._events(query)
        if route == "events" and method == "OPTIONS":
            return 200, {"chunk_size": 1, "entries": [{
                "type": "realtime_server", "url": f"{self.url}/realtime/subscribe?channel=fake&stream_type=all",
                "ttl": "10", "max_retries": "10", "retry_timeout": self.longpoll_hold}]}  # fmt: skip
        if route == "folders" and method == "POST":
            node = self._add("folder", str((arg.get("parent") or {}).get("id")), str(arg.get("name", "")))
            return 201, self.item(node)
        if parts[0] == "folders" and len(parts) >= 2:
            node = self._get(parts[1], "folder")
            if len(parts) == 2 and method == "GET":
                return 200, self.item(node)
            if len(parts) == 3 and parts[2] == "items" and method == "GET":
                limit = min(int(query.get("limit", 100)), 1000)
                children = self._children(node.id)
                if query.get("usemarker") == "true":  # the marker is opaque to clients; here, the next offset
                    start = int(base64.urlsafe_b64decode(query["marker"]).decode()) if query.get("marker") else 0
                    if self.empty_pages > 0:  # items filtered out after paging: an empty page, more behind it
                        self.empty_pages -= 1
                        return 200, {"limit": limit, "entries": [],
                                     "next_marker": base64.urlsafe_b64encode(str(start).encode()).decode()}
                    end = start + limit
                    more = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(children) else None
                    return 200, {"limit": limit, "next_marker": more,
                                 "entries": [self.item(n) for n in children[start:end]]}  # fmt: skip
                offset = int(query.get("offset", 0))
                return 200, {"total_count": len(children), "offset": offset, "limit": limit,
                             "entries": [self.item(n) for n in children[offset:offset + limit]]}  # fmt: skip
            if len(parts) == 2 and method == "PUT":
                return 200, self.item(self._relocate(node, arg, headers))
            if len(parts) == 2 and method == "DELETE":
                self._if_match(node, headers)
                if node.id == "0":
                    raise BoxFailure(403, "access_denied_insufficient_permissions", "the root cannot go")
                if query.get("recursive") != "true" and self._children(node.id):
                    raise BoxFailure(400, "folder_not_empty", "Cannot delete - folder not empty")
                self._trash(node)
                return 204, b""
        if parts[0] == "files" and len(parts) >= 2:
            node = self._get(parts[1], "file")
            if len(parts) == 2 and method == "GET":
                return 200, self.item(node)
            if len(parts) == 3 and parts[2] == "content" and method == "GET":
                return 200, node.data
            if len(parts) == 2 and method == "PUT":
                return 200, self.item(self._relocate(node, arg, headers))
            if len(parts) == 2 and method == "DELETE":
                self._if_match(node, headers)
                self._trash(node)
                return 204, b""
            if len(parts) == 3 and parts[2] == "copy" and method == "POST":
                parent = str((arg.get("parent") or {}).get("id"))
                made = self._add("file", parent, str(arg.get("name") or node.name), data=node.data,
                                 mtime=node.mtime)  # fmt: skip
                return 201, self.item(made)
        raise BoxFailure(404, "not_found", f"no route {method} {route}")

    def realtime(self, query: dict[str, str]) -> dict[str, str]:
        """The real-time server's long poll: `new_change` as soon as the account has an event after
        `stream_position` (at once if it has one already), `reconnect` after `longpoll_hold` seconds."""
        self.calls["GET realtime"] += 1
        position = query.get("stream_position", "")
        with self.changed:
            base = self.epoch * EPOCH
            seen = int(position) - base - 1 if position.isdigit() and int(position) > base else len(self.events)
            if self.changed.wait_for(lambda: len(self.events) > seen, timeout=self.longpoll_hold):
                return {"message": "new_change"}
        return {"message": "reconnect"}

    def _relocate(self, node: Node, arg: dict[str, Any], headers: Any) -> Node:
        """PUT files/{id} or folders/{id}: a new name and/or parent (a folder takes its content along)."""
        self._if_match(node, headers)
        if node.id == "0":
            raise BoxFailure(403, "access_denied_insufficient_permissions", "the root cannot move")
        parent = str((arg.get("parent") or {}).get("id") or node.parent)
        name = str(arg.get("name") or node.name)
        self._name_free(parent, name, moving=node.id)
        ancestor: str | None = parent
        while ancestor is not None:  # a folder cannot go into itself
            if ancestor == node.id:
                raise BoxFailure(400, "bad_request", "a folder cannot move into itself")
            ancestor = self.nodes[ancestor].parent
        moved = parent != node.parent
        node.parent, node.name = parent, name
        node.etag += 1
        self._event("ITEM_MOVE" if moved else "ITEM_RENAME", node)
        return node

    def _events(self, query: dict[str, str]) -> dict[str, Any]:
        position = query.get("stream_position", "0")
        base = self.epoch * EPOCH
        if position == "now":
            return {"chunk_size": 0, "next_stream_position": base + len(self.events) + 1, "entries": []}
        if not position.isdigit() or not base < int(position) <= base + len(self.events) + 1:
            raise BoxFailure(400, "invalid_parameter", "Invalid value for 'stream_position'")
        start = int(position) - base
        limit = min(int(query.get("limit", 100)), 500)
        chunk = self.events[start - 1:start - 1 + limit]
        return {"chunk_size": len(chunk), "next_stream_position": base + start + len(chunk), "entries": chunk}

    def _upload_route(self, method: str, route: str, query: dict[str, str], headers: Any,
                      body: bytes) -> tuple[int, Any]:
        parts = route.split("/")
        if method == "POST" and (route == "files/content" or (len(parts) == 3 and parts[2] == "content")):
            attributes, data = _multipart(headers.get("Content-Type", ""), body)
            self._check_size(len(data))
            sha1 = headers.get("Content-MD5")
            if sha1 is not None and sha1 != hashlib.sha1(data).hexdigest():
                raise BoxFailure(400, "bad_digest", "The specified Content-MD5 did not match what we received")
            mtime = _parse_stamp(attributes["content_modified_at"]) if attributes.get("content_modified_at") else 0.0
            if route == "files/content":
                node = self._add("file", str((attributes.get("parent") or {}).get("id")),
                                 str(attributes.get("name", "")), data=data, mtime=mtime)  # fmt: skip
            else:
                node = self._get(parts[1], "file")
                self._if_match(node, headers)
                self._new_version(node, data, mtime, "ITEM_UPLOAD")
            return 201, {"total_count": 1, "entries": [self.item(node)]}
        if method == "POST" and (route == "files/upload_sessions" or (len(parts) == 3 and parts[2] ==
                                                                       "upload_sessions")):  # fmt: skip
            arg = json.loads(body or b"{}")
            size = int(arg.get("file_size", 0))
            self._check_size(size)
            if size < self.min_session_size:
                raise BoxFailure(400, "file_size_too_small", "file size is below the upload session minimum")
            if route == "files/upload_sessions":
                folder = str(arg.get("folder_id"))
                self._name_free(folder, str(arg.get("file_name", "")))
                session = UploadSession(f"us-{next(self._ids)}", folder, None, str(arg["file_name"]), size,
                                        self.part_size)  # fmt: skip
            else:
                node = self._get(parts[1], "file")
                session = UploadSession(f"us-{next(self._ids)}", None, node.id, node.name, size, self.part_size)
            self.sessions[session.id] = session
            base = f"{self.upload_url}/files/upload_sessions/{session.id}"
            return 201, {"type": "upload_session", "id": session.id, "part_size": session.part_size,
                         "total_parts": -(-size // session.part_size), "num_parts_processed": 0,
                         "session_endpoints": {"upload_part": base, "commit": base + "/commit",
                                               "abort": base, "list_parts": base + "/parts",
                                               "status": base, "log_event": base + "/log"}}  # fmt: skip
        if len(parts) >= 3 and parts[:2] == ["files", "upload_sessions"]:
            session = self.sessions.get(parts[2])
            if session is None:
                raise BoxFailure(404, "not_found", "no such upload session")
            if len(parts) == 3 and method == "PUT":
                return 200, {"part": self._part(session, headers, body)}
            if len(parts) == 4 and parts[3] == "commit" and method == "POST":
                return 201, {"entries": [self.item(self._commit(session, headers, json.loads(body or b"{}")))]}
        raise BoxFailure(404, "not_found", f"no route {method} {route}")

    def _check_size(self, size: int) -> None:
        if size > self.max_upload_size:
            raise BoxFailure(413, "file_size_limit_exceeded", "File size exceeds the folder owner's file size limit")

    def _part(self, session: UploadSession, headers: Any, body: bytes) -> dict[str, Any]:
        first, _, rest = headers.get("Content-Range", "").removeprefix("bytes ").partition("-")
        last, _, total = rest.partition("/")
        start, end = int(first), int(last)
        if int(total) != session.size or start % session.part_size or end - start + 1 != len(body) or (
                len(body) != session.part_size and end != session.size - 1):  # fmt: skip
            raise BoxFailure(416, "range_not_satisfiable", "the part's range does not fit the session")
        digest = headers.get("Digest", "")
        if digest.partition("=")[2] != base64.b64encode(hashlib.sha1(body).digest()).decode():
            raise BoxFailure(412, "precondition_failed", "the part's Digest does not match")
        session.parts[start] = body
        if self._cut_part:
            self._cut_part = False
            raise _Cut()
        return {"part_id": f"{start:08X}", "offset": start, "size": len(body),
                "sha1": hashlib.sha1(body).hexdigest()}  # fmt: skip

    def _commit(self, session: UploadSession, headers: Any, arg: dict[str, Any]) -> Node:
        listed = sorted(int(p["offset"]) for p in arg.get("parts") or [])
        if listed != sorted(session.parts) or sum(len(b) for b in session.parts.values()) != session.size:
            raise BoxFailure(400, "bad_request", "the parts do not cover the file")
        data = b"".join(session.parts[o] for o in listed)
        digest = headers.get("Digest", "").partition("=")[2]
        if digest != base64.b64encode(hashlib.sha1(data).digest()).decode():
            raise BoxFailure(422, "bad_digest", "the file's Digest does not match")
        attributes = arg.get("attributes") or {}
        mtime = _parse_stamp(attributes["content_modified_at"]) if attributes.get("content_modified_at") else 0.0
        del self.sessions[session.id]
        if session.file is None:
            assert session.folder is not None
            return self._add("file", session.folder, session.name, data=data, mtime=mtime)
        node = self._get(session.file, "file")
        self._if_match(node, headers)
        return self._new_version(node, data, mtime, "ITEM_UPLOAD")

    def take_throttle(self) -> float | None:
        with self.lock:
            return self._throttle.pop(0) if self._throttle else None


class _Cut(Exception):
    """Drop the connection without an answer (the part was stored)."""


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)  # fmt: skip
    attributes: dict[str, Any] = {}
    data = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "attributes":
            attributes = json.loads(payload)
        elif name == "file":
            data = payload
    return attributes, data


class _Handler(BaseHTTPRequestHandler):
    box: BoxFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.send_response(status)
        if not isinstance(value, bytes):
            self.send_header("Content-Type", "application/json")
        else:
            self.send_header("Content-Type", "application/octet-stream")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if getattr(self, "cut", False):  # a hostile test's cut answer: half the body, then the line drops
            self.wfile.write(half(raw))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif self.command != "HEAD":
            self.wfile.write(raw)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        box = self.box
        route = f"{self.command} {parts.path.split('/2.0/', 1)[-1]}"
        box.calls[route] += 1
        self.cut = False
        action = box.faults.take(f"{self.command} {parts.path}?{parts.query}")
        if action in ("500", "401"):
            failure = BoxFailure(int(action), "internal_server_error" if action == "500" else "unauthorized")
            self._send(failure.status, failure.body() if action == "500" else b"")
            return
        self.cut = action == "truncate"
        wait = box.take_throttle()
        if wait is not None:
            self._send(429, BoxFailure(429, "rate_limit_exceeded", "Request rate limit exceeded").body(),
                       {"Retry-After": str(int(wait))})  # fmt: skip
            return
        if parts.path == "/realtime/subscribe":  # Box's real-time server: the channel in the URL is the pass
            self._send(200, box.realtime(query))
            return
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not box.oauth.access_valid(auth.removeprefix("Bearer ").strip()):
            self._send(401, b"", {"WWW-Authenticate": 'Bearer realm="Service", error="invalid_token"'})
            return
        try:
            with box.lock:
                status, value = box.handle(self.command, parts.path, query, self.headers, body)
        except BoxFailure as failure:
            self._send(failure.status, failure.body(), failure.headers)
            return
        except _Cut:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self._send(status, value)

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _serve
