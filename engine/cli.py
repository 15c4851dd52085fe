"""`skysync` command line (the contract in shared/GUIDE.md, section 1).

Every failure is one line on stderr and an exit code: 0 done, 1 some items failed, 2 bad usage, configuration
or a safety guard. Heavy modules (cloud SDKs, Textual) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from engine.errors import LockedError, SkysyncError, UsageError
from engine.homepath import resolve_home
from engine.names import is_valid_utf8, shown

if TYPE_CHECKING:
    from engine.config import Home
    from engine.runtime.status import EngineStatus, TaskReport


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"skysync: error: {message} (see '{self.prog} --help')\n")


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key.strip(), value


def _log_limit(text: str) -> int:
    from engine.config import LOG_MAX

    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= LOG_MAX:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {LOG_MAX}, not '{text}'")
    return n


def _task_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--connection", required=required)
    p.add_argument("--local", required=required)
    p.add_argument("--remote", required=required)
    p.add_argument("--direction", choices=("bidirectional", "upload", "download"), required=required)
    editing = not required
    flags = p.add_mutually_exclusive_group() if editing else p
    flags.add_argument("--no-delete", action="store_true", default=None)
    if editing:
        flags.add_argument("--delete", dest="no_delete", action="store_false", default=None,
                           help="undo --no-delete: deletions are applied at the destination again")
    flags = p.add_mutually_exclusive_group() if editing else p
    flags.add_argument("--consistency-check", action="store_true", default=None)
    if editing:
        flags.add_argument("--no-consistency-check", dest="consistency_check", action="store_false", default=None)
    p.add_argument("--exclude-folder", action="append", metavar="RELPATH")
    p.add_argument("--exclude-name", action="append", metavar="GLOB")
    p.add_argument("--exclude-ext", action="append", metavar="EXT")
    p.add_argument("--max-size", type=int, metavar="BYTES")
    flags = p.add_mutually_exclusive_group() if editing else p
    flags.add_argument("--case-insensitive", action="store_true", default=None)
    if editing:
        flags.add_argument("--case-sensitive", dest="case_insensitive", action="store_false", default=None)
        p.add_argument("--clear-filters", action="store_true",
                       help="no excluded folders, names or extensions and no size limit (before any given here)")
    flags = p.add_mutually_exclusive_group() if editing else p
    flags.add_argument("--convert-google-docs", action="store_true", default=None,
                       help="download-only gdrive tasks: Docs/Sheets/Slides/Drawings as docx/xlsx/pptx/jpeg")
    if editing:
        flags.add_argument("--no-convert-google-docs", dest="convert_google_docs", action="store_false",
                           default=None, help="undo --convert-google-docs: online documents are skipped again")
    p.add_argument("--encrypt", action="store_true", default=None)
    p.add_argument("--password-file")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="skysync", description="Keep local folders in sync with cloud storage.")
    p.add_argument("--home", help="skysync home folder (default: $SKYSYNC_HOME or the user config dir)")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    conn = sub.add_parser("connection", help="manage connections to storage services")
    cs = conn.add_subparsers(dest="action", required=True, parser_class=_Parser)
    a = cs.add_parser("add", help="add a connection")
    a.add_argument("name")
    a.add_argument("--provider", required=True)
    a.add_argument("--option", action="append", type=_kv, default=[], metavar="KEY=VALUE")
    a.add_argument("--no-test", action="store_true", help="do not contact the service before saving")
    a.add_argument("--owner", metavar="USER",
                   help="root, for a system engine's home: the Unix user this connection syncs for (admin mode)")
    lst = cs.add_parser("list", help="list connections")
    lst.add_argument("--json", action="store_true")
    s = cs.add_parser("show", help="show one connection")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    e = cs.add_parser("edit", help="change options of a connection")
    e.add_argument("name")
    e.add_argument("--option", action="append", type=_kv, default=[], metavar="KEY=VALUE")
    r = cs.add_parser("remove", help="remove a connection and its tasks (files stay on both sides)")
    r.add_argument("name")
    t = cs.add_parser("test", help="check that the service answers with these credentials")
    t.add_argument("name")
    x = cs.add_parser("export-key", help="export the encryption key (key.zip)")
    x.add_argument("name")
    x.add_argument("--out", required=True)
    li = cs.add_parser("login", help="sign in through a browser (OAuth connections)")
    li.add_argument("name")
    ir = cs.add_parser("import-rclone", help="an rclone remote becomes a connection (options and secrets)")
    ir.add_argument("--config", metavar="FILE", help="rclone config file (default: ~/.config/rclone/rclone.conf)")
    ir.add_argument("remote", metavar="REMOTE", help="the remote's name, with its bucket: REMOTE:BUCKET")
    ir.add_argument("name", metavar="NAME", nargs="?", help="the connection's name (default: the remote's)")
    ir.add_argument("--no-test", action="store_true", help="do not contact the service before saving")

    task = sub.add_parser("task", help="manage sync tasks")
    ts = task.add_subparsers(dest="action", required=True, parser_class=_Parser)
    a = ts.add_parser("add", help="add a task")
    a.add_argument("name")
    _task_options(a, required=True)
    lst = ts.add_parser("list", help="list tasks")
    lst.add_argument("--json", action="store_true")
    s = ts.add_parser("show", help="show one task")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    e = ts.add_parser("edit", help="change a task")
    e.add_argument("name")
    _task_options(e, required=False)
    r = ts.add_parser("remove", help="unlink a task (files stay on both sides)")
    r.add_argument("name")

    sy = sub.add_parser("sync", help="one pass of each named task (all if none)")
    sy.add_argument("tasks", nargs="*", metavar="TASK")
    sy.add_argument("--dry-run", action="store_true")
    sy.add_argument("--json", action="store_true")
    sy.add_argument("--force", action="store_true", help="pass the mass-delete guard once (not the empty-folder one)")
    sy.add_argument("--no-wait", action="store_true", help="a task already syncing is an error (exit 2), not awaited")

    rn = sub.add_parser("run", help="headless engine: watch, poll, schedule; stops on SIGINT/SIGTERM")
    rn.add_argument("--system", action="store_true",
                    help="as root, serve every user's connections (admin mode; home /var/lib/skysync by default)")
    st = sub.add_parser("status", help="state of every task")
    st.add_argument("--json", action="store_true")
    lg = sub.add_parser("log", help="the history log")
    lg.add_argument("--task")
    lg.add_argument("--limit", type=_log_limit, default=50, metavar="N")
    lg.add_argument("--json", action="store_true")

    pol = sub.add_parser("policy", help="explain the sync rules")
    ps = pol.add_subparsers(dest="action", required=True, parser_class=_Parser)
    pc = ps.add_parser("check", help="would each path sync, be renamed, or be skipped (and why)")
    pc.add_argument("--provider", required=True)
    pc.add_argument("--size", type=int)
    pc.add_argument("--option", action="append", type=_kv, default=[], metavar="KEY=VALUE")
    pc.add_argument("paths", nargs="+", metavar="PATH")

    d = sub.add_parser("decrypt", help="recover encrypted files, no connection needed")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--password-file")
    g.add_argument("--private-key")
    d.add_argument("srcs", nargs="+", metavar="SRC")
    d.add_argument("--out", required=True)

    se = sub.add_parser("settings", help="engine settings")
    ss = se.add_subparsers(dest="action", required=True, parser_class=_Parser)
    g2 = ss.add_parser("get")
    g2.add_argument("key", nargs="?")
    s2 = ss.add_parser("set")
    s2.add_argument("key")
    s2.add_argument("value")

    dr = sub.add_parser("doctor", help="check permissions, the state database, limits, space, reachability, clocks")
    dr.add_argument("--json", action="store_true")
    return p


def _json_safe(data: Any) -> Any:
    """Strings holding undecodable bytes (lone surrogates) escaped as \\xNN, so the output is valid JSON."""
    if isinstance(data, str):
        return data if data.isascii() or is_valid_utf8(data) else shown(data)
    if isinstance(data, dict):
        return {_json_safe(k): _json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_json_safe(v) for v in data]
    return data


def _print_json(data: Any) -> None:
    print(json.dumps(_json_safe(data), indent=2, sort_keys=True, default=str))


def _err(message: str) -> None:
    print(f"skysync: error: {message}", file=sys.stderr)


# -- commands ----------------------------------------------------------------------------------------------


# The actions that change the configuration: each holds the home's configuration lock from its read to its write.
CHANGES = {
    "connection": {"add", "edit", "remove", "login", "import-rclone"},
    "task": {"add", "edit", "remove"},
    "settings": {"set"},
}


def _home(args: argparse.Namespace, *, check_permissions: bool = True):
    """The home of this command, its config checked against the schema and (unless told otherwise) its
    permissions checked; remembers where its state database is, for a one-line message if that fails. A command
    that changes the config reads it under the home's configuration lock, held until the command ends (main)."""
    from engine.config import Home, check_home_permissions

    path = resolve_home(args.home)
    if check_permissions:
        check_home_permissions(path)
    if getattr(args, "action", None) in CHANGES.get(args.command, ()):
        from engine.configlock import config_lock

        args.held.enter_context(config_lock(path))
    home = Home(path)
    args.database_path = home.setting("database-path")
    return home


