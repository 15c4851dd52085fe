"""The system engine's gate: what each Unix user may see and do through `skysync run --system`'s socket.

Every request is answered for the peer's uid as the kernel reports it (engine.runtime.control.Peer): root sees
and manages everything; any other user sees only the connections they own and the tasks of those, and may
sync, pause, resume, add and remove only those. Someone else's connection or task is answered exactly as one
that does not exist, so a user cannot even learn its name. Connections and tasks a user adds are theirs, their
folders checked against them (engine.owners): nobody syncs root's or another user's folder through the root
engine.

Requests, beyond the user engine's (engine.runtime.control):
  {"cmd": "connections"} -> {"ok": true, "connections": [{"name", "provider", "owner", "user", "tasks"}],
                             "admin": bool}
  {"cmd": "connection-add", "name", "provider", "options": {...}, "owner": uid (root only)}
  {"cmd": "connection-remove", "name"}
  {"cmd": "task-add", "task": {name, connection, local, remote, direction, ...}}
  {"cmd": "task-remove", "name"}
"""

from __future__ import annotations

import os
import threading
from typing import Any

from engine.config import Home, Task
from engine.configlock import config_lock
from engine.errors import SkysyncError, UsageError
from engine.owners import ROOT_UID, check_folder, check_option_paths, may_manage, owner_of, user_name
from engine.runtime.control import Peer

# Task fields a client may set when it adds a task (the rest keep their defaults). No `encrypt`: the password
# would have to cross the socket and the key pair be made as root; encrypted tasks stay with user engines.
TASK_FIELDS = frozenset({
    "name", "connection", "local", "remote", "direction", "no_delete", "consistency_check", "exclude_folders",
    "exclude_names", "exclude_exts", "max_size", "case_insensitive", "convert_google_docs",
})


def _hidden(kind: str, name: object) -> UsageError:
    """The same words for someone else's item as for a missing one (engine.config's own message)."""
    return UsageError(f"no {kind} named '{name}'")


