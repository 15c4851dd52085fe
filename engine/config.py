"""The home folder: connections, tasks and settings in `config.toml`, secrets in `secrets.toml` (mode 0600).

The config is rewritten with tomlkit so a user's comments and layout survive; secrets never enter config.toml.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import tomlkit

from engine.errors import UsageError

CONFIG_NAME = "config.toml"
SECRETS_NAME = "secrets.toml"
DIRECTIONS = ("bidirectional", "upload", "download")

# setting name -> (default, parser/validator); the spec's admin settings plus the safety guard's threshold.
LOG_MIN, LOG_MAX = 5, 100_000


def _int_range(lo: int, hi: int, what: str):
    def parse(value: str | int) -> int:
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise UsageError(f"{what} must be a whole number from {lo} to {hi}") from None
        if not lo <= n <= hi:
            raise UsageError(f"{what} must be from {lo} to {hi}, not {n}")
        return n

    return parse


def _path(value: str | int) -> str:
    text = str(value)
    if not text or not os.path.isabs(os.path.expanduser(text)):
        raise UsageError("database-path must be an absolute path")
    return os.path.expanduser(text)


SETTINGS: dict[str, tuple[Any, Any]] = {
    "concurrency": (4, _int_range(1, 20, "concurrency")),
    "log-max-records": (10_000, _int_range(LOG_MIN, LOG_MAX, "log-max-records")),
    "database-path": ("", _path),
    "mass-delete-percent": (50, _int_range(1, 100, "mass-delete-percent")),
    "mass-delete-min-files": (10, _int_range(0, 1_000_000, "mass-delete-min-files")),
    "admin-order": ("user", lambda v: _choice(v, ("user", "cloud-type"), "admin-order")),
}


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise UsageError(f"{what} must be one of: {', '.join(choices)}")
    return value


POLLING_MIN, POLLING_MAX, POLLING_DEFAULT = 10, 86_400, 60
CONNECTION_COMMON = ("polling_period", "upload_limit", "download_limit", "schedule")
ALWAYS = "1" * 168  # 7 days x 24 hours, Monday 00:00 first


def parse_polling(value: str | int) -> int:
    return _int_range(POLLING_MIN, POLLING_MAX, "polling_period (seconds)")(value)


def parse_limit(value: str | int) -> int:
    return _int_range(0, 10_000_000, "a traffic limit (KiB/s, 0 = unlimited)")(value)


def parse_schedule(value: str) -> str:
    value = str(value).strip()
    if len(value) != 168 or set(value) - {"0", "1"}:
        raise UsageError("schedule must be 168 characters of 0 and 1 (7 days x 24 hours, Monday 00:00 first)")
    return value


@dataclass
class Connection:
    name: str
    provider: str
    options: dict[str, str] = field(default_factory=dict)  # non-secret options
    polling_period: int = POLLING_DEFAULT
    upload_limit: int = 0
    download_limit: int = 0
    schedule: str = ALWAYS

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
    paused: bool = False

    def public_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def remote_folder(self) -> str:
        """The remote path without slashes at either end ("" for the root)."""
        return self.remote.strip("/")


def default_home() -> str:
    import platformdirs

    return platformdirs.user_config_dir("skysync")


def resolve_home(explicit: str | None) -> str:
    home = explicit or os.environ.get("SKYSYNC_HOME") or default_home()
    return os.path.abspath(os.path.expanduser(home))


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
        self._doc = self._load_doc()
        self._secrets = self._load_secrets()

    # -- files ---------------------------------------------------------------------------------------------
    def _load_doc(self) -> tomlkit.TOMLDocument:
        try:
            with open(self.config_path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            doc = tomlkit.document()
            doc.add(tomlkit.comment("skysync configuration; secrets live in secrets.toml (mode 0600)"))
            return doc
        try:
            return tomlkit.parse(text)
        except Exception as exc:  # tomlkit raises several types; all mean the same to the user
            raise UsageError(f"{self.config_path} is not valid TOML: {exc}") from None

    def _load_secrets(self) -> dict[str, dict[str, str]]:
        try:
            with open(self.secrets_path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            return {}
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{self.secrets_path} is not valid TOML: {exc}") from None
        return {k: dict(v) for k, v in data.get("connections", {}).items()}

    def save(self) -> None:
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        _atomic_write(self.config_path, tomlkit.dumps(self._doc), 0o644)
        doc = tomlkit.document()
        doc.add(tomlkit.comment("skysync secrets: keep this file private (mode 0600)"))
        conns = tomlkit.table()
        for name, values in sorted(self._secrets.items()):
            if values:
                conns[name] = values
        doc["connections"] = conns
        _atomic_write(self.secrets_path, tomlkit.dumps(doc), 0o600)

    def _table(self, key: str) -> Any:
        if key not in self._doc:
            self._doc[key] = tomlkit.table()
        return self._doc[key]

    # -- settings ------------------------------------------------------------------------------------------
    def setting(self, key: str) -> Any:
        if key not in SETTINGS:
            raise UsageError(f"unknown setting '{key}' (known: {', '.join(SETTINGS)})")
        default, parse = SETTINGS[key]
        value = self._doc.get("settings", {}).get(key, default)
        if key == "database-path" and not value:
            return os.path.join(self.path, "state.db")
        return parse(value) if value != default else default

    def settings(self) -> dict[str, Any]:
        return {k: self.setting(k) for k in SETTINGS}

    def set_setting(self, key: str, value: str) -> Any:
        if key not in SETTINGS:
            raise UsageError(f"unknown setting '{key}' (known: {', '.join(SETTINGS)})")
        parsed = SETTINGS[key][1](value)
        self._table("settings")[key] = parsed
        return parsed

    # -- connections ---------------------------------------------------------------------------------------
    def connections(self) -> list[Connection]:
        return [self._connection(name, t) for name, t in self._doc.get("connections", {}).items()]

    def _connection(self, name: str, t: Any) -> Connection:
        return Connection(
            name=name,
            provider=str(t.get("provider", "")),
            options={str(k): str(v) for k, v in t.get("options", {}).items()},
            polling_period=int(t.get("polling_period", POLLING_DEFAULT)),
            upload_limit=int(t.get("upload_limit", 0)),
            download_limit=int(t.get("download_limit", 0)),
            schedule=str(t.get("schedule", ALWAYS)),
        )

    def connection(self, name: str) -> Connection:
        t = self._doc.get("connections", {}).get(name)
        if t is None:
            raise UsageError(f"no connection named '{name}'")
        return self._connection(name, t)

    def has_connection(self, name: str) -> bool:
        return name in self._doc.get("connections", {})

    def secrets(self, name: str) -> dict[str, str]:
        return dict(self._secrets.get(name, {}))

    def all_options(self, name: str) -> dict[str, str]:
        """Options and secrets together: what a provider is constructed with."""
        return {**self.connection(name).options, **self.secrets(name)}

    def put_connection(self, conn: Connection, secrets: dict[str, str]) -> None:
        t = tomlkit.table()
        t["provider"] = conn.provider
        opts = tomlkit.table()
        for k, v in conn.options.items():
            opts[k] = v
        t["options"] = opts
        t["polling_period"] = conn.polling_period
        t["upload_limit"] = conn.upload_limit
        t["download_limit"] = conn.download_limit
        if conn.schedule != ALWAYS:
            t["schedule"] = conn.schedule
        existing = self._table("connections").get(conn.name)
        if existing is not None:
            for k in ("provider", "options", "polling_period", "upload_limit", "download_limit", "schedule"):
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
        out = [self._task(n, t) for n, t in self._doc.get("tasks", {}).items()]
        return [t for t in out if connection is None or t.connection == connection]

    def _task(self, name: str, t: Any) -> Task:
        kwargs: dict[str, Any] = {"name": name}
        for f in fields(Task):
            if f.name != "name" and f.name in t:
                value = t[f.name]
                kwargs[f.name] = list(value) if isinstance(value, list) else value
        return Task(**kwargs)

    def task(self, name: str) -> Task:
        t = self._doc.get("tasks", {}).get(name)
        if t is None:
            raise UsageError(f"no task named '{name}'")
        return self._task(name, t)

    def has_task(self, name: str) -> bool:
        return name in self._doc.get("tasks", {})

    def put_task(self, task: Task) -> None:
        data = task.public_dict()
        data.pop("name")
        existing = self._table("tasks").get(task.name)
        if existing is None:
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
        yield from self._doc.get("tasks", {})
