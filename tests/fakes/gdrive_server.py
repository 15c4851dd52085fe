"""A protocol fake of the Google Drive API v3 that google-api-python-client talks to over HTTP on 127.0.0.1.

What it speaks (enough for the `gdrive` provider, its contract suite and its end-to-end tests):

- Bearer tokens on every request (401 `authError` otherwise): the fake's own tokens (`issue_token`,
  `revoke`), or any token a `token_check` callable accepts (the fake OAuth server's `access_valid`).
- `about.get` (`user.permissionId`, `emailAddress`, `displayName`), `drives.list`/`drives.get` (shared drives).
- `files.list` with `q` (terms `'<id>' in parents`, `trashed = true|false`, `name = '...'`,
  `mimeType = / != '...'`, joined by `and`, `or`, `not` and parentheses; `\\'` escapes), `pageSize` (at most
  1,000, 100 by default), `pageToken`, `corpora`/`driveId` (with Google's check that `driveId` comes with
  `includeItemsFromAllDrives=true` and `supportsAllDrives=true`), and `fields` partial responses (without
  `fields` a file has only `kind`, `id`, `name` and `mimeType`, as on Drive, so a client that forgets a field
  sees it missing).
- `files.get` (metadata; `alt=media` with `Range`, 403 `fileNotDownloadable` for Google Docs), `files.export`
  and the `exportLinks` of Docs, Sheets, Slides and Drawings (`GET /export/<id>?mimeType=...`; an export
  larger than `export_limit`, 10 MB as on Drive, is 403 `exportSizeLimitExceeded`), `files.create`
  (metadata only, `uploadType=multipart`, `uploadType=resumable`), `files.update` (metadata, `addParents` /
  `removeParents`, `trashed`, and media by the same upload types), `files.delete` (with the folder's subtree),
  `files.copy`.
- Resumable uploads: the session URI in `Location`, chunks by `Content-Range: bytes a-b/total` answered by
  `308 Resume Incomplete` with the `Range` received so far, status queries (`bytes */total`), overlapping
  resends accepted; `cut_uploads(n, keep)` makes the next `n` chunk requests keep only `keep` bytes and drop
  the connection, as a network cut does.
- `changes.getStartPageToken` and `changes.list` (`pageToken`, `pageSize`, `includeRemoved`, `driveId`,
  `restrictToMyDrive`; `nextPageToken` or `newStartPageToken`); `expire_changes()` makes older tokens answer
  Drive's 400 `invalid` on `pageToken`.
- Faults and limits: `fail_next(status, reason, retry_after)` (403 `userRateLimitExceeded`, 429, 500...),
  `quota` (403 `storageQuotaExceeded`), `domain_policy` (403 `domainPolicy`: a Workspace whose admin has
  disabled Drive apps). `requests` counts every request; `log` keeps (method, path) of each.
- Duplicate names in one folder, `/` in names, shortcuts and Google Docs are stored as Drive stores them
  (`add_file`, `add_doc`, `add_shortcut`); `edit_doc` changes a document (its export, modifiedTime and
  version); `populate` makes thousands of files at once.

What it does not cover: permissions and sharing (every item belongs to the one account), "Shared with me",
multiple parents, revisions, comments, labels, `files.watch`/`changes.watch` push notifications, batch requests,
`orderBy` (lists come in creation order), full-text search and `q` terms not listed above, `uploadType=media`,
resumable sessions expiring, ETags, `fields` on nested resources beyond one level of
parentheses inside a list, and Drive's eventual consistency (every write is visible at once).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.httpserver import QuietServer

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
DOCS_EXPORTS = {  # Google type -> (export type, bytes the export answers)
    "application/vnd.google-apps.document": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.google-apps.spreadsheet": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.google-apps.presentation":
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.google-apps.drawing": "image/jpeg",
}
DEFAULT_FILE_FIELDS = ("kind", "id", "name", "mimeType")


def rfc3339(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    drive_id: str | None
    created: float
    modified: float
    data: bytes | None = None  # None: a folder, a shortcut or a Google Doc
    revision: str | None = None
    version: int = 1
    trashed: bool = False
    target_id: str | None = None  # shortcuts
    exported: bytes | None = None  # a Google Doc's export (None: a short text naming it and its version)

    def resource(self, base: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "trashed": self.trashed,
            "createdTime": rfc3339(self.created),
            "modifiedTime": rfc3339(self.modified),
            "version": str(self.version),
        }
        if self.drive_id:
            out["driveId"] = self.drive_id
        if self.data is not None:
            out["size"] = str(len(self.data))
            out["md5Checksum"] = hashlib.md5(self.data).hexdigest()
            out["headRevisionId"] = self.revision
        if self.mime_type in DOCS_EXPORTS:
            out["exportLinks"] = {DOCS_EXPORTS[self.mime_type]: f"{base}/export/{self.id}?mimeType="
                                  f"{DOCS_EXPORTS[self.mime_type]}"}
        if self.target_id is not None:
            out["shortcutDetails"] = {"targetId": self.target_id, "targetMimeType": "application/octet-stream"}
        return out


@dataclass
class _Session:
    meta: dict[str, Any]
    total: int | None
    fields: str | None
    file_id: str | None  # an update of this file; None: a new file
    received: bytearray = field(default_factory=bytearray)


class DriveError(Exception):
    def __init__(self, status: int, reason: str, message: str = "", *, location: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or reason)
        self.status, self.reason, self.message, self.location = status, reason, message or reason, location
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"domain": "global", "reason": self.reason, "message": self.message}
        if self.location:
            item.update(location=self.location, locationType="parameter")
        return {"error": {"code": self.status, "message": self.message, "errors": [item]}}


# -- q: Drive's search query language, the subset the provider uses --------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|=|\(|\))|(?P<word>[A-Za-z_]+))")


def _tokens(q: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        m = _TOKEN.match(q, pos)
        if m is None:
            raise DriveError(400, "invalid", f"Invalid Value at {pos}", location="q")
        pos = m.end()
        if m.group("str") is not None:
            out.append(("str", re.sub(r"\\(.)", r"\1", m.group("str")[1:-1])))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
    return out


Predicate = Callable[[DriveFile], bool]


class _Query:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*; and_expr := unary ('and' unary)*."""

    def __init__(self, q: str) -> None:
        self.toks = _tokens(q)
        self.i = 0

    def parse(self) -> Predicate:
        pred = self._or()
        if self.i != len(self.toks):
            raise DriveError(400, "invalid", "Invalid Value", location="q")
        return pred

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise DriveError(400, "invalid", "Invalid Value", location="q")
        self.i += 1
        return tok

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == ("word", "or"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda f: any(p(f) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek() == ("word", "and"):
            self.i += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda f: all(p(f) for p in parts))

    def _unary(self) -> Predicate:
        tok = self._take()
        if tok == ("word", "not"):
            inner = self._unary()
            return lambda f: not inner(f)
        if tok == ("op", "("):
            inner = self._or()
            if self._take() != ("op", ")"):
                raise DriveError(400, "invalid", "Invalid Value", location="q")
            return inner
        if tok[0] == "str":  # 'value' in parents
            if self._take() != ("word", "in") or self._take() != ("word", "parents"):
                raise DriveError(400, "invalid", "Invalid Value", location="q")
            value = tok[1]
            return lambda f: value in f.parents
        if tok[0] == "word" and tok[1] in ("trashed", "name", "mimeType"):
            op = self._take()
            kind, value = self._take()
            if op not in (("op", "="), ("op", "!=")):
                raise DriveError(400, "invalid", "Invalid Value", location="q")
            if tok[1] == "trashed":
                if kind != "word" or value not in ("true", "false"):
                    raise DriveError(400, "invalid", "Invalid Value", location="q")
                want: object = value == "true"
                get: Callable[[DriveFile], object] = lambda f: f.trashed  # noqa: E731
            else:
                if kind != "str":
                    raise DriveError(400, "invalid", "Invalid Value", location="q")
                want = value
                get = (lambda f: f.name) if tok[1] == "name" else (lambda f: f.mime_type)
            if op[1] == "=":
                return lambda f: get(f) == want
            return lambda f: get(f) != want
        raise DriveError(400, "invalid", "Invalid Value", location="q")


# -- fields: partial responses ---------------------------------------------------------------------------------


def parse_fields(text: str) -> dict[str, Any]:
    """"nextPageToken,files(id,name)" -> {"nextPageToken": {}, "files": {"id": {}, "name": {}}}; {} = all."""
    out: dict[str, Any] = {}
    stack = [out]
    name = ""
    for ch in text + ",":
        if ch in ",()":
            name = name.strip()
            if ch == "(":
                stack[-1][name] = {}
                stack.append(stack[-1][name])
            elif name:
                for part in [name]:
                    node = stack[-1]
                    keys = part.split("/")
                    for k in keys[:-1]:
                        node = node.setdefault(k, {})
                    node.setdefault(keys[-1], {})
            if ch == ")":
                stack.pop()
            name = ""
        else:
            name += ch
    return out


def select(value: Any, spec: dict[str, Any]) -> Any:
    if not spec or "*" in spec:
        return value
    if isinstance(value, list):
        return [select(v, spec) for v in value]
    if isinstance(value, dict):
        return {k: select(v, spec[k]) for k, v in value.items() if k in spec}
    return value


# -- the state -------------------------------------------------------------------------------------------------


class DriveState:
    """One account's My Drive, its shared drives, the change log and the fault switches."""

    def __init__(self, permission_id: str = "perm-0001", token_check: Callable[[str], bool] | None = None,
                 page_limit: int = 1000) -> None:
        self.lock = threading.RLock()
        self.permission_id = permission_id
        self.token_check = token_check
        self.page_limit = page_limit
        self.tokens: set[str] = set()
        self.base = ""
        self._ids = itertools.count(1)
        self._clock = 1_700_000_000.0
        self.files: dict[str, DriveFile] = {}
        self.drives: dict[str, str] = {}  # shared drive id -> name
        self.root = self._new_id("0Aroot")
        self.files[self.root] = DriveFile(self.root, "My Drive", FOLDER, [], None, self._now(), self._now())
        self.changes: list[tuple[int, str]] = []  # (sequence, file id)
        self._seq = 1
        self.oldest_token = 1
        self.sessions: dict[str, _Session] = {}
        self.requests = 0
        self.log: list[tuple[str, str]] = []
        self.faults: list[tuple[int, str, float | None]] = []
        self.cuts: list[tuple[int, int]] = []  # (chunk start at least, bytes kept)
        self.quota: int | None = None
        self.domain_policy = False
        self.export_limit = 10 * 1024 * 1024  # files.export refuses larger exports

    # -- helpers (under the lock) --------------------------------------------------------------------------
    def _new_id(self, prefix: str = "f") -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(3)}"

    def _now(self) -> float:
        self._clock = max(self._clock + 0.001, time.time())
        return self._clock

    def _changed(self, file_id: str) -> None:
        self.changes.append((self._seq, file_id))
        self._seq += 1

    def _drive_of(self, parent: str) -> str | None:
        f = self.files.get(parent)
        return None if f is None else (f.drive_id or (f.id if f.id in self.drives else None))

    def _used(self) -> int:
        return sum(len(f.data) for f in self.files.values() if f.data is not None)

    # -- what tests do -------------------------------------------------------------------------------------
    def issue_token(self) -> str:
        token = "ya29." + secrets.token_urlsafe(16)
        with self.lock:
            self.tokens.add(token)
        return token

    def revoke(self, token: str | None = None) -> None:
        with self.lock:
            if token is None:
                self.tokens.clear()
            else:
                self.tokens.discard(token)

    def token_valid(self, token: str) -> bool:
        with self.lock:
            if token in self.tokens:
                return True
        return self.token_check is not None and self.token_check(token)

    def add_drive(self, name: str) -> str:
        with self.lock:
            drive_id = self._new_id("0Ashared")
            self.drives[drive_id] = name
            self.files[drive_id] = DriveFile(drive_id, name, FOLDER, [], drive_id, self._now(), self._now())
            return drive_id

    def add_file(self, parent: str, name: str, data: bytes | None = b"", *, mime_type: str | None = None,
                 modified: float | None = None, target_id: str | None = None) -> str:
        with self.lock:
            if parent == "root":
                parent = self.root
            now = self._now()
            mime = mime_type or (FOLDER if data is None else "application/octet-stream")
            f = DriveFile(self._new_id(), name, mime, [parent], self._drive_of(parent), now,
                          now if modified is None else modified, data,
                          None if data is None else self._new_id("rev"), target_id=target_id)
            self.files[f.id] = f
            self._changed(f.id)
            return f.id

    def add_doc(self, parent: str, name: str, kind: str = "document") -> str:
        return self.add_file(parent, name, None, mime_type=f"application/vnd.google-apps.{kind}")

    def edit_doc(self, file_id: str, exported: bytes | None = None) -> None:
        """Someone edits a Google Doc: its export becomes `exported`, and its modifiedTime and version move."""
        with self.lock:
            f = self.files[file_id]
            f.exported, f.version, f.modified = exported, f.version + 1, self._now()
            self._changed(f.id)

    def add_shortcut(self, parent: str, name: str, target_id: str) -> str:
        return self.add_file(parent, name, None, mime_type=SHORTCUT, target_id=target_id)

    def populate(self, parent: str, names: Iterable[str], data: bytes = b"x") -> list[str]:
        """Files (and their folders, "a/b/c") created at once, without a change per file."""
        made: list[str] = []
        with self.lock:
            folders: dict[str, str] = {"": self.root if parent == "root" else parent}
            for path in names:
                parts = path.split("/")
                for i in range(1, len(parts)):
                    sub = "/".join(parts[:i])
                    if sub not in folders:
                        folders[sub] = self.add_file(folders["/".join(parts[: i - 1])], parts[i - 1], None)
                made.append(self.add_file(folders["/".join(parts[:-1])], parts[-1], data))
        return made

    def find(self, path: str, parent: str | None = None) -> DriveFile | None:
        """The (first created, untrashed) item at `path` below `parent` (default: My Drive)."""
        with self.lock:
            current = self.files[parent or self.root]
            for part in [p for p in path.split("/") if p]:
                match = [f for f in self.files.values() if current.id in f.parents and f.name == part
                         and not f.trashed]
                if not match:
                    return None
                current = min(match, key=lambda f: (f.created, f.id))
            return current

    def rename(self, file_id: str, name: str, new_parent: str | None = None) -> None:
        with self.lock:
            f = self.files[file_id]
            f.name = name
            if new_parent is not None:
                f.parents = [new_parent]
            f.version += 1
            self._changed(f.id)

    def write(self, file_id: str, data: bytes, modified: float | None = None) -> None:
        with self.lock:
            f = self.files[file_id]
            f.data, f.revision, f.version = data, self._new_id("rev"), f.version + 1
            f.modified = self._now() if modified is None else modified
            self._changed(f.id)

    def trash(self, file_id: str) -> None:
        with self.lock:
            f = self.files[file_id]
            f.trashed = True
            f.version += 1
            self._changed(f.id)

    def fail_next(self, status: int, reason: str = "", retry_after: float | None = None, times: int = 1) -> None:
        with self.lock:
            self.faults.extend([(status, reason, retry_after)] * times)

    def cut_uploads(self, times: int, keep: int, from_offset: int = 0) -> None:
        """The next `times` chunks that start at `from_offset` or later keep `keep` bytes, then the connection
        drops (before any answer), as a network cut does."""
        with self.lock:
            self.cuts.extend([(from_offset, keep)] * times)

    def expire_changes(self) -> None:
        with self.lock:
            self.oldest_token = self._seq

    def count(self) -> int:
        with self.lock:
            return self.requests

    # -- API operations (under the lock) -------------------------------------------------------------------
    def get(self, file_id: str) -> DriveFile:
        f = self.files.get(self.root if file_id == "root" else file_id)
        if f is None:
            raise DriveError(404, "notFound", f"File not found: {file_id}.", location="fileId")
        return f

    def list_files(self, q: str, page_size: int, token: str | None, drive_id: str | None) -> tuple[
        list[DriveFile], str | None]:
        pred = _Query(q).parse() if q.strip() else (lambda f: True)
        items = [f for f in self.files.values() if f.parents and pred(f)
                 and (drive_id is None or f.drive_id == drive_id)]
        start = int(token) if token else 0
        page = items[start:start + page_size]
        nxt = str(start + page_size) if start + page_size < len(items) else None
        return page, nxt

    def create(self, meta: dict[str, Any], data: bytes | None) -> DriveFile:
        parents = meta.get("parents") or [self.root]
        parent = self.get(parents[0])
        if data is not None and self.quota is not None and self._used() + len(data) > self.quota:
            raise DriveError(403, "storageQuotaExceeded", "The user's Drive storage quota has been exceeded.")
        now = self._now()
        mime = meta.get("mimeType") or "application/octet-stream"
        if mime == FOLDER or mime in DOCS_EXPORTS:
            data = None
        elif data is None:
            data = b""
        modified = parse_rfc3339(meta["modifiedTime"]) if meta.get("modifiedTime") else now
        f = DriveFile(self._new_id(), meta.get("name", "Untitled"), mime, [parent.id], self._drive_of(parent.id),
                      now, modified, data, None if data is None else self._new_id("rev"))
        self.files[f.id] = f
        self._changed(f.id)
        return f

    def update(self, file_id: str, meta: dict[str, Any], data: bytes | None, add: str, remove: str) -> DriveFile:
        f = self.get(file_id)
        if data is not None:
            if f.data is None:
                raise DriveError(403, "fileNotWritable", "This file cannot be written with content.")
            if self.quota is not None and self._used() - len(f.data) + len(data) > self.quota:
                raise DriveError(403, "storageQuotaExceeded", "The user's Drive storage quota has been exceeded.")
            f.data, f.revision = data, self._new_id("rev")
            f.modified = self._now()
        for pid in [p for p in remove.split(",") if p]:
            if pid in f.parents:
                f.parents.remove(pid)
        for pid in [p for p in add.split(",") if p]:
            self.get(pid)
            f.parents.append(self.root if pid == "root" else pid)
        if "name" in meta:
            f.name = meta["name"]
        if meta.get("modifiedTime"):
            f.modified = parse_rfc3339(meta["modifiedTime"])
        if "trashed" in meta:
            f.trashed = bool(meta["trashed"])
        f.version += 1
        self._changed(f.id)
        return f

    def delete(self, file_id: str) -> None:
        f = self.get(file_id)
        doomed = [f.id]
        i = 0
        while i < len(doomed):
            doomed += [c.id for c in self.files.values() if doomed[i] in c.parents]
            i += 1
        for fid in doomed:
            del self.files[fid]
            self._changed(fid)

    def copy(self, file_id: str, meta: dict[str, Any]) -> DriveFile:
        src = self.get(file_id)
        if src.data is None:
            raise DriveError(403, "cannotCopyFile", "This file cannot be copied.")
        merged = {"name": meta.get("name", src.name), "parents": meta.get("parents") or src.parents,
                  "mimeType": src.mime_type, "modifiedTime": meta.get("modifiedTime")}
        return self.create(merged, src.data)

    def changes_page(self, token: str, page_size: int, drive_id: str | None, restrict: bool) -> dict[str, Any]:
        try:
            start = int(token)
        except ValueError:
            raise DriveError(400, "invalid", "Invalid Value", location="pageToken") from None
        if start < self.oldest_token or start > self._seq:
            raise DriveError(400, "invalid", "Invalid Value", location="pageToken")
        latest: dict[str, int] = {}
        for seq, fid in self.changes:
            if seq >= start:
                latest[fid] = seq  # Drive reports one change per file: its latest state
        ordered = sorted(latest.items(), key=lambda kv: kv[1])
        out: list[dict[str, Any]] = []
        last = self._seq
        for fid, seq in ordered:
            f = self.files.get(fid)
            if f is not None and drive_id is not None and f.drive_id != drive_id:
                continue
            if f is not None and drive_id is None and (f.drive_id or (restrict and not self._in_my_drive(f))):
                continue
            if len(out) == page_size:
                last = seq
                break
            change: dict[str, Any] = {"kind": "drive#change", "changeType": "file", "fileId": fid,
                                      "removed": f is None, "time": rfc3339(self._clock)}
            if f is not None:
                change["file"] = f.resource(self.base)
            out.append(change)
        else:
            return {"kind": "drive#changeList", "changes": out, "newStartPageToken": str(self._seq)}
        return {"kind": "drive#changeList", "changes": out, "nextPageToken": str(last)}

    def _in_my_drive(self, f: DriveFile) -> bool:
        seen = 0
        while f.parents and seen < 1000:
            if f.parents[0] == self.root:
                return True
            parent = self.files.get(f.parents[0])
            if parent is None:
                return False
            f, seen = parent, seen + 1
        return f.id == self.root


