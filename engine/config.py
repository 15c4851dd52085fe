"""The home folder: connections, tasks and settings in `config.toml`, secrets in `secrets.toml` (mode 0600).

What is read is checked against one typed schema (the pydantic models below): a hand-edited value of the wrong
type, out of range or under an unknown key is refused at load time with one line naming the key, the value and
what is expected, so every command (and `skysync run`) reports a broken config the same way. The config is
rewritten with tomlkit so a user's comments and layout survive; secrets never enter config.toml.

Start-up cost matters here (every one-shot command loads the home): a home is read with the standard library's
tomllib and only a command that changes it parses it again with tomlkit; the models build their validators when
first used (`defer_build`), and a home just loaded hands out the tables its whole-file check already validated,
so a one-shot pass builds one validator (ConfigFile's), not five.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from engine.errors import UsageError
from engine.names import shown

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

CONFIG_NAME = "config.toml"
SECRETS_NAME = "secrets.toml"
DIRECTIONS = ("bidirectional", "upload", "download")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "must start with a letter or digit and use only letters, digits, '.', '_', '-' (at most 64)"

LOG_MIN, LOG_MAX = 5, 100_000
POLLING_MIN, POLLING_MAX, POLLING_DEFAULT = 10, 86_400, 60
LIMIT_MAX = 10_000_000  # KiB/s
MAX_SIZE_MAX = 2**63 - 1
CONNECTION_COMMON = ("polling_period", "upload_limit", "download_limit", "schedule", "conflict_mode")
# What happens to the cloud's version of a file changed on both sides (engine.revisions): "revision" keeps it
# as an earlier version where the service verifiably keeps them (the spec's default), "copy" as a conflict copy.
CONFLICT_MODES = ("revision", "copy")
CONFLICT_DEFAULT = "revision"
ALWAYS = "1" * 168  # 7 days x 24 hours, Monday 00:00 first


# -- the schema ----------------------------------------------------------------------------------------------
# Each field's description is the "expected ..." of its error line. Strict: a TOML string is never read as a
# number or a boolean ("false" is not false), and a string is never read as a list ("ab" is not ["a", "b"]).


def _absolute(value: str) -> str:
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        raise ValueError("an absolute path")
    return path


def _database_path(value: str) -> str:
    if not value:
        return ""
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        raise ValueError('an absolute path (or "" for state.db in the home)')
    return path


def path_parts(path: str) -> list[str] | None:
    """The parts of a path inside a task's or a connection's folder, or None when one is '.', '..' or holds a NUL:
    such a path could name something outside that folder. One rule for `task add` (engine.manage) and for a value
    edited by hand into config.toml."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or "\x00" in p for p in parts):
        return None
    return parts


def _remote_path(value: str) -> str:
    if path_parts(value.replace("\\", "/")) is None:  # a backslash separates as a slash does (manage.normalize_remote)
        raise ValueError("a path inside the connection without '.' or '..' parts, such as \"/photos\"")
    return value


def _relative_folder(value: str) -> str:
    if not path_parts(value):
        raise ValueError("a folder path relative to the task folder, without '.' or '..' parts")
    return value


def _known_kind(value: str) -> str:
    from engine.providers import kinds

    known = kinds()
    if value not in known:
        raise ValueError("one of " + ", ".join(known))
    return value


class _Table(BaseModel):
    # defer_build: a model's validator is built when it first validates (~5-10 ms each at import otherwise);
    # a one-shot pass only ever validates ConfigFile (Home reuses its tables) and, when there are secrets,
    # SecretsFile.
    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)


Bool = Annotated[bool, Field(description="true or false (a TOML boolean, without quotes)")]
Strings = Annotated[list[str], Field(description='a list of strings, such as ["a", "b"]')]
Scalar = str | int | float | bool


