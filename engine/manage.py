"""Adding, editing and removing connections and tasks, with every refusal the CLI and the TUI share.

Each function validates first and changes the Home only when everything holds; the caller saves.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping

from engine import ownfiles
from engine.auth import accounts
from engine.auth.accounts import SignIn
from engine.auth.tokens import Token, TokenStore
from engine.config import (
    CONNECTION_COMMON,
    DIRECTIONS,
    MAX_SIZE_MAX,
    NAME_RE,
    NAME_RULE,
    Connection,
    Home,
    Task,
    parse_conflict_mode,
    parse_limit,
    parse_polling,
    parse_schedule,
    path_parts,
)
from engine.connect import cloud_overlap, provider_kind
from engine.errors import UsageError
from engine.names import shown
from engine.providers.base import InvalidOption, Provider


def check_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise UsageError(f"{kind} name '{shown(name)}' {NAME_RULE}")


def _split_options(cls: type[Provider], options: Mapping[str, str]) -> tuple[dict, dict, dict]:
    """(provider options, secrets, common connection settings); unknown names are refused."""
    specs = {s.name: s for s in cls.option_specs}
    policy_options = _policy_options(cls.kind)
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    common: dict[str, str] = {}
    for key, value in options.items():
        if key in CONNECTION_COMMON:
            common[key] = value
        elif key in policy_options and key not in specs:
            plain[key] = value
        elif key not in specs:
            known = ", ".join([*specs, *policy_options, *CONNECTION_COMMON])
            raise UsageError(f"unknown option '{key}' for provider '{cls.kind}' (known: {known})")
        elif specs[key].secret:
            if key.endswith("_file") and value:
                # A credentials file is copied into the secrets store, so the connection survives its removal.
                try:
                    with open(os.path.expanduser(value), encoding="utf-8") as f:
                        value = f.read()
                except OSError as exc:
                    raise UsageError(f"cannot read {key} {value}: {exc.strerror}") from None
            secret[key] = value
        else:
            plain[key] = value
    return plain, secret, common


def _policy_options(kind: str) -> dict[str, str]:
    """Connection options read by the naming policy (e.g. encode_names), valid for every provider."""
    try:
        from engine.policy import policy_option_help
    except ImportError:
        return {}
    return policy_option_help(kind)


def _apply_common(conn: Connection, common: Mapping[str, str]) -> None:
    if "polling_period" in common:
        conn.polling_period = parse_polling(common["polling_period"])
    if "upload_limit" in common:
        conn.upload_limit = parse_limit(common["upload_limit"], "upload_limit")
    if "download_limit" in common:
        conn.download_limit = parse_limit(common["download_limit"], "download_limit")
    if "schedule" in common:
        conn.schedule = parse_schedule(common["schedule"])
    if "conflict_mode" in common:
        conn.conflict_mode = parse_conflict_mode(common["conflict_mode"])


def _check_identity(home: Home, cls: type[Provider], name: str, options: Mapping[str, str]) -> None:
    mine = cls.identity(options)
    for other in home.connections():
        if other.name == name or other.provider != cls.kind:
            continue
        if cls.identity(home.all_options(other.name)) == mine:
            raise UsageError(
                f"connection '{other.name}' already uses this credential; each credential can be used by "
                "only one connection"
            )


def _validate(cls: type[Provider], options: Mapping[str, str]) -> None:
    try:
        cls.validate_options(options)
    except InvalidOption as exc:
        raise UsageError(str(exc)) from None


def _oauth_token(
    cls: type[Provider], name: str, plain: dict[str, str], secret: dict[str, str], signin: SignIn | None,
    *, required: bool, existing: Mapping[str, str] | None = None,
) -> Token | None:
    """For an OAuth kind: take `token` out of the secrets (it goes to the token store, not secrets.toml) or sign
    in, read the account and set the plain option `account_id`. None when nothing is to be saved."""
    if not accounts.is_oauth(cls):
        return None
    text = secret.pop("token", None)
    options = {**(existing or {}), **plain, **secret}
    options.pop("token", None)
    if text:
        token = accounts.token_from_option(text)
    elif required:
        token = accounts.sign_in(cls, name, options, signin)
    else:
        return None
    token, plain["account_id"] = accounts.account_of(cls, name, options, token)
    return token


def add_connection(
    home: Home, name: str, kind: str, options: Mapping[str, str], signin: SignIn | None = None
) -> Connection:
    """Add a connection. An OAuth kind needs its `token` option or a terminal sign-in (`signin`); its token is
    saved in the token store at once (the connection test that follows reads it there)."""
    check_name("connection", name)
    if home.has_connection(name):
        raise UsageError(f"a connection named '{name}' already exists")
    cls = provider_kind(kind)
    plain, secret, common = _split_options(cls, options)
    _validate(cls, {**plain, **secret})
    token = _oauth_token(cls, name, plain, secret, signin, required=True)
    _check_identity(home, cls, name, {**plain, **secret})
    conn = Connection(name=name, provider=kind, options=plain)
    _apply_common(conn, common)
    home.put_connection(conn, secret)
    if token is not None:
        TokenStore(home.path, name).save(token)
    return conn


OWN_FILES_ADVICE = ("choose folders apart from it, or move the database first (skysync settings set database-path "
                    "/ABSOLUTE/PATH) or the home (--home DIR)")


def edit_connection(home: Home, name: str, options: Mapping[str, str]) -> Connection:
    conn = home.connection(name)
    cls = provider_kind(conn.provider)
    plain, secret, common = _split_options(cls, options)
    new_plain = {**conn.options, **plain}
    new_secret = {**home.secrets(name), **secret}
    _validate(cls, {**new_plain, **new_secret})
    token = _oauth_token(cls, name, plain, secret, None, required=False, existing=home.all_options(name))
    if token is None and plain.get("account_id", conn.options.get("account_id")) != conn.options.get("account_id"):
        # The account is what the token signs in as; a new one comes with a new token, never on its own.
        raise UsageError("option 'account_id' is read from the service at sign-in; give a new token instead")
    new_plain.update(plain)  # a new token may belong to another account: a new pairing, whose state starts afresh
    new_secret.pop("token", None)
    _check_identity(home, cls, name, {**new_plain, **new_secret})
    conn.options = new_plain
    _apply_common(conn, common)
    home.put_connection(conn, new_secret)
    # A `local` connection's new root moves its tasks' cloud folders: none may come to hold the home or database.
    why = ownfiles.problem(home, home.tasks(name), home.setting("database-path"), OWN_FILES_ADVICE)
    if why is not None:
        raise UsageError(why)
    if token is not None:
        TokenStore(home.path, name).save(token)
    return conn


def remove_connection(home: Home, name: str) -> list[str]:
    """Remove a connection and its tasks (files stay where they are); returns the removed task names."""
    home.connection(name)
    removed = [t.name for t in home.tasks(name)]
    for task in removed:
        home.remove_task(task)
    home.remove_connection(name)
    TokenStore(home.path, name).remove()
    return removed


def normalize_remote(remote: str) -> str:
    parts = path_parts(remote.replace("\\", "/"))
    if parts is None:
        raise UsageError(f"remote path '{shown(remote)}' must not contain '.' or '..' parts")
    return "/" + "/".join(parts)


def normalize_relative(path: str, what: str) -> str:
    parts = path_parts(path.strip())
    if not parts:
        raise UsageError(f"{what} '{shown(path)}' must be a path relative to the task folder, without '..'")
    return "/".join(parts)


def _inside(a: str, b: str) -> bool:
    """a is b or lies inside it."""
    return a == b or a.startswith(b.rstrip("/") + "/")


def validate_task(home: Home, task: Task, replacing: str | None = None) -> Task:
    """Check a task against the spec's rules and the other tasks; returns it normalised."""
    check_name("task", task.name)
    if replacing is None and home.has_task(task.name):
        raise UsageError(f"a task named '{task.name}' already exists")
    home.connection(task.connection)
    if task.direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of: {', '.join(DIRECTIONS)}")
    if task.no_delete and task.direction == "bidirectional":
        raise UsageError("--no-delete applies to one-way tasks only (upload or download)")
    if task.convert_google_docs:
        _check_document_export(home, task)
    if task.consistency_check:
        _check_consistency(home, task)
    # An empty path would be taken as the current folder (or the connection's root): an unset shell variable
    # in a script must not pair whatever folder the command ran in with the cloud.
    if not task.local.strip():
        raise UsageError("--local is empty; give the folder to sync")
    if not task.remote.strip():
        raise UsageError("--remote is empty; give a folder of the connection ('/' for all of it)")
    local = os.path.abspath(os.path.expanduser(task.local))
    if not os.path.isdir(local):
        raise UsageError(f"local folder {shown(task.local)} does not exist or is not a folder")
    task.local = os.path.realpath(local)
    task.remote = normalize_remote(task.remote)
    if not 0 <= task.max_size <= MAX_SIZE_MAX:
        raise UsageError("--max-size must be 0 (no limit) or a number of bytes")
    task.exclude_folders = [normalize_relative(f, "excluded folder") for f in task.exclude_folders]
    task.exclude_exts = [e.strip().lstrip(".") for e in task.exclude_exts if e.strip().lstrip(".")]
    task.exclude_names = [n for n in task.exclude_names if n]
    for other in home.tasks(task.connection):
        if other.name in (task.name, replacing):
            continue
        other_local = os.path.realpath(other.local)
        if _inside(task.local, other_local) or _inside(other_local, task.local):
            raise UsageError(
                f"local folder {shown(task.local)} overlaps task '{other.name}' ({shown(other.local)}) in the same "
                "connection"
            )
        if _inside(task.remote, other.remote) or _inside(other.remote, task.remote):
            raise UsageError(
                f"remote folder {shown(task.remote)} overlaps task '{other.name}' ({shown(other.remote)}) in the same "
                "connection"
            )
    overlap = cloud_overlap(home, task)
    if overlap is not None:
        raise UsageError(overlap)
    why = ownfiles.problem(home, [task], home.setting("database-path"), OWN_FILES_ADVICE)
    if why is not None:
        raise UsageError(why)
    return task


