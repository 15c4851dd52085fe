"""The TUI's one door into the engine: config changes, provider access, passes and history.

Screens never import engine modules that are still being written; they call these functions. Each function uses
the engine's own implementation when it exists (engine.manage, engine.sync, engine.state, engine.policy's bucket
rules) and a faithful fallback otherwise, so switching to the engine's version is a one-line change here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

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
from engine.events import Event, LogRecord
from engine.providers import kinds, provider_class
from engine.providers.base import OptionSpec, Provider, ProviderError

# Options shown on the wizard's "advanced settings" step rather than on the main form (spec: advanced settings).
ADVANCED_OPTIONS = frozenset({"storage_class", "part_size", "segment_size", "block_size", "addressing_style"})
# Options that name the bucket/container: checked against the provider's bucket-name rules as the user types.
BUCKET_OPTIONS = frozenset({"bucket", "container"})


def _optional(module: str) -> Any | None:
    """Import an engine module that may not exist yet (it is written in parallel with the TUI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# -- providers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    kind: str
    title: str
    options: tuple[OptionSpec, ...]


def providers() -> list[ProviderInfo]:
    """Every registered provider kind that is built in this installation, in registry order."""
    out = []
    for kind in kinds():
        try:
            cls = provider_class(kind)
        except Exception:  # a provider module that fails to import is simply not offered
            continue
        out.append(ProviderInfo(kind, getattr(cls, "title", kind), tuple(cls.option_specs)))
    return out


def provider_title(kind: str) -> str:
    try:
        return str(getattr(provider_class(kind), "title", kind))
    except Exception:
        return kind


def bucket_problem(kind: str, name: str, preset: str | None = None) -> str | None:
    """The bucket-name rule `name` breaks for this provider, in the spec's words; None when it is fine."""
    policy = _optional("engine.policy")
    check = getattr(policy, "validate_bucket", None)
    if check is None or not name:
        return None
    try:
        result = check(kind, name, preset)
    except (UsageError, ValueError) as exc:
        return str(exc)
    if isinstance(result, str) and result:
        return result
    return None


def open_provider(kind: str, options: Mapping[str, str]) -> Provider:
    cls = provider_class(kind)
    cls.validate_options(options)
    return cls(options)


def test_connection(kind: str, options: Mapping[str, str]) -> None:
    """Validate the options and reach the service; raises ProviderError with a one-line message."""
    provider = open_provider(kind, options)
    try:
        provider.check()
    finally:
        provider.close()


def connection_provider(home: Home, name: str) -> Provider:
    conn = home.connection(name)
    return open_provider(conn.provider, home.all_options(name))


def child_folders(provider: Provider, folder: str) -> list[str]:
    """The names of the folders directly inside `folder` of a remote (sorted)."""
    return FolderIndex(provider).children(folder)


class FolderIndex:
    """Folder names of a remote, remembered from every listing.

    `Provider.list` is recursive, so listing a folder already tells us every folder below it; expanding those
    later costs nothing more (the lazy tree asks again at each level). Used from worker threads only.
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._known: dict[str, set[str]] = {}

    def children(self, folder: str) -> list[str]:
        folder = folder.strip("/")
        if folder not in self._known:
            self._known[folder] = set()
            prefix = folder + "/" if folder else ""
            for entry in self.provider.list(folder):
                parts = entry.path.split("/")
                dirs = parts if entry.is_dir else parts[:-1]
                for depth in range(len(dirs)):
                    parent = prefix + "/".join(dirs[:depth])
                    self._known.setdefault(parent.rstrip("/"), set()).add(dirs[depth])
                for depth in range(len(dirs) + 1):
                    self._known.setdefault((prefix + "/".join(dirs[:depth])).rstrip("/"), set())
        return sorted(self._known[folder], key=str.casefold)

    def forget(self, folder: str) -> None:
        """After creating a folder: list this part of the tree again."""
        folder = folder.strip("/")
        for key in [k for k in self._known if k == folder or k.startswith(folder + "/") or not folder]:
            del self._known[key]


def local_child_folders(root: str, folder: str) -> list[str]:
    path = os.path.join(root, folder) if folder else root
    try:
        with os.scandir(path) as it:
            return sorted(
                (e.name for e in it if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")),
                key=str.casefold,
            )
    except OSError:
        return []


# -- config changes (engine.manage when it lands) ------------------------------------------------------------


def _manage() -> Any | None:
    return _optional("engine.manage")


def check_new_connection(home: Home, name: str, kind: str, options: Mapping[str, str]) -> None:
    """Refuse a bad name or a credential another connection already uses (spec: one connection per credential).

    Runs the real add on a throwaway copy of the home, so the wizard shows exactly the engine's refusal.
    """
    manage = _manage()
    if manage is not None:
        manage.add_connection(Home(home.path), name, kind, dict(options))
        return
    if not name or name != name.strip() or "/" in name:
        raise UsageError("the connection name must not be empty, start or end with a space, or contain '/'")
    if home.has_connection(name):
        raise UsageError(f"a connection named '{name}' already exists")
    cls = provider_class(kind)
    try:
        cls.validate_options(options)
    except ProviderError as exc:
        raise UsageError(str(exc)) from None
    identity = cls.identity(options)
    for other in home.connections():
        if other.provider == kind and cls.identity(home.all_options(other.name)) == identity:
            raise UsageError(f"connection '{other.name}' already uses this credential")


def _common_strings(common: Mapping[str, Any]) -> dict[str, str]:
    for key in common:
        if key not in CONNECTION_COMMON:
            raise UsageError(f"unknown connection setting '{key}'")
    return {k: str(v) for k, v in common.items()}


def add_connection(
    home: Home, name: str, kind: str, options: Mapping[str, str], common: Mapping[str, Any] | None = None
) -> Connection:
    """Create a connection (options include secrets) with its common settings, and save the home."""
    merged = {k: v for k, v in options.items() if v != ""} | _common_strings(common or {})
    manage = _manage()
    if manage is not None:
        conn = manage.add_connection(home, name, kind, merged)
        home.save()
        return conn
    check_new_connection(home, name, kind, options)
    specs = {s.name: s for s in provider_class(kind).option_specs}
    public = {k: v for k, v in options.items() if v != "" and not (k in specs and specs[k].secret)}
    secret = {k: v for k, v in options.items() if v != "" and k in specs and specs[k].secret}
    conn = Connection(name=name, provider=kind, options=public)
    conn = replace(conn, **_parse_common(common or {}))
    home.put_connection(conn, secret)
    home.save()
    return conn


def _parse_common(common: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _common_strings(common).items():
        if key == "polling_period":
            out[key] = parse_polling(value)
        elif key in ("upload_limit", "download_limit"):
            out[key] = parse_limit(value)
        else:
            out[key] = parse_schedule(value)
    return out


def update_connection(
    home: Home, name: str, options: Mapping[str, str] | None = None, common: Mapping[str, Any] | None = None
) -> Connection:
    """Change provider options and/or common settings (polling, limits, schedule) of a connection; save."""
    options = dict(options or {})
    manage = _manage()
    if manage is not None:
        conn = manage.edit_connection(home, name, options | _common_strings(common or {}))
        home.save()
        return conn
    conn = home.connection(name)
    conn = replace(conn, options={k: v for k, v in (conn.options | options).items() if v != ""},
                   **_parse_common(common or {}))
    try:
        provider_class(conn.provider).validate_options({**home.secrets(name), **conn.options})
    except ProviderError as exc:
        raise UsageError(str(exc)) from None
    home.put_connection(conn, home.secrets(name))
    home.save()
    return conn


def _inside(a: str, b: str) -> bool:
    a, b = os.path.realpath(a), os.path.realpath(b)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def check_task(home: Home, task: Task, *, replacing: str | None = None) -> Task:
    """The task as the engine would store it, or UsageError with the reason it is refused."""
    manage = _manage()
    if manage is not None:
        return manage.validate_task(Home(home.path), replace(task), replacing=replacing)
    if not task.name or task.name != task.name.strip() or "/" in task.name:
        raise UsageError("the task name must not be empty, start or end with a space, or contain '/'")
    if replacing is None and home.has_task(task.name):
        raise UsageError(f"a task named '{task.name}' already exists")
    home.connection(task.connection)
    if task.direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of: {', '.join(DIRECTIONS)}")
    if not os.path.isdir(os.path.expanduser(task.local)):
        raise UsageError(f"the local folder {task.local} does not exist")
    if task.no_delete and task.direction == "bidirectional":
        raise UsageError("no-delete applies to one-way tasks only (upload or download)")
    for other in home.tasks(task.connection):
        if other.name in (task.name, replacing):
            continue
        if _inside(task.local, other.local) or _inside(other.local, task.local):
            raise UsageError(f"the local folder overlaps the folder of task '{other.name}' on the same connection")
    return task


def add_task(home: Home, task: Task, password: str | None = None) -> Task:
    """Add a task and save. An encrypted task needs the connection's encryption password (the engine sets it
    with the first encrypted task of a connection and checks it for later ones)."""
    manage = _manage()
    if manage is not None:
        task = manage.add_task(home, replace(task), password) if password else manage.add_task(home, replace(task))
    else:
        task = check_task(home, task)
        home.put_task(task)
    home.save()
    return task


def has_encryption_key(home: Home, connection: str) -> bool:
    return "encryption_private_key" in home.secrets(connection)


def export_key(home: Home, connection: str, out: str) -> None:
    """Write the connection's key.zip (public.pem and private.pem), mode 0600, as `connection export-key`."""
    recovery = _optional("engine.crypto.recovery")
    if recovery is None or not hasattr(recovery, "export_key_zip"):
        raise UsageError("encryption is not available in this build")
    secrets = home.secrets(connection)
    if "encryption_private_key" not in secrets:
        raise UsageError(f"connection '{connection}' has no encryption key (no encrypted task yet)")
    out = os.path.abspath(os.path.expanduser(out))
    if os.path.isdir(out):
        out = os.path.join(out, f"{connection}-key.zip")
    try:
        recovery.export_key_zip(secrets["encryption_public_key"].encode(), secrets["encryption_private_key"].encode(),
                                out)
        os.chmod(out, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None


def edit_task(home: Home, task: Task) -> Task:
    manage = _manage()
    if manage is not None:
        changes = {k: v for k, v in task.public_dict().items() if k not in ("name", "connection", "encrypt")}
        task = manage.edit_task(home, task.name, changes)
    else:
        task = check_task(home, task, replacing=task.name)
        home.put_task(task)
    home.save()
    return task


def set_paused(home: Home, task_name: str, paused: bool) -> None:
    task = home.task(task_name)
    task.paused = paused
    home.put_task(task)
    home.save()


def remove_task(home: Home, name: str) -> None:
    """Unlink a task: its files stay on both sides."""
    manage = _manage()
    if manage is not None:
        manage.remove_task(home, name)
    else:
        home.remove_task(name)
    home.save()


def remove_connection(home: Home, name: str) -> list[str]:
    """Remove a connection and unlink its tasks (files stay); returns the unlinked task names."""
    manage = _manage()
    if manage is not None:
        removed = list(manage.remove_connection(home, name))
    else:
        removed = [t.name for t in home.tasks(name)]
        for task in removed:
            home.remove_task(task)
        home.remove_connection(name)
    home.save()
    return removed


def set_settings(home: Home, values: Mapping[str, str]) -> None:
    """Validate every value first so a bad one changes nothing, then save."""
    for key, value in values.items():
        home.set_setting(key, value)  # raises UsageError with the one-line message
    home.save()


def ordered_connections(home: Home) -> list[Connection]:
    """The admin view order: by user (as created) or by cloud type."""
    conns = home.connections()
    if home.setting("admin-order") == "cloud-type":
        conns.sort(key=lambda c: (c.provider, c.name.casefold()))
    return conns


# -- passes and history --------------------------------------------------------------------------------------


def sync_available() -> bool:
    return hasattr(_optional("engine.sync"), "run_pass")


def run_pass(home_path: str, task: str, *, dry_run: bool, on_event: Callable[[Event], None], **extra: Any) -> Any:
    """One pass of a task in the calling thread (the TUI calls it from a worker)."""
    sync = _optional("engine.sync")
    if sync is None or not hasattr(sync, "run_pass"):
        raise UsageError("the sync engine is not available in this build")
    return sync.run_pass(Home(home_path), task, dry_run=dry_run, on_event=on_event, **extra)


def load_history(home: Home, limit: int = 1000) -> list[LogRecord]:
    """The most recent history-log records, oldest first; empty when there is no state database yet."""
    state = _optional("engine.state")
    path = home.setting("database-path")
    if state is None or not hasattr(state, "StateDB") or not os.path.exists(path):
        return []
    try:
        db = state.StateDB(path)
    except Exception:  # a locked or damaged database just means an empty log view
        return []
    try:
        return list(db.read_log(limit=limit))
    except Exception:
        return []
    finally:
        db.close()
