"""`onedrive`, `onedrive-business`, `sharepoint`: Microsoft OneDrive (personal), OneDrive for Business and a
SharePoint Online document library, all through Microsoft Graph (`engine.providers.graph`).

Sign-in: MSAL's device code flow (`msal.PublicClientApplication`, a public client -- the user's own app
registration with "Allow public client flows" --, authority `{auth_url}/{tenant}`), and renewals through MSAL
too, with MSAL's serializable token cache kept inside the connection's token store file (one 0600 file, written
atomically, renewed by one process at a time: Microsoft rotates refresh tokens); `engine.auth.msal_cache` says
how, and why MSAL's instance discovery is off. A token imported from `rclone authorize "onedrive"` (a bare
refresh token) is brought into MSAL's cache by its first renewal. Tenant `consumers` for personal accounts,
`organizations` (or the tenant's id) for work accounts. The identity endpoints must be https, as MSAL requires
(`ca_file` names the CA of a test server's certificate).

Which drive: `drive_id` when given; otherwise the user's own drive (`/me/drive`) for the two OneDrive kinds,
and for SharePoint the library `library` (by name, or the site's default library) of the site `site` (its
address, https://contoso.sharepoint.com/sites/Team, or its Graph id). `location_choices()` lists the site's
libraries for the wizard.

Paths address items as `/drives/{drive}/root:/{path}:`; names compare without case (`case_insensitive`).
Entries carry Graph's item id and their parent's id; `revision` is the `cTag`, which changes with the content
only (a rename in the cloud is not a new version). A conditional write or delete reads the item, compares its
cTag with the expected one, and sends `If-Match` with the eTag it just read: the service refuses the write if
anything changed since that read (SERVER). An upload session's If-Match is checked when it is created, so the
item is read again just before the last fragment commits the file: a write landing during that one request is
the window left.

The spec's attribute table: personal keeps the modification time we give it (`fileSystemInfo`, set in the
upload session's item, or by a PATCH after a simple upload) and has a quickXorHash; Business keeps neither
(MtimeMode.NONE, no hash: the engine records what it synced in its state); SharePoint has the hash but no
modification time. SharePoint rewrites Office files after an upload (it adds its metadata: new size, hash and
eTag), so every SharePoint upload is read back and the entry returned is what the service holds afterwards:
the engine records that as synced, and the next passes see nothing new.

Transfers: up to 4 MiB (or `chunk_size`, if smaller) in one PUT; above it an upload session in fragments of
`chunk_size` KiB (a multiple of 320 KiB, as Graph requires), where a fragment whose answer was lost is resumed
from the session's `nextExpectedRanges` (the service may have stored it). quickXorHash is computed over the bytes
sent and compared with the service's answer where the kind has hashes. Downloads follow Graph's redirect to the
content and are checked against the item's hash.

Change feed: `/drives/{drive}/root/delta` (Business and SharePoint have delta only at the root), started with
`token=latest`; the `deltaLink` is the cursor, 410 `resyncRequired` is CursorExpired. Delta items carry no
paths: changes name parent ids and names, and items outside the task's folder (found by walking up parents,
asked of the service when the batch does not say) are left out, as is the folder's own entry while it still
stands at its path.

Skipped with a reason: OneNote notebooks (`package.type == oneNote`), folders shared by someone else
(`remoteItem`), and anything that is neither a file nor a folder.

Errors: 429 and 503 carry Graph's `Retry-After` to the pacer; `quotaLimitReached` is one clear QuotaExceeded
line; a refused token is refreshed once, and a refused refresh is ReauthRequired ("sign-in needed").
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, ClassVar

from engine.auth.oauth import OAuthSpec
from engine.auth.tokens import Token
from engine.hashing import hasher_for, same_hash
from engine.providers.base import (
    Capabilities,
    Change,
    Conditional,
    ContainerNotFound,
    CursorExpired,
    Expect,
    FolderNotEmpty,
    HashKind,
    InvalidOption,
    MtimeMode,
    NetworkError,
    NotFound,
    OptionSpec,
    PreconditionFailed,
    ProviderError,
    RemoteEntry,
    TransientError,
    address_problem,
    join,
)
from engine.providers.graph import Graph, NameTaken, Resync, item_address
from engine.providers.idtree import FolderIds
from engine.providers.listednames import shown_path, unusable_name
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider

GB = 1024**3
KIB = 1024
FRAGMENT_KIB = 320  # Graph: every fragment but the last is a multiple of 320 KiB
DEFAULT_CHUNK_KIB = 32 * FRAGMENT_KIB  # 10 MiB, within Microsoft's advice for most connections
MAX_CHUNK_KIB = 192 * FRAGMENT_KIB  # 60 MiB, Graph's largest fragment
SIMPLE_MAX = 4 * 1024 * 1024  # Graph's limit for a PUT of the whole content
API_URL = "https://graph.microsoft.com/v1.0"
AUTH_URL = "https://login.microsoftonline.com"
PAGE = 1000
SESSION_RETRIES = 5  # a fragment whose answer is lost is resumed this often before the upload fails
SKIP_ONENOTE = "a OneNote notebook, which is not a file (spec note 7: note documents are not synced)"
SKIP_REMOTE = "a folder shared by someone else (spec note 7: folders shared by others are not synced)"
SKIP_OTHER = "neither a file nor a folder in OneDrive"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def skip_reason(item: Mapping[str, Any]) -> str | None:
    """Why an item the service lists is not synced, or None (a pure decision on Graph's facets)."""
    if (item.get("package") or {}).get("type") == "oneNote":
        return SKIP_ONENOTE
    if "remoteItem" in item:
        return SKIP_REMOTE
    if "file" not in item and "folder" not in item:
        return SKIP_OTHER
    return None


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


def _next_offset(ranges: object) -> int | None:
    """The first byte the session still expects ("26-" or "26-99"); None when it says nothing usable."""
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], str):
        head = ranges[0].partition("-")[0]
        if head.isdigit():
            return int(head)
    return None