def _check_document_export(home: Home, task: Task) -> None:
    """--convert-google-docs only where it means something: a download-only task (an exported file is never
    sent back) of a connection whose service has online documents to export."""
    if task.direction != "download":
        raise UsageError("--convert-google-docs applies to download-only tasks (--direction download); "
                         "undo it with --no-convert-google-docs")
    kind = home.connection(task.connection).provider
    if not provider_kind(kind).capabilities.document_export:
        raise UsageError(f"--convert-google-docs applies to Google Drive connections, and '{task.connection}' "
                         f"is {kind}")


def _check_consistency(home: Home, task: Task) -> None:
    """--consistency-check compares the service's hashes with ours; where the service is known to report wrong
    ones (Baidu's md5, the spec's FAQ) every pass would find differences that are not there and transfer the
    same files again, so it stays off, with the reason."""
    kind = home.connection(task.connection).provider
    cls = provider_kind(kind)
    caps = getattr(cls, "capabilities", None)  # declared per class where no option changes it
    if caps is not None and caps.hash_unreliable:
        raise UsageError(f"--consistency-check stays off for {cls.title} connections: the service reports wrong "
                         f"{caps.hash_kind} hashes for many files, so comparing them would transfer the same files "
                         "at every pass (sizes and the recorded times are compared instead)")


