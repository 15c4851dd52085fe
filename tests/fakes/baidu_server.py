"""A fake of Baidu Netdisk's open platform on 127.0.0.1 (port 0): OAuth (openapi.baidu.com), the `xpan` API
(pan.baidu.com) and the upload and download hosts (d.pcs.baidu.com), all on one address, for
`engine.providers.baidu` and the console script.

What it speaks (GET query or form POST, answers JSON with `errno`, HTTP 200, as Baidu does):

- OAuth: `/oauth/2.0/device/code?response_type=device_code&client_id=&scope=` (device_code, user_code,
  verification_url, interval, expires_in); `/oauth/2.0/token` with `grant_type=device_token&code=` (Baidu's
  name for the device grant: `authorization_pending` until approved with `approve_device` or
  `GET /oauth/2.0/device?code=USER_CODE`, `slow_down`, `expired_token`) and `grant_type=refresh_token`, both
  checking `client_id` and `client_secret`; refresh tokens are single-use (a used one is `invalid_grant`), as
  Baidu's are.
- `/rest/2.0/xpan/nas?method=uinfo` (uk, names), `/api/quota` (total, used, free);
- `/rest/2.0/xpan/file?method=list` (one folder, `start`/`limit` at most 1000, folders first) and
  `method=listall` (recursive, `start`/`limit`, `has_more`, `cursor`); a missing folder is errno -9;
- `/rest/2.0/xpan/multimedia?method=filemetas&fsids=[...]&dlink=1`: the items, each with a `dlink` on the data
  host; the dlink answers only with a valid `access_token` and the User-Agent `pan.baidu.com` (403 otherwise),
  with a 302 to a CDN address that serves the bytes;
- `method=precreate` (block md5 list, `rtype`, `uploadid`, the blocks still needed), `/rest/2.0/pcs/superfile2
  ?method=upload&type=tmpfile&uploadid=&partseq=` (multipart `file`, at most 4 MiB a block, answers the block's
  md5; errors as `error_code`), `method=create` (the blocks must match the precreate's md5s and add up to
  `size`; `rtype` 0 refuses a taken name with errno -8, 3 replaces a file; `isdir=1` makes a folder; parents
  are made as needed; the item keeps the client's `local_mtime`; a new version is a new `fs_id`);
- `method=filemanager&opera=delete|move|rename|copy` (`filelist` JSON, `ondup` fail|overwrite; a folder's
  delete takes all inside; errno 12 with each item's errno in `info` when an item fails).

Baidu's rules it keeps: an app writes only under `/apps/<its app name>/` (errno -7 elsewhere; the upload host's
31064), names with `\\ ? | " > < : *` are refused (-7), a full quota is errno -10, an access token Baidu no longer
accepts is errno -6 (111 once expired).

Test knobs: `corrupt_md5` (the listed md5 of a file is wrong, as the spec's FAQ says Baidu's often is),
`plant_outside` (a listing of a folder also names an entry outside it, to test that such an answer is never
trusted), `throttle` (the next calls answer errno 31034), `break_parts` (the next superfile2 calls fail with
HTTP 500), `revoke`, `counts` per method.

What it does not cover: rapid upload (`return_type` 2 from matching content-md5/slice-md5; every precreate asks
for all blocks), the upload host's own address lookup (`locateupload`), member-only block sizes (16/32 MiB) and
file size limits (4 GB and up), the async filemanager modes and its task ids, case rules of names (it is
case-sensitive; whether Baidu is was not verified), thumbnails, categories, shares, the recycle bin, the
authorization-code grant, scopes (recorded, never enforced), `expires_in` of tokens beyond the access token's
lifetime, and the download host's speed limits for non-members.
"""

from __future__ import annotations

import email
import hashlib
import json
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.hostile import Faults, half
from tests.fakes.httpserver import QuietServer

BLOCK = 4 << 20
BAD_CHARS = set('\\?|"><:*')
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