def _whole(options: Mapping[str, str], name: str, default: int, low: int, high: int, unit: str) -> int:
    raw = options.get(name) or str(default)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidOption(f"option '{name}' must be a whole number of {unit} from {low} to {high}")
    return int(raw)


def _options(tenant: str, max_gb: int, default_gb: int, extra: tuple[OptionSpec, ...] = ()) -> tuple[OptionSpec, ...]:
    """The options of one kind (they differ by the tenant, the size limit and SharePoint's site and library)."""
    return (
        OptionSpec("client_id", "Application (client) ID of your own Azure app registration, with 'Allow public "
                   "client flows' on", required=True, label="Application (client) ID"),
        *extra,
        OptionSpec("tenant", "consumers (personal accounts), organizations (work or school) or your tenant's id",
                   default=tenant, label="Tenant", advanced=True),
        TOKEN_OPTION,
        OptionSpec("drive_id", "the drive to sync, by id (empty: your own OneDrive, or the site's library)",
                   advanced=True, label="Drive ID"),
        OptionSpec("max_file_size_gb", f"largest file to upload, in GB: 1 to {max_gb} (default {default_gb})",
                   default=str(default_gb), label="Largest file (GB)"),
        OptionSpec("chunk_size", f"upload fragment in KiB, a multiple of {FRAGMENT_KIB} up to {MAX_CHUNK_KIB}",
                   default=str(DEFAULT_CHUNK_KIB), advanced=True, label="Upload fragment (KiB)"),
        ACCOUNT_OPTION,
        OptionSpec("api_url", f"address replacing {API_URL}", advanced=True, label="Graph address"),
        OptionSpec("auth_url", f"address replacing {AUTH_URL} (https)", advanced=True, label="Sign-in address"),
        OptionSpec("ca_file", "CA certificate file for an https address override (tests)", advanced=True,
                   label="CA certificate file"),
    )  # fmt: skip