class CommonTable(_Table):
    """The settings every connection has, whatever its provider."""

    polling_period: Annotated[int, Field(
        ge=POLLING_MIN, le=POLLING_MAX,
        description=f"a whole number of seconds from {POLLING_MIN} to {POLLING_MAX}",
    )] = POLLING_DEFAULT
    upload_limit: Annotated[int, Field(
        ge=0, le=LIMIT_MAX, description=f"a whole number of KiB/s from 0 (unlimited) to {LIMIT_MAX}"
    )] = 0
    download_limit: Annotated[int, Field(
        ge=0, le=LIMIT_MAX, description=f"a whole number of KiB/s from 0 (unlimited) to {LIMIT_MAX}"
    )] = 0
    schedule: Annotated[str, Field(
        pattern=r"^[01]{168}$",
        description="168 characters of 0 and 1 (7 days x 24 hours, Monday 00:00 first)",
    )] = ALWAYS
    conflict_mode: Annotated[Literal["revision", "copy"], Field(
        description='"revision" (the cloud keeps the remote version as an earlier revision, where verified) or "copy"'
    )] = CONFLICT_DEFAULT


class ConnectionTable(CommonTable):
    provider: Annotated[str, AfterValidator(_known_kind), Field(description="a provider kind")]
    options: Annotated[dict[str, Scalar], Field(
        description="a table of option = value (a string, a number or true/false)"
    )] = {}
    # A system engine's connection belongs to this Unix uid (engine.owners); none = root's.
    owner: Annotated[int | None, Field(ge=0, le=2**32 - 2, description="a Unix uid (a whole number)")] = None


class TaskTable(_Table):
    connection: Annotated[str, Field(description="the name of a connection")]
    local: Annotated[str, AfterValidator(_absolute), Field(description="an absolute path")]
    remote: Annotated[str, AfterValidator(_remote_path), Field(
        description='a path inside the connection, such as "/photos"'
    )]
    direction: Annotated[Literal["bidirectional", "upload", "download"], Field(
        description='one of "bidirectional", "upload", "download"'
    )] = "bidirectional"
    no_delete: Bool = False
    consistency_check: Bool = False
    exclude_folders: Annotated[list[Annotated[str, AfterValidator(_relative_folder)]], Field(
        description=Strings.__metadata__[0].description
    )] = []
    exclude_names: Strings = []
    exclude_exts: Strings = []
    max_size: Annotated[int, Field(
        ge=0, le=MAX_SIZE_MAX, description="a whole number of bytes (0 = no limit)"
    )] = 0
    case_insensitive: Bool = False
    encrypt: Bool = False
    convert_google_docs: Bool = False
    paused: Bool = False


class SettingsTable(_Table):
    concurrency: Annotated[int, Field(alias="concurrency", ge=1, le=20, description="a whole number from 1 to 20")] = 4
    log_max_records: Annotated[int, Field(
        alias="log-max-records", ge=LOG_MIN, le=LOG_MAX, description=f"a whole number from {LOG_MIN} to {LOG_MAX}"
    )] = 10_000
    database_path: Annotated[str, AfterValidator(_database_path), Field(
        alias="database-path", description='an absolute path (or "" for state.db in the home)'
    )] = ""
    # Seconds between the running engine's full rescans of a watched folder: the safety net behind inotify
    # (events the kernel dropped, changes the watch cannot see). Shorter costs a full walk more often.
    rescan_period: Annotated[int, Field(
        alias="rescan-period", ge=60, le=86_400, description="a whole number of seconds from 60 to 86400"
    )] = 600
    mass_delete_percent: Annotated[int, Field(
        alias="mass-delete-percent", ge=1, le=100, description="a whole number from 1 to 100"
    )] = 50
    mass_delete_min_files: Annotated[int, Field(
        alias="mass-delete-min-files", ge=0, le=1_000_000, description="a whole number from 0 to 1000000"
    )] = 10
    admin_order: Annotated[Literal["user", "cloud-type"], Field(
        alias="admin-order", description='"user" or "cloud-type"'
    )] = "user"