@dataclass
class Item:
    fs_id: int
    path: str
    isdir: bool
    data: bytes = b""
    server_mtime: int = 0
    local_mtime: int = 0
    md5_shown: str | None = None  # a wrong md5 the listing reports instead of the real one
    name_shown: str | None = None  # a name the listing hands out instead of the real one (`show_as`)
    path_shown: str | None = None  # the path it then lists (its own, or below a folder shown so)

    @property
    def md5(self) -> str:
        return self.md5_shown or hashlib.md5(self.data).hexdigest()

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fs_id": self.fs_id, "path": self.path_shown or self.path,
            "server_filename": self.name_shown if self.name_shown is not None else self.path.rpartition("/")[2],
            "isdir": int(self.isdir), "size": 0 if self.isdir else len(self.data), "server_mtime": self.server_mtime,
            "server_ctime": self.server_mtime, "local_mtime": self.local_mtime, "local_ctime": self.local_mtime,
            "category": 6,
        }  # fmt: skip
        if not self.isdir:
            out["md5"] = self.md5
        return out


@dataclass
class Account:
    uk: int
    app_key: str
    app_name: str
    items: dict[str, Item] = field(default_factory=dict)
    quota_total: int = 100 * 1024**3  # Baidu's free 100 GB (spec note 7)
    vip_type: int = 0  # 0 an ordinary account, 1 a member, 2 a super member (uinfo's field)
    outside: dict[str, list[Item]] = field(default_factory=dict)  # listed folder -> planted foreign entries

    @property
    def root(self) -> str:
        return f"/apps/{self.app_name}"


@dataclass
class _Device:
    uk: int
    user_code: str
    expires_at: float
    interval: float
    approved: bool = False
    last_poll: float = 0.0


@dataclass
class _Upload:
    path: str
    blocks: list[str]
    parts: dict[int, bytes] = field(default_factory=dict)


class BaiduError(Exception):
    def __init__(self, errno: int, info: list[dict[str, Any]] | None = None) -> None:
        super().__init__(errno)
        self.errno = errno
        self.info = info