def add_task(home: Home, task: Task, password: str | None = None) -> Task:
    """Add a task. An encrypted task needs the connection's encryption password: the first encrypted task
    of a connection sets it (and makes the account's key pair); later ones must give the same password."""
    task = validate_task(home, task)
    if task.encrypt:
        if not password:
            raise UsageError("an encrypted task needs a password (--password-file FILE, or type it when asked)")
        from engine.crypto.account import enable_encryption

        enable_encryption(home, task.connection, password)
    home.put_task(task)
    return task


def edit_task(home: Home, name: str, changes: Mapping[str, object]) -> Task:
    task = home.task(name)
    if task.encrypt and changes.get("encrypt") is False:
        raise UsageError("encryption cannot be turned off for a task once it is enabled")
    if "connection" in changes and changes["connection"] != task.connection:
        raise UsageError("a task cannot move to another connection; unlink it and create a new one")
    if changes.get("encrypt") and not task.encrypt:
        raise UsageError("encryption can only be chosen when a task is created")
    for key, value in changes.items():
        setattr(task, key, value)
    task = validate_task(home, task, replacing=name)
    home.put_task(task)
    return task


def remove_task(home: Home, name: str) -> Task:
    """Unlink a task: its files stay on both sides; only the configuration and the sync state go."""
    task = home.task(name)
    home.remove_task(name)
    return task