class SystemGate:
    """`handle(request, peer)` for engine.runtime.control.SystemControlServer, over one running Engine."""

    def __init__(self, engine: Any, home_path: str) -> None:
        self.engine = engine
        self.home_path = home_path
        # One change of config.toml at a time, whoever asks: the thread lock among this engine's threads, the home's
        # configuration lock (engine.configlock) against commands run as root beside it.
        self._edit = threading.Lock()

    # -- ownership -----------------------------------------------------------------------------------------
    def _owners(self, home: Home) -> dict[str, int | None]:
        return {c.name: c.owner for c in home.connections()}

    def _visible(self, home: Home, uid: int) -> set[str]:
        return {name for name, owner in self._owners(home).items() if may_manage(uid, owner)}

    def _own_connection(self, home: Home, uid: int, name: object) -> str:
        if not isinstance(name, str) or name not in self._visible(home, uid):
            raise _hidden("connection", name)
        return name

    def _own_task(self, home: Home, uid: int, name: object) -> str:
        tasks = {t.name: t.connection for t in home.tasks()}
        if not isinstance(name, str) or tasks.get(name) not in self._visible(home, uid):
            raise _hidden("task", name)
        return name

    # -- dispatch ------------------------------------------------------------------------------------------
    def handle(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        cmd = request.get("cmd")
        uid = peer.uid
        try:
            home = Home(self.home_path)
            if cmd == "ping":
                return {"ok": True, "pid": os.getpid(), "system": True, "uid": uid, "admin": uid == ROOT_UID}
            if cmd == "status":
                return {"ok": True, **self._status(home, uid)}
            if cmd == "connections":
                return {"ok": True, "admin": uid == ROOT_UID, "connections": self._connections(home, uid)}
            if cmd == "sync-now":
                self._sync_now(home, uid, request)
            elif cmd in ("pause", "resume"):
                self._pause(home, uid, cmd, request)
            elif cmd == "reload":
                self.engine.reload()  # re-reads what is on disk; harmless whoever asks
            elif cmd == "connection-add":
                return {"ok": True, "connection": self._connection_add(uid, request)}
            elif cmd == "connection-remove":
                return {"ok": True, "tasks": self._connection_remove(uid, request.get("name"))}
            elif cmd == "task-add":
                self._task_add(uid, request.get("task"))
            elif cmd == "task-remove":
                self._task_remove(uid, request.get("name"))
            else:
                raise UsageError(f"unknown command {cmd!r}")
        except SkysyncError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True}

    def _status(self, home: Home, uid: int) -> dict[str, Any]:
        status = self.engine.status()
        shown = self._visible(home, uid)
        owners = self._owners(home)
        return {
            **status,
            "connections": {n: c for n, c in status["connections"].items() if n in shown},
            "tasks": {n: t for n, t in status["tasks"].items() if t.get("connection") in shown},
            "owners": {n: user_name(owners.get(n)) for n in status["connections"] if n in shown},
        }

    def _connections(self, home: Home, uid: int) -> list[dict[str, Any]]:
        visible = self._visible(home, uid)
        return [
            {"name": c.name, "provider": c.provider, "owner": c.owner if c.owner is not None else ROOT_UID,
             "user": user_name(c.owner), "tasks": [t.name for t in home.tasks(c.name)]}
            for c in home.connections() if c.name in visible
        ]

    def _sync_now(self, home: Home, uid: int, request: dict[str, Any]) -> None:
        force = bool(request.get("force"))
        task = request.get("task")
        if task is not None:
            self.engine.sync_now(self._own_task(home, uid, task), force=force)
        elif uid == ROOT_UID:
            self.engine.sync_now(None, force=force)
        else:  # "all tasks" of a user is all of *their* tasks
            visible = self._visible(home, uid)
            for t in home.tasks():
                if t.connection in visible:
                    self.engine.sync_now(t.name, force=force)

    def _pause(self, home: Home, uid: int, cmd: str, request: dict[str, Any]) -> None:
        task, connection = request.get("task"), request.get("connection")
        if bool(task) == bool(connection):
            raise UsageError(f"{cmd} needs exactly one of task or connection")
        if task:
            name = self._own_task(home, uid, task)
            (self.engine.pause_task if cmd == "pause" else self.engine.resume_task)(name)
        else:
            name = self._own_connection(home, uid, connection)
            (self.engine.pause_connection if cmd == "pause" else self.engine.resume_connection)(name)

    # -- changes to the config -----------------------------------------------------------------------------
    def _connection_add(self, uid: int, request: dict[str, Any]) -> str:
        from engine import manage

        name, kind, options = request.get("name"), request.get("provider"), request.get("options") or {}
        if not isinstance(name, str) or not isinstance(kind, str) or not isinstance(options, dict):
            raise UsageError("connection-add needs a name, a provider and options")
        owner_uid = request.get("owner", uid)
        if owner_uid != uid and uid != ROOT_UID:
            raise UsageError("only root adds connections for another user")
        if not isinstance(owner_uid, int):
            raise UsageError("owner is a uid")
        owner = owner_of(owner_uid)
        options = {str(k): str(v) for k, v in options.items()}
        if owner.uid != ROOT_UID:
            check_option_paths(options, owner)
        with self._edit, config_lock(self.home_path):
            home = Home(self.home_path)
            conn = manage.add_connection(home, name, kind, options, None)  # no terminal here: a token is given
            conn.owner = owner.uid
            home.put_connection(conn, home.secrets(name))
            if not request.get("no_test"):
                _test(home, name)  # before it is saved, as `skysync connection add` does
            home.save()
        self.engine.reload()
        return conn.name

    def _connection_remove(self, uid: int, name: object) -> list[str]:
        from engine import manage

        with self._edit, config_lock(self.home_path):
            home = Home(self.home_path)
            conn = self._own_connection(home, uid, name)
            removed = manage.remove_connection(home, conn)
            self._forget(home, removed)
            home.save()
        self.engine.reload()
        return removed

    def _task_add(self, uid: int, fields: object) -> None:
        from engine import manage

        if not isinstance(fields, dict) or not set(fields) <= TASK_FIELDS:
            extra = sorted(set(fields) - TASK_FIELDS) if isinstance(fields, dict) else []
            raise UsageError(f"task-add takes the fields {', '.join(sorted(TASK_FIELDS))}"
                             + (f", not {', '.join(extra)}" if extra else ""))
        with self._edit, config_lock(self.home_path):
            home = Home(self.home_path)
            conn = home.connection(self._own_connection(home, uid, fields.get("connection")))
            try:
                task = Task(**fields)
            except TypeError as exc:
                raise UsageError(f"task-add: {exc}") from None
            owner_uid = conn.owner if conn.owner is not None else ROOT_UID
            if owner_uid != ROOT_UID:
                check_folder(str(task.local), owner_of(owner_uid))
            manage.add_task(home, task, None)
            home.save()
        self.engine.reload()

    def _task_remove(self, uid: int, name: object) -> None:
        from engine import manage

        with self._edit, config_lock(self.home_path):
            home = Home(self.home_path)
            task = self._own_task(home, uid, name)
            manage.remove_task(home, task)
            self._forget(home, [task])
            home.save()
        self.engine.reload()

    def _forget(self, home: Home, names: list[str]) -> None:
        from engine.state import StateDB

        if not names:
            return
        db = StateDB(home.setting("database-path"))
        try:
            for n in names:
                db.forget_task(n)
        finally:
            db.close()


def _test(home: Home, name: str) -> None:
    from engine.connect import open_provider
    from engine.providers.base import ProviderError

    provider = open_provider(home, name)
    try:
        provider.check()
    except ProviderError as exc:
        raise UsageError(f"connection '{name}' failed its test: {exc}") from None
    finally:
        provider.close()
