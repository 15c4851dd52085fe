"""`baidu`: Baidu Netdisk through its open-platform `xpan` REST API (engine.providers.xpan), signed in with
Baidu's device-code OAuth (scope `basic,netdisk`; refresh tokens are single-use, so the token store's
cross-process lock is what keeps the only valid one).

The app folder (spec note 3): Baidu lets an app write only under `/apps/<app name>/` ("My Application's Data"
in Baidu's apps), so that folder is the connection's `/` and every path is placed under it. A path that would
leave it (a `..` segment) is refused before any call, and an entry a listing reports outside the folder asked
for is left out with its reason (`on_skip`), so the engine treats it as not looked at and never deletes it.

Hash: Baidu lists an md5 per file, which the spec's FAQ (and every client of the API) finds wrong for many
files: `hash_unreliable`, so a hash that differs from ours is never a reason to transfer, refuse a download or
make a conflict copy. What tells a new version is the revision, `<fs_id>:<server_mtime>` (a new upload is a new
file with a new id and time; a rename keeps both). Modification time: Baidu keeps the `local_mtime` a client
gives when it creates a file and lists it back (the web shows the upload time): `MtimeMode.METADATA`.

Transfers: every upload is Baidu's three steps, `precreate` (the md5 of each 4 MiB block), each block to the
upload host's `superfile2` (the block md5 it answers is checked), then `create`; a block that fails is sent
again on its own. An empty file is only `create`d. A download asks `filemetas` for the file's `dlink` and
reads it with the access token and the User-Agent Baidu requires, following its redirect to the data host.

Conditional writes (REREAD): a replacement re-reads the file (by the id in its listed revision, else its
folder) just before the upload and goes ahead only if it is still the version the plan saw; a new name is
created with `rtype=0`, which Baidu itself refuses when the name is taken. A delete re-reads the same way and
never removes a folder: Baidu's delete takes a folder with everything in it, so `rmdir` lists it first and
refuses one with content (a file added in the moment between goes with it).

Errors by Baidu's `errno`: -6/111 (token refused) refresh the token once, then "sign-in needed"; 31034 (rate
limit) and 5xx are TransientError for the connection's pacer (Retry-After kept); -10 is QuotaExceeded with the
quota the account has (`/api/quota`: "the storage space has reached the limit"); -7 (a name Baidu refuses or a
place outside the app folder) PermissionDenied.

Addresses: `api_url` (pan.baidu.com), `content_url` (d.pcs.baidu.com: uploads, and the download links Baidu
hands out there) and `auth_url` (openapi.baidu.com: the device code and token endpoints).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from engine.auth.oauth import OAuthSpec
from engine.providers.base import (
    Capabilities,
    Conditional,
    ContainerNotFound,
    Expect,
    FolderNotEmpty,
    HashKind,
    InvalidOption,
    MtimeMode,
    NotFound,
    OptionSpec,
    PermissionDenied,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    RemoteEntry,
    TransientError,
    sane_mtime,
)
from engine.providers.listednames import unusable_name
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider, TokenRefused
from engine.providers.xpan import (
    API_URL,
    CONTENT_URL,
    Exists,
    XpanClient,
    encode_list,
    error_for,
)

MIB = 1 << 20
BLOCK = 4 * MIB  # Baidu's upload block for every account (members may use larger ones; 4 MiB always works)
AUTH_URL = "https://openapi.baidu.com"
PAGE = 1000  # the most entries one list/listall call returns
PART_ATTEMPTS = 4
# The largest file Baidu takes per upload, by the membership uinfo's `vip_type` names (Baidu's upload docs).
MEMBERSHIP_MAX_FILE = {0: 4 * 1024**3, 1: 10 * 1024**3, 2: 20 * 1024**3}
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
FILE = "/rest/2.0/xpan/file"


def _outside(app_root: str) -> str:
    return f"outside the app folder {app_root}/ (Baidu lets an app use only its own folder: spec note 3)"


def _read_full(src: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        data = src.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _size(n: int) -> str:
    """A quota figure as Baidu's own pages write it (100 GB, the free account's space)."""
    for unit, step in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= step:
            value = n / step
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _name_problem(rel: str, listed_name: object) -> str | None:
    """Why an item listed at `rel` (relative to the listed folder) is skipped: a part of its path no name here can
    be, or a `server_filename` other than the path's last part (a name holding `/`: its path reads as another
    item's, below a folder that is not there)."""
    if listed_name is not None and listed_name != rel.rpartition("/")[2]:
        return "the name Baidu lists does not match its path (it holds a slash); left as it is"
    for part in rel.split("/"):
        reason = unusable_name(part)
        if reason is not None:
            return reason
    return None