# -- sign-in ------------------------------------------------------------------------------------------------------


def login(home: Home, name: str, signin: SignIn | None) -> bool:
    """`connection login`: sign an OAuth connection in again (after "sign-in needed", or to renew it). Its
    tasks and state stay: the account must be the one the connection already belongs to. Returns whether the
    config changed (the first sign-in of a connection records its account)."""
    conn = home.connection(name)
    cls = provider_kind(conn.provider)
    if not accounts.is_oauth(cls):
        specs = {s.name: s for s in cls.option_specs}
        secrets = [s.name for s in specs.values() if s.secret]
        if not secrets:
            raise UsageError(f"connection '{name}' ({conn.provider}) needs no sign-in; nothing to do")
        what = "a password" if any("password" in s for s in secrets) else "keys"
        raise UsageError(f"connection '{name}' ({conn.provider}) signs in with {what}, not a browser; nothing to do")
    options = home.all_options(name)
    token = accounts.sign_in(cls, name, options, signin)
    token, account = accounts.account_of(cls, name, options, token)
    before = conn.options.get("account_id")
    if before and before != account:
        raise UsageError(
            f"that sign-in is another account than connection '{name}' uses; sign in with its account, or add a "
            "new connection for this one"
        )
    if before != account:
        _check_identity(home, cls, name, home.all_options(name) | {"account_id": account})
    TokenStore(home.path, name).save(token)  # clears "sign-in needed"
    if before == account:
        return False
    conn.options = {**conn.options, "account_id": account}
    home.put_connection(conn, home.secrets(name))
    return True


# -- rclone remotes -----------------------------------------------------------------------------------------------

RCLONE_DEFAULT_CONFIG = "~/.config/rclone/rclone.conf"
# rclone's fixed key for "obscured" passwords (fs/config/obscure): obfuscation, not encryption.
_RCLONE_OBSCURE_KEY = bytes.fromhex("9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638")
RCLONE_TYPES = ("s3", "b2", "azureblob", "google cloud storage", "swift", "webdav", "drive", "dropbox", "yandex",
                "box", "onedrive", "local")
# rclone's s3 `provider`s that are kinds of their own here (any other provider is S3 with its endpoint).
RCLONE_S3_OWN_KINDS = {"Alibaba": "oss", "TencentCOS": "cos"}
# rclone's onedrive `drive_type` -> our kind (the spec has three rows for the one API).
RCLONE_ONEDRIVE_KINDS = {"personal": "onedrive", "business": "onedrive-business", "documentLibrary": "sharepoint"}


def rclone_config_path(explicit: str | None) -> str:
    return os.path.expanduser(explicit or os.environ.get("RCLONE_CONFIG") or RCLONE_DEFAULT_CONFIG)


