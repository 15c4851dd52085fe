"""A small client of a running engine, over its control socket (engine.runtime.control): what `skysync status`
and the TUI use to talk to a `skysync run` of the same home, or to the system engine (`skysync run --system`)
that serves it, which answers each user for their own connections (engine.runtime.system)."""

from __future__ import annotations

from typing import Any

from engine.errors import UsageError
from engine.runtime.control import query
from engine.runtime.status import EngineStatus


class EngineClient:
    def __init__(self, home_path: str, timeout: float = 5.0) -> None:
        self.home_path = home_path
        self.timeout = timeout

    def ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The engine's answer, or None when no engine answers (none runs, or it went away)."""
        try:
            return query(self.home_path, request, self.timeout)
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return self.ask({"cmd": "ping"}) is not None

    def is_system(self) -> bool:
        """Whether a system engine (admin mode) answers for this home."""
        answer = self.ask({"cmd": "ping"})
        return bool(answer and answer.get("system"))

    def is_system_admin(self) -> bool:
        """Whether a system engine answers, and answers us as its administrator (root): every user's
        connections are ours to see."""
        answer = self.ask({"cmd": "ping"})
        return bool(answer and answer.get("system") and answer.get("admin"))

    def result(self, request: dict[str, Any]) -> dict[str, Any]:
        """The engine's answer to a request that must succeed; a refusal or silence is a UsageError."""
        answer = self.ask(request)
        if answer is None:
            raise UsageError("the engine of this home (skysync run) stopped answering")
        if not answer.get("ok"):
            raise UsageError(str(answer.get("error") or "the engine refused the request"))
        return answer

    def connections(self) -> list[dict[str, Any]]:
        """A system engine's connections that we may see: name, provider, owner (uid), user, tasks."""
        return list(self.result({"cmd": "connections"}).get("connections") or [])

    def add_connection(self, name: str, provider: str, options: dict[str, str], *, owner: int | None = None,
                       test: bool = True) -> None:
        """Ask a system engine to add a connection, ours (or, asked by root, `owner`'s)."""
        request: dict[str, Any] = {"cmd": "connection-add", "name": name, "provider": provider,
                                   "options": options, "no_test": not test}
        if owner is not None:
            request["owner"] = owner
        self.result(request)

    def remove_connection(self, name: str) -> list[str]:
        """Ask a system engine to remove one of our connections; returns the tasks removed with it."""
        return list(self.result({"cmd": "connection-remove", "name": name}).get("tasks") or [])

    def add_task(self, fields: dict[str, Any]) -> None:
        self.result({"cmd": "task-add", "task": fields})

    def remove_task(self, name: str) -> None:
        self.result({"cmd": "task-remove", "name": name})

    def status(self) -> EngineStatus | None:
        """The running engine's status, or None when no engine answers."""
        answer = self.ask({"cmd": "status"})
        if answer is None or not answer.get("ok"):
            return None
        return EngineStatus.from_json(answer)

    def tell(self, request: dict[str, Any]) -> None:
        """Send a command; a refusal or a silent engine is a UsageError (one line)."""
        self.result(request)

    def sync_now(self, task: str | None = None, force: bool = False) -> None:
        self.tell({"cmd": "sync-now", "task": task, "force": force})

    def pause(self, *, task: str | None = None, connection: str | None = None) -> None:
        self.tell({"cmd": "pause", **_target(task, connection)})

    def resume(self, *, task: str | None = None, connection: str | None = None) -> None:
        self.tell({"cmd": "resume", **_target(task, connection)})

    def reload(self) -> None:
        self.tell({"cmd": "reload"})


def _target(task: str | None, connection: str | None) -> dict[str, str]:
    return {"task": task} if task is not None else {"connection": connection} if connection is not None else {}