class ConfigFile(_Table):
    connections: Annotated[dict[str, ConnectionTable], Field(
        description="a table of connections ([connections.NAME] sections)"
    )] = {}
    tasks: Annotated[dict[str, TaskTable], Field(description="a table of tasks ([tasks.NAME] sections)")] = {}
    # The defaults without a validator: SettingsTable() here would build one at import (and a file without
    # [settings] would build one at load); pydantic does not validate defaults either way.
    settings: Annotated[SettingsTable, Field(
        default_factory=SettingsTable.model_construct, description="a table of settings ([settings])"
    )]


class SecretsFile(_Table):
    connections: Annotated[dict[str, dict[str, str]], Field(
        description="a table of connections, each a table of secret = \"value\""
    )] = {}


SETTINGS: tuple[str, ...] = tuple(f.alias or n for n, f in SettingsTable.model_fields.items())
_SETTING_FIELDS = {f.alias or n: n for n, f in SettingsTable.model_fields.items()}


# -- one line per problem --------------------------------------------------------------------------------------


def _key_text(parts: tuple[Any, ...]) -> str:
    """A TOML key path: tasks.photos.exclude_folders, tasks."a b".local."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else json.dumps(p, ensure_ascii=False)
                    for p in map(str, parts))


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, str | list) else str(value)
    text = shown(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind_text(value: Any) -> str:
    """What a value is, without showing it (secrets, provider options that may hold one)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field(model: type[BaseModel], key: Any) -> Any:
    for name, f in model.model_fields.items():
        if (f.alias or name) == key:
            return f
    return None


def _type_text(tp: Any) -> str:
    """What a value under a table (not a field of its own) is expected to be."""
    if tp is str:
        return "a string"
    if get_origin(tp) is dict:
        return "a table"
    if set(get_args(tp)) >= {str, int, bool}:
        return "a string, a number or true/false"
    return "another value"