# -- HTTP ------------------------------------------------------------------------------------------------------


class _Server(QuietServer):
    state: DriveState


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- plumbing ------------------------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None, content_type: str = "application/json; charset=UTF-8") -> None:
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if payload or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with state.lock:
            state.requests += 1
            state.log.append((self.command, url.path))
            fault = state.faults.pop(0) if state.faults else None
        auth = self.headers.get("Authorization", "")
        try:
            if not auth.startswith("Bearer ") or not state.token_valid(auth[7:]):
                self._body()
                raise DriveError(401, "authError", "Invalid Credentials", location="Authorization")
            if state.domain_policy:
                raise DriveError(403, "domainPolicy", "The domain administrators have disabled Drive apps.")
            if fault is not None:
                status, reason, retry_after = fault
                self._body()
                headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
                raise DriveError(status, reason or "backendError", f"fault {status} {reason}", headers=headers)
            self._route(state, url.path, query)
        except DriveError as exc:
            self._send(exc.status, exc.body(), exc.headers)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def _fields(self, query: dict[str, str], value: Any, default: Iterable[str] | None = None) -> Any:
        spec = parse_fields(query["fields"]) if query.get("fields") else None
        if spec is None:
            return select(value, {k: {} for k in default}) if default is not None else value
        return select(value, spec)

    def _file(self, state: DriveState, f: DriveFile, query: dict[str, str]) -> None:
        self._send(200, self._fields(query, f.resource(state.base), DEFAULT_FILE_FIELDS))

    # -- routes --------------------------------------------------------------------------------------------
    def _route(self, state: DriveState, path: str, query: dict[str, str]) -> None:
        method = self.command
        m = re.fullmatch(r"/drive/v3/(.*)", path)
        up = re.fullmatch(r"/upload/drive/v3/files(?:/([^/]+))?", path)
        ex = re.fullmatch(r"/export/([^/]+)", path)
        if up is not None:
            self._upload(state, unquote(up.group(1)) if up.group(1) else None, query)
            return
        if ex is not None and method == "GET":
            self._export(state, unquote(ex.group(1)), query)
            return
        if m is None:
            raise DriveError(404, "notFound", "Not Found")
        rest = m.group(1)
        body = self._body()
        meta = json.loads(body) if body.strip() else {}
        with state.lock:
            if rest == "about" and method == "GET":
                about = {"kind": "drive#about", "user": {"kind": "drive#user", "permissionId": state.permission_id,
                                                         "emailAddress": "tester@example.com",
                                                         "displayName": "Tester"}}
                self._send(200, self._fields(query, about))
            elif rest == "drives" and method == "GET":
                drives = [{"kind": "drive#drive", "id": i, "name": n} for i, n in state.drives.items()]
                self._send(200, self._fields(query, {"kind": "drive#driveList", "drives": drives}))
            elif (d := re.fullmatch(r"drives/([^/]+)", rest)) and method == "GET":
                drive_id = unquote(d.group(1))
                if drive_id not in state.drives:
                    raise DriveError(404, "notFound", f"Shared drive not found: {drive_id}", location="driveId")
                self._send(200, self._fields(query, {"kind": "drive#drive", "id": drive_id,
                                                     "name": state.drives[drive_id]}))
            elif rest == "files" and method == "GET":
                self._list(state, query)
            elif rest == "files" and method == "POST":
                self._file(state, state.create(meta, None), query)
            elif (g := re.fullmatch(r"files/([^/]+)", rest)) is not None:
                file_id = unquote(g.group(1))
                if method == "GET":
                    f = state.get(file_id)
                    if query.get("alt") == "media":
                        self._media(f)
                    else:
                        self._file(state, f, query)
                elif method == "PATCH":
                    f = state.update(file_id, meta, None, query.get("addParents", ""),
                                     query.get("removeParents", ""))
                    self._file(state, f, query)
                elif method == "DELETE":
                    state.delete(file_id)
                    self._send(204)
                else:
                    raise DriveError(405, "methodNotAllowed", "Method not allowed")
            elif (c := re.fullmatch(r"files/([^/]+)/copy", rest)) is not None and method == "POST":
                self._file(state, state.copy(unquote(c.group(1)), meta), query)
            elif (e := re.fullmatch(r"files/([^/]+)/export", rest)) is not None and method == "GET":
                self._export(state, unquote(e.group(1)), query)
            elif rest == "changes/startPageToken" and method == "GET":
                self._send(200, {"kind": "drive#startPageToken", "startPageToken": str(state._seq)})
            elif rest == "changes" and method == "GET":
                page_size = min(int(query.get("pageSize") or 100), state.page_limit)
                page = state.changes_page(query.get("pageToken", ""), page_size, query.get("driveId") or None,
                                          query.get("restrictToMyDrive") == "true")
                self._send(200, self._fields(query, page))
            else:
                raise DriveError(404, "notFound", "Not Found")

    def _list(self, state: DriveState, query: dict[str, str]) -> None:
        drive_id = query.get("driveId") or None
        if drive_id is not None:
            if query.get("includeItemsFromAllDrives") != "true" or query.get("supportsAllDrives") != "true":
                raise DriveError(403, "teamDriveIncludeItemsRequired",
                                 "The includeItemsFromAllDrives parameter must be set to true when driveId is set.")
            if drive_id not in state.drives:
                raise DriveError(404, "notFound", f"Shared drive not found: {drive_id}", location="driveId")
        page_size = min(int(query.get("pageSize") or 100), state.page_limit)
        files, nxt = state.list_files(query.get("q", ""), page_size, query.get("pageToken") or None, drive_id)
        answer: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False,
                                  "files": [f.resource(state.base) for f in files]}
        if nxt is not None:
            answer["nextPageToken"] = nxt
        spec = parse_fields(query["fields"]) if query.get("fields") else {
            "kind": {}, "nextPageToken": {}, "incompleteSearch": {}, "files": {k: {} for k in DEFAULT_FILE_FIELDS}}
        self._send(200, select(answer, spec))

    def _media(self, f: DriveFile) -> None:
        if f.data is None:
            if f.mime_type in DOCS_EXPORTS:
                raise DriveError(403, "fileNotDownloadable",
                                 "Only files with binary content can be downloaded. Use Export with Docs Editors "
                                 "files.", location="alt")
            raise DriveError(403, "fileNotDownloadable", "Only files with binary content can be downloaded.")
        data = f.data
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m is None:
            self._send(200, raw=data, content_type="application/octet-stream")
            return
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data):
            self._send(416, raw=b"", headers={"Content-Range": f"bytes */{len(data)}"})
            return
        self._send(206, raw=data[start:end + 1], content_type="application/octet-stream",
                   headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"})

    def _export(self, state: DriveState, file_id: str, query: dict[str, str]) -> None:
        with state.lock:
            f = state.get(file_id)
            wanted = DOCS_EXPORTS.get(f.mime_type)
            if wanted is None or query.get("mimeType") != wanted:
                raise DriveError(400, "badRequest", "The requested conversion is not supported.",
                                 location="mimeType")
            content = f.exported if f.exported is not None else f"export of {f.name} v{f.version}".encode()
            if len(content) > state.export_limit:
                raise DriveError(403, "exportSizeLimitExceeded", "This file is too large to be exported.")
        self._send(200, raw=content, content_type=wanted)

    # -- uploads -------------------------------------------------------------------------------------------
    def _upload(self, state: DriveState, file_id: str | None, query: dict[str, str]) -> None:
        kind = query.get("uploadType")
        if "upload_id" in query:
            self._chunk(state, query["upload_id"])
            return
        body = self._body()
        if kind == "multipart":
            meta, data = _multipart(self.headers.get("Content-Type", ""), body)
            with state.lock:
                f = (state.create(meta, data) if file_id is None else
                     state.update(file_id, meta, data, query.get("addParents", ""), query.get("removeParents", "")))
                self._file(state, f, query)
        elif kind == "resumable":
            meta = json.loads(body) if body.strip() else {}
            total = self.headers.get("X-Upload-Content-Length")
            with state.lock:
                if file_id is not None:
                    state.get(file_id)
                elif meta.get("parents"):
                    state.get(meta["parents"][0])
                upload_id = secrets.token_urlsafe(12)
                state.sessions[upload_id] = _Session(meta, int(total) if total else None, query.get("fields"),
                                                     file_id)
            where = f"{state.base}/upload/drive/v3/files?uploadType=resumable&upload_id={upload_id}"
            self._send(200, raw=b"", headers={"Location": where, "X-GUploader-UploadID": upload_id})
        else:
            raise DriveError(400, "badRequest", f"Unsupported uploadType {kind!r}", location="uploadType")

    def _chunk(self, state: DriveState, upload_id: str) -> None:
        m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", self.headers.get("Content-Range", "bytes */*"))
        with state.lock:
            session = state.sessions.get(upload_id)
            cut = None
            if state.cuts and m is not None and m.group(1) is not None and int(m.group(1)) >= state.cuts[0][0]:
                cut = state.cuts.pop(0)[1]
        if session is None:
            self._body()
            raise DriveError(404, "notFound", "Upload session not found")
        if m is None:
            self._body()
            raise DriveError(400, "badRequest", "Bad Content-Range")
        if m.group(3) != "*":
            session.total = int(m.group(3))
        if cut is not None:
            got = self.rfile.read(cut)
            with state.lock:
                start = int(m.group(1))
                have = len(session.received)
                if start <= have < start + len(got):
                    session.received += got[have - start:]
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = self._body()
        with state.lock:
            if m.group(1) is not None:
                start = int(m.group(1))
                have = len(session.received)
                if start > have:
                    raise DriveError(400, "badRequest", "Chunk starts past the bytes received")
                session.received += data[have - start:]
            done = session.total is not None and len(session.received) >= session.total
            if not done:
                headers = {"Range": f"bytes=0-{len(session.received) - 1}"} if session.received else {}
                self._send(308, raw=b"", headers=headers)
                return
            del state.sessions[upload_id]
            data = bytes(session.received[: session.total])
            meta = session.meta
            f = state.create(meta, data) if session.file_id is None else state.update(
                session.file_id, meta, data, "", "")
            self._send(200, self._fields({"fields": session.fields or ""}, f.resource(state.base),
                                         DEFAULT_FILE_FIELDS))


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if m is None:
        raise DriveError(400, "badRequest", "multipart body without boundary")
    delimiter = b"--" + m.group(1).encode()
    parts = body.split(delimiter)[1:-1]  # before the first delimiter: nothing; after the last: "--"
    if len(parts) != 2:
        raise DriveError(400, "badRequest", "a multipart upload has two parts")
    out: list[bytes] = []
    for part in parts:
        ends = [(i, n) for i, n in ((part.find(b"\r\n\r\n"), 4), (part.find(b"\n\n"), 2)) if i >= 0]
        if not ends:
            raise DriveError(400, "badRequest", "a multipart part without headers")
        at, width = min(ends)
        content = part[at + width:]
        # The delimiter is preceded by a line break that belongs to it, not to the content.
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        out.append(content)
    meta = json.loads(out[0]) if out[0].strip() else {}
    return meta, out[1]


@contextlib.contextmanager
def running(state: DriveState | None = None) -> Iterator[tuple[str, DriveState]]:
    """A fake Drive on 127.0.0.1 (free port); yields (the `api_url` to give the provider, the state)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state or DriveState()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    server.state.base = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