class BaiduFake:
    def __init__(self, app_key: str = "fake-app-key", secret_key: str = "fake-secret-key") -> None:
        self.app_key, self.secret_key = app_key, secret_key
        self.lock = threading.RLock()
        self.accounts: dict[int, Account] = {}
        self.access: dict[str, tuple[int, float]] = {}  # token -> (uk, expires at)
        self.refresh: dict[str, int] = {}
        self.devices: dict[str, _Device] = {}
        self.uploads: dict[str, _Upload] = {}
        self.counts: Counter[str] = Counter()
        self.device_interval = 0.2
        self.pending_uk: int | None = None  # whose account the next device sign-in approves
        self._next_id = 1000
        self._throttle = 0
        self._break_parts = 0
        self.faults = Faults()  # tests/fakes/hostile.py: 500s, refused tokens, cut answers, held requests
        self._clock = int(time.time())
        self._httpd: QuietServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> BaiduFake:
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
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- what tests do --------------------------------------------------------------------------------------
    def new_account(self, app_name: str = "skysync") -> tuple[int, str, str]:
        """(uk, access token, refresh token) of a fresh account whose app folder exists and is empty."""
        with self.lock:
            uk = self._id()
            acc = self.accounts[uk] = Account(uk, self.app_key, app_name)
            self._mkdirs(acc, acc.root)
            tokens = self._tokens(uk)
            return uk, str(tokens["access_token"]), str(tokens["refresh_token"])

    def issue(self, uk: int, ttl: float = 3600) -> dict[str, object]:
        with self.lock:
            return self._tokens(uk, ttl)

    def put(self, uk: int, path: str, data: bytes, mtime: float | None = None) -> Item:
        """A file written by another client (path absolute, or relative to the app folder)."""
        with self.lock:
            acc = self.accounts[uk]
            full = path if path.startswith("/") else f"{acc.root}/{path}"
            self._mkdirs(acc, full.rpartition("/")[0])
            item = Item(self._id(), full, False, data, self._tick(), int(mtime if mtime is not None else time.time()))
            acc.items[full] = item
            return item

    def mkdir(self, uk: int, rel: str) -> None:
        with self.lock:
            acc = self.accounts[uk]
            self._mkdirs(acc, f"{acc.root}/{rel}")

    def files(self, uk: int) -> dict[str, bytes]:
        """Files under the app folder, by path relative to it."""
        with self.lock:
            acc = self.accounts[uk]
            return {p[len(acc.root) + 1 :]: i.data for p, i in acc.items.items()
                    if not i.isdir and p.startswith(acc.root + "/")}  # fmt: skip

    def item(self, uk: int, rel: str) -> Item | None:
        with self.lock:
            acc = self.accounts[uk]
            return acc.items.get(f"{acc.root}/{rel}")

    def corrupt_md5(self, uk: int, rel: str) -> None:
        """From now on the listing reports a wrong md5 for this file (its bytes are unchanged)."""
        with self.lock:
            item = self.item(uk, rel)
            assert item is not None and not item.isdir
            item.md5_shown = hashlib.md5(b"not the content" + item.data).hexdigest()

    def show_as(self, uk: int, rel: str, name: str) -> None:
        """Listings name the item at `rel` `name`, whatever it holds, and give it and all below it the paths such
        a name makes (a name with `/` then reads as a deeper path: only `server_filename` tells)."""
        with self.lock:
            acc = self.accounts[uk]
            full = f"{acc.root}/{rel}"
            shown = f"{full.rpartition('/')[0]}/{name}"
            for path, item in acc.items.items():
                if path == full:
                    item.name_shown, item.path_shown = name, shown
                elif path.startswith(full + "/"):
                    item.path_shown = shown + path[len(full):]

    def plant_outside(self, uk: int, listed: str, path: str, data: bytes) -> None:
        """Listings of `listed` (relative to the app folder) also report a file at absolute `path`."""
        with self.lock:
            acc = self.accounts[uk]
            item = Item(self._id(), path, False, data, self._tick(), self._tick())
            acc.outside.setdefault(f"{acc.root}/{listed}".rstrip("/"), []).append(item)

    def delete(self, uk: int, rel: str) -> None:
        with self.lock:
            acc = self.accounts[uk]
            self._remove(acc, f"{acc.root}/{rel}")

    def throttle(self, calls: int) -> None:
        with self.lock:
            self._throttle = calls

    def break_parts(self, calls: int) -> None:
        with self.lock:
            self._break_parts = calls

    def revoke(self, uk: int) -> None:
        with self.lock:
            self.access = {t: v for t, v in self.access.items() if v[0] != uk}
            self.refresh = {t: u for t, u in self.refresh.items() if u != uk}

    def approve_device(self, user_code: str) -> bool:
        with self.lock:
            for device in self.devices.values():
                if device.user_code == user_code:
                    device.approved = True
                    return True
            return False

    # -- internals (under the lock) -------------------------------------------------------------------------
    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _tick(self) -> int:
        self._clock = max(self._clock + 1, int(time.time()))
        return self._clock

    def _tokens(self, uk: int, ttl: float = 3600) -> dict[str, object]:
        access = "121." + secrets.token_hex(16)
        refresh = "122." + secrets.token_hex(16)
        self.access[access] = (uk, time.time() + ttl)
        self.refresh[refresh] = uk
        return {"access_token": access, "refresh_token": refresh, "expires_in": int(ttl),
                "scope": "basic netdisk", "session_key": "", "session_secret": ""}  # fmt: skip

    def _mkdirs(self, acc: Account, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:i])
            if sub not in acc.items:
                acc.items[sub] = Item(self._id(), sub, True, server_mtime=self._tick())
            elif not acc.items[sub].isdir:
                raise BaiduError(-8)

    def _remove(self, acc: Account, path: str) -> None:
        if path not in acc.items:
            raise BaiduError(-9)
        for p in [p for p in acc.items if p == path or p.startswith(path + "/")]:
            del acc.items[p]

    def _writable(self, acc: Account, path: str) -> None:
        if not path.startswith(acc.root + "/") or "/../" in path + "/" or "/./" in path + "/":
            raise BaiduError(-7)
        if any(c in BAD_CHARS for c in path):
            raise BaiduError(-7)

    def _used(self, acc: Account) -> int:
        return sum(len(i.data) for i in acc.items.values())

    # -- the API (under the lock) -----------------------------------------------------------------------------
    def user(self, params: dict[str, str]) -> Account:
        token = params.get("access_token", "")
        found = self.access.get(token)
        if found is None:
            raise BaiduError(-6)
        if found[1] < time.time():
            raise BaiduError(111)
        return self.accounts[found[0]]

    def api(self, route: str, params: dict[str, str]) -> dict[str, Any]:
        method = params.get("method", "")
        self.counts[method or route] += 1
        if self._throttle > 0:
            self._throttle -= 1
            raise BaiduError(31034)
        acc = self.user(params)
        if route == "/rest/2.0/xpan/nas" and method == "uinfo":
            return {"uk": acc.uk, "baidu_name": f"user{acc.uk}", "netdisk_name": f"user{acc.uk}",
                    "vip_type": acc.vip_type}
        if route == "/api/quota":
            used = self._used(acc)
            return {"total": acc.quota_total, "used": used, "free": acc.quota_total - used, "expire": False}
        if route == "/rest/2.0/xpan/multimedia" and method == "filemetas":
            return self._filemetas(acc, params)
        if route != "/rest/2.0/xpan/file":
            raise BaiduError(2)
        handler = {"list": self._list, "listall": self._listall, "precreate": self._precreate,
                   "create": self._create, "filemanager": self._filemanager}.get(method)  # fmt: skip
        if handler is None:
            raise BaiduError(2)
        return handler(acc, params)

    def _folder(self, acc: Account, path: str) -> Item:
        item = acc.items.get(path.rstrip("/") or "/")
        if item is None or not item.isdir:
            raise BaiduError(-9)
        return item

    def _list(self, acc: Account, params: dict[str, str]) -> dict[str, Any]:
        folder = params.get("dir", "/").rstrip("/")
        self._folder(acc, folder)
        start, limit = int(params.get("start") or 0), min(int(params.get("limit") or 1000), 1000)
        inside = [i for p, i in acc.items.items() if p.rpartition("/")[0] == folder and p != folder]
        inside += acc.outside.get(folder, [])
        inside.sort(key=lambda i: (not i.isdir, i.path.rpartition("/")[2]))
        return {"list": [i.public() for i in inside[start : start + limit]], "guid": 0}

    def _listall(self, acc: Account, params: dict[str, str]) -> dict[str, Any]:
        folder = params.get("path", "/").rstrip("/")
        self._folder(acc, folder)
        start, limit = int(params.get("start") or 0), min(int(params.get("limit") or 1000), 1000)
        recursive = params.get("recursion") == "1"
        below = [i for p, i in acc.items.items() if p.startswith(folder + "/")
                 and (recursive or "/" not in p[len(folder) + 1 :])]  # fmt: skip
        below += acc.outside.get(folder, [])
        below.sort(key=lambda i: i.path)
        page = below[start : start + limit]
        more = start + limit < len(below)
        return {"list": [i.public() for i in page], "has_more": int(more), "cursor": start + len(page)}

    def _filemetas(self, acc: Account, params: dict[str, str]) -> dict[str, Any]:
        wanted = json.loads(params.get("fsids") or "[]")
        by_id = {i.fs_id: i for i in acc.items.values()}
        out = []
        for fs_id in wanted:
            item = by_id.get(int(fs_id))
            if item is None:
                continue
            meta = item.public()
            meta["filename"] = meta["server_filename"]
            if params.get("dlink") == "1" and not item.isdir:
                meta["dlink"] = f"{self.url}/file/{item.fs_id}?fid={acc.uk}-{item.fs_id}&dstime={self._clock}"
            out.append(meta)
        return {"list": out}

    def _precreate(self, acc: Account, params: dict[str, str]) -> dict[str, Any]:
        path = params.get("path", "")
        self._writable(acc, path)
        blocks = json.loads(params.get("block_list") or "[]")
        size = int(params.get("size") or 0)
        if size > acc.quota_total - self._used(acc):
            raise BaiduError(-10)
        upload_id = "N1-" + secrets.token_hex(12)
        self.uploads[upload_id] = _Upload(path, [str(b) for b in blocks])
        return {"path": path, "uploadid": upload_id, "return_type": 1, "block_list": list(range(len(blocks)))}

    def part(self, params: dict[str, str], data: bytes) -> dict[str, Any]:
        acc = self.user(params)
        upload = self.uploads.get(params.get("uploadid", ""))
        if upload is None or upload.path != params.get("path"):
            raise BaiduError(31363)
        if not upload.path.startswith(acc.root + "/"):
            raise BaiduError(31064)
        if len(data) > BLOCK:
            raise BaiduError(31023)
        upload.parts[int(params.get("partseq") or 0)] = data
        return {"md5": hashlib.md5(data).hexdigest(), "request_id": self._id()}

    def _create(self, acc: Account, params: dict[str, str]) -> dict[str, Any]:
        path = params.get("path", "")
        self._writable(acc, path)
        rtype = int(params.get("rtype") or 0)
        existing = acc.items.get(path)
        if params.get("isdir") == "1":
            if existing is not None:
                raise BaiduError(-8)
            self._mkdirs(acc, path)
            item = acc.items[path]
            return {**item.public(), "name": path, "ctime": item.server_mtime, "mtime": item.server_mtime}
        size = int(params.get("size") or 0)
        blocks = [str(b) for b in json.loads(params.get("block_list") or "[]")]
        if size == 0 and not params.get("uploadid"):
            data = b""
            if blocks not in ([], [EMPTY_MD5]):
                raise BaiduError(2)
        else:
            upload = self.uploads.pop(params.get("uploadid", ""), None)
            if upload is None or upload.path != path or upload.blocks != blocks:
                raise BaiduError(31363)
            if sorted(upload.parts) != list(range(len(blocks))):
                raise BaiduError(31363)
            chunks = [upload.parts[i] for i in range(len(blocks))]
            if [hashlib.md5(c).hexdigest() for c in chunks] != blocks or any(len(c) != BLOCK for c in chunks[:-1]):
                raise BaiduError(31363)
            data = b"".join(chunks)
            if len(data) != size:
                raise BaiduError(31363)
        if existing is not None and (existing.isdir or rtype != 3):
            raise BaiduError(-8)
        if size - (len(existing.data) if existing else 0) > acc.quota_total - self._used(acc):
            raise BaiduError(-10)
        self._mkdirs(acc, path.rpartition("/")[0])
        stamp = int(params.get("local_mtime") or 0) or self._tick()
        item = acc.items[path] = Item(self._id(), path, False, data, self._tick(), stamp)
        return {**item.public(), "name": path, "ctime": item.server_mtime, "mtime": item.server_mtime}

    def _filemanager(self, acc: Account, params: dict[str, str]) -> dict[str, Any]:
        opera = params.get("opera", "")
        self.counts[f"filemanager-{opera}"] += 1
        items = json.loads(params.get("filelist") or "[]")
        info: list[dict[str, Any]] = []
        failed = False
        for spec in items:
            try:
                self._operate(acc, opera, spec, params.get("ondup") or "fail")
                info.append({"errno": 0, "path": spec if isinstance(spec, str) else spec.get("path")})
            except BaiduError as exc:
                failed = True
                info.append({"errno": exc.errno, "path": spec if isinstance(spec, str) else spec.get("path")})
        if failed:
            raise BaiduError(12, info)
        return {"info": info, "taskid": 0}

    def _operate(self, acc: Account, opera: str, spec: Any, ondup: str) -> None:
        if opera == "delete":
            self._writable(acc, str(spec))
            self._remove(acc, str(spec))
            return
        src = str(spec["path"])
        self._writable(acc, src)
        dest = str(spec.get("dest") or src.rpartition("/")[0]) if opera != "rename" else src.rpartition("/")[0]
        dst = f"{dest}/{spec['newname']}"
        self._writable(acc, dst)
        item = acc.items.get(src)
        if item is None:
            raise BaiduError(-9)
        self._folder(acc, dest)
        if dst in acc.items:
            if (spec.get("ondup") or ondup) != "overwrite" or acc.items[dst].isdir:
                raise BaiduError(-8)
            self._remove(acc, dst)
        moving = [(p, i) for p, i in acc.items.items() if p == src or p.startswith(src + "/")]
        for p, i in moving:
            new_path = dst + p[len(src) :]
            if opera == "copy":
                acc.items[new_path] = Item(self._id(), new_path, i.isdir, i.data, self._tick(), i.local_mtime,
                                           i.md5_shown)  # fmt: skip
            else:
                del acc.items[p]
                i.path = new_path
                acc.items[new_path] = i

    def download(self, fs_id: int, params: dict[str, str], agent: str) -> bytes:
        self.counts["download"] += 1
        if agent != "pan.baidu.com":
            raise PermissionError("Baidu serves downloads to the User-Agent pan.baidu.com only")
        acc = self.user(params)
        for item in acc.items.values():
            if item.fs_id == fs_id and not item.isdir:
                return item.data
        raise KeyError(fs_id)

    # -- OAuth (under the lock) ----------------------------------------------------------------------------
    def device_code(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.counts["device_code"] += 1
        if params.get("client_id") != self.app_key or params.get("response_type") != "device_code":
            return 400, {"error": "invalid_client", "error_description": "unknown client_id or response_type"}
        code = secrets.token_hex(16)
        user_code = secrets.token_hex(4)
        uk = self.pending_uk if self.pending_uk is not None else self.new_account()[0]
        self.devices[code] = _Device(uk, user_code, time.time() + 300, self.device_interval)
        return 200, {"device_code": code, "user_code": user_code, "verification_url": self.url + "/oauth/2.0/device",
                     "qrcode_url": self.url + "/qrcode", "expires_in": 300, "interval": self.device_interval}

    def token(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = params.get("grant_type", "")
        self.counts[f"token-{grant}"] += 1
        if params.get("client_id") != self.app_key or params.get("client_secret") != self.secret_key:
            return 401, {"error": "invalid_client", "error_description": "unknown client id"}
        if grant == "device_token":
            device = self.devices.get(params.get("code", ""))
            now = time.time()
            if device is None:
                return 400, {"error": "invalid_grant", "error_description": "Invalid device code"}
            if device.expires_at < now:
                return 400, {"error": "expired_token", "error_description": "device code expired"}
            if now - device.last_poll < device.interval - 0.05:
                device.last_poll = now
                return 400, {"error": "slow_down", "error_description": "polling too fast"}
            device.last_poll = now
            if not device.approved:
                return 400, {"error": "authorization_pending", "error_description": "User has not yet completed "
                             "the authorization"}  # fmt: skip
            del self.devices[params["code"]]
            return 200, self._tokens(device.uk)
        if grant == "refresh_token":
            uk = self.refresh.pop(params.get("refresh_token", ""), None)  # single-use
            if uk is None:
                return 400, {"error": "expired_token", "error_description": "refresh token has been used"}
            return 200, self._tokens(uk)
        return 400, {"error": "unsupported_grant_type"}


class _Handler(BaseHTTPRequestHandler):
    fake: BaiduFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else
                         "application/json")  # fmt: skip
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if getattr(self, "cut", False):  # a hostile test's cut answer: half the body, then the line drops
            self.wfile.write(half(raw))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.wfile.write(raw)

    def _params(self, body: bytes) -> dict[str, str]:
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}
        if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            params.update({k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()})
        return params

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        route = urlsplit(self.path).path
        params = self._params(body)
        fake = self.fake
        action = fake.faults.take(f"{self.command} {self.path}")
        if action == "500":
            self._send(500, {"error_code": 31299, "error_msg": "internal error"})
            return
        if action == "401":  # Baidu's refusal of a token: errno -6 in an HTTP 200
            self._send(200, {"errno": -6, "request_id": 1})
            return
        self.cut = action == "truncate"
        try:
            with fake.lock:
                if route == "/oauth/2.0/device/code":
                    self._send(*fake.device_code(params))
                elif route == "/oauth/2.0/device":
                    ok = fake.approve_device(params.get("code", ""))
                    self._send(200 if ok else 404, {"approved": ok})
                elif route == "/oauth/2.0/token":
                    self._send(*fake.token(params))
                elif route == "/rest/2.0/pcs/superfile2":
                    fake.counts["superfile2"] += 1
                    if fake._break_parts > 0:
                        fake._break_parts -= 1
                        self._send(500, {"error_code": 31299, "error_msg": "internal error"})
                        return
                    self._send(200, fake.part(params, _multipart_file(self.headers.get("Content-Type", ""), body)))
                elif route.startswith("/file/"):
                    data = fake.download(int(route.rsplit("/", 1)[1]), params, self.headers.get("User-Agent", ""))
                    key = secrets.token_hex(8)
                    _CDN[key] = data
                    self._send(302, b"", {"Location": f"{fake.url}/cdn/{key}"})
                elif route.startswith("/cdn/"):
                    data = _CDN.pop(route.rsplit("/", 1)[1], None)
                    self._send(200 if data is not None else 404, data if data is not None else b"gone")
                else:
                    self._send(200, {"errno": 0, "request_id": fake._id(), **fake.api(route, params)})
        except BaiduError as exc:
            if route == "/rest/2.0/pcs/superfile2":
                self._send(400, {"error_code": exc.errno, "error_msg": "refused", "request_id": 1})
            else:
                answer: dict[str, Any] = {"errno": exc.errno, "request_id": 1}
                if exc.info is not None:
                    answer["info"] = exc.info
                self._send(200, answer)
        except PermissionError:
            self._send(403, {"error_code": 31326, "error_msg": "user not allowed"})
        except KeyError:
            self._send(404, {"error_code": 31066, "error_msg": "file does not exist"})

    do_GET = do_POST = _answer


_CDN: dict[str, bytes] = {}  # one-shot download addresses, as a CDN's signed links


def _multipart_file(content_type: str, body: bytes) -> bytes:
    """The `file` field of a multipart/form-data body."""
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in message.walk():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    raise BaiduError(31023)