def _locate(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[int, str, type[BaseModel] | None]:
    """How many parts of an error location name the key, what that key expects, and the model of the table
    an unknown key was found in (None when the key is known)."""
    i = 0
    while i < len(loc):
        f = _field(model, loc[i])
        if f is None:
            return i + 1, "", model
        i += 1
        tp, expected = f.annotation, f.description or "another value"
        while get_origin(tp) is dict and i < len(loc):  # a name under a table: tasks.NAME, options.KEY
            tp = get_args(tp)[1]
            i += 1
            expected = "a table" if _is_model(tp) else _type_text(tp)
        if not _is_model(tp) or i == len(loc):
            return i, expected, None
        model = tp
    return i, "a table", None


def _get(data: Any, parts: tuple[Any, ...]) -> Any:
    for p in parts:
        if not isinstance(data, dict | list):
            return None
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def problem(exc: ValidationError, model: type[BaseModel], data: Any, *, hide_values: bool = False) -> str:
    """One line for the first error: the key with its table, the value and what is expected."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    n, expected, table = _locate(model, loc)
    key = _key_text(loc[:n])
    if table is not None:
        known = ", ".join(f.alias or name for name, f in table.model_fields.items())
        return f"{key}: unknown key (known keys here: {known})"
    if err["type"] == "missing":
        return f"{key}: missing; expected {expected}"
    if err["type"] == "value_error" and err.get("ctx", {}).get("error"):
        expected = str(err["ctx"]["error"])
    value = _get(data, loc[:n])
    hidden = hide_values or "options" in loc[:n]  # provider options may hold a secret put there by hand
    got = _kind_text(value) if hidden else _value_text(value)
    return f"{key}: expected {expected}, got {got}"


def _validate(model: type[BaseModel], data: Any, where: str, *, hide_values: bool = False) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{where}{problem(exc, model, data, hide_values=hide_values)}") from None


def _plain(item: Any) -> Any:
    """A tomlkit item as plain Python values (what the schema validates)."""
    unwrap = getattr(item, "unwrap", None)
    return unwrap() if unwrap is not None else item


def _text_to_field(model: type[BaseModel], key: str, value: Any) -> Any:
    """A value typed on the command line (always text) as the type the field holds in the TOML file."""
    f = _field(model, key)
    if f is None or f.annotation is not int or not isinstance(value, str):
        return value
    try:
        return int(value.strip())
    except ValueError:
        raise UsageError(f"{key}: expected {f.description}, got {_value_text(value)}") from None


def _check_field(model: type[BaseModel], key: str, value: Any) -> Any:
    """One setting or common connection field typed by a person: converted, checked, returned."""
    value = _text_to_field(model, key, value)
    checked = _validate(model, {key: value}, "")
    return getattr(checked, _field_name(model, key))


def _field_name(model: type[BaseModel], key: str) -> str:
    for name, f in model.model_fields.items():
        if (f.alias or name) == key:
            return name
    raise KeyError(key)


def parse_polling(value: str | int) -> int:
    return _check_field(CommonTable, "polling_period", value)


def parse_limit(value: str | int, key: str = "upload_limit") -> int:
    return _check_field(CommonTable, key, value)


def parse_schedule(value: str) -> str:
    return _check_field(CommonTable, "schedule", str(value).strip())


def parse_conflict_mode(value: str) -> str:
    return _check_field(CommonTable, "conflict_mode", str(value).strip())


# -- the public records -----------------------------------------------------------------------------------------


@dataclass
class Connection:
    name: str
    provider: str
    options: dict[str, str] = field(default_factory=dict)  # non-secret options
    polling_period: int = POLLING_DEFAULT
    upload_limit: int = 0
    download_limit: int = 0
    schedule: str = ALWAYS
    conflict_mode: str = CONFLICT_DEFAULT
    owner: int | None = None  # the Unix uid a system engine serves it for (engine.owners); None = root's

    def public_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Task:
    name: str
    connection: str
    local: str
    remote: str
    direction: str = "bidirectional"
    no_delete: bool = False
    consistency_check: bool = False
    exclude_folders: list[str] = field(default_factory=list)
    exclude_names: list[str] = field(default_factory=list)
    exclude_exts: list[str] = field(default_factory=list)
    max_size: int = 0
    case_insensitive: bool = False
    encrypt: bool = False
    # Download-only tasks of a service with online documents (Google Drive): export them (spec note 20).
    convert_google_docs: bool = False
    paused: bool = False

    def public_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def remote_folder(self) -> str:
        """The remote path without slashes at either end ("" for the root)."""
        return self.remote.strip("/")


def _utf8_only(text: str, secret: str) -> None:
    """UsageError naming the line of `text` that cannot be written as UTF-8 (or only `secret`, for the secrets)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        start = text.rfind("\n", 0, exc.start) + 1
        end = text.find("\n", exc.start)
        what = secret or f"{shown(text[start:end if end >= 0 else None].strip())} is not valid UTF-8"
        raise UsageError(f"{what}; the configuration holds UTF-8 text only: rename that folder or choose another "
                         "(nothing was saved)") from None


def _option_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_home_permissions(path: str) -> None:
    """Refuse a home that is not the caller's, or that other users could change or read secrets from: one line
    saying what is wrong and the command that fixes it. A home that does not exist yet is fine."""
    me = os.geteuid()
    shown_path = shown(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"the home {shown_path} cannot be used: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"the home {shown_path} is not a folder; give a folder with --home DIR or $SKYSYNC_HOME")
    checks = (
        (path, st, 0o022, "can be changed by other users", f"chmod go-w {shown_path}"),
        (os.path.join(path, CONFIG_NAME), None, 0o022, "can be changed by other users",
         f"chmod go-w {shown(os.path.join(path, CONFIG_NAME))}"),
        (os.path.join(path, SECRETS_NAME), None, 0o077, "can be read by other users (it holds your secrets)",
         f"chmod 600 {shown(os.path.join(path, SECRETS_NAME))}"),
    )
    for where, info, mask, what, fix in checks:
        if info is None:
            try:
                info = os.stat(where)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise UsageError(f"{shown(where)} cannot be read: {exc.strerror or exc}") from None
        if info.st_uid != me:
            raise UsageError(
                f"{shown(where)} belongs to {_owner(info.st_uid)}, not to you ({_owner(me)}); run skysync as "
                "that user, or use a home of your own (--home DIR)"
            )
        if info.st_mode & mask:
            mode = oct(stat.S_IMODE(info.st_mode))[2:]
            raise UsageError(f"{shown(where)} {what} (mode {mode}); fix it with: {fix}")


def _atomic_write(path: str, text: str, mode: int) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Home:
    """One skysync home: load, change and save its config and secrets."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.config_path = os.path.join(path, CONFIG_NAME)
        self.secrets_path = os.path.join(path, SECRETS_NAME)
        self._text = self._read(self.config_path)
        # The file as tomlkit keeps it (comments, layout): parsed on the first change only (see _doc).
        self._tomlkit_doc: TOMLDocument | None = None
        self._data = self._load_data()
        # The whole-file check's validated tables, handed out while the file is as it was read; forgotten at the
        # first change, after which each table is validated on its own again as it is read.
        self._checked: ConfigFile | None = self._check_doc()
        self._secrets_text: str | None = None  # what secrets.toml held when read (save writes over only that)
        self._secrets = self._load_secrets()

    # -- files ---------------------------------------------------------------------------------------------
    def _read(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise UsageError(f"{shown(path)} is not UTF-8 text; save it as UTF-8") from None
        except IsADirectoryError:
            raise UsageError(f"{shown(path)} is a folder, not a file") from None
        except NotADirectoryError:
            raise UsageError(f"the home {shown(self.path)} is not a folder") from None
        except OSError as exc:
            raise UsageError(f"{shown(path)} cannot be read: {exc.strerror or exc}") from None

    def _load_data(self) -> dict[str, Any]:
        """The file's values: by tomllib (a few ms less than tomlkit, and tomlkit is not even imported by a
        command that only reads). What tomllib refuses goes to tomlkit, so the error reads as it always has and
        anything tomlkit accepts is read as before."""
        if self._text is None:
            return {}
        try:
            return tomllib.loads(self._text)
        except tomllib.TOMLDecodeError:
            return _plain(self._doc)

    @property
    def _doc(self) -> TOMLDocument:
        """The file as tomlkit keeps it, for a change: parsed on first use. Any use may change it, so the tables
        checked at load are no longer handed out (reads go through the document, validated one by one)."""
        self._checked = None
        if self._tomlkit_doc is None:
            self._tomlkit_doc = self._parse_doc()
        return self._tomlkit_doc

    def _parse_doc(self) -> TOMLDocument:
        import tomlkit

        if self._text is None:
            doc = tomlkit.document()
            doc.add(tomlkit.comment("skysync configuration; secrets live in secrets.toml (mode 0600)"))
            return doc
        try:
            return tomlkit.parse(self._text)
        except Exception as exc:  # tomlkit raises several types; all mean the same to the user
            raise UsageError(f"{shown(self.config_path)} is not valid TOML: {shown(str(exc))}") from None

    def _tables(self) -> Any:
        """What reads look at: the document once it exists (it holds the changes), else the values read."""
        return self._tomlkit_doc if self._tomlkit_doc is not None else self._data

    def _check_doc(self) -> ConfigFile:
        """The whole file against the schema, then what one table says about another."""
        where = f"{shown(self.config_path)}: "
        data = self._data
        config = _validate(ConfigFile, data, where)
        for table, names in (("connections", config.connections), ("tasks", config.tasks)):
            for name in names:
                if not NAME_RE.match(name):
                    kind = table[:-1]
                    raise UsageError(f"{where}{_key_text((table, name))}: a {kind} name {NAME_RULE}")
        for name, task in config.tasks.items():
            if task.connection not in config.connections:
                known = ", ".join(config.connections) or "none"
                raise UsageError(
                    f"{where}{_key_text(('tasks', name, 'connection'))}: no connection named "
                    f"{_value_text(task.connection)} (known: {known})"
                )
        return config

    def _load_secrets(self) -> dict[str, dict[str, str]]:
        text = self._secrets_text = self._read(self.secrets_path)
        if text is None:
            return {}
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{shown(self.secrets_path)} is not valid TOML: {exc}") from None
        secrets = _validate(SecretsFile, data, f"{shown(self.secrets_path)}: ", hide_values=True)
        return {k: dict(v) for k, v in secrets.connections.items()}

    def save(self) -> None:
        import tomlkit

        doc = tomlkit.document()
        doc.add(tomlkit.comment("skysync secrets: keep this file private (mode 0600)"))
        conns = tomlkit.table()
        for name, values in sorted(self._secrets.items()):
            if values:
                conns[name] = values
        doc["connections"] = conns
        config_text, secrets_text = tomlkit.dumps(self._doc), tomlkit.dumps(doc)
        # Both checked before either is written: a value holding bytes that are not UTF-8 (a folder named in
        # another encoding) cannot be stored, and half a save would part the config from its secrets.
        _utf8_only(config_text, "")
        _utf8_only(secrets_text, "a secret value is not valid UTF-8")
        from engine.configlock import config_lock

        # Under the home's lock, and only over the files this Home read: a change made by another command since
        # (one that did not hold the lock from its read to its write, as the CLI's do) is never written over.
        with config_lock(self.path):
            if (self._read(self.config_path), self._read(self.secrets_path)) != (self._text, self._secrets_text):
                raise UsageError(f"the configuration in {shown(self.path)} was changed by another command while "
                                 "this one ran; nothing was saved: run it again")
            _atomic_write(self.config_path, config_text, 0o644)
            _atomic_write(self.secrets_path, secrets_text, 0o600)
        self._text, self._secrets_text = config_text, secrets_text

    def _table(self, key: str) -> Any:
        import tomlkit

        if key not in self._doc:
            self._doc[key] = tomlkit.table()
        return self._doc[key]

    # -- settings ------------------------------------------------------------------------------------------
    def _settings(self) -> SettingsTable:
        if self._checked is not None:
            return self._checked.settings
        return _validate(SettingsTable, _plain(self._tables().get("settings", {})),
                         f"{shown(self.config_path)}: settings.")

    def setting(self, key: str) -> Any:
        if key not in _SETTING_FIELDS:
            raise UsageError(f"unknown setting '{shown(key)}' (known: {', '.join(SETTINGS)})")
        value = getattr(self._settings(), _SETTING_FIELDS[key])
        if key == "database-path" and not value:
            return os.path.join(self.path, "state.db")
        return value

    def settings(self) -> dict[str, Any]:
        return {k: self.setting(k) for k in SETTINGS}

    def set_setting(self, key: str, value: str | int) -> Any:
        """Set one setting from what a person typed; refused with one line naming it when it does not fit."""
        if key not in _SETTING_FIELDS:
            raise UsageError(f"unknown setting '{shown(key)}' (known: {', '.join(SETTINGS)})")
        parsed = _check_field(SettingsTable, key, value.strip() if isinstance(value, str) else value)
        if key == "database-path":
            path = parsed or os.path.join(self.path, "state.db")
            from engine import ownfiles

            why = ownfiles.problem(self, self.tasks(), path, "choose a path outside every task's folders")
            if why is not None:
                raise UsageError(why)
        self._table("settings")[key] = parsed
        return parsed

    # -- connections ---------------------------------------------------------------------------------------
    def connections(self) -> list[Connection]:
        return [self._connection(name, t) for name, t in self._tables().get("connections", {}).items()]

    def _connection(self, name: str, t: Any) -> Connection:
        if self._checked is not None:
            table = self._checked.connections[name]
        else:
            where = f"{shown(self.config_path)}: {_key_text(('connections', name))}."
            table = _validate(ConnectionTable, _plain(t), where)
        return Connection(
            name=name,
            provider=table.provider,
            options={str(k): _option_text(v) for k, v in table.options.items()},
            polling_period=table.polling_period,
            upload_limit=table.upload_limit,
            download_limit=table.download_limit,
            schedule=table.schedule,
            conflict_mode=table.conflict_mode,
            owner=table.owner,
        )

    def connection(self, name: str) -> Connection:
        t = self._tables().get("connections", {}).get(name)
        if t is None:
            raise UsageError(f"no connection named '{shown(name)}'")
        return self._connection(name, t)

    def has_connection(self, name: str) -> bool:
        return name in self._tables().get("connections", {})

    def secrets(self, name: str) -> dict[str, str]:
        return dict(self._secrets.get(name, {}))

    def all_options(self, name: str) -> dict[str, str]:
        """Options and secrets together: what a provider is constructed with."""
        return {**self.connection(name).options, **self.secrets(name)}

    def put_connection(self, conn: Connection, secrets: dict[str, str]) -> None:
        data: dict[str, Any] = {
            "provider": conn.provider,
            "options": dict(conn.options),
            "polling_period": conn.polling_period,
            "upload_limit": conn.upload_limit,
            "download_limit": conn.download_limit,
        }
        if conn.schedule != ALWAYS:
            data["schedule"] = conn.schedule
        if conn.conflict_mode != CONFLICT_DEFAULT:
            data["conflict_mode"] = conn.conflict_mode
        if conn.owner is not None:
            data["owner"] = conn.owner
        _validate(ConnectionTable, data, f"{_key_text(('connections', conn.name))}.")
        import tomlkit

        t = tomlkit.table()
        for k, v in data.items():
            if k == "options":
                opts = tomlkit.table()
                for ok, ov in v.items():
                    opts[ok] = ov
                v = opts
            t[k] = v
        existing = self._table("connections").get(conn.name)
        if existing is not None:
            for k in ("provider", "options", "polling_period", "upload_limit", "download_limit", "schedule",
                      "conflict_mode", "owner"):
                if k in t:
                    existing[k] = t[k]
                elif k in existing:
                    del existing[k]
        else:
            self._table("connections")[conn.name] = t
        self._secrets[conn.name] = dict(secrets)

    def remove_connection(self, name: str) -> None:
        self.connection(name)
        del self._doc["connections"][name]
        self._secrets.pop(name, None)

    def set_secret(self, conn_name: str, key: str, value: str) -> None:
        self._secrets.setdefault(conn_name, {})[key] = value

    # -- tasks ---------------------------------------------------------------------------------------------
    def tasks(self, connection: str | None = None) -> list[Task]:
        out = [self._task(n, t) for n, t in self._tables().get("tasks", {}).items()]
        return [t for t in out if connection is None or t.connection == connection]

    def _task(self, name: str, t: Any) -> Task:
        if self._checked is not None:
            table = self._checked.tasks[name]
        else:
            where = f"{shown(self.config_path)}: {_key_text(('tasks', name))}."
            table = _validate(TaskTable, _plain(t), where)
        # Field by field, lists copied (as model_dump would, without building TaskTable's serializer): a caller
        # changing its Task never changes the checked table.
        return Task(name=name, **{k: list(v) if isinstance(v, list) else v for k, v in table})

    def task(self, name: str) -> Task:
        t = self._tables().get("tasks", {}).get(name)
        if t is None:
            raise UsageError(f"no task named '{shown(name)}'")
        return self._task(name, t)

    def has_task(self, name: str) -> bool:
        return name in self._tables().get("tasks", {})

    def put_task(self, task: Task) -> None:
        data = task.public_dict()
        data.pop("name")
        _validate(TaskTable, data, f"{_key_text(('tasks', task.name))}.")
        existing = self._table("tasks").get(task.name)
        if existing is None:
            import tomlkit

            t = tomlkit.table()
            for k, v in data.items():
                t[k] = v
            self._table("tasks")[task.name] = t
        else:
            for k, v in data.items():
                existing[k] = v

    def remove_task(self, name: str) -> None:
        self.task(name)
        del self._doc["tasks"][name]

    def iter_task_names(self) -> Iterator[str]:
        yield from self._tables().get("tasks", {})