def _option_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The --option pairs, with each `KEY=-` read from standard input so a secret stays out of argv and shell
    history: a terminal prompts without echo, a pipe is read to its end (so only one option can come from it)."""
    import getpass

    options: dict[str, str] = {}
    from_pipe: str | None = None
    for key, value in pairs:
        if value == "-":
            if sys.stdin is not None and sys.stdin.isatty():
                value = getpass.getpass(f"{key}: ")
            elif from_pipe is not None:
                raise UsageError(f"options '{from_pipe}' and '{key}' both read standard input; give one at a time")
            else:
                from_pipe = key
                value = sys.stdin.read().strip() if sys.stdin is not None else ""
            if not value:
                raise UsageError(f"option '{key}': nothing was read from standard input")
        options[key] = value
    return options


def _terminal_signin() -> Callable[..., Any] | None:
    """A sign-in through this terminal, or None when standard input or output is not one (cron, a pipe)."""
    if not (sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    from engine.auth.signin import Console, sign_in

    console = Console(sys.stdin, sys.stdout)
    return lambda spec: sign_in(spec, console)


def cmd_connection(args: argparse.Namespace) -> int:
    from engine import manage

    home = _home(args)
    if args.action == "add":
        options = _option_values(args.option)
        owner = _owner(args.owner, options)
        conn = manage.add_connection(home, args.name, args.provider, options, _terminal_signin())
        if owner is not None:
            conn.owner = owner
            home.put_connection(conn, home.secrets(conn.name))
        if not args.no_test:
            _test_connection(home, args.name, quiet=True)
        home.save()
        print(f"connection '{conn.name}' added ({conn.provider})")
    elif args.action == "list":
        conns = home.connections()
        if args.json:
            _print_json([_conn_dict(home, c.name) for c in conns])
        elif not conns:
            print("no connections; add one with: skysync connection add NAME --provider KIND --option KEY=VALUE")
        else:
            for c in conns:
                print(f"{shown(c.name):20} {c.provider:10} tasks: {len(home.tasks(c.name))}")
    elif args.action == "show":
        data = _conn_dict(home, args.name)
        if args.json:
            _print_json(data)
        else:
            for k, v in data.items():
                print(f"{k}: {shown(str(v))}")
    elif args.action == "edit":
        manage.edit_connection(home, args.name, _option_values(args.option))
        home.save()
        print(f"connection '{args.name}' updated")
    elif args.action == "remove":
        removed = manage.remove_connection(home, args.name)
        _forget_tasks(home, removed)  # first: if the state cannot be forgotten, the config stays as it was
        home.save()
        extra = f" and its tasks {', '.join(removed)} (files stay on both sides)" if removed else ""
        print(f"connection '{args.name}' removed{extra}")
    elif args.action == "test":
        _test_connection(home, args.name, quiet=False)
    elif args.action == "export-key":
        return _export_key(home, args.name, args.out)
    elif args.action == "login":
        if manage.login(home, args.name, _terminal_signin()):
            home.save()
        print(f"connection '{args.name}' is signed in")
    elif args.action == "import-rclone":
        conn, notes = manage.import_rclone(home, args.config, args.remote, args.name)
        if not args.no_test:
            _test_connection(home, conn.name, quiet=True)
        home.save()
        print(f"connection '{conn.name}' added ({conn.provider}) from rclone remote '{shown(args.remote)}'")
        for note in notes:
            print(f"  {note}")
    return 0


def _owner(user: str | None, options: dict[str, str]) -> int | None:
    """`--owner USER`: root gives a system engine's connection to a user, whose files it must then name."""
    if user is None:
        return None
    from engine.owners import check_option_paths, owner_named

    if os.geteuid() != 0:
        raise UsageError("only root gives a connection an owner (--owner), for a system engine's home")
    owner = owner_named(user)
    check_option_paths(options, owner)
    return owner.uid