class BaiduProvider(OAuthProvider):
    kind = "baidu"
    title = "Baidu Netdisk"
    location_options = ("app_name",)
    setup_note = (
        "Create an app at pan.baidu.com/union (Baidu's open platform) and give its AppKey and SecretKey, and its "
        "name: Baidu lets an app read and write only its own folder, /apps/<app name> (shown as 'My Application's "
        "Data' in Baidu Netdisk), so that folder is this connection's root and nothing outside it is synced. "
        "Sign-in: open the address shown on any device and enter the code."
    )
    option_specs = (
        OptionSpec("app_key", "AppKey of your Baidu app (pan.baidu.com/union)", required=True, label="App key"),
        OptionSpec("secret_key", "SecretKey of your Baidu app", secret=True, required=True, label="Secret key"),
        OptionSpec("app_name", "the app's name: its folder /apps/<app name> is the connection's root",
                   required=True, label="App name (its folder under /apps)"),
        TOKEN_OPTION,
        ACCOUNT_OPTION,
        OptionSpec("api_url", f"address replacing {API_URL}", advanced=True, label="API address"),
        OptionSpec("content_url", f"address replacing {CONTENT_URL} (uploads, downloads)", advanced=True,
                   label="Upload and download address"),
        OptionSpec("auth_url", f"address replacing {AUTH_URL} (sign-in)", advanced=True, label="Sign-in address"),
    )  # fmt: skip
    capabilities = Capabilities(
        hash_kind=HashKind.MD5,
        hash_unreliable=True,
        mtime_mode=MtimeMode.METADATA,
        multipart_threshold=BLOCK,
        server_side_move=True,
        server_side_copy=True,
        list_dir=True,
        conditional_writes=Conditional.REREAD,
        conditional_deletes=Conditional.REREAD,
        needs_size_before_upload=True,
        max_file_size=MEMBERSHIP_MAX_FILE[2],  # no membership takes more; the account's own limit at upload
    )

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.app_root = "/apps/" + self._app_name(options)
        self.client = XpanClient(options.get("api_url"), options.get("content_url"))
        self._ids: dict[str, int] = {}  # absolute path -> fs_id, from the latest listing or write
        self._ids_lock = threading.Lock()
        self._max_upload: int | None = None

    # -- options and sign-in -----------------------------------------------------------------------------------
    @staticmethod
    def _app_name(options: Mapping[str, str]) -> str:
        name = (options.get("app_name") or "").strip().strip("/")
        if not name or "/" in name or name in (".", ".."):
            raise InvalidOption("option 'app_name' must be your Baidu app's name (its folder under /apps), "
                                "one folder name without '/'")
        return name

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        cls._app_name(options)
        for option in ("api_url", "content_url", "auth_url"):
            value = options.get(option)
            if value and not value.startswith(("http://", "https://")):
                raise InvalidOption(f"option '{option}' must be an http:// or https:// address")

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        app_key, secret = options.get("app_key"), options.get("secret_key")
        if not app_key or not secret:
            raise InvalidOption("options 'app_key' and 'secret_key' are required for provider 'baidu' (your Baidu "
                                "app's AppKey and SecretKey)")
        base = (options.get("auth_url") or AUTH_URL).rstrip("/")
        return OAuthSpec(
            client_id=app_key,
            client_secret=secret,
            auth_url=base + "/oauth/2.0/authorize",
            token_url=base + "/oauth/2.0/token",
            # Baidu wants response_type on the device code request too; the shared flow sends client_id and scope.
            device_url=base + "/oauth/2.0/device/code?response_type=device_code",
            scopes=("basic,netdisk",),  # Baidu separates scopes with commas
            pkce=False,
            device_grant="device_token",
            device_code_field="code",
        )

    # -- plumbing --------------------------------------------------------------------------------------------
    def _api(self, what: str, method: str, path: str, params: Mapping[str, Any],
             data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.authorized(what, lambda t: self.client.call(what, method, path, t, params, data).data)

    def close(self) -> None:
        self.client.close()

    @classmethod
    def max_object_size(cls, options: Mapping[str, str]) -> int | None:
        return MEMBERSHIP_MAX_FILE[2]

    def _uinfo(self) -> dict[str, Any]:
        return self._api("reading the Baidu account", "GET", "/rest/2.0/xpan/nas", {"method": "uinfo"})

    def account_id(self) -> str:
        uk = self._uinfo().get("uk")
        return str(uk) if uk not in (None, "") else ""

    def max_upload_size(self) -> int:
        """The largest file this account may upload: Baidu's limit depends on the membership uinfo reports
        (`vip_type`): 4 GB for an ordinary account, 10 GB for a member, 20 GB for a super member. Read once."""
        if self._max_upload is None:
            try:
                vip = int(self._uinfo().get("vip_type") or 0)
            except (TypeError, ValueError):
                vip = 0
            self._max_upload = MEMBERSHIP_MAX_FILE.get(vip, MEMBERSHIP_MAX_FILE[0])
        return self._max_upload

    def check(self) -> None:
        self.account_id()

    def server_time(self) -> float | None:
        try:
            self.check()
        except ProviderError:
            pass
        return self.http_date(self.client.last_date)

    # -- paths -------------------------------------------------------------------------------------------------
    def _abs(self, path: str) -> str:
        """The Baidu path of connection path `path`, always inside the app folder."""
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise PermissionDenied(f"/{path.strip('/')}: {_outside(self.app_root)}")
        return "/".join([self.app_root, *parts])

    def _remember(self, abs_path: str, item: Mapping[str, Any]) -> None:
        fs_id = item.get("fs_id")
        if isinstance(fs_id, int):
            with self._ids_lock:
                self._ids[abs_path] = fs_id

    def _entry(self, item: Mapping[str, Any], rel: str) -> RemoteEntry:
        if int(item.get("isdir") or 0):
            return RemoteEntry(rel, True)
        server_mtime = int(item.get("server_mtime") or item.get("mtime") or 0)
        # A local_mtime of 0 (or nonsense): the uploading client gave none, so the upload time is the file's.
        # An answer without one (some filemetas answers): None, and the listing's time applies.
        mtime = (sane_mtime(item["local_mtime"]) or float(server_mtime) or None) if "local_mtime" in item else None
        md5 = item.get("md5")
        return RemoteEntry(
            rel, False, int(item.get("size") or 0), mtime, md5.lower() if isinstance(md5, str) and md5 else None,
            f"{item.get('fs_id')}:{server_mtime}",
        )  # fmt: skip

    # -- listing -----------------------------------------------------------------------------------------------
    def _pages(self, what: str, params: Mapping[str, Any], more: Callable[[dict[str, Any], int], int | None]
               ) -> Iterator[dict[str, Any]]:
        start = 0
        while True:
            data = self._api(what, "GET", FILE, {**params, "start": start, "limit": PAGE})
            items = data.get("list") or []
            yield from items
            following = more(data, start + len(items))
            if following is None or not items:
                return
            start = following

    def _level(self, abs_path: str) -> Iterator[dict[str, Any]]:
        """The items right inside folder `abs_path` (`method=list`); NotFound when it is missing."""
        return self._pages(f"listing {abs_path}", {"method": "list", "dir": abs_path, "order": "name"},
                           lambda data, seen: seen if len(data.get("list") or []) >= PAGE else None)

    def _walk(self, folder: str, recursive: bool, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        base = self._abs(folder)
        what = f"listing /{folder.strip('/')}"
        if recursive:
            items = self._pages(what, {"method": "listall", "path": base, "recursion": 1},
                                lambda data, seen: int(data.get("cursor") or seen) if data.get("has_more") else None)
        else:
            items = self._level(base)
        refused: list[str] = []  # skipped items' paths: what the flat listing names below them is skipped too
        try:
            for item in items:
                path = str(item.get("path") or "")
                rel = path[len(base) + 1 :] if path.startswith(base + "/") else None
                if rel is None or not rel or any(p in ("", ".", "..") for p in rel.split("/")) or (
                        not recursive and "/" in rel):  # fmt: skip
                    on_skip(path or str(item.get("server_filename") or "?"), _outside(self.app_root))
                    continue
                reason = _name_problem(rel, item.get("server_filename"))
                if reason is not None:
                    on_skip(rel, reason)
                    refused.append(rel + "/")
                    continue
                if any(rel.startswith(prefix) for prefix in refused):
                    continue  # below a skipped item, already reported with it
                self._remember(path, item)
                yield self._entry(item, rel)
        except NotFound:
            raise ContainerNotFound(f"/{folder.strip('/')}: no such folder in the Baidu app folder") from None

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, on_skip)

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, lambda path, reason: None)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, False, lambda path, reason: None)

    def _stat(self, abs_path: str) -> dict[str, Any] | None:
        """The item at `abs_path` as Baidu has it now (read by its remembered id, else from its folder); None
        when there is nothing there."""
        with self._ids_lock:
            fs_id = self._ids.get(abs_path)
        if fs_id is not None:
            items = self._metas([fs_id], dlink=False)
            if items and items[0].get("path") == abs_path:
                return items[0]
        parent, _, name = abs_path.rpartition("/")
        try:
            for item in self._level(parent):
                if item.get("server_filename") == name or item.get("path") == abs_path:
                    self._remember(abs_path, item)
                    return item
        except NotFound:
            return None
        return None

    def _metas(self, fs_ids: list[int], *, dlink: bool) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"method": "filemetas", "fsids": encode_list(fs_ids)}
        if dlink:
            params["dlink"] = 1
        try:
            data = self._api("reading file details", "GET", "/rest/2.0/xpan/multimedia", params)
        except NotFound:
            return []
        return list(data.get("list") or [])

    # -- transfers ---------------------------------------------------------------------------------------------
    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        rel = path.strip("/")
        abs_path = self._abs(rel)
        what = f"reading /{rel}"
        item = self._stat(abs_path)
        if item is None or int(item.get("isdir") or 0):
            raise NotFound(f"{what}: not found on Baidu")
        metas = self._metas([int(item["fs_id"])], dlink=True)
        dlink = metas[0].get("dlink") if metas else None
        if not dlink:
            raise NotFound(f"{what}: Baidu gives no download link for it (deleted or replaced meanwhile)")
        if str(dlink).startswith(CONTENT_URL) and self.client.content_url != CONTENT_URL:
            dlink = self.client.content_url + str(dlink)[len(CONTENT_URL) :]
        entry = self._entry(metas[0], rel) if metas[0].get("size") is not None else self._entry(item, rel)

        def fetch(token: str) -> int:
            response = self.client.request(what, "GET", str(dlink), params={"access_token": token}, stream=True)
            with response:
                if response.status_code in (401, 403):
                    raise TokenRefused(f"{what}: Baidu refused the download (HTTP {response.status_code})")
                if response.status_code == 404:
                    raise NotFound(f"{what}: not found on Baidu")
                if response.status_code >= 400:
                    raise ProviderError(f"{what}: Baidu answered HTTP {response.status_code}")
                count = 0
                import requests  # loaded by the request just sent

                try:
                    for chunk in response.iter_content(MIB):
                        out.write(chunk)
                        count += len(chunk)
                except requests.RequestException:  # an OSError too, but the line's, not the local disk's
                    raise TransientError(f"{what}: the connection to Baidu broke during the download") from None
                except OSError:
                    raise
                except Exception:
                    raise TransientError(f"{what}: the connection to Baidu broke during the download") from None
                return count

        count = self.authorized(what, fetch)
        if count != entry.size:
            raise TransientError(f"{what}: Baidu sent {count} of {entry.size} bytes; it is read again")
        return entry

    def _spooled(self, src: BinaryIO, size: int) -> tuple[BinaryIO, bool]:
        """A seekable source: the upload reads it twice (block md5s for precreate, then the blocks)."""
        if src.seekable():
            return src, False
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by upload() once sent
        left = size
        while left > 0:
            data = src.read(min(MIB, left))
            if not data:
                break
            spool.write(data)
            left -= len(data)
        spool.seek(0)
        return spool, True  # type: ignore[return-value]

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None) -> RemoteEntry:
        rel = path.strip("/")
        abs_path = self._abs(rel)
        what = f"writing /{rel}"
        if expect is not None and expect.seen is not None:
            current = self._stat(abs_path)
            seen = None if current is None else self._entry(current, rel)
            if not expect.met_by(seen):
                raise expect.failed(what)
        limit = self.max_upload_size()
        if size > limit:
            raise QuotaExceeded(f"{what}: the file ({size} bytes) is larger than Baidu takes from this account "
                                f"({limit // 1024**3} GB per file for its membership)")
        rtype = 0 if expect is not None and expect.seen is None else 3  # 0: Baidu refuses a taken name
        source, spooled = self._spooled(src, size)
        try:
            start = source.tell()
            blocks: list[str] = []
            whole = hashlib.md5()
            sent = 0
            while sent < size or not blocks:
                block = _read_full(source, min(BLOCK, size - sent))
                blocks.append(hashlib.md5(block).hexdigest())
                whole.update(block)
                sent += len(block)
                if not block:
                    break
            if sent != size:
                raise ProviderError(f"{what}: the file changed size while it was read ({sent} of {size} bytes)")
            stamp = int(mtime)
            form = {"path": abs_path, "size": size, "isdir": 0, "rtype": rtype, "block_list": encode_list(blocks),
                    "local_mtime": stamp, "local_ctime": stamp}
            try:
                item = self._send(what, source, start, size, form, blocks, whole.hexdigest())
            except Exists:
                return self._landed(abs_path, rel, size, whole.hexdigest(), expect, what)
            except QuotaExceeded:
                raise QuotaExceeded(f"{what}: {self._quota_words()}") from None
        finally:
            if spooled:
                source.close()
        self._remember(abs_path, item)
        return self._entry(item, rel)

    def _send(self, what: str, source: BinaryIO, start: int, size: int, form: dict[str, Any], blocks: list[str],
              digest: str) -> dict[str, Any]:
        if size == 0:  # Baidu takes an empty file by `create` alone
            return self._api(what, "POST", FILE, {"method": "create"}, {**form, "block_list": encode_list([EMPTY_MD5])})
        pre = self._api(what, "POST", FILE, {"method": "precreate"},
                        {**form, "autoinit": 1, "content-md5": digest})
        if int(pre.get("return_type") or 1) == 2:  # Baidu already had these bytes ("rapid upload"): stored
            found = self._stat(form["path"])
            if found is None:
                raise TransientError(f"{what}: Baidu reported the file stored but does not list it")
            return found
        upload_id = str(pre.get("uploadid") or "")
        needed = pre.get("block_list")
        parts = [int(i) for i in needed] if isinstance(needed, list) and needed else list(range(len(blocks)))
        for seq in parts:
            source.seek(start + seq * BLOCK)
            chunk = _read_full(source, min(BLOCK, size - seq * BLOCK))
            self._part(what, form["path"], upload_id, seq, chunk, blocks[seq])
        return self._api(what, "POST", FILE, {"method": "create"}, {**form, "uploadid": upload_id})

    def _part(self, what: str, abs_path: str, upload_id: str, seq: int, chunk: bytes, md5: str) -> None:
        """One block to the upload host, sent again (only this block) when the connection breaks or Baidu asks
        to slow down."""
        params = {"method": "upload", "type": "tmpfile", "path": abs_path, "uploadid": upload_id, "partseq": seq}
        for attempt in range(PART_ATTEMPTS):
            try:
                answer = self.authorized(what, lambda t: self.client.call(
                    what, "POST", "/rest/2.0/pcs/superfile2", t, params, host="content",
                    files={"file": ("blob", chunk, "application/octet-stream")},
                ).data)  # fmt: skip
                if str(answer.get("md5") or "").lower() != md5:
                    raise TransientError(f"{what}: block {seq} arrived damaged (md5 mismatch)")
                return
            except ProviderError as exc:
                if not exc.retryable or attempt == PART_ATTEMPTS - 1:
                    raise
                time.sleep(min(exc.retry_after or 0.5 * 2**attempt, 30))

    def _landed(self, abs_path: str, rel: str, size: int, digest: str, expect: Expect | None,
                what: str) -> RemoteEntry:
        """After Baidu refused a taken name: the file is ours when it holds exactly what we sent (an earlier
        attempt landed before its answer was lost) -- told by size and an md5 that matches, the one thing
        Baidu's md5 can prove; otherwise the condition failed."""
        current = self._stat(abs_path)
        if current is not None and not int(current.get("isdir") or 0):
            entry = self._entry(current, rel)
            if entry.size == size and entry.hash == digest:
                return entry
        if current is not None and int(current.get("isdir") or 0):
            raise ProviderError(f"{what}: a folder has that name on Baidu")
        raise (expect or Expect.absent()).failed(what)

    def _quota_words(self) -> str:
        """The 'storage space has reached the limit' message with the account's own figures (spec note 7)."""
        try:
            data = self._api("reading the Baidu quota", "GET", "/api/quota", {"checkfree": 1, "checkexpire": 1})
            total, used = int(data.get("total") or 0), int(data.get("used") or 0)
        except ProviderError:
            return "the Baidu storage space has reached its limit"
        return (f"the Baidu storage space has reached its limit ({_size(used)} used of {_size(total)}); "
                "free some space or enlarge it")

    # -- changes on the service ------------------------------------------------------------------------------
    def _manage(self, what: str, opera: str, items: list[Any], ondup: str = "fail") -> None:
        """One `filemanager` operation on one item. Baidu answers errno 12 ("some items failed") with each
        item's own errno in `info`: that one is the error."""
        form = {"async": 0, "filelist": encode_list(items), "ondup": ondup}

        def run(token: str) -> None:
            answer = self.client.call(what, "POST", FILE, token, {"method": "filemanager", "opera": opera}, form,
                                      accept=frozenset({12}))
            if int(answer.data.get("errno") or 0) == 12:
                codes = [int(i.get("errno") or 0) for i in answer.data.get("info") or [] if isinstance(i, dict)]
                raise error_for(next((c for c in codes if c), 12), what)

        self.authorized(what, run)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        rel = path.strip("/")
        abs_path = self._abs(rel)
        what = f"deleting /{rel}"
        current = self._stat(abs_path)
        if current is None:
            return
        if int(current.get("isdir") or 0):
            # Baidu's delete would take the folder with everything inside: never for a file's delete.
            raise PreconditionFailed(f"{what}: a folder has that name now; it is not deleted")
        if expect is not None and not expect.met_by(self._entry(current, rel)):
            raise expect.failed(what)
        try:
            self._manage(what, "delete", [abs_path])
        except NotFound:
            return
        with self._ids_lock:
            self._ids.pop(abs_path, None)

    def mkdir(self, path: str) -> RemoteEntry:
        rel = path.strip("/")
        abs_path = self._abs(rel)
        what = f"creating folder /{rel}"
        try:
            self._api(what, "POST", FILE, {"method": "create"},
                      {"path": abs_path, "size": 0, "isdir": 1, "rtype": 0, "block_list": "[]"})
        except Exists:
            current = self._stat(abs_path)
            if current is None or not int(current.get("isdir") or 0):
                raise ProviderError(f"{what}: a file has that name") from None
        return RemoteEntry(rel, True)

    def rmdir(self, path: str) -> None:
        rel = path.strip("/")
        abs_path = self._abs(rel)
        what = f"removing folder /{rel}"
        if not rel:
            return  # the app folder itself stays
        try:
            inside = next(iter(self._level(abs_path)), None)
        except NotFound:
            return
        if inside is not None:
            raise FolderNotEmpty(f"{what}: it is not empty")
        current = self._stat(abs_path)
        if current is None or not int(current.get("isdir") or 0):
            return  # gone, or a file took the name: not a folder to remove
        try:
            self._manage(what, "delete", [abs_path])
        except NotFound:
            return

    def _placed(self, abs_path: str, rel: str, what: str) -> RemoteEntry:
        found = self._stat(abs_path)
        if found is None:
            raise ProviderError(f"{what}: Baidu does not list the result")
        return self._entry(found, rel)

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        a, b = self._abs(src), self._abs(dst)
        what = f"moving /{src} to /{dst}"
        if listed is not None and not listed.is_dir and listed.revision is not None:
            current = self._stat(a)
            if current is None or self._entry(current, src).revision != listed.revision:
                raise PreconditionFailed(f"{what}: another client changed it since it was listed")
        parent, _, name = b.rpartition("/")
        if parent != self.app_root:
            self.mkdir(dst.rpartition("/")[0])
        try:
            self._manage(what, "move", [{"path": a, "dest": parent, "newname": name, "ondup": "fail"}])
        except Exists:
            raise PreconditionFailed(f"{what}: the new name is taken on Baidu") from None
        with self._ids_lock:
            self._ids.pop(a, None)
        return self._placed(b, dst, what)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        a, b = self._abs(src), self._abs(dst)
        what = f"copying /{src} to /{dst}"
        source = self._stat(a)
        if source is None or int(source.get("isdir") or 0):
            raise NotFound(f"{what}: no such file on Baidu")
        if expect is None or expect.seen is not None:
            self.delete(dst, expect=expect)  # Baidu's copy with ondup=fail never replaces: the old one goes first
        parent, _, name = b.rpartition("/")
        if parent != self.app_root:
            self.mkdir(dst.rpartition("/")[0])
        try:
            self._manage(what, "copy", [{"path": a, "dest": parent, "newname": name, "ondup": "fail"}])
        except Exists:
            raise PreconditionFailed(f"{what}: another client created it since it was listed") from None
        return self._placed(b, dst, what)
