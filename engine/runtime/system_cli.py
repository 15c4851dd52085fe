"""`skysync --home /var/lib/skysync COMMAND` for a user who is not root: the system engine's home is root's
alone (0700), so the commands a user has there go through the engine's socket, which answers them for the
user's own connections and tasks only (engine.runtime.system).

What a user can do there: status, connection list/add/remove, task list/add/remove, sync (queued in the
engine). Everything else (editing, logs, settings) is root's, through the home itself.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from engine.errors import UsageError
from engine.names import shown

ROUTED = {
    ("status", None), ("connection", "list"), ("connection", "add"), ("connection", "remove"),
    ("task", "list"), ("task", "add"), ("task", "remove"), ("sync", None),
}


def serves_caller(home_path: str) -> bool:
    """Whether this home is a system engine's that the caller (not root, not its owner) reaches only through
    the engine: then its commands go there."""
    if os.geteuid() == 0:
        return False
    try:
        if os.stat(home_path).st_uid == os.geteuid():
            return False  # their own home: the ordinary commands
    except OSError:
        return False
    # Here, not at the top: every command of one's own home asks this, and the client with the status model
    # it loads (~10 frozen dataclasses) is start-up cost for a one-shot sync that never talks to an engine.
    from engine.runtime.client import EngineClient

    return EngineClient(home_path).is_system()


def run(args: argparse.Namespace, home_path: str, options: Callable[[list[tuple[str, str]]], dict[str, str]],
        task_fields: Callable[[argparse.Namespace], dict[str, Any]]) -> int:
    """One command through the system engine; `options` reads --option pairs (secrets from stdin) and
    `task_fields` the task flags, as the CLI does for a home of one's own."""
    key = (args.command, getattr(args, "action", None))
    if key not in ROUTED:
        raise UsageError("through the system engine you can run: status, sync, connection list/add/remove and "
                         "task list/add/remove; the rest is root's")
    from engine.runtime.client import EngineClient

    client = EngineClient(home_path)
    if key == ("status", None):
        answer = client.result({"cmd": "status"})
        if args.json:
            print(json.dumps(answer, indent=2, sort_keys=True, default=str))
        else:
            print(f"engine: system engine (pid {answer.get('engine', {}).get('pid')}), your connections only")
            for name, task in sorted((answer.get("tasks") or {}).items()):
                error = f"  {shown(str(task.get('error')))}" if task.get("error") else ""
                print(f"{shown(name):20} {task.get('state')}{error}")
        return 0
    if key == ("connection", "list") or key == ("task", "list"):
        conns = client.connections()
        if args.json:
            print(json.dumps(conns, indent=2, sort_keys=True))
        elif key[0] == "connection":
            for c in conns:
                print(f"{shown(c['name']):20} {c['provider']:10} tasks: {len(c['tasks'])}")
        else:
            for c in conns:
                for t in c["tasks"]:
                    print(f"{shown(t):20} {shown(c['name'])}")
        return 0
    if key == ("connection", "add"):
        if args.owner is not None:
            raise UsageError("only root gives a connection an owner (--owner)")
        client.add_connection(args.name, args.provider, options(args.option), test=not args.no_test)
        print(f"connection '{args.name}' added ({args.provider}) in the system engine")
    elif key == ("connection", "remove"):
        removed = client.remove_connection(args.name)
        extra = f" and its tasks {', '.join(removed)} (files stay on both sides)" if removed else ""
        print(f"connection '{args.name}' removed{extra}")
    elif key == ("task", "add"):
        fields = task_fields(args)
        if fields.pop("encrypt", None):
            raise UsageError("encrypted tasks are not made through the system engine; use a home of your own")
        client.add_task({"name": args.name, **fields})
        print(f"task '{args.name}' added in the system engine; it syncs from now on")
    elif key == ("task", "remove"):
        client.remove_task(args.name)
        print(f"task '{args.name}' unlinked; its files stay on both sides")
    elif key == ("sync", None):
        if args.dry_run:
            raise UsageError("--dry-run needs the home itself; through the system engine a pass is only queued")
        for task in args.tasks or [None]:
            client.sync_now(task, force=args.force)
        print("queued in the system engine; 'skysync status' shows how it goes")
    return 0
