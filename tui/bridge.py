"""The TUI's one door into the engine: config changes, provider access, passes and history.

Screens call these functions instead of engine modules, so the rules live once (engine.manage, engine.policy)
and the TUI only adds what it needs: saving the home, the wizard's dry-run checks, folder listings by level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine import manage
from engine.auth import accounts
from engine.auth.accounts import SignIn
from engine.auth.oauth import OAuthSpec
from engine.auth.tokens import Token, TokenStore
from engine.config import CONNECTION_COMMON, Connection, Home, Task
from engine.connect import open_provider, open_unsaved
from engine.errors import UsageError
from engine.events import Event, LogRecord
from engine.policy import validate_bucket
from engine.providers import kinds, provider_class
from engine.providers.base import OptionSpec, Provider
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION
from engine.state import StateDB

# Options that name the bucket/container: checked against the provider's bucket-name rules as the user types.
BUCKET_OPTIONS = frozenset({"bucket", "container"})
# Options skysync sets itself (the account read at sign-in): never a field to type into.
SET_BY_SKYSYNC = frozenset({ACCOUNT_OPTION.name})


# -- providers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    kind: str
    title: str
    options: tuple[OptionSpec, ...]
    note: str = ""


def providers() -> list[ProviderInfo]:
    """Every registered provider kind that is built in this installation, in registry order."""
    out = []
    for kind in kinds():
        try:
            cls = provider_class(kind)
        except Exception:  # a provider module that fails to import is simply not offered
            continue
        out.append(ProviderInfo(kind, getattr(cls, "title", kind), tuple(cls.option_specs), cls.setup_note))
    return out


def editable(specs: tuple[OptionSpec, ...] | list[OptionSpec]) -> list[OptionSpec]:
    """The options a user fills in (the account id is read at sign-in, not typed)."""
    return [s for s in specs if s.name not in SET_BY_SKYSYNC]


def signs_in(kind: str) -> bool:
    """Whether connections of this kind sign in through a browser (OAuth) rather than with keys."""
    try:
        return accounts.is_oauth(provider_class(kind))
    except Exception:
        return False


def offers_drives(kind: str) -> bool:
    """Whether the service has drives to choose from after the sign-in (Google's shared drives)."""
    try:
        return callable(getattr(provider_class(kind), "shared_drives", None))
    except Exception:
        return False


def provider_title(kind: str) -> str:
    try:
        return str(getattr(provider_class(kind), "title", kind))
    except Exception:
        return kind


def bucket_problem(kind: str, name: str, preset: str | None = None) -> str | None:
    """The bucket-name rule `name` breaks for this provider, in the spec's words; None when it is fine."""
    if not name:
        return None
    try:
        return validate_bucket(kind, name, preset)
    except UsageError as exc:  # an unknown preset: say so rather than guess
        return str(exc)


def test_connection(kind: str, options: Mapping[str, str]) -> None:
    """Validate the options and reach the service; raises ProviderError with a one-line message."""
    provider = open_unsaved(kind, options)
    try:
        provider.check()
    finally:
        provider.close()


def connection_provider(home: Home, name: str) -> Provider:
    return open_provider(home, name)


def child_folders(provider: Provider, folder: str) -> list[str]:
    """The names of the folders directly inside `folder` of a remote (sorted)."""
    return FolderIndex(provider).children(folder)


class FolderIndex:
    """Folder names of a remote for the folder pickers, asked one level at a time where the service can.

    A provider with a one-level listing (`Capabilities.list_dir`) is asked for each folder as the user opens
    it, so browsing a large account never lists all of it. Otherwise `Provider.list` is recursive: listing a
    folder already tells us every folder below it, and expanding those later costs nothing more. Used from
    worker threads only.
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._known: dict[str, set[str]] = {}

    def children(self, folder: str) -> list[str]:
        folder = folder.strip("/")
        if folder not in self._known:
            if self.provider.capabilities.list_dir:
                self._known[folder] = {e.path for e in self.provider.list_dir(folder) if e.is_dir}
            else:
                self._learn_below(folder)
        return sorted(self._known[folder], key=str.casefold)

    def _learn_below(self, folder: str) -> None:
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


# -- config changes: engine.manage holds every rule; these add saving and the TUI's shapes ---------------------


class _AccountReadLater(Exception):
    """Raised by the trial add's sign-in: every check before the account is read has passed."""


def _account_later(_spec: OAuthSpec) -> Token:
    raise _AccountReadLater


def check_new_connection(home: Home, name: str, kind: str, options: Mapping[str, str]) -> None:
    """Refuse a bad name or a credential another connection already uses (spec: one connection per credential).

    Runs the real add on a throwaway in-memory copy of the home, so the wizard shows exactly the engine's
    refusal. An OAuth kind's trial stops where the account would be read: reading it needs the network and may
    refresh the pasted token (a service that rotates refresh tokens would then refuse the real add's copy), and
    the add would write the token store, which is shared by path with the real home. The account, and the
    "one connection per account" rule that needs it, come once, with `read_account` and the real add.
    """
    trial = Home(home.path)
    if not signs_in(kind):
        manage.add_connection(trial, name, kind, dict(options))
        return
    text = options.get(TOKEN_OPTION.name, "")
    if text:
        accounts.token_from_option(text)  # a paste that is not a token is refused here, in one line
    without_token = {k: v for k, v in options.items() if k != TOKEN_OPTION.name}
    try:
        manage.add_connection(trial, name, kind, without_token, _account_later)
    except _AccountReadLater:
        return


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new connection's token and the account it signs in as, read once per wizard."""

    token: Token
    account_id: str

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"SignedIn(account_id={self.account_id!r})"


def read_account(kind: str, name: str, options: Mapping[str, str], signin: SignIn | None) -> SignedIn:
    """The pasted `token` (or, without one, a sign-in through `signin`) and the account it belongs to, read from
    the service; the token as refreshed on the way (what the connection must keep). Blocks: a worker thread."""
    cls = provider_class(kind)
    plain = {k: v for k, v in options.items() if k != TOKEN_OPTION.name}
    text = options.get(TOKEN_OPTION.name, "")
    token = accounts.token_from_option(text) if text else accounts.sign_in(cls, name, plain, signin)
    token, account = accounts.account_of(cls, name, plain, token)
    return SignedIn(token, account)


def _signed_options(options: Mapping[str, str], signed: SignedIn) -> dict[str, str]:
    return {**options, TOKEN_OPTION.name: signed.token.to_json()}


def drive_choices(kind: str, options: Mapping[str, str], signed: SignedIn) -> tuple[list[tuple[str, str]] | None,
                                                                                 SignedIn]:
    """The shared drives (id, name) the signed-in account can see, where the service has them (None where it
    has not), and the token as it is after asking (a refresh on the way is kept)."""
    provider = open_unsaved(kind, _signed_options(options, signed))
    try:
        listing = getattr(provider, "shared_drives", None)
        drives = list(listing()) if callable(listing) else None
        refreshed = provider.unsaved_token() if hasattr(provider, "unsaved_token") else None
    finally:
        provider.close()
    return drives, SignedIn(refreshed, signed.account_id) if refreshed is not None else signed


def drive_option(drive_id: str, drives: list[tuple[str, str]]) -> str:
    """The `shared_drive` value for a chosen drive: its name, which reads well in the config, unless another
    drive has the same name (then its id, which the provider also takes)."""
    names = [n for i, n in drives if i == drive_id]
    if len(names) == 1 and names[0] and sum(n == names[0] for _i, n in drives) == 1:
        return names[0]
    return drive_id


def add_signed_in_connection(home: Home, name: str, kind: str, options: Mapping[str, str],
                             common: Mapping[str, Any], signed: SignedIn) -> Connection:
    """Save an OAuth connection with the token `read_account` left (never the pasted one it may have spent),
    test it through its token store as a pass would open it, and save the home only when that works. Blocks."""
    merged = {k: v for k, v in _signed_options(options, signed).items() if v != ""} | _common_strings(common)
    conn = manage.add_connection(home, name, kind, merged)
    try:
        provider = open_provider(home, name)
        try:
            provider.check()
        finally:
            provider.close()
    except Exception:
        TokenStore(home.path, name).remove()  # the connection is not saved: neither is its token
        raise
    home.save()
    return conn


def login(home_path: str, name: str, signin: SignIn) -> None:
    """`skysync connection login NAME` from the app: sign in again, keeping the connection's tasks and state.
    Blocks: call it from a worker thread."""
    home = Home(home_path)
    if manage.login(home, name, signin):
        home.save()


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
    conn = manage.add_connection(home, name, kind, merged)
    home.save()
    return conn


def update_connection(
    home: Home, name: str, options: Mapping[str, str] | None = None, common: Mapping[str, Any] | None = None
) -> Connection:
    """Change provider options and/or common settings (polling, limits, schedule) of a connection; save."""
    conn = manage.edit_connection(home, name, dict(options or {}) | _common_strings(common or {}))
    home.save()
    return conn


def check_task(home: Home, task: Task, *, replacing: str | None = None) -> Task:
    """The task as the engine would store it, or UsageError with the reason it is refused."""
    return manage.validate_task(Home(home.path), replace(task), replacing=replacing)


def add_task(home: Home, task: Task, password: str | None = None) -> Task:
    """Add a task and save. An encrypted task needs the connection's encryption password (the engine sets it
    with the first encrypted task of a connection and checks it for later ones)."""
    task = manage.add_task(home, replace(task), password)
    home.save()
    return task


def edit_task(home: Home, task: Task) -> Task:
    changes = {k: v for k, v in task.public_dict().items() if k not in ("name", "connection", "encrypt")}
    task = manage.edit_task(home, task.name, changes)
    home.save()
    return task


def set_paused(home: Home, task_name: str, paused: bool) -> None:
    task = home.task(task_name)
    task.paused = paused
    home.put_task(task)
    home.save()


def remove_task(home: Home, name: str) -> None:
    """Unlink a task: its files stay on both sides; its configuration and sync state go (as the CLI does)."""
    manage.remove_task(home, name)
    home.save()
    _forget_state(home, [name])


def remove_connection(home: Home, name: str) -> list[str]:
    """Remove a connection and unlink its tasks (files stay); returns the unlinked task names."""
    removed = list(manage.remove_connection(home, name))
    home.save()
    _forget_state(home, removed)
    return removed


def _forget_state(home: Home, tasks: list[str]) -> None:
    path = home.setting("database-path")
    if not tasks or not os.path.exists(path):
        return
    db = StateDB(path)
    try:
        for task in tasks:
            db.forget_task(task)
    finally:
        db.close()


def set_settings(home: Home, values: Mapping[str, str]) -> None:
    """Validate every value first so a bad one changes nothing, then save. A new database path moves the state
    database there with its history (engine.dbmove, as `skysync settings set` does), never an empty start."""
    from engine.dbmove import move_database, target_path
    from engine.runtime.lock import EngineLock

    current = home.setting("database-path")
    for key, value in values.items():
        home.set_setting(key, value)  # raises UsageError with the one-line message
    new = values.get("database-path")
    if new is not None and target_path(home, new) != current:
        home.set_setting("database-path", current)  # move_database sets it once the copy is verified
        move_database(home, new, EngineLock(home.path))  # saves the home
        return
    home.save()


def ordered_connections(home: Home) -> list[Connection]:
    """The admin view order: by user (as created) or by cloud type."""
    conns = home.connections()
    if home.setting("admin-order") == "cloud-type":
        conns.sort(key=lambda c: (c.provider, c.name.casefold()))
    return conns


# -- passes and history --------------------------------------------------------------------------------------


def run_pass(home_path: str, task: str, *, dry_run: bool, on_event: Callable[[Event], None], **extra: Any) -> Any:
    """One pass of a task in the calling thread (the TUI calls it from a worker)."""
    from engine.sync import run_pass as engine_pass  # the sync engine loads when a pass is first wanted

    return engine_pass(Home(home_path), task, dry_run=dry_run, on_event=on_event, **extra)


def load_history(home: Home, limit: int = 1000) -> list[LogRecord]:
    """The most recent history-log records, oldest first; empty when there is no state database yet."""
    path = home.setting("database-path")
    if not os.path.exists(path):
        return []
    try:
        db = StateDB(path)
    except Exception:  # a locked or damaged database just means an empty log view
        return []
    try:
        return list(db.read_log(limit=limit))
    except Exception:
        return []
    finally:
        db.close()


def has_encryption_key(home: Home, name: str) -> bool:
    return manage.has_encryption_key(home, name)


def export_key(home: Home, name: str, out: str) -> str:
    return manage.export_encryption_key(home, name, out)


# -- conflict mode, rclone remotes ---------------------------------------------------------------------------


def conflict_mode(home_path: str, name: str) -> tuple[str, str]:
    """(mode, reason) the connection's passes use for a conflict (engine.revisions); opens the provider and may
    ask the service, so call it from a thread worker."""
    from engine import revisions

    return revisions.for_connection(Home(home_path), name)


def rclone_config_path(explicit: str | None = None) -> str:
    return manage.rclone_config_path(explicit)


def rclone_remotes(config: str) -> list[tuple[str, str]]:
    """(name, rclone type) of every remote in an rclone config file; UsageError in one line for a missing,
    unreadable, encrypted or broken file."""
    return manage.list_rclone_remotes(manage.rclone_config_path(config))


def import_rclone(home_path: str, config: str, remote: str, name: str | None) -> tuple[Connection, list[str]]:
    """Add a connection from an rclone remote (REMOTE or REMOTE:BUCKET/FOLDER), test it as the CLI does, and save
    the home: a refused remote or a failing test adds no connection. Returns it and the import's notes."""
    from engine.providers.base import ProviderError

    home = Home(home_path)
    conn, notes = manage.import_rclone(home, config, remote, name)
    try:
        provider = open_provider(home, conn.name)
        try:
            provider.check()
        finally:
            provider.close()
    except ProviderError as exc:
        raise UsageError(f"connection '{conn.name}' failed its test: {exc}") from None
    home.save()
    return conn, notes
