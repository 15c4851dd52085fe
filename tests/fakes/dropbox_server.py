"""A Dropbox API v2 fake that the official `dropbox` SDK talks to over HTTP on 127.0.0.1.

Three servers, one per Dropbox host, so a provider that sends a route to the wrong host fails as it would in
production (`https://api.dropboxapi.com`, `https://content.dropboxapi.com`, `https://notify.dropboxapi.com`):

- api (RPC routes, JSON in and out): `files/list_folder`, `files/list_folder/continue`,
  `files/list_folder/get_latest_cursor`, `files/get_metadata`, `files/delete_v2` (with `parent_rev`),
  `files/move_v2`, `files/copy_v2`, `files/create_folder_v2`, `users/get_current_account`, `auth/token/revoke`,
  and the OAuth endpoints `oauth2/token` (authorization code with PKCE S256, refresh; Dropbox keeps the refresh
  token, it does not rotate it) and `oauth2/authorize` (the no-redirect page that shows the code).
- content (argument in the `Dropbox-API-Arg` header, result in `Dropbox-API-Result` for downloads):
  `files/upload` (modes add / overwrite / update(rev), `autorename`, `strict_conflict`, `client_modified`,
  `content_hash` checked), `files/upload_session/start`, `append_v2`, `finish` (offsets checked, answered with
  `incorrect_offset` and the correct one; sessions expire after 48 hours of the fake's clock), `files/download`.
- notify: `files/list_folder/longpoll` (no auth, as in Dropbox; `changes` and `backoff`).

The namespace is case-insensitive as Dropbox's is: entries are keyed by `path_lower`, `path_display` keeps the
case each name was created with, and a move that changes only the case is a rename. Every file has an `id:`,
a hex `rev` that changes with each write, and Dropbox's `content_hash`. Each account has its own namespace and
journal; a cursor is the journal position, so `continue` reports what changed since (the latest state of each
changed path; a deleted folder is reported once, without its children, as Dropbox does).

Test hooks: `new_account()` (a fresh namespace with its tokens), `throttle(n, retry_after)` (the next n requests
get 429 with `Retry-After`), `revoke(account)` (its access and refresh tokens), `expire_tokens(account)`,
`advance(seconds)` (the clock that ages upload sessions), `cut_next_append(commit=...)` (drop the connection
during the next `append_v2`, after or before storing its data), `disallow(name)`, `restrict(path)`,
`quota(account, bytes)`, `not_downloadable(account, path)`, `reset_cursors(account)`, `approve(auth_url)`
(the user's "Allow" click), `calls` (a count of requests per route), and for longpoll `longpoll_hold` (the
longest a wait is held: tests keep it short), `longpoll_backoff` (sent with every answer) and `longpolls`
(when each wait began).

Not covered: shared folders and namespaces (`Dropbox-API-Path-Root`), team spaces, `id:`/`rev:` paths in
arguments, file revisions and restore, batch routes, concurrent upload sessions, search, sharing links,
thumbnails, Paper documents, properties and templates, file locks, `include_deleted`, `include_media_info`,
content-hash checks on `append_v2`, and the real ordering of `list_folder` pages (the fake sorts by path).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dropbox.content_hash import DropboxContentHasher

from tests.fakes.httpserver import QuietServer

SESSION_MAX_AGE = 48 * 3600  # Dropbox: an upload session lasts 48 hours
ACCESS_TOKEN_LIFETIME = 4 * 3600  # short-lived tokens, as Dropbox hands out since 2021
PAGE = 500  # entries per list_folder page (Dropbox's own page size varies; small enough to page in tests)


def content_hash(data: bytes) -> str:
    hasher = DropboxContentHasher()
    hasher.update(data)
    return hasher.hexdigest()


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


class ApiFailure(Exception):
    """An error answer: HTTP status, the `error` union and a summary."""

    def __init__(self, status: int, error: Any, summary: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(summary)
        self.status, self.error, self.summary, self.headers = status, error, summary, headers or {}


def _route_error(error: dict[str, Any]) -> ApiFailure:
    def summary(value: Any) -> str:
        if isinstance(value, dict) and ".tag" in value:
            tag = value[".tag"]
            return f"{tag}/" + summary(value.get(tag, ""))
        return ""

    return ApiFailure(409, error, summary(error) + "..")


def _lookup(tag: str) -> dict[str, Any]:
    return {".tag": tag}


def _write_error(where: str, tag: dict[str, Any]) -> ApiFailure:
    """A WriteError as the route wraps it: `files/upload` in UploadWriteFailed, others under their own tag."""
    if where == "upload":
        return _route_error({".tag": "path", "reason": tag, "upload_session_id": ""})
    return _route_error({".tag": where, where: tag})


@dataclasses.dataclass
class Node:
    id: str
    name: str  # the display name of the last component
    is_dir: bool
    data: bytes = b""
    rev: str = ""
    client_modified: float = 0.0
    server_modified: float = 0.0
    downloadable: bool = True  # False: a cloud document (Paper, Google Docs) Dropbox only exports


@dataclasses.dataclass
class Account:
    account_id: str
    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)  # path_lower -> node ("" is the root)
    journal: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)  # (seq, path_lower, display)
    epoch: int = 0  # bumped by reset_cursors(): older cursors answer `reset`
    quota: int | None = None

    def used(self) -> int:
        return sum(len(n.data) for n in self.nodes.values())


@dataclasses.dataclass
class Session:
    account: str
    data: bytearray
    started: float
    closed: bool = False


class DropboxFake:
    """The state of the fake Dropbox and its three HTTP servers."""

    def __init__(self) -> None:
        self.lock = threading.Condition(threading.RLock())
        self.accounts: dict[str, Account] = {}
        self.access: dict[str, tuple[str, float]] = {}  # access token -> (account, expiry)
        self.refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (account, app key)
        self.codes: dict[str, tuple[str, str, str]] = {}  # auth code -> (account, app key, code challenge)
        self.sessions: dict[str, Session] = {}
        self.calls: Counter[str] = Counter()
        self.offset = 0.0  # advance(): added to the real clock
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._throttle: list[float] = []  # Retry-After of each request still to be refused
        self._cut: list[bool] = []
        self._disallowed: set[str] = {".dropbox", ".dropbox.attr"}
        self._restricted: set[str] = set()
        self.pending_account: str | None = None  # the account approve() signs in as
        # Longpoll knobs: hold a wait at most this long (Dropbox holds it for the requested 30..480 s; a test
        # that stops an engine wants the wait short), answer with this `backoff`; when each wait began.
        self.longpoll_hold: float | None = None
        self.longpoll_backoff: int | None = None
        self.longpolls: list[float] = []
        self.servers: dict[str, QuietServer] = {}
        self.urls: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> DropboxFake:
        for role in ("api", "content", "notify"):
            handler = type(f"{role.title()}Handler", (_Handler,), {"fake": self, "role": role})
            server = QuietServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True, name=f"dropbox-fake-{role}").start()
            self.servers[role] = server
            self.urls[role] = f"http://127.0.0.1:{server.server_address[1]}"
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()

    def now(self) -> float:
        return time.time() + self.offset

    # -- test hooks ------------------------------------------------------------------------------------------

    def new_account(self, app_key: str = "fake-app-key") -> tuple[str, str, str]:
        """A fresh, empty account: (account_id, access token, refresh token)."""
        with self.lock:
            account_id = "dbid:" + secrets.token_hex(18)[:35]
            self.accounts[account_id] = Account(account_id)
            self.accounts[account_id].nodes[""] = Node("id:root", "", True)
            access, refresh = self._issue(account_id, app_key)
            return account_id, access, refresh

    def _issue(self, account: str, app_key: str) -> tuple[str, str]:
        access = "sl." + secrets.token_urlsafe(24)
        refresh = secrets.token_urlsafe(24)
        self.access[access] = (account, self.now() + ACCESS_TOKEN_LIFETIME)
        self.refresh[refresh] = (account, app_key)
        return access, refresh

    def throttle(self, count: int = 1, retry_after: float = 1) -> None:
        with self.lock:
            self._throttle.extend([retry_after] * count)

    def revoke(self, account: str) -> None:
        with self.lock:
            for table in (self.access, self.refresh):
                for token in [t for t, v in table.items() if v[0] == account]:
                    del table[token]

    def expire_tokens(self, account: str) -> None:
        with self.lock:
            for token, (acc, _) in list(self.access.items()):
                if acc == account:
                    self.access[token] = (acc, 0.0)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds

    def cut_next_append(self, commit: bool) -> None:
        """Drop the connection of the next append_v2: after storing its data (`commit`) or before."""
        with self.lock:
            self._cut.append(commit)

    def disallow(self, name: str) -> None:
        with self.lock:
            self._disallowed.add(name.lower())

    def restrict(self, account: str, path: str) -> None:
        with self.lock:
            self._restricted.add(f"{account}:{path.lower()}")

    def not_downloadable(self, account: str, path: str) -> None:
        """Make a file a cloud document that `download` refuses (`unsupported_file`)."""
        with self.lock:
            self.accounts[account].nodes[path.lower()].downloadable = False

    def quota(self, account: str, limit: int | None) -> None:
        with self.lock:
            self.accounts[account].quota = limit

    def reset_cursors(self, account: str) -> None:
        with self.lock:
            self.accounts[account].epoch += 1

    def approve(self, auth_url: str, account: str | None = None) -> str:
        """The user opens `auth_url` and clicks "Allow": the code Dropbox shows on its no-redirect page."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(auth_url).query).items()}
        if query.get("response_type") != "code" or query.get("token_access_type") != "offline":
            raise ValueError(f"not an offline code request: {auth_url}")
        if query.get("code_challenge_method", "S256") != "S256":
            raise ValueError("only S256 PKCE is supported")
        with self.lock:
            if account is None:
                account = self.pending_account or self.new_account(query["client_id"])[0]
            code = secrets.token_urlsafe(16)
            self.codes[code] = (account, query["client_id"], query.get("code_challenge", ""))
            return code

    def put(self, account: str, path: str, data: bytes, mtime: float = 1_600_000_000.0) -> dict[str, Any]:
        """Write a file as another Dropbox client would (parents created)."""
        with self.lock:
            return self._write(self.accounts[account], path, data, mtime, {".tag": "overwrite"}, False)

    def files(self, account: str) -> dict[str, bytes]:
        """path_display -> content of every file of the account."""
        with self.lock:
            acc = self.accounts[account]
            return {self._display(acc, k): n.data for k, n in acc.nodes.items() if not n.is_dir}

    # -- the namespace ---------------------------------------------------------------------------------------

    def _display(self, acc: Account, lower: str) -> str:
        parts = lower.split("/")[1:]
        return "".join("/" + acc.nodes["/".join(["", *parts[: i + 1]])].name for i in range(len(parts)))

    def _meta(self, acc: Account, lower: str) -> dict[str, Any]:
        node = acc.nodes[lower]
        common = {"name": node.name, "path_lower": lower, "path_display": self._display(acc, lower), "id": node.id}
        if node.is_dir:
            return {".tag": "folder", **common}
        return {
            ".tag": "file", **common, "client_modified": _stamp(node.client_modified),
            "server_modified": _stamp(node.server_modified), "rev": node.rev, "size": len(node.data),
            "is_downloadable": node.downloadable, "content_hash": content_hash(node.data),
        }  # fmt: skip

    def _journal(self, acc: Account, lower: str) -> None:
        acc.journal.append((next(self._seq), lower, self._display(acc, lower) if lower in acc.nodes else lower))
        self.lock.notify_all()

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        if path in ("", "/"):
            return "", ""
        if not path.startswith("/") or path.endswith("/") or "//" in path:
            raise _route_error({".tag": "path", "path": {".tag": "malformed_path"}})
        parent, _, name = path.rpartition("/")
        return parent.lower(), name

    def _check_name(self, name: str, where: str) -> None:
        if name.lower() in self._disallowed:
            raise _write_error(where, {".tag": "disallowed_name"})

    def _mkdirs(self, acc: Account, lower: str, display: str, where: str) -> None:
        """Create the folders of `display` (whose lower form is `lower`) that are missing."""
        parts, shown = lower.split("/")[1:], display.split("/")[1:]
        for i in range(len(parts)):
            key = "/".join(["", *parts[: i + 1]])
            node = acc.nodes.get(key)
            if node is None:
                self._check_name(shown[i], where)
                acc.nodes[key] = Node(f"id:{next(self._ids):012d}", shown[i], True)
                self._journal(acc, key)
            elif not node.is_dir:
                raise _write_error(where, {".tag": "conflict", "conflict": {".tag": "file_ancestor"}})

    def _write(
        self, acc: Account, path: str, data: bytes, mtime: float | None, mode: dict[str, Any], autorename: bool,
        strict: bool = False, where: str = "path",
    ) -> dict[str, Any]:  # fmt: skip
        parent, name = self._split(path)
        if not name:
            raise _write_error(where, {".tag": "malformed_path"})
        self._check_name(name, where)

        def error(tag: dict[str, Any]) -> ApiFailure:
            return _write_error(where, tag)

        lower = f"{parent}/{name.lower()}"
        existing = acc.nodes.get(lower)
        if existing is not None and existing.is_dir:
            raise error({".tag": "conflict", "conflict": {".tag": "folder"}})
        tag = mode[".tag"]
        same = existing is not None and existing.data == data
        if tag == "add" and existing is not None and (strict or not same):
            if autorename:
                raise error({".tag": "other"})  # the fake does not pick "name (1).txt" names
            raise error({".tag": "conflict", "conflict": {".tag": "file"}})
        if tag == "update":
            if existing is None and strict:
                raise error({".tag": "conflict", "conflict": {".tag": "file"}})
            if existing is not None and existing.rev != mode["update"] and (strict or not same):
                raise error({".tag": "conflict", "conflict": {".tag": "file"}})
        grow = len(data) - (len(existing.data) if existing else 0)
        if acc.quota is not None and acc.used() + grow > acc.quota:
            raise error({".tag": "insufficient_space"})
        self._mkdirs(acc, parent, path.rpartition("/")[0], where)
        now = self.now()
        node = Node(
            existing.id if existing else f"id:{next(self._ids):012d}", existing.name if existing else name, False,
            data, f"{next(self._ids):x}".rjust(15, "0"), now if mtime is None else mtime, now,
        )  # fmt: skip
        acc.nodes[lower] = node
        self._journal(acc, lower)
        return self._meta(acc, lower)

    def _children(self, acc: Account, lower: str, recursive: bool) -> Iterator[str]:
        prefix = lower + "/"
        for key in sorted(acc.nodes):
            if key.startswith(prefix) and (recursive or "/" not in key[len(prefix) :]):
                yield key

    def _remove(self, acc: Account, lower: str) -> None:
        for key in [*list(self._children(acc, lower, True)), lower]:
            del acc.nodes[key]

    # -- cursors ---------------------------------------------------------------------------------------------

    def _cursor(self, acc: Account, folder: str, recursive: bool, seq: int, after: str | None) -> str:
        raw = json.dumps({"a": acc.account_id, "f": folder, "r": recursive, "s": seq, "p": after, "e": acc.epoch})
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def _read_cursor(self, cursor: str, account: str | None) -> tuple[Account, dict[str, Any]]:
        try:
            state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            acc = self.accounts[state["a"]]
        except (ValueError, KeyError, TypeError):
            message = 'Error in call to API function "files/list_folder/continue": Invalid "cursor" parameter'
            raise ApiFailure(400, None, message) from None
        if account is not None and acc.account_id != account:
            raise _route_error({".tag": "path", "path": {".tag": "not_found"}})
        if state["e"] != acc.epoch:
            raise _route_error({".tag": "reset"})
        return acc, state

    def _page(self, acc: Account, state: dict[str, Any], limit: int) -> dict[str, Any]:
        folder, recursive = state["f"], state["r"]
        if state["p"] is not None:  # the first listing, page by page, of the state as it is now
            keys = [k for k in self._children(acc, folder, recursive) if k > state["p"]]
            page = keys[:limit]
            more = len(keys) > limit
            entries = [self._meta(acc, k) for k in page]
            after = page[-1] if more else None
            return {
                "entries": entries, "has_more": more,
                "cursor": self._cursor(acc, folder, recursive, state["s"], after if more else None),
            }  # fmt: skip
        latest: dict[str, str] = {}  # path_lower -> display, in the order of their last change
        last = state["s"]
        for seq, lower, display in acc.journal:
            if seq <= state["s"]:
                continue
            last = seq
            inside = lower.startswith(folder + "/") if folder else lower != ""
            if inside and (recursive or "/" not in lower[len(folder) + 1 :]):
                latest.pop(lower, None)
                latest[lower] = display
        entries = []
        for lower, display in latest.items():
            if lower in acc.nodes:
                entries.append(self._meta(acc, lower))
            elif not any(lower.startswith(gone + "/") for gone in latest if gone not in acc.nodes):
                name = display.rpartition("/")[2]
                entries.append({".tag": "deleted", "name": name, "path_lower": lower, "path_display": display})
        return {"entries": entries, "has_more": False, "cursor": self._cursor(acc, folder, recursive, last, None)}

    def _last_seq(self, acc: Account) -> int:
        return acc.journal[-1][0] if acc.journal else 0

    # -- routes ----------------------------------------------------------------------------------------------

    def rpc(self, route: str, account: str, arg: Any) -> Any:
        acc = self.accounts[account]
        if route == "users/get_current_account":
            return {
                "account_id": account, "email": "user@example.com", "email_verified": True, "disabled": False,
                "name": {"given_name": "Sky", "surname": "Sync", "familiar_name": "Sky",
                         "display_name": "Sky Sync", "abbreviated_name": "SS"},
                "locale": "en", "referral_link": "https://db.tt/x", "is_paired": False,
                "account_type": {".tag": "basic"},
                "root_info": {".tag": "user", "root_namespace_id": "1", "home_namespace_id": "1"},
            }  # fmt: skip
        if route == "auth/token/revoke":
            return None  # handled by the handler, which knows the token
        if route in ("files/list_folder", "files/list_folder/get_latest_cursor"):
            parent, name = self._split(arg["path"])
            lower = f"{parent}/{name.lower()}" if name else ""
            node = acc.nodes.get(lower)
            if node is None:
                raise _route_error({".tag": "path", "path": _lookup("not_found")})
            if not node.is_dir:
                raise _route_error({".tag": "path", "path": _lookup("not_folder")})
            recursive = bool(arg.get("recursive"))
            if route.endswith("get_latest_cursor"):
                return {"cursor": self._cursor(acc, lower, recursive, self._last_seq(acc), None)}
            state = {"f": lower, "r": recursive, "s": self._last_seq(acc), "p": ""}
            return self._page(acc, state, int(arg.get("limit") or PAGE))
        if route == "files/list_folder/continue":
            acc, state = self._read_cursor(arg["cursor"], account)
            return self._page(acc, state, PAGE)
        if route == "files/get_metadata":
            parent, name = self._split(arg["path"])
            lower = f"{parent}/{name.lower()}"
            if not name or lower not in acc.nodes:
                raise _route_error({".tag": "path", "path": _lookup("not_found")})
            return self._meta(acc, lower)
        if route == "files/create_folder_v2":
            parent, name = self._split(arg["path"])
            lower = f"{parent}/{name.lower()}"
            if lower in acc.nodes:
                raise _route_error({".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "folder"}}})
            self._mkdirs(acc, lower, arg["path"], "path")
            return {"metadata": self._meta(acc, lower)}
        if route == "files/delete_v2":
            parent, name = self._split(arg["path"])
            lower = f"{parent}/{name.lower()}"
            node = acc.nodes.get(lower)
            if not name or node is None:
                raise _route_error({".tag": "path_lookup", "path_lookup": _lookup("not_found")})
            rev = arg.get("parent_rev")
            if rev is not None and (node.is_dir or node.rev != rev):
                # Dropbox answers a stale parent_rev as a write conflict; nothing is deleted.
                raise _route_error(
                    {".tag": "path_write", "path_write": {".tag": "conflict", "conflict": {".tag": "file"}}}
                )
            meta = self._meta(acc, lower)
            display = meta["path_display"]
            self._remove(acc, lower)
            acc.journal.append((next(self._seq), lower, display))
            self.lock.notify_all()
            return {"metadata": meta}
        if route in ("files/move_v2", "files/copy_v2"):
            return {"metadata": self._relocate(acc, arg, move=route == "files/move_v2")}
        raise ApiFailure(400, None, f"Unknown API function: {route}")

    def _relocate(self, acc: Account, arg: dict[str, Any], move: bool) -> dict[str, Any]:
        src_parent, src_name = self._split(arg["from_path"])
        dst_parent, dst_name = self._split(arg["to_path"])
        src = f"{src_parent}/{src_name.lower()}"
        dst = f"{dst_parent}/{dst_name.lower()}"
        if not src_name or src not in acc.nodes:
            raise _route_error({".tag": "from_lookup", "from_lookup": _lookup("not_found")})
        if not dst_name:
            raise _route_error({".tag": "to", "to": {".tag": "malformed_path"}})
        self._check_name(dst_name, "to")
        if dst.startswith(src + "/"):
            raise _route_error({".tag": "cant_move_folder_into_itself"})
        if dst in acc.nodes and not (move and dst == src):  # a case-only rename is allowed
            conflict = "folder" if acc.nodes[dst].is_dir else "file"
            raise _route_error({".tag": "to", "to": {".tag": "conflict", "conflict": {".tag": conflict}}})
        size = sum(len(acc.nodes[k].data) for k in [src, *self._children(acc, src, True)])
        if not move and acc.quota is not None and acc.used() + size > acc.quota:
            raise _route_error({".tag": "insufficient_quota"})
        self._mkdirs(acc, dst_parent, arg["to_path"].rpartition("/")[0], "to")
        moved = {k: acc.nodes[k] for k in [src, *self._children(acc, src, True)]}
        src_display = self._display(acc, src)
        if move:
            for key in moved:
                del acc.nodes[key]
            acc.journal.append((next(self._seq), src, src_display))
        for key, node in moved.items():
            new_key = dst + key[len(src) :]
            copy = dataclasses.replace(node, name=dst_name if key == src else node.name)
            if not move:
                copy.id = f"id:{next(self._ids):012d}"
                copy.rev = f"{next(self._ids):x}".rjust(15, "0") if not node.is_dir else ""
                copy.server_modified = self.now()
            acc.nodes[new_key] = copy
        for key in moved:
            self._journal(acc, dst + key[len(src) :])
        return self._meta(acc, dst)

    def content(self, route: str, account: str, arg: Any, body: bytes) -> tuple[Any, bytes | None]:
        """A content-host route: (result, download body or None)."""
        acc = self.accounts[account]
        if route == "files/download":
            parent, name = self._split(arg["path"])
            lower = f"{parent}/{name.lower()}"
            node = acc.nodes.get(lower)
            if f"{account}:{lower}" in self._restricted:
                raise _route_error({".tag": "path", "path": _lookup("restricted_content")})
            if not name or node is None:
                raise _route_error({".tag": "path", "path": _lookup("not_found")})
            if node.is_dir:
                raise _route_error({".tag": "path", "path": _lookup("not_file")})
            if not node.downloadable:
                raise _route_error({".tag": "unsupported_file"})
            return self._meta(acc, lower), node.data
        expected_hash = (arg or {}).get("content_hash")
        if expected_hash is not None and expected_hash != content_hash(body):
            raise _route_error({".tag": "content_hash_mismatch"})
        if route == "files/upload":
            return self._commit(acc, arg, body, "upload"), None
        if route == "files/upload_session/start":
            session_id = "sess:" + secrets.token_hex(12)
            self.sessions[session_id] = Session(account, bytearray(body), self.now(), bool(arg.get("close")))
            return {"session_id": session_id}, None
        if route == "files/upload_session/append_v2":
            session = self._session(arg["cursor"], account, body, nested=False)
            session.data.extend(body)
            session.closed = bool(arg.get("close"))
            return None, None
        if route == "files/upload_session/finish":
            session = self._session(arg["cursor"], account, body, nested=True)
            result = self._commit(acc, arg["commit"], bytes(session.data) + body, "path")
            del self.sessions[arg["cursor"]["session_id"]]
            return result, None
        raise ApiFailure(400, None, f"Unknown API function: {route}")

    def _session(self, cursor: dict[str, Any], account: str, body: bytes, nested: bool) -> Session:
        def error(tag: dict[str, Any]) -> ApiFailure:
            return _route_error({".tag": "lookup_failed", "lookup_failed": tag} if nested else tag)

        session = self.sessions.get(cursor["session_id"])
        if session is None or session.account != account:
            raise error({".tag": "not_found"})
        if self.now() - session.started > SESSION_MAX_AGE:
            del self.sessions[cursor["session_id"]]
            raise error({".tag": "not_found"})
        if int(cursor["offset"]) != len(session.data):
            raise error({".tag": "incorrect_offset", "correct_offset": len(session.data)})
        if session.closed and (body or not nested):
            raise error({".tag": "closed"})
        return session

    def _commit(self, acc: Account, commit: dict[str, Any], data: bytes, where: str) -> dict[str, Any]:
        when = commit.get("client_modified")
        return self._write(
            acc, commit["path"], data, _parse_stamp(when) if when else None, commit.get("mode") or {".tag": "add"},
            bool(commit.get("autorename")), bool(commit.get("strict_conflict")), where,
        )  # fmt: skip

    def longpoll(self, arg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.longpolls.append(time.monotonic())
            acc, state = self._read_cursor(arg["cursor"], None)
            timeout = min(max(int(arg.get("timeout", 30)), 30), 480)
            if self.longpoll_hold is not None:
                timeout = min(timeout, self.longpoll_hold)
            extra = {"backoff": self.longpoll_backoff} if self.longpoll_backoff else {}
            deadline = time.monotonic() + timeout
            while True:
                if self._page(acc, {**state, "p": None}, PAGE)["entries"]:
                    return {"changes": True, **extra}
                left = deadline - time.monotonic()
                if left <= 0:
                    return {"changes": False, **extra}
                self.lock.wait(min(left, 0.5))

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`oauth2/token`: (status, JSON answer)."""
        grant = form.get("grant_type")
        if grant == "refresh_token":
            found = self.refresh.get(form.get("refresh_token", ""))
            if found is None or found[1] != form.get("client_id"):
                return 400, {"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"}
            access = "sl." + secrets.token_urlsafe(24)
            self.access[access] = (found[0], self.now() + ACCESS_TOKEN_LIFETIME)
            return 200, {"access_token": access, "token_type": "bearer", "expires_in": ACCESS_TOKEN_LIFETIME}
        if grant == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            if found is None or found[1] != form.get("client_id"):
                return 400, {"error": "invalid_grant", "error_description": "code doesn't exist or has expired"}
            account, app_key, challenge = found
            verifier = form.get("code_verifier", "")
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge and computed != challenge:
                return 400, {"error": "invalid_grant", "error_description": "invalid code verifier"}
            access, refresh = self._issue(account, app_key)
            return 200, {
                "access_token": access, "token_type": "bearer", "expires_in": ACCESS_TOKEN_LIFETIME,
                "refresh_token": refresh, "scope": "files.content.read files.content.write",
                "uid": "12345", "account_id": account,
            }  # fmt: skip
        return 400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"}

    def authenticate(self, header: str) -> str:
        """The account of a `Bearer` token, or the 401 Dropbox answers."""
        token = header[7:] if header.startswith("Bearer ") else ""
        found = self.access.get(token)
        if found is None:
            raise ApiFailure(401, {".tag": "invalid_access_token"}, "invalid_access_token/")
        if found[1] <= self.now():
            raise ApiFailure(401, {".tag": "expired_access_token"}, "expired_access_token/")
        return found[0]

    def take_throttle(self) -> float | None:
        with self.lock:
            return self._throttle.pop(0) if self._throttle else None

    def take_cut(self) -> bool | None:
        with self.lock:
            return self._cut.pop(0) if self._cut else None


CONTENT_ROUTES = {
    "files/upload", "files/upload_session/start", "files/upload_session/append_v2",
    "files/upload_session/finish", "files/download",
}  # fmt: skip
NOTIFY_ROUTES = {"files/list_folder/longpoll"}


class _Handler(BaseHTTPRequestHandler):
    fake: DropboxFake
    role: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _fail(self, failure: ApiFailure) -> None:
        if failure.status == 400:
            self._send(400, failure.summary.encode(), {"Content-Type": "text/plain; charset=utf-8"})
            return
        self._json(failure.status, {"error_summary": failure.summary, "error": failure.error}, failure.headers)

    def do_GET(self) -> None:  # the authorize page a browser opens
        parts = urlsplit(self.path)
        if self.role != "api" or parts.path != "/oauth2/authorize":
            self._send(404, b"not found", {"Content-Type": "text/plain"})
            return
        try:
            code = self.fake.approve(self.path)
        except (ValueError, KeyError) as exc:
            self._send(400, str(exc).encode(), {"Content-Type": "text/plain"})
            return
        self._send(200, f"<html><body>Enter this code into the app: <code>{code}</code></body></html>".encode(),
                   {"Content-Type": "text/html"})  # fmt: skip

    def do_POST(self) -> None:
        route = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        fake = self.fake
        if route == "/oauth2/token" and self.role == "api":
            body = self.rfile.read(length).decode()
            with fake.lock:
                fake.calls["oauth2/token"] += 1
                status, answer = fake.token({k: v[0] for k, v in parse_qs(body).items()})
            self._json(status, answer)
            return
        if not route.startswith("/2/"):
            self.rfile.read(length)
            self._send(404, b"not found", {"Content-Type": "text/plain"})
            return
        name = route[3:]
        expected = "content" if name in CONTENT_ROUTES else "notify" if name in NOTIFY_ROUTES else "api"
        if expected != self.role:
            self.rfile.read(length)
            self._fail(ApiFailure(400, None, f"route {name} is not served by the {self.role} host"))
            return
        cut = fake.take_cut() if name == "files/upload_session/append_v2" else None
        if cut is False:  # the connection drops while the chunk is still on its way
            self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.rfile.read(length)
        with fake.lock:
            fake.calls[name] += 1
        retry_after = fake.take_throttle()
        if retry_after is not None:
            error = {"reason": {".tag": "too_many_requests"}, "retry_after": int(retry_after)}
            self._json(429, {"error_summary": "too_many_requests/", "error": error},
                       {"Retry-After": str(int(retry_after))})  # fmt: skip
            return
        try:
            if self.role == "notify":
                self._json(200, fake.longpoll(json.loads(body or b"null")))
                return
            with fake.lock:
                account = fake.authenticate(self.headers.get("Authorization", ""))
                if self.role == "api":
                    if name == "auth/token/revoke":
                        fake.access.pop(self.headers["Authorization"][7:], None)
                    result = fake.rpc(name, account, json.loads(body or b"null"))
                    download = None
                else:
                    arg = json.loads(self.headers.get("Dropbox-API-Arg") or "null")
                    result, download = fake.content(name, account, arg, body)
        except ApiFailure as failure:
            self._fail(failure)
            return
        if cut:  # the chunk was stored, but the answer never arrives
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if download is not None:
            self._send(200, download, {"Content-Type": "application/octet-stream",
                                       "Dropbox-API-Result": json.dumps(result)})  # fmt: skip
        else:
            self._json(200, result)


def start() -> DropboxFake:
    return DropboxFake().start()