def reveal_rclone_password(obscured: str) -> str:
    """The password behind rclone's `obscure` (AES-CTR under a key published in rclone's source)."""
    import base64
    import binascii

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        raw = base64.urlsafe_b64decode(obscured + "=" * (-len(obscured) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) < 16:
        raise ValueError("too short")
    decryptor = Cipher(algorithms.AES(_RCLONE_OBSCURE_KEY), modes.CTR(raw[:16])).decryptor()
    plain = decryptor.update(raw[16:]) + decryptor.finalize()
    return plain.decode("utf-8")


def _read_rclone_config(path: str) -> configparser.ConfigParser:
    """An rclone config file (an INI file, one section per remote); one line for a missing, unreadable, encrypted
    or broken file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"there is no rclone config at {shown(path)}; give one with --config FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UsageError(f"the rclone config {shown(path)} cannot be read: {reason}") from None
    if "RCLONE_ENCRYPT_V0:" in text:
        raise UsageError(
            f"the rclone config {shown(path)} is encrypted; decrypt it first (rclone config encryption remove) "
            "or give a plain copy with --config FILE"
        )
    parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="\x00")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # rclone's keys are case-sensitive
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"the rclone config {shown(path)} is not valid: {shown(first)}") from None
    return parser


def list_rclone_remotes(path: str) -> list[tuple[str, str]]:
    """(name, rclone type) of every remote in an rclone config file, in the file's order (the app's list)."""
    parser = _read_rclone_config(path)
    return [(name, parser.get(name, "type", fallback="").strip()) for name in parser.sections()]


def read_rclone_remote(path: str, remote: str) -> dict[str, str]:
    """The options of one remote of an rclone config file."""
    parser = _read_rclone_config(path)
    if not parser.has_section(remote):
        known = ", ".join(parser.sections()) or "none"
        raise UsageError(f"no remote named '{shown(remote)}' in {shown(path)} (remotes there: {shown(known)})")
    return {k: v.strip() for k, v in parser.items(remote)}


def _rclone_s3_own_kind(kind: str, label: str, s3: dict[str, str], notes: list[str]) -> dict[str, str]:
    """An rclone s3 remote of Alibaba or Tencent as skysync's oss or cos options (from the s3 names `take`
    gave them); the region of a COS bucket is read from rclone's endpoint, as rclone keeps no region for it."""
    if s3.get("server_side_encryption") or s3.get("sse_kms_key_id"):
        raise UsageError(f"{label} asks for S3 server-side encryption, which skysync's {kind} does not set; "
                         "add the connection with skysync connection add")
    endpoint = s3.get("endpoint", "")
    storage = s3.get("storage_class", "").upper()
    if kind == "oss":
        options = {"access_key_id": s3.get("access_key_id", ""), "access_key_secret": s3.get("secret_access_key", "")}
        classes = {"STANDARD": "Standard", "STANDARD_IA": "IA"}
    else:
        match = re.fullmatch(r"(?:https?://)?cos\.([a-z0-9-]+)\.myqcloud\.com/?", endpoint)
        if not match:
            raise UsageError(f"{label} (Tencent COS) has endpoint '{shown(endpoint or '(none)')}', which names no "
                             "region (cos.REGION.myqcloud.com); add the connection with skysync connection add")
        options = {"region": match.group(1), "secret_id": s3.get("access_key_id", ""),
                   "secret_key": s3.get("secret_access_key", "")}
        classes = {"STANDARD": "STANDARD", "STANDARD_IA": "STANDARD_IA"}
    if endpoint:
        options["endpoint"] = endpoint
    if storage in classes:
        options["storage_class"] = classes[storage]
    elif storage:
        notes.append(f"storage class {shown(storage)} is not offered for {kind}: uploads use {classes['STANDARD']}")
    return {k: v for k, v in options.items() if v}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def rclone_connection(remote: str, values: dict[str, str], target: str) -> tuple[str, dict[str, str], list[str]]:
    """(provider kind, options with secrets, notes) for an rclone remote; `target` is what follows the colon in
    REMOTE:target (the bucket or container, and a folder in it). Refuses what cannot be carried over faithfully."""
    rtype = values.get("type", "")
    label = f"rclone remote '{shown(remote)}'"
    bucket, _, folder = target.strip("/").partition("/")
    notes: list[str] = []
    used: set[str] = {"type"}

    def take(mapping: dict[str, str]) -> dict[str, str]:
        out = {}
        for theirs, ours in mapping.items():
            if values.get(theirs):
                out[ours] = values[theirs]
            used.add(theirs)
        return out

    def refuse_if(key: str, why: str) -> None:
        if values.get(key) and (key not in ("env_auth", "use_msi", "use_emulator") or _true(values[key])):
            raise UsageError(f"{label} {why}; skysync cannot use that: add the connection with skysync connection add")

    def needs_bucket(what: str) -> None:
        if not bucket:
            raise UsageError(
                f"{label} ({rtype}) names no {what}: give it after a colon, as in {shown(remote)}:MY-{what.upper()}"
            )
        if folder:
            notes.append(f"the folder /{folder} is chosen per task: skysync task add ... --remote /{folder}")

    if rtype == "s3":
        refuse_if("env_auth", "takes its S3 keys from the environment (env_auth)")
        needs_bucket("bucket")
        options = take({"access_key_id": "access_key_id", "secret_access_key": "secret_access_key",
                        "region": "region", "endpoint": "endpoint", "storage_class": "storage_class",
                        # the same names and values in rclone: every upload asks for the encryption
                        "server_side_encryption": "server_side_encryption", "sse_kms_key_id": "sse_kms_key_id"})
        used.add("provider")
        provider = values.get("provider") or "AWS"
        if provider in RCLONE_S3_OWN_KINDS:
            # Alibaba OSS and Tencent COS have their own kinds here (their own SDKs, storage classes, names)
            kind = RCLONE_S3_OWN_KINDS[provider]
            options = _rclone_s3_own_kind(kind, label, options, notes)
        else:
            if provider != "AWS" and not options.get("endpoint"):
                raise UsageError(f"{label} ({shown(provider)} S3) names no endpoint; skysync needs the service's "
                                 "address: add endpoint = URL to the remote, or use skysync connection add")
            options["preset"] = "aws" if provider == "AWS" else "other"
            if values.get("force_path_style"):
                options["addressing_style"] = "path" if _true(values["force_path_style"]) else "virtual"
                used.add("force_path_style")
            kind = "s3"
        options["bucket"] = bucket
    elif rtype == "b2":
        needs_bucket("bucket")
        options = take({"account": "key_id", "key": "application_key", "endpoint": "endpoint"})
        options["bucket"] = bucket
        kind = "b2"
    elif rtype == "azureblob":
        for key, why in (("sas_url", "signs in with a SAS URL"), ("env_auth", "signs in from the environment"),
                         ("use_msi", "signs in with a managed identity"),
                         ("service_principal_file", "signs in with a service principal"),
                         ("client_secret", "signs in with a service principal"),
                         ("use_emulator", "points at the storage emulator")):
            refuse_if(key, why)
        needs_bucket("container")
        options = take({"account": "account_name", "key": "account_key", "endpoint": "endpoint"})
        options["container"] = bucket
        kind = "azure"
    elif rtype in ("google cloud storage", "gcs"):
        refuse_if("env_auth", "takes its Google credentials from the environment (env_auth)")
        if not values.get("service_account_file") and not values.get("service_account_credentials"):
            raise UsageError(
                f"{label} signs in to Google Cloud Storage with an OAuth token; skysync's gcs connection needs a "
                "service account (service_account_file)"
            )
        needs_bucket("bucket")
        options = take({"service_account_file": "credentials_file", "service_account_credentials": "credentials_json",
                        "project_number": "project", "storage_class": "storage_class", "endpoint": "endpoint"})
        used.add("token")
        options["bucket"] = bucket
        kind = "gcs"
    elif rtype == "swift":
        refuse_if("env_auth", "takes its Swift credentials from the environment (env_auth)")
        refuse_if("auth_token", "signs in with a fixed token (auth_token)")
        refuse_if("application_credential_id", "signs in with an application credential")
        needs_bucket("container")
        options = take({"auth": "auth_url", "user": "user", "key": "key", "tenant": "tenant",
                        "region": "region", "domain": "domain"})
        options["container"] = bucket
        kind = "swift"
    elif rtype == "webdav":
        refuse_if("bearer_token", "signs in with a bearer token")
        refuse_if("bearer_token_command", "signs in with a bearer token command")
        options = take({"url": "url", "user": "user"})
        if values.get("pass"):
            try:
                options["password"] = reveal_rclone_password(values["pass"])
            except ValueError:
                raise UsageError(f"{label}: its password (pass) is not in rclone's obscured form") from None
        used.add("pass")
        if target.strip("/"):
            notes.append(f"the folder /{target.strip('/')} is chosen per task: --remote /{target.strip('/')}")
        kind = "webdav"
    elif rtype in ("drive", "dropbox", "yandex", "box"):
        # OAuth remotes: the token (rclone keeps the JSON `rclone authorize` printed) goes to the token store.
        if not values.get("token"):
            raise UsageError(f"{label} has no token; sign in with rclone first, or add the connection with "
                             "skysync connection add")
        if not values.get("client_id"):
            raise UsageError(
                f"{label} signs in with rclone's own app (no client_id), whose tokens only rclone can renew: "
                f"give the remote your own app's client id and key, or use skysync connection add"
            )
        if rtype == "drive":
            refuse_if("service_account_file", "signs in with a service account")
            refuse_if("root_folder_id", "is rooted at a folder id (root_folder_id)")
            scope = values.get("scope", "drive") or "drive"
            if scope not in ("drive", "drive.file"):
                raise UsageError(f"{label} has scope '{shown(scope)}'; skysync syncs with 'drive' or 'drive.file'")
            options = take({"client_id": "client_id", "client_secret": "client_secret", "token": "token",
                            "team_drive": "shared_drive", "token_url": "token_url", "auth_url": "auth_url"})
            used.add("scope")
            options["scope"] = scope
            kind = "gdrive"
        elif rtype == "yandex":
            options = take({"client_id": "client_id", "client_secret": "client_secret", "token": "token"})
            # rclone names the token endpoint; skysync's auth_url is the OAuth server it hangs off.
            token_url = values.get("token_url", "")
            if token_url.rstrip("/").endswith("/token"):
                options["auth_url"] = token_url.rstrip("/").removesuffix("/token")
                used.update(("token_url", "auth_url"))
            kind = "yandex"
        elif rtype == "box":
            refuse_if("box_config_file", "signs in as a JWT server app (box_config_file)")
            refuse_if("access_token", "signs in with a fixed developer token (access_token)")
            if (values.get("root_folder_id") or "0") != "0":
                raise UsageError(f"{label} is rooted at a folder id (root_folder_id); give the folder per task")
            used.update(("root_folder_id", "box_sub_type"))
            options = take({"client_id": "client_id", "client_secret": "client_secret", "token": "token",
                            "token_url": "token_url", "auth_url": "auth_url"})
            kind = "box"
        else:
            options = take({"client_id": "app_key", "client_secret": "app_secret", "token": "token",
                            "token_url": "token_url", "auth_url": "auth_url"})
            kind = "dropbox"
        if target.strip("/"):
            notes.append(f"the folder /{target.strip('/')} is chosen per task: --remote /{target.strip('/')}")
    elif rtype == "onedrive":
        if not values.get("token"):
            raise UsageError(f"{label} has no token; sign in with rclone first, or add the connection with "
                             "skysync connection add")
        if not values.get("client_id"):
            raise UsageError(
                f"{label} signs in with rclone's own app (no client_id), whose tokens only rclone can renew: "
                f"give the remote your own app's client id, or use skysync connection add"
            )
        if values.get("region", "global") not in ("", "global"):
            raise UsageError(f"{label} is in a national cloud (region {shown(values['region'])}); add it with "
                             "skysync connection add and its api_url and auth_url")
        used.add("region")
        drive_type = values.get("drive_type", "personal") or "personal"
        if drive_type not in RCLONE_ONEDRIVE_KINDS:
            raise UsageError(f"{label} has drive_type '{shown(drive_type)}' (personal, business or documentLibrary)")
        used.add("drive_type")
        kind = RCLONE_ONEDRIVE_KINDS[drive_type]
        options = take({"client_id": "client_id", "token": "token", "drive_id": "drive_id", "tenant": "tenant"})
        if values.get("client_secret"):
            used.add("client_secret")
            notes.append("rclone signed in with your app's secret; skysync renews the token as a public client, "
                         "so turn on 'Allow public client flows' in the app registration")
        if target.strip("/"):
            notes.append(f"the folder /{target.strip('/')} is chosen per task: --remote /{target.strip('/')}")
    elif rtype == "local":
        root = os.path.expanduser(target) if target else ""
        if not root or not os.path.isabs(root):
            raise UsageError(
                f"{label} (local) needs the folder that plays the cloud: give it as {shown(remote)}:/ABSOLUTE/PATH"
            )
        options = {"root": root}
        kind = "local"
    else:
        raise UsageError(
            f"{label} is of type '{shown(rtype or '(none)')}', which skysync cannot import "
            f"(it imports {', '.join(RCLONE_TYPES)} remotes)"
        )
    ignored = sorted(k for k, v in values.items() if k not in used and v)
    if ignored:
        notes.append(f"rclone options not carried over: {', '.join(ignored)}")
    return kind, options, notes