class OneDriveProvider(OAuthProvider):
    kind = "onedrive"
    title = "Microsoft OneDrive"
    location_options = ("drive_id",)
    default_tenant: ClassVar[str] = "consumers"
    hash_kind: ClassVar[HashKind] = HashKind.QUICKXOR
    mtime_mode: ClassVar[MtimeMode] = MtimeMode.NATIVE
    max_gb: ClassVar[int] = 250
    default_gb: ClassVar[int] = 100
    # Read every upload back: the service changes some files after the upload answered (SharePoint).
    reread_uploads: ClassVar[bool] = False
    setup_note = (
        "Register an app of your own in the Azure portal (App registrations > New registration, 'Personal "
        "Microsoft accounts' or your organisation), turn on 'Allow public client flows' under Authentication, "
        "and give its Application (client) ID. Sign-in shows an address and a code to enter on any device."
    )

    option_specs = _options("consumers", 250, 100)

    def __init__(self, options: Mapping[str, str]) -> None:
        super().__init__(options)
        self.validate_numbers(options)
        chunk = _whole(options, "chunk_size", DEFAULT_CHUNK_KIB, FRAGMENT_KIB, MAX_CHUNK_KIB, "KiB") * KIB
        self.chunk_size = chunk
        self.simple_max = min(SIMPLE_MAX, chunk)
        limit = _whole(options, "max_file_size_gb", self.default_gb, 1, self.max_gb, "GB") * GB
        self.capabilities = Capabilities(
            hash_kind=self.hash_kind,
            mtime_mode=self.mtime_mode,
            max_file_size=limit,
            multipart_threshold=self.simple_max,
            server_side_move=True,
            conditional_writes=Conditional.SERVER,
            conditional_deletes=Conditional.SERVER,
            ids=True,
            case_insensitive=True,
            server_side_copy=True,
            list_dir=True,
            changes=True,
            # Every fragment names the file's total size (Content-Range), and a simple upload is chosen by it.
            needs_size_before_upload=True,
        )
        self.graph = Graph(options.get("api_url") or API_URL, self.authorized, options.get("ca_file") or None)
        self._drive: str | None = None
        self._drive_lock = threading.Lock()
        self._root: str | None = None
        # Items are read by path; folder ids are only needed to make folders in. Names compare without case.
        self._folders = FolderIds(self._root_id, None, self._make_folder, fold=str.casefold)

    # -- options and sign-in ---------------------------------------------------------------------------------

    @classmethod
    def validate_numbers(cls, options: Mapping[str, str]) -> None:
        chunk = _whole(options, "chunk_size", DEFAULT_CHUNK_KIB, FRAGMENT_KIB, MAX_CHUNK_KIB, "KiB")
        if chunk % FRAGMENT_KIB:
            raise InvalidOption(f"option 'chunk_size' must be a multiple of {FRAGMENT_KIB} (KiB), as Graph requires")
        _whole(options, "max_file_size_gb", cls.default_gb, 1, cls.max_gb, "GB")

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        cls.validate_numbers(options)
        for name in ("api_url", "auth_url"):
            value = options.get(name)
            if value and not value.startswith(("http://", "https://")):
                raise InvalidOption(f"option '{name}' must be an http:// or https:// address")
        tenant = options.get("tenant") or ""
        if tenant and ("/" in tenant or not tenant.replace("-", "").replace(".", "").isalnum()):
            raise InvalidOption("option 'tenant' must be consumers, organizations, a tenant id or a domain")

    @classmethod
    def scopes(cls) -> tuple[str, ...]:
        return ("Files.ReadWrite.All", "User.Read", "offline_access")

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        client_id = options.get("client_id")
        if not client_id:
            raise InvalidOption(f"option 'client_id' is required for provider '{cls.kind}' (your Azure app's "
                                "Application (client) ID)")
        base = (options.get("auth_url") or AUTH_URL).rstrip("/")
        tenant = options.get("tenant") or cls.default_tenant
        return OAuthSpec(
            client_id=client_id,
            client_secret=None,  # a public client: the device flow needs no secret
            auth_url=f"{base}/{tenant}/oauth2/v2.0/authorize",
            token_url=f"{base}/{tenant}/oauth2/v2.0/token",
            device_url=f"{base}/{tenant}/oauth2/v2.0/devicecode",
            scopes=cls.scopes(),
            pkce=True,
            ca_file=options.get("ca_file") or None,
            msal_authority=f"{base}/{tenant}",
        )

    def refresh_token(self, token: Token) -> Token:
        # Imported here: MSAL (and the cryptography it loads) is a second of start-up that a pass with a fresh
        # token never needs.
        from engine.auth import msal_cache

        return msal_cache.refresh(self.oauth_spec(self.options), token)

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        return super().identity(options) + f"|{options.get('drive_id', '')}"

    def account_id(self) -> str:
        return str(self.graph.json("GET", "/me", "reading the Microsoft account").get("id", ""))

    # -- the drive -------------------------------------------------------------------------------------------

    def _resolve_drive(self) -> str:
        """The drive's id, read once: `drive_id`, or the user's own drive."""
        drive = self.graph.json("GET", "/me/drive", "reading your OneDrive")
        return str(drive["id"])

    def drive(self) -> str:
        with self._drive_lock:
            if self._drive is None:
                given = self.options.get("drive_id")
                if given:
                    try:
                        self.graph.json("GET", f"/drives/{given}", "reading the drive")
                    except NotFound:
                        raise ContainerNotFound(f"no drive with id {given} for this account") from None
                    self._drive = given
                else:
                    self._drive = self._resolve_drive()
            return self._drive

    def check(self) -> None:
        self.drive()

    def server_time(self) -> float | None:
        try:
            self.check()
        except ProviderError:
            pass
        return self.http_date(self.graph.last_date)

    def close(self) -> None:
        self.graph.close()

    # -- entries ---------------------------------------------------------------------------------------------

    def entry(self, item: Mapping[str, Any], path: str) -> RemoteEntry:
        parent = (item.get("parentReference") or {}).get("id")
        if "folder" in item or "root" in item:
            return RemoteEntry(path, True, id=str(item["id"]), parent_id=parent)
        if self.mtime_mode == MtimeMode.NATIVE:
            mtime = _time((item.get("fileSystemInfo") or {}).get("lastModifiedDateTime"))
        else:
            mtime = _time(item.get("lastModifiedDateTime"))
        digest = None
        if self.hash_kind != HashKind.NONE:
            digest = ((item.get("file") or {}).get("hashes") or {}).get("quickXorHash")
        # The cTag changes with the content only: a rename or a new fileSystemInfo leaves it (the eTag changes
        # with any change), so a file renamed in the cloud is not taken for a new version. The eTag where a
        # service leaves the cTag out.
        revision = str(item.get("cTag") or item.get("eTag") or "") or None
        return RemoteEntry(path, False, int(item.get("size") or 0), mtime, digest, revision, str(item["id"]), parent)

    def _children(self, folder_id: str, what: str) -> Iterator[dict[str, Any]]:
        for page in self.graph.pages(f"/drives/{self.drive()}/items/{folder_id}/children", what,
                                     {"$top": str(PAGE)}):
            yield from page.get("value", [])

    def _walk(self, folder: str, recursive: bool, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        what = f"listing /{folder.strip('/')}"
        top = self.graph.folder(self.drive(), folder, what)
        pending = [(str(top["id"]), "")]
        while pending:
            folder_id, prefix = pending.pop()
            for item in self._children(folder_id, what):
                name = item.get("name")
                reason = unusable_name(name)
                if reason is not None:  # never joined into another item's path (listednames.py)
                    on_skip(shown_path(prefix, name), reason)
                    continue
                path = join(prefix, str(name))
                reason = skip_reason(item)
                if reason is not None:
                    on_skip(path, reason)
                    continue
                entry = self.entry(item, path)
                yield entry
                if entry.is_dir and recursive:
                    pending.append((str(item["id"]), path))

    def list_reporting(self, folder: str, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, on_skip)

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, True, lambda path, reason: None)

    def list_dir(self, folder: str) -> Iterator[RemoteEntry]:
        return self._walk(folder, False, lambda path, reason: None)

    def _item(self, path: str, what: str) -> dict[str, Any] | None:
        try:
            return self.graph.json("GET", item_address(self.drive(), path), what)
        except NotFound:
            return None

    def folder_id(self, folder: str) -> str | None:
        return str(self.graph.folder(self.drive(), folder, f"reading /{folder.strip('/')}")["id"])

    # -- change feed -----------------------------------------------------------------------------------------

    def changes_start(self, folder: str) -> str:
        self.folder_id(folder)  # a missing folder is ContainerNotFound here, not at the first change
        page = self.graph.json("GET", f"/drives/{self.drive()}/root/delta", "starting the change feed",
                               params={"token": "latest"})
        link = page.get("@odata.deltaLink")
        if not link:
            raise TransientError("starting the change feed: OneDrive gave no delta link")
        return str(link)

    def changes(self, folder: str, cursor: str) -> tuple[Iterator[Change], str]:
        what = "reading the change feed"
        if not cursor.startswith(("http://", "https://")):
            raise CursorExpired(f"{what}: not a OneDrive delta link")
        items: list[dict[str, Any]] = []
        link = cursor
        while True:
            try:
                page = self.graph.json("GET", link, what)
            except Resync:
                raise CursorExpired(f"{what}: OneDrive asks for a full listing (resyncRequired)") from None
            items += [i for i in page.get("value", []) if isinstance(i, dict) and i.get("id")]
            if page.get("@odata.deltaLink"):
                new_cursor = str(page["@odata.deltaLink"])
                break
            if not page.get("@odata.nextLink"):
                raise TransientError(f"{what}: OneDrive gave no link to go on from")
            link = str(page["@odata.nextLink"])
        return iter(self._feed(folder, items, what)), new_cursor

    def _feed(self, folder: str, items: list[dict[str, Any]], what: str) -> list[Change]:
        """The delta's items as changes below `folder` (see the module's docstring)."""
        root = self.folder_id(folder)  # ContainerNotFound when the folder no longer stands at its path
        parents = {str(i["id"]): (i.get("parentReference") or {}).get("id") for i in items}
        inside: dict[str, bool] = {str(i["id"]): False for i in items if "root" in i}  # the drive's root
        inside[root] = True

        def within(item_id: str | None) -> bool:
            trail: list[str] = []
            verdict = False
            while item_id is not None:
                if item_id in inside:
                    verdict = inside[item_id]
                    break
                trail.append(item_id)
                if item_id in parents:
                    item_id = parents[item_id]
                    continue
                found = self._parent_of(item_id, what)
                if found is None:
                    break
                item_id = found
            for seen in trail:
                inside[seen] = verdict
            return verdict

        out: list[Change] = []
        for item in items:
            item_id = str(item["id"])
            parent = (item.get("parentReference") or {}).get("id")
            if item_id == root:
                continue  # the folder itself, still at its path (checked above): its children tell
            if "deleted" in item or not within(parent):
                # Gone, or moved out of the folder: both are a deletion here (an id the index does not know,
                # such as a folder above the synced one, changes nothing).
                out.append(Change(item_id, None))
                continue
            if skip_reason(item) is not None:
                continue  # left out of listings too
            if "file" in item and not item.get("cTag"):
                # A delta item without its cTag (Graph does not promise every property in delta): read the item,
                # or the index would hold another revision than the next listing shows.
                item = self.graph.json("GET", f"/drives/{self.drive()}/items/{item_id}", what)
            name = str(item.get("name", ""))
            out.append(Change(item_id, self.entry(item, name), parent, name, None))
        return out

    def _parent_of(self, item_id: str, what: str) -> str | None:
        try:
            item = self.graph.json("GET", f"/drives/{self.drive()}/items/{item_id}", what)
        except NotFound:
            return None
        return (item.get("parentReference") or {}).get("id")

    # -- transfers -------------------------------------------------------------------------------------------

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        path = path.strip("/")
        what = f"reading /{path}"
        item = self._item(path, what)
        if item is None or "file" not in item:
            raise NotFound(f"{what}: no such file in OneDrive")
        entry = self.entry(item, path)
        hasher = hasher_for(HashKind.QUICKXOR)
        response = self.graph.send("GET", f"/drives/{self.drive()}/items/{item['id']}/content", what, stream=True)
        import requests  # loaded by the request just sent

        try:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)
                hasher.update(chunk)
        except requests.RequestException as exc:  # an OSError too, but the line's, not the local disk's
            raise NetworkError(f"{what}: the download broke off ({type(exc).__name__})") from None
        except OSError:
            raise
        except Exception as exc:
            raise NetworkError(f"{what}: the download broke off ({type(exc).__name__})") from None
        finally:
            response.close()
        listed = ((item.get("file") or {}).get("hashes") or {}).get("quickXorHash")
        if listed and not same_hash(HashKind.QUICKXOR, hasher.text(), listed):
            raise TransientError(f"{what}: the data arrived damaged (quickXorHash mismatch)")
        return entry

    def _conditions(self, path: str, expect: Expect | None, what: str) -> tuple[str, dict[str, str]]:
        """(conflictBehavior, headers) for a write under `expect`: a new name must stay free (`fail`); a
        replacement must still be the version the plan saw (read now), and nothing may change between that read
        and the write (`If-Match` with the eTag just read, checked by the service)."""
        if expect is None:
            return "replace", {}
        if expect.seen is None:
            return "fail", {}
        current = self._item(path, what)
        entry = self.entry(current, path) if current is not None and "file" in current else None
        if current is None or not expect.met_by(entry):
            raise expect.failed(what)
        return "replace", {"If-Match": str(current.get("eTag") or "")}

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None) -> RemoteEntry:
        path = path.strip("/")
        what = f"writing /{path}"
        if size > self.capabilities.max_file_size:  # type: ignore[operator]
            raise ProviderError(f"{what}: larger than this connection's max_file_size_gb")
        self._folders.ensure(path.rpartition("/")[0])
        behavior, headers = self._conditions(path, expect, what)
        hasher = hasher_for(HashKind.QUICKXOR)
        try:
            if size <= self.simple_max:
                data = _read_full(src, size)
                hasher.update(data)
                item = self.graph.json(
                    "PUT", item_address(self.drive(), path) + "/content", what, data=data, headers=headers,
                    params={"@microsoft.graph.conflictBehavior": behavior},
                )  # fmt: skip
                if self.mtime_mode == MtimeMode.NATIVE:
                    item = self.graph.json(
                        "PATCH", f"/drives/{self.drive()}/items/{item['id']}", what,
                        json={"fileSystemInfo": {"lastModifiedDateTime": _iso(mtime)}},
                    )  # fmt: skip
            else:
                stored = self._session_upload(path, src, size, mtime, behavior, headers, hasher, what,
                                              self._still(path, expect, headers, what))
                item = stored if stored is not None else self._item(path, what) or {}
        except NameTaken:
            if expect is None:  # no condition of ours: a folder holds the name (or one differing only by case)
                raise ProviderError(f"{what}: a folder is in the way in OneDrive") from None
            raise expect.failed(what) from None
        sent = hasher.text()
        listed = ((item.get("file") or {}).get("hashes") or {}).get("quickXorHash")
        if listed and not same_hash(HashKind.QUICKXOR, sent, listed):
            raise TransientError(f"{what}: OneDrive stored other bytes than were sent (quickXorHash mismatch)")
        if self.reread_uploads:
            item = self.graph.json("GET", f"/drives/{self.drive()}/items/{item['id']}", what)
        return self.entry(item, path)

    def _still(self, path: str, expect: Expect | None, headers: dict[str, str],
               what: str) -> Callable[[], None] | None:
        """For an upload session under `expect`: a check, made just before the last fragment commits the file,
        that the name still holds what it held when the session was made (the session's own If-Match is checked
        only when it is created)."""
        if expect is None:
            return None

        def check() -> None:
            current = self._item(path, what)
            if expect.seen is None:
                if current is not None:
                    raise expect.failed(what)
            elif current is None or str(current.get("eTag") or "") != headers.get("If-Match"):
                raise expect.failed(what)

        return check

    def _session_upload(self, path: str, src: BinaryIO, size: int, mtime: float, behavior: str,
                        headers: dict[str, str], hasher: Any, what: str,
                        check: Callable[[], None] | None = None) -> dict[str, Any] | None:
        spec: dict[str, Any] = {"@microsoft.graph.conflictBehavior": behavior}
        if self.mtime_mode == MtimeMode.NATIVE:
            spec["fileSystemInfo"] = {"lastModifiedDateTime": _iso(mtime)}
        session = self.graph.json("POST", item_address(self.drive(), path) + "/createUploadSession", what,
                                  json={"item": spec}, headers=headers)
        url = str(session["uploadUrl"])
        try:
            return self._fragments(url, src, size, hasher, what, check)
        except BaseException:
            try:
                self.graph.send("DELETE", url, what, auth=False).close()
            except ProviderError:
                pass
            raise

    def _fragments(self, url: str, src: BinaryIO, size: int, hasher: Any, what: str,
                   check: Callable[[], None] | None = None) -> dict[str, Any] | None:
        """Send `src` in fragments, one held in memory at a time. A fragment whose answer was lost (a cut
        connection, a 5xx) is resumed from the byte the session says it expects next. Returns the stored item,
        or None when the last fragment's answer was lost with the session (the caller reads the item)."""
        offset = 0  # the next byte the service expects
        start, buffer = 0, b""  # the fragment in memory and where it starts
        retries = 0
        while True:
            if offset == start + len(buffer):  # the fragment is sent: read the next
                start = offset
                buffer = _read_full(src, min(self.chunk_size, size - offset))
                if len(buffer) != min(self.chunk_size, size - offset):
                    raise ProviderError(f"{what}: the file became shorter while it was sent")
                hasher.update(buffer)
            end = start + len(buffer)
            if end == size and check is not None:
                check()  # the last fragment commits the file: the condition must still hold right now
            try:
                response = self.graph.send("PUT", url, what, auth=False, data=buffer[offset - start:],
                                           headers={"Content-Range": f"bytes {offset}-{end - 1}/{size}"})
            except (NetworkError, TransientError) as exc:
                retries += 1
                if retries > SESSION_RETRIES:
                    raise
                # Throttled: wait as asked (the pacer cannot, inside one upload); cut off: ask at once, then
                # back off, so a flapping line does not lose the hours already sent.
                wait = exc.retry_after if exc.retry_after is not None else 2.0 ** (retries - 2) if retries > 1 else 0
                if wait:
                    time.sleep(min(wait, 60.0))
                try:
                    status = self.graph.json("GET", url, what, auth=False)
                except NotFound:
                    if end == size:
                        return None  # the last fragment completed the file; its answer was lost
                    raise TransientError(f"{what}: the upload session is gone") from None
                resumed = _next_offset(status.get("nextExpectedRanges"))
                if resumed is None or not start <= resumed <= end:
                    raise TransientError(f"{what}: the upload session lost its place") from None
                offset = resumed
                continue
            retries = 0
            answer = response.json() if response.content else {}
            response.close()
            if response.status_code in (200, 201):
                return answer
            expected = _next_offset(answer.get("nextExpectedRanges"))
            offset = end if expected is None else expected
            if not start <= offset <= end or offset >= size:
                raise TransientError(f"{what}: the upload session expects byte {offset}, which was not sent")

    def _root_id(self) -> str:
        if self._root is None:
            self._root = str(self.graph.json("GET", item_address(self.drive(), ""), "reading the drive's root")["id"])
        return self._root

    def _make_folder(self, parent_id: str, path: str, what: str) -> str:
        """Folder `path` made with Graph's own name check: a name taken already is fine when a folder holds it
        (another thread or client made it a moment ago)."""
        try:
            found = self.graph.json(
                "POST", f"/drives/{self.drive()}/items/{parent_id}/children", what,
                json={"name": path.rpartition("/")[2], "folder": {}, "@microsoft.graph.conflictBehavior": "fail"},
            )  # fmt: skip
        except NameTaken:
            existing = self._item(path, what)
            if existing is None or "folder" not in existing:
                raise ProviderError(f"{what}: a file holds that name") from None
            found = existing
        return str(found["id"])

    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        self._folders.forget(path)  # it may have been removed meanwhile: ask again
        folder_id = self._folders.ensure(path)
        return RemoteEntry(path, True, id=folder_id)

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        path = path.strip("/")
        what = f"deleting /{path}"
        item = self._item(path, what)
        if item is None:
            return  # already gone
        if expect is not None and not expect.met_by(self.entry(item, path)):
            raise expect.failed(what)
        headers = {"If-Match": str(item["eTag"])} if expect is not None and item.get("eTag") else {}
        try:
            self.graph.send("DELETE", f"/drives/{self.drive()}/items/{item['id']}", what, headers=headers).close()
        except NotFound:
            return

    def rmdir(self, path: str) -> None:
        path = path.strip("/")
        what = f"removing folder /{path}"
        item = self._item(path, what)
        if item is None:
            return
        if "folder" not in item:
            raise ProviderError(f"{what}: a file holds that name")
        if next(iter(self._children(str(item["id"]), what)), None) is not None:
            raise FolderNotEmpty(f"{what}: it is not empty")
        self._folders.forget(path)
        try:
            self.graph.send("DELETE", f"/drives/{self.drive()}/items/{item['id']}", what).close()
        except NotFound:
            return

    def move(self, src: str, dst: str, listed: RemoteEntry | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"moving /{src} to /{dst}"
        item = self._item(src, what)
        if item is None:
            raise NotFound(f"{what}: /{src} is gone")
        parent_id = self._folders.ensure(dst.rpartition("/")[0])
        if listed is not None and listed.revision and self.entry(item, src).revision != listed.revision:
            raise PreconditionFailed(f"{what}: another client changed it since it was listed")
        headers = {"If-Match": str(item["eTag"])} if item.get("eTag") else {}
        try:
            moved = self.graph.json(
                "PATCH", f"/drives/{self.drive()}/items/{item['id']}", what, headers=headers,
                json={"name": dst.rpartition("/")[2], "parentReference": {"id": parent_id},
                      "@microsoft.graph.conflictBehavior": "fail"},
            )  # fmt: skip
        except NameTaken:
            raise PreconditionFailed(f"{what}: /{dst} exists") from None
        self._folders.forget(src)  # with what it held: their paths changed with it
        return self.entry(moved, dst)

    def copy(self, src: str, dst: str, *, expect: Expect | None = None) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        what = f"copying /{src} to /{dst}"
        item = self._item(src, what)
        if item is None or "file" not in item:
            raise NotFound(f"{what}: /{src} is not a file")
        current = self._item(dst, what)
        if current is not None:
            if expect is not None and not expect.met_by(self.entry(current, dst)):
                raise expect.failed(what)
            self.delete(dst, expect=Expect.entry(self.entry(current, dst)) if expect is not None else None)
        parent_id = self._folders.ensure(dst.rpartition("/")[0])
        response = self.graph.send(
            "POST", f"/drives/{self.drive()}/items/{item['id']}/copy", what,
            json={"parentReference": {"driveId": self.drive(), "id": parent_id}, "name": dst.rpartition("/")[2]},
        )  # fmt: skip
        monitor = response.headers.get("Location")
        response.close()
        if not monitor:
            raise TransientError(f"{what}: OneDrive gave no address to follow the copy")
        copied = self._await_copy(monitor, what)
        return self.entry(self.graph.json("GET", f"/drives/{self.drive()}/items/{copied}", what), dst)

    def _await_copy(self, monitor: str, what: str) -> str:
        """Follow a copy's monitor (no token: the address is its own credential) until it is done."""
        delay = 0.05
        for _ in range(200):
            status = self.graph.json("GET", monitor, what, auth=False)
            state = status.get("status")
            if state == "completed" and status.get("resourceId"):
                return str(status["resourceId"])
            if state == "failed":
                code = (status.get("error") or {}).get("code", "failed")
                if code == "nameAlreadyExists":
                    raise PreconditionFailed(f"{what}: another client created it since it was listed")
                raise ProviderError(f"{what}: OneDrive could not copy it ({code})")
            time.sleep(delay)  # the service offers no event to wait for
            delay = min(delay * 2, 2.0)
        raise TransientError(f"{what}: the copy did not finish in time")


class OneDriveBusinessProvider(OneDriveProvider):
    kind = "onedrive-business"
    title = "Microsoft OneDrive for Business"
    default_tenant = "organizations"
    option_specs = _options("organizations", 250, 100)
    # The spec's table: no hash and no modification time for OneDrive for Business.
    hash_kind = HashKind.NONE
    mtime_mode = MtimeMode.NONE


class SharePointProvider(OneDriveProvider):
    kind = "sharepoint"
    title = "Microsoft SharePoint Online"
    location_options = ("site", "library", "drive_id")
    default_tenant = "organizations"
    hash_kind = HashKind.QUICKXOR
    mtime_mode = MtimeMode.NONE  # the spec's table: hash, no modification time
    max_gb = 15  # the spec: "exceeds 15 GB"
    default_gb = 15
    option_specs = _options("organizations", 15, 15, (
        OptionSpec("site", "the SharePoint site's address (https://contoso.sharepoint.com/sites/Team) or id",
                   label="Site address"),
        OptionSpec("library", "the document library, by name or id (empty: the site's default library)",
                   label="Document library"),
    ))
    reread_uploads = True  # Office files are rewritten by SharePoint after the upload answered
    setup_note = (
        OneDriveProvider.setup_note
        + " Give the site's address (https://contoso.sharepoint.com/sites/Team) and, after sign-in, choose the "
        "document library."
    )

    @classmethod
    def scopes(cls) -> tuple[str, ...]:
        return (*super().scopes(), "Sites.Read.All")

    @classmethod
    def identity(cls, options: Mapping[str, str]) -> str:
        # One sign-in reaches many sites and libraries: a connection per library, not per account.
        return f"{cls.kind}:{options.get('account_id', '')}" + "".join(
            f"|{options.get(k, '')}" for k in ("site", "library", "drive_id"))

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> None:
        super().validate_options(options)
        if not options.get("site") and not options.get("drive_id"):
            raise InvalidOption("option 'site' is required for provider 'sharepoint' (the site's address or id)")
        site = (options.get("site") or "").strip()
        problem = address_problem(site) if site.startswith(("https://", "http://")) else None
        if problem:  # an id is not an address; an address is split by urllib when the site is looked up
            raise InvalidOption(f"option 'site' is not a valid URL ({problem})")

    def _site_address(self) -> str:
        """The Graph address of the site: an id as it is, an address as `host:/path`."""
        site = (self.options.get("site") or "").strip()
        if site.startswith(("https://", "http://")):
            from urllib.parse import quote, urlsplit

            parts = urlsplit(site)
            path = parts.path.strip("/")
            return f"/sites/{parts.netloc}:/{quote(path)}" if path else f"/sites/{parts.netloc}"
        return f"/sites/{site}"

    def libraries(self) -> list[tuple[str, str]]:
        """(drive id, name) of the site's document libraries."""
        what = "listing the site's document libraries"
        try:
            pages = list(self.graph.pages(self._site_address() + "/drives", what))
        except NotFound:
            raise ContainerNotFound(f"no SharePoint site {self.options.get('site')}") from None
        return [(str(d["id"]), str(d.get("name", ""))) for p in pages for d in p.get("value", []) if d.get("id")]

    def location_choices(self) -> tuple[str, list[tuple[str, str]]] | None:
        return "library", self.libraries()

    def _resolve_drive(self) -> str:
        library = self.options.get("library")
        if not library:
            try:
                return str(self.graph.json("GET", self._site_address() + "/drive", "reading the site's library")["id"])
            except NotFound:
                raise ContainerNotFound(f"no SharePoint site {self.options.get('site')}") from None
        found = self.libraries()
        by_id = [d for d, _ in found if d == library]
        by_name = [d for d, name in found if name.casefold() == library.casefold()]
        if by_id:
            return by_id[0]
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            raise InvalidOption(f"the site has {len(by_name)} libraries named '{library}': give its id instead")
        raise ContainerNotFound(f"the site has no document library '{library}'")


