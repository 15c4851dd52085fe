"""Adding, editing and removing connections and tasks, with every refusal the CLI and the TUI share.

Each function validates first and changes the Home only when everything holds; the caller saves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from engine.config import (
    CONNECTION_COMMON,
    DIRECTIONS,
    Connection,
    Home,
    Task,
    parse_limit,
    parse_polling,
    parse_schedule,
)
from engine.errors import UsageError
from engine.providers import UnknownProvider, provider_class
from engine.providers.base import InvalidOption, Provider

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise UsageError(
            f"{kind} name '{name}' must start with a letter or digit and use only letters, digits, '.', '_', '-'"
        )


def _provider(kind: str) -> type[Provider]:
    try:
        return provider_class(kind)
    except UnknownProvider as exc:
        raise UsageError(str(exc)) from None


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
        conn.upload_limit = parse_limit(common["upload_limit"])
    if "download_limit" in common:
        conn.download_limit = parse_limit(common["download_limit"])
    if "schedule" in common:
        conn.schedule = parse_schedule(common["schedule"])


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


def add_connection(home: Home, name: str, kind: str, options: Mapping[str, str]) -> Connection:
    check_name("connection", name)
    if home.has_connection(name):
        raise UsageError(f"a connection named '{name}' already exists")
    cls = _provider(kind)
    plain, secret, common = _split_options(cls, options)
    _validate(cls, {**plain, **secret})
    _check_identity(home, cls, name, {**plain, **secret})
    conn = Connection(name=name, provider=kind, options=plain)
    _apply_common(conn, common)
    home.put_connection(conn, secret)
    return conn


def edit_connection(home: Home, name: str, options: Mapping[str, str]) -> Connection:
    conn = home.connection(name)
    cls = _provider(conn.provider)
    plain, secret, common = _split_options(cls, options)
    new_plain = {**conn.options, **plain}
    new_secret = {**home.secrets(name), **secret}
    _validate(cls, {**new_plain, **new_secret})
    _check_identity(home, cls, name, {**new_plain, **new_secret})
    conn.options = new_plain
    _apply_common(conn, common)
    home.put_connection(conn, new_secret)
    return conn


def remove_connection(home: Home, name: str) -> list[str]:
    """Remove a connection and its tasks (files stay where they are); returns the removed task names."""
    home.connection(name)
    removed = [t.name for t in home.tasks(name)]
    for task in removed:
        home.remove_task(task)
    home.remove_connection(name)
    return removed


def normalize_remote(remote: str) -> str:
    parts = [p for p in remote.replace("\\", "/").split("/") if p]
    if any(p in (".", "..") or "\x00" in p for p in parts):
        raise UsageError(f"remote path '{remote}' must not contain '.' or '..' parts")
    return "/" + "/".join(parts)


def normalize_relative(path: str, what: str) -> str:
    parts = [p for p in path.strip().split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise UsageError(f"{what} '{path}' must be a path relative to the task folder, without '..'")
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
    local = os.path.abspath(os.path.expanduser(task.local))
    if not os.path.isdir(local):
        raise UsageError(f"local folder {task.local} does not exist or is not a folder")
    task.local = os.path.realpath(local)
    task.remote = normalize_remote(task.remote)
    if task.max_size < 0:
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
                f"local folder {task.local} overlaps task '{other.name}' ({other.local}) in the same connection"
            )
        if _inside(task.remote, other.remote) or _inside(other.remote, task.remote):
            raise UsageError(
                f"remote folder {task.remote} overlaps task '{other.name}' ({other.remote}) in the same connection"
            )
    return task


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