def import_rclone(home: Home, config: str | None, remote: str, name: str | None) -> tuple[Connection, list[str]]:
    """Add a connection from an rclone remote (REMOTE or REMOTE:bucket/folder); returns it and notes."""
    remote_name, _, target = remote.partition(":")
    if not remote_name:
        raise UsageError(f"'{shown(remote)}' is not an rclone remote name (REMOTE or REMOTE:BUCKET)")
    values = read_rclone_remote(rclone_config_path(config), remote_name)
    kind, options, notes = rclone_connection(remote_name, values, target)
    name = name or remote_name
    if not NAME_RE.match(name):
        raise UsageError(f"connection name '{shown(name)}' {NAME_RULE}; give another one: ... {shown(remote)} NAME")
    return add_connection(home, name, kind, options), notes


def has_encryption_key(home: Home, name: str) -> bool:
    """True once an encrypted task of the connection has made its key (the first one sets it)."""
    return "encryption_private_key" in home.secrets(name)


def export_encryption_key(home: Home, name: str, out: str) -> str:
    """Write the connection's key.zip (public.pem, private.pem; mode 0600) to `out`, a file or a folder to put
    key.zip in; returns the file written."""
    from engine.crypto import CryptoError
    from engine.crypto.recovery import export_key_zip

    home.connection(name)
    secrets = home.secrets(name)
    if not has_encryption_key(home, name):
        raise UsageError(f"connection '{name}' has no encryption key (no encrypted task yet)")
    path = os.path.expanduser(out)
    if os.path.isdir(path):
        path = os.path.join(path, "key.zip")
    try:
        export_key_zip(secrets["encryption_public_key"].encode(), secrets["encryption_private_key"].encode(), path)
    except CryptoError as exc:
        raise UsageError(f"connection '{name}': {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.chmod(path, 0o600)
    return path