def _conn_dict(home: Any, name: str) -> dict[str, Any]:
    conn = home.connection(name)
    data = conn.public_dict()
    data["secrets"] = sorted(home.secrets(name))  # names only, never values
    data["tasks"] = [t.name for t in home.tasks(name)]
    return data


def _test_connection(home: Any, name: str, quiet: bool) -> None:
    from engine import revisions
    from engine.connect import open_provider
    from engine.providers.base import ProviderError

    provider = open_provider(home, name)
    try:
        provider.check()
        # Which conflict mode the connection gets, and why (a bucket's versioning is read now).
        mode, why = (None, "") if quiet else revisions.resolve(provider, home.connection(name).conflict_mode)
    except ProviderError as exc:
        raise UsageError(f"connection '{name}' failed its test: {exc}") from None
    finally:
        provider.close()
    if not quiet:
        print(f"connection '{name}' works")
        print(f"conflicts: {mode} ({why})")


def _forget_tasks(home: Any, names: list[str]) -> None:
    from engine.state import StateDB

    if not names:
        return
    db = StateDB(home.setting("database-path"))
    try:
        for n in names:
            db.forget_task(n)
    finally:
        db.close()


def _task_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for attr, key in (
        ("connection", "connection"), ("local", "local"), ("remote", "remote"), ("direction", "direction"),
        ("no_delete", "no_delete"), ("consistency_check", "consistency_check"), ("max_size", "max_size"),
        ("case_insensitive", "case_insensitive"), ("encrypt", "encrypt"),
        ("convert_google_docs", "convert_google_docs"),
        ("exclude_folder", "exclude_folders"), ("exclude_name", "exclude_names"), ("exclude_ext", "exclude_exts"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "clear_filters", False):
        for key, empty in (("exclude_folders", []), ("exclude_names", []), ("exclude_exts", []), ("max_size", 0)):
            changes.setdefault(key, empty)
    return changes


def cmd_task(args: argparse.Namespace) -> int:
    from engine import manage
    from engine.config import Task

    home = _home(args)
    if args.action == "add":
        changes = _task_changes(args)
        task = Task(name=args.name, **changes)
        password = _encryption_password(args) if task.encrypt else None
        task = manage.add_task(home, task, password)
        home.save()
        print(f"task '{task.name}' added: {shown(task.local)} <-> {task.connection}:{shown(task.remote)} "
              f"({task.direction})")
    elif args.action == "list":
        tasks = home.tasks()
        if args.json:
            _print_json([t.public_dict() for t in tasks])
        elif not tasks:
            print("no tasks; add one with: skysync task add NAME --connection C --local DIR --remote /PATH "
                  "--direction bidirectional")
        else:
            for t in tasks:
                paused = " (paused)" if t.paused else ""
                print(f"{t.name:20} {t.direction:13} {shown(t.local)} <-> {t.connection}:{shown(t.remote)}{paused}")
    elif args.action == "show":
        task = home.task(args.name)
        if args.json:
            _print_json(task.public_dict())
        else:
            for k, v in task.public_dict().items():
                print(f"{k}: {shown(str(v))}")
    elif args.action == "edit":
        changes = _task_changes(args)
        changes.pop("password_file", None)
        manage.edit_task(home, args.name, changes)
        home.save()
        print(f"task '{args.name}' updated")
    elif args.action == "remove":
        manage.remove_task(home, args.name)
        _forget_tasks(home, [args.name])  # first: if the state cannot be forgotten, the config stays as it was
        home.save()
        print(f"task '{args.name}' unlinked; its files stay on both sides")
    return 0


def _encryption_password(args: argparse.Namespace) -> str:
    """From --password-file, or typed twice at a terminal; never from the command line itself."""
    if args.password_file:
        from engine.crypto import CryptoError
        from engine.crypto.recovery import read_password_file

        try:
            return read_password_file(os.path.expanduser(args.password_file))
        except CryptoError as exc:
            raise UsageError(str(exc)) from None
    if not sys.stdin.isatty():
        raise UsageError("--encrypt needs --password-file FILE when not run at a terminal")
    import getpass

    password = getpass.getpass("Encryption password: ")
    if not password or password != getpass.getpass("Repeat the password: "):
        raise UsageError("the passwords are empty or do not match")
    return password


class Terminated(KeyboardInterrupt):
    """SIGTERM during `sync` (a service manager stopping it, a timeout): stopped as Ctrl+C stops it -- the
    transfer's temporary file removed, the task's lock let go -- instead of dying mid-write."""


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """Ctrl+C (SIGINT) or SIGTERM stops the pass once; any later one is ignored. Raised again while the pass
    lets go (its transfers stopping, their temporary files removed, the workers joined, the lock released), it
    would cut that short and end in a traceback: an impatient user presses Ctrl+C two or three times."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler (tests call main() from others)
        return
    stopped = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopped
        stopped = True
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        if not stopped:  # once stopped, the process is on its way out: a late signal must not raise either
            for s, handler in previous.items():
                signal.signal(s, handler)


def cmd_sync(args: argparse.Namespace) -> int:
    with _signals_stop():
        return _sync(args)


def _sync(args: argparse.Namespace) -> int:
    from engine.sync import PassResult

    home = _home(args)
    names = args.tasks or [t.name for t in home.tasks()]
    for n in names:
        home.task(n)  # unknown names are refused before any pass starts
    if not names:
        raise UsageError("there are no tasks to sync; add one with 'skysync task add'")
    results = []
    worst = 0
    for name in names:
        try:
            res = _pass_in_turn(home, name, args)
        except LockedError:
            res = PassResult(name, error="it is being synced by another process; not waiting for it (--no-wait)")
        except SkysyncError as exc:
            res = PassResult(name, error=str(exc))
        results.append(res)
        worst = max(worst, res.exit_code)
        if not args.json:
            _print_result(res, args.dry_run)
    if args.json:
        _print_json({"dry_run": args.dry_run, "tasks": [r.as_dict() for r in results]})
    return worst


def _pass_in_turn(home: Any, name: str, args: argparse.Namespace) -> Any:
    """One pass of `name`; while another process syncs the task, wait for it (said once on stderr), unless
    --no-wait (LockedError goes up)."""
    from engine.config import Home
    from engine.sync import TaskLock, run_pass

    said = False
    early = args.early if args.early is not None and args.early.task == name else None
    while True:
        try:
            return run_pass(home, name, dry_run=args.dry_run, force=args.force, early=early)
        except LockedError:
            if early is not None:
                early.stop()  # walked before the other process's pass: this one walks again once it has the lock
                early = None
            if args.no_wait:
                raise
            if not said:
                print(f"task '{name}' is being synced by another process; waiting for it to finish", file=sys.stderr,
                      flush=True)
                said = True
        _wait_for_unlock(TaskLock(home, name).path)
        home = Home(home.path)  # the config may have changed while we waited (the task edited or removed)


def _wait_for_unlock(path: str) -> None:
    """Block until the process holding the task's lock (flock) lets it go; the pass then takes it itself."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        time.sleep(0.5)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    time.sleep(0.05)  # another waiter may take it first: then we wait again


def _print_result(res: Any, dry_run: bool) -> None:
    if res.error:
        _err(f"task '{res.task}': {shown(res.error)}")
        return
    if dry_run:
        for kind, path, detail in res.planned:
            print(f"would {kind:16} {shown(path)}{'  (' + shown(detail) + ')' if detail else ''}")
    parts = [f"{v} {k}" for k, v in sorted(res.summary.items())] or ["nothing to do"]
    prefix = "dry run" if dry_run else "synced"
    print(f"{prefix} '{res.task}': {', '.join(parts)}")
    if res.failed:
        print(f"task '{res.task}': {res.failed} items failed; see 'skysync log --task {res.task}'", file=sys.stderr)
    if res.held_deletions:
        print(f"task '{res.task}': {res.held_deletions} deletions {'would be ' if dry_run else ''}held back by the "
              f"mass-delete guard (the rest of the pass ran); check, then allow them with "
              f"'skysync sync --force {res.task}'", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        from engine.runtime.daemon import run_forever
    except ImportError:
        raise UsageError("the headless engine is not available in this build") from None

    if args.system:  # admin mode: the machine's engine, in its own home unless one is named
        from engine.runtime.daemon import SYSTEM_HOME

        args.home = args.home or os.environ.get("SKYSYNC_HOME") or SYSTEM_HOME
    home = _home(args)  # a broken config or a loose home is refused here, as for every other command
    return run_forever(home.path, system=args.system)


def _lock_held(path: str) -> bool:
    """Whether a process holds the flock on `path` (a task's lock), read from /proc/locks so that asking never
    takes the lock itself (a pass starting at that moment would find it taken)."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    me = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == me:  # "->" lines (waiters) have FLOCK later
            return True
    return False


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def _status_text(name: str, t: TaskReport) -> str:
    lp = t.last_pass or {}
    state = t.state
    if state == "syncing":
        return "syncing now"
    if state == "never":
        return "last pass: never" + ("  (paused)" if t.paused else "")
    if state == "interrupted":
        return f"last pass: {_when(lp.get('started'))}  interrupted (it did not finish; the next pass completes it)"
    if state == "paused":
        return f"last pass: {_when(lp.get('finished'))}  paused"
    if state == "error":
        return f"last pass: {_when(lp.get('finished'))}  error: {shown(t.error or '')}"
    held = ""
    if t.held_deletions:
        held = (f"; {t.held_deletions} deletions held back by the mass-delete guard "
                f"(to allow them: skysync sync --force {name})")
    if state == "failed":
        return (f"last pass: {_when(lp.get('finished'))}  failed: {t.failed} items (see skysync log --task {name})"
                + held)
    return f"last pass: {_when(lp.get('finished'))}  ok" + held


def _signin_needed(home: Home, live: EngineStatus | None) -> list[str]:
    """Connections waiting for `skysync connection login`: the engine says so, or (none running) the token."""
    from engine.auth.tokens import TokenStore

    names = set(live.signin_needed()) if live is not None else set()
    for conn in home.connections():
        with contextlib.suppress(Exception):  # a token file we cannot read says so to the pass, not here
            if TokenStore(home.path, conn.name).needs_signin():
                names.add(conn.name)
    return sorted(names)


def cmd_status(args: argparse.Namespace) -> int:
    from engine.reconcile import HELD_DELETIONS
    from engine.runtime.client import EngineClient
    from engine.runtime.status import HomeReport, TaskReport, report_state
    from engine.state import StateDB

    home = _home(args)
    live = EngineClient(home.path).status()
    db = StateDB(home.setting("database-path"))
    try:
        tasks: dict[str, TaskReport] = {}
        for t in home.tasks():
            tid = db.task_id(t.name)
            files, folders = db.counts(tid)
            last = db.last_pass(t.name)
            live_task = live.tasks.get(t.name) if live is not None else None
            # the path TaskLock (engine/sync.py) locks while a pass runs
            locked = _lock_held(os.path.join(home.path, "locks", f"{t.name}.lock"))
            state, error, failed = report_state(t.paused, last, live_task, locked)
            tasks[t.name] = TaskReport(
                connection=t.connection,
                direction=t.direction,
                paused=t.paused,
                tracked_files=files,
                tracked_folders=folders,
                last_pass=last,
                held_deletions=int(((last or {}).get("summary") or {}).get(HELD_DELETIONS, 0)),
                state=state,
                error=error,
                failed=failed,
                live=live_task,
            )
        report = HomeReport(live, tasks)
    finally:
        db.close()
    if args.json:
        _print_json(report.to_json())
        return 0
    print(f"engine: {'running' if report.engine_running else 'not running'}")
    for name in _signin_needed(home, live):
        print(f"connection {name}: sign-in needed (run: skysync connection login {name})")
    if not tasks:
        print("no tasks")
    for name, task in tasks.items():
        print(f"{name:20} {task.tracked_files:7} files  {_status_text(name, task)}")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from engine.state import StateDB

    home = _home(args)
    if args.task:
        home.task(args.task)
    db = StateDB(home.setting("database-path"))
    try:
        records = db.read_log(args.task, args.limit)
    finally:
        db.close()
    if args.json:
        _print_json([{"time": r.time, "task": r.task, "kind": r.kind, "path": r.path, "message": r.message}
                     for r in records])
        return 0
    for r in records:
        # A name may hold a newline or an escape sequence: shown() keeps each record on one line of its own.
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.time))
        message = f"  {shown(r.message)}" if r.message else ""
        print(f"{stamp} {shown(r.task)} {shown(r.kind):14} {shown(r.path)}{message}")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    try:
        from engine.policy.check import policy_check
    except ImportError:
        raise UsageError("policy check is not available in this build") from None
    lines, code = policy_check(args.provider, args.paths, args.size, dict(args.option))
    for line in lines:
        print(line)
    return code


def cmd_decrypt(args: argparse.Namespace) -> int:
    try:
        from engine.crypto.recovery import decrypt_paths
    except ImportError:
        raise UsageError("decryption is not available in this build") from None
    from engine.crypto import CryptoError
    from engine.crypto.recovery import read_password_file, read_private_key_file

    try:
        password = read_password_file(args.password_file) if args.password_file else None
        key = read_private_key_file(args.private_key) if args.private_key else None
    except CryptoError as exc:
        raise UsageError(str(exc)) from None
    ok, failures = decrypt_paths(args.srcs, args.out, password, key)
    for failure in failures:
        _err(failure)
    print(f"decrypted {ok} files into {args.out}")
    return 1 if failures else 0


def _export_key(home: Any, name: str, out: str) -> int:
    from engine import manage

    path = manage.export_encryption_key(home, name, out)
    print(f"key exported to {path}; keep it somewhere safe")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    home = _home(args)
    if args.action == "get":
        if args.key:
            print(shown(str(home.setting(args.key))))
        else:
            for k, v in home.settings().items():
                print(f"{k} = {shown(str(v))}")
        return 0
    if args.key == "database-path":
        # Moves the database with its sync state and history (engine.dbmove), never starts an empty one.
        from engine.dbmove import move_database
        from engine.runtime.lock import EngineLock

        value, note = move_database(home, args.value, EngineLock(home.path))
        if note:
            print(note, file=sys.stderr)
    else:
        value = home.set_setting(args.key, args.value)
        home.save()
    print(f"{args.key} = {shown(str(value))}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    try:
        from engine.doctor import run_doctor
    except ImportError:
        raise UsageError("doctor is not available in this build") from None
    # Not refused for loose permissions: finding those (and saying how to fix them) is the doctor's job.
    return run_doctor(_home(args, check_permissions=False), as_json=args.json)


COMMANDS = {
    "connection": cmd_connection,
    "task": cmd_task,
    "sync": cmd_sync,
    "run": cmd_run,
    "status": cmd_status,
    "log": cmd_log,
    "policy": cmd_policy,
    "decrypt": cmd_decrypt,
    "settings": cmd_settings,
    "doctor": cmd_doctor,
}


def _database_problem(exc: sqlite3.DatabaseError, path: str | None) -> str:
    what = f"the state database {shown(path)}" if path else "the state database"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    if "full" in low:
        return (f"the disk holding {what} is full ({text}); free some space and run again: what was synced so "
                "far is recorded")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return (f"{what} is damaged ({text}); move it aside and run the task again: the next pass compares both "
                "sides and deletes nothing")
    if "readonly" in low or "read-only" in low:
        return f"{what} cannot be written ({text}); make it and its folder writable by you"
    if "unable to open" in low:
        return (f"{what} cannot be opened ({text}); check that its folder exists and is yours, or choose another "
                "place with: skysync settings set database-path /ABSOLUTE/PATH")
    if "locked" in low or "busy" in low:
        return f"{what} is held by another process ({text}); wait for it to finish and run again"
    if "i/o error" in low:
        return f"{what} could not be read or written ({text}); check the disk it is on (skysync doctor)"
    return f"{what} cannot be used ({text}); check it with: skysync doctor"


def _os_problem(exc: OSError) -> str:
    where = " ".join(shown(str(p)) for p in (exc.filename, exc.filename2) if p) or "a file"
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left for {where} ({reason}); free some space and run again"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied for {where}; check its owner and mode (skysync doctor)"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system"
    if exc.errno == errno.EIO:
        return f"input/output error on {where}; check the disk it is on"
    return f"{reason}: {where}"


def main(argv: Sequence[str] | None = None, interactive: Callable[[str], int] | None = None) -> int:
    """Run one command. `interactive(home)` starts the terminal app when no command is given; the console
    script (tui.launch) passes it in, so the engine never imports the UI.

    Everything a user can cause (a bad config, a damaged or full state database, a full disk, a home with loose
    permissions) ends as one line saying what is wrong and what to do; only a bug reaches "unexpected"."""
    args = build_parser().parse_args(argv)
    args.early = None
    try:
        if args.command == "sync":
            args.early = _early_walk(args)
        if args.command is None:
            if interactive is None:
                raise UsageError("no command given and no terminal app in this build; see 'skysync --help'")
            from engine.config import check_home_permissions

            home = resolve_home(args.home)
            check_home_permissions(home)
            return interactive(home)
        if args.command not in ("run", "policy", "decrypt"):
            from engine.runtime import system_cli

            path = resolve_home(args.home)
            if system_cli.serves_caller(path):  # a user of a system engine's home: through its socket
                return system_cli.run(args, path, _option_values, _task_changes)
        with contextlib.ExitStack() as args.held:  # what the command holds until it ends (engine.configlock)
            return COMMANDS[args.command](args)
    except SkysyncError as exc:
        _err(shown(str(exc)))
        return exc.exit_code
    except Terminated:
        _err("stopped (SIGTERM); the next pass takes up what this one left")
        return 143
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except sqlite3.DatabaseError as exc:
        _err(_database_problem(exc, getattr(args, "database_path", None)))
        return 2
    except OSError as exc:
        _err(_os_problem(exc))
        return 2
    except Exception as exc:
        from engine.providers.base import ProviderError

        if isinstance(exc, ProviderError):
            _err(shown(str(exc)))
            return 2
        first = str(exc).splitlines()[0] if str(exc) else ""
        _err(f"unexpected {type(exc).__name__}: {shown(first)} (a bug: please report it)")
        return 2
    finally:
        if args.early is not None:
            args.early.stop()  # not taken over by a pass (another engine serves the home, an error): no walker left


def _early_walk(args: argparse.Namespace) -> Any:
    """The digest walks of the first named task, started before the engine is loaded (engine.prewalk), for a
    plain pass (no dry run, no --force: those never take the fast path)."""
    if not args.tasks or args.dry_run or args.force:
        return None
    from engine.prewalk import PreWalk

    with contextlib.suppress(OSError, ValueError):
        return PreWalk.start(resolve_home(args.home), args.tasks[0])
    return None


if __name__ == "__main__":
    # As the console script does (tui/launch.py): no pydantic plugin scan of every installed distribution.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    sys.exit(main())
