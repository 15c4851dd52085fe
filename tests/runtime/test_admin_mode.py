"""Admin mode: one system engine (run by root) serves two Unix users created here, each talking to the control
socket as themselves (a forked child that drops to their uid), so the peer uid the engine checks is real.

User A never sees, syncs, pauses or removes user B's connections or tasks, cannot sync B's or root's folders,
and the files the engine downloads into A's folder are A's, never root's.
"""

from __future__ import annotations

import contextlib
import getpass  # noqa: F401  the CLI imports it lazily; a child running as a test user cannot read /root
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.config import Home
from engine.errors import GuardError
from engine.localfs import OutsideRoot
from engine.owners import (
    OwnedFileSystem,
    Owner,
    file_refusal,
    filesystem_for,
    folder_refusal,
    owner_named,
)
from engine.runtime.client import EngineClient
from engine.runtime.control import SystemControlServer, system_socket_path
from engine.runtime.daemon import run_forever
from engine.runtime.engine import Engine
from engine.runtime.system import SystemGate
from engine.runtime.system_cli import serves_caller

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="admin mode tests run as root"),
    pytest.mark.skipif(shutil.which("useradd") is None or shutil.which("userdel") is None,
                       reason="useradd/userdel are not installed: no users to test with"),
]


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[Owner, Owner]]:
    names = [f"skya{os.getpid()}", f"skyb{os.getpid()}"]
    made: list[str] = []
    try:
        for name in names:
            subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
                           check=True, capture_output=True)
            made.append(name)
        yield owner_named(names[0]), owner_named(names[1])
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture
def place(users: tuple[Owner, Owner]) -> Iterator[dict[str, str]]:
    """Folders the users can reach (pytest's tmp_path sits in root's 0700 folder): each user's local folder
    and a folder playing their cloud, owned by them, and root's home of the system engine."""
    a, b = users
    base = tempfile.mkdtemp(prefix="skysync-admin-", dir="/tmp")
    os.chmod(base, 0o755)
    paths = {"home": os.path.join(base, "home"), "base": base}
    os.mkdir(paths["home"], 0o700)
    for who, owner in (("a", a), ("b", b)):
        for what in ("local", "cloud"):
            path = os.path.join(base, f"{who}-{what}")
            os.mkdir(path, 0o700)
            os.chown(path, owner.uid, owner.gid)
            paths[f"{who}_{what}"] = path
    root_folder = os.path.join(base, "root-local")
    os.mkdir(root_folder, 0o755)
    paths["root_local"] = root_folder
    try:
        yield paths
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def engine(place: dict[str, str]) -> Iterator[Engine]:
    """A system engine as `skysync run --system` makes it: the engine without its user socket, and the
    system socket answering each peer through the gate."""
    eng = Engine(place["home"], watch=False, control=False)
    eng.start()
    server = SystemControlServer(place["home"], SystemGate(eng, place["home"]).handle)
    server.start()
    try:
        yield eng
    finally:
        server.stop()
        eng.stop(5.0)


def as_user(owner: Owner, fn: Callable[[], Any]) -> Any:
    """`fn()` in a forked child running as `owner` (no supplementary groups); its value, or the one-line
    error it raised as {"error": ...}."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only sockets and json from here (all imported already), then _exit
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(owner.gid)
            os.setuid(owner.uid)
            out: dict[str, Any] = {"value": fn()}
        except BaseException as exc:
            out = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            os.write(write_end, json.dumps(out, default=str).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    if "error" in result:
        return {"error": result["error"]}
    return result["value"]


def client(place: dict[str, str]) -> EngineClient:
    return EngineClient(place["home"])


def add_local(place: dict[str, str], who: str, owner: Owner, direction: str = "download") -> None:
    """`who` adds their connection to their cloud folder and a task (download) with their local folder."""
    c = client(place)

    def add() -> bool:
        c.add_connection(f"{who}-cloud", "local", {"root": place[f"{who}_cloud"]})
        c.add_task({"name": f"{who}-task", "connection": f"{who}-cloud", "local": place[f"{who}_local"],
                    "remote": "/", "direction": direction})
        return True

    assert as_user(owner, add) is True


def test_each_user_sees_and_manages_only_their_own(users, place, engine):
    a, b = users
    add_local(place, "a", a)
    add_local(place, "b", b)
    c = client(place)

    seen_a = as_user(a, c.connections)
    assert [(x["name"], x["user"], x["tasks"]) for x in seen_a] == [("a-cloud", a.name, ["a-task"])]
    assert [x["name"] for x in as_user(b, c.connections)] == ["b-cloud"]
    every = {x["name"]: x["user"] for x in c.connections()}  # root, in this process
    assert every == {"a-cloud": a.name, "b-cloud": b.name}
    assert Home(place["home"]).connection("a-cloud").owner == a.uid

    status = as_user(a, lambda: c.ask({"cmd": "status"}))
    assert set(status["connections"]) == {"a-cloud"} and set(status["tasks"]) == {"a-task"}
    assert status["owners"] == {"a-cloud": a.name}
    assert as_user(a, c.is_system) is True and as_user(a, c.is_system_admin) is False
    assert c.is_system_admin() is True

    # B's things are answered for A as if they did not exist, and stay as they were.
    for attempt in (lambda: c.sync_now("b-task"), lambda: c.pause(task="b-task"),
                    lambda: c.pause(connection="b-cloud"), lambda: c.remove_task("b-task"),
                    lambda: c.remove_connection("b-cloud")):
        answer = as_user(a, attempt)
        assert answer["error"].startswith("UsageError: no ") and "named 'b-" in answer["error"]
    home = Home(place["home"])
    assert home.has_connection("b-cloud") and [t.name for t in home.tasks("b-cloud")] == ["b-task"]
    assert engine.status()["tasks"]["b-task"]["state"] != "paused"

    # Nobody syncs another user's folder or root's, nor adds for someone else; a task into B's connection fails.
    refused = [
        lambda: c.add_task({"name": "x", "connection": "a-cloud", "local": place["b_local"], "remote": "/"}),
        lambda: c.add_task({"name": "x", "connection": "a-cloud", "local": place["root_local"], "remote": "/"}),
        lambda: c.add_task({"name": "x", "connection": "b-cloud", "local": place["a_local"], "remote": "/"}),
        lambda: c.add_connection("x", "local", {"root": place["b_cloud"]}),
        lambda: c.add_connection("x", "local", {"root": place["a_cloud"]}, owner=b.uid),
    ]
    errors = [as_user(a, attempt)["error"] for attempt in refused]
    assert f"belongs to {b.name}, not to {a.name}" in errors[0]
    assert "belongs to root" in errors[1]
    assert "no connection named 'b-cloud'" in errors[2]
    assert "option 'root':" in errors[3] and f"belongs to {b.name}" in errors[3]
    assert "only root adds connections for another user" in errors[4]
    assert not Home(place["home"]).has_connection("x") and not any(t.name == "x" for t in Home(place["home"]).tasks())

    # A removes what is theirs; B's stays.
    assert as_user(a, lambda: c.remove_connection("a-cloud")) == ["a-task"]
    assert [x.name for x in Home(place["home"]).connections()] == ["b-cloud"]


def test_files_downloaded_into_a_users_folder_are_theirs(users, place, engine):
    a, _b = users
    cloud = Path(place["a_cloud"])
    (cloud / "sub" / "deeper").mkdir(parents=True)
    (cloud / "top.txt").write_text("top")
    (cloud / "sub" / "deeper" / "inner.txt").write_text("inner")
    add_local(place, "a", a)
    assert as_user(a, lambda: client(place).sync_now("a-task")) is None
    assert engine.wait_idle(30)
    local = Path(place["a_local"])
    assert (local / "sub" / "deeper" / "inner.txt").read_text() == "inner"
    made = [local / "top.txt", local / "sub", local / "sub" / "deeper", local / "sub" / "deeper" / "inner.txt"]
    for path in made:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (a.uid, a.gid), path
    leftovers = [p for p in local.rglob("*") if p.stat().st_uid != a.uid]
    assert leftovers == []
    # A's own process can read and change what arrived (it is not root's file in their folder).
    assert as_user(a, lambda: (local / "top.txt").write_text("mine") and True) is True


def test_files_uploaded_into_a_users_cloud_folder_are_theirs(users, place, engine):
    """The `local` kind's folder playing the cloud is a user's folder too: the root engine writes it as them."""
    a, _b = users
    local = Path(place["a_local"])
    (local / "up" / "in").mkdir(parents=True)
    (local / "up" / "in" / "sent.txt").write_text("sent")
    for path in (local / "up", local / "up" / "in", local / "up" / "in" / "sent.txt"):
        os.chown(path, a.uid, a.gid)
    add_local(place, "a", a, direction="upload")
    assert as_user(a, lambda: client(place).sync_now("a-task")) is None
    assert engine.wait_idle(30)
    cloud = Path(place["a_cloud"])
    assert (cloud / "up" / "in" / "sent.txt").read_text() == "sent"
    assert [p for p in cloud.rglob("*") if (p.stat().st_uid, p.stat().st_gid) != (a.uid, a.gid)] == []


def test_a_pass_refuses_a_folder_that_changed_hands(users, place):
    a, b = users
    home = Home(place["home"])
    main(["--home", place["home"], "connection", "add", "a-cloud", "--provider", "local", "--option",
          f"root={place['a_cloud']}", "--owner", a.name, "--no-test"])
    main(["--home", place["home"], "task", "add", "a-task", "--connection", "a-cloud", "--local", place["a_local"],
          "--remote", "/", "--direction", "download"])
    home = Home(place["home"])
    assert home.connection("a-cloud").owner == a.uid
    assert filesystem_for(home, home.task("a-task")) is not None
    cloud = Path(place["a_cloud"])
    cloud.rename(cloud.with_name("a-cloud-was"))
    cloud.symlink_to(place["root_local"])  # A's "cloud" is now root's folder: the pass must not touch it
    with pytest.raises(GuardError, match=r"option 'root':.*belongs to root"):
        filesystem_for(home, home.task("a-task"))
    cloud.unlink()
    cloud.with_name("a-cloud-was").rename(cloud)
    assert filesystem_for(home, home.task("a-task")) is not None
    os.chown(place["a_local"], b.uid, b.gid)  # the folder now belongs to B: A's connection may not write it
    with pytest.raises(GuardError, match=f"belongs to {b.name}, not to {a.name}"):
        filesystem_for(home, home.task("a-task"))
    assert main(["--home", place["home"], "sync", "a-task"]) == 2
    assert os.listdir(place["a_local"]) == []


def test_owner_given_by_root_must_own_the_named_folder(users, place, capsys):
    a, _b = users
    code = main(["--home", place["home"], "connection", "add", "x", "--provider", "local", "--option",
                 f"root={place['b_cloud']}", "--owner", a.name, "--no-test"])
    assert code == 2
    assert "option 'root':" in capsys.readouterr().err
    assert main(["--home", place["home"], "connection", "add", "x", "--provider", "local", "--option",
                 f"root={place['a_cloud']}", "--owner", "no-such-user-here", "--no-test"]) == 2
    assert "no Unix user named 'no-such-user-here'" in capsys.readouterr().err


def _st(mode: int, uid: int, gid: int) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


def test_whose_folder_may_be_synced():
    alice = Owner(1001, 1001, "alice", frozenset({1001, 50}))
    d = stat.S_IFDIR
    assert folder_refusal(_st(d | 0o700, 1001, 1001), alice) is None
    assert folder_refusal(_st(d | 0o770, 0, 50), alice) is None  # a shared group folder she can write
    assert "not to alice" in folder_refusal(_st(d | 0o750, 0, 50), alice)  # her group may only read it
    assert "not to alice" in folder_refusal(_st(d | 0o770, 1002, 60), alice)  # not her group
    assert "shared by everyone" in folder_refusal(_st(d | 0o1777, 0, 0), alice)  # /tmp
    assert "shared by everyone" in folder_refusal(_st(d | 0o777, 1002, 50), alice)
    assert folder_refusal(_st(stat.S_IFREG | 0o600, 1001, 1001), alice) == "is not a folder"
    f = stat.S_IFREG
    assert file_refusal(_st(f | 0o600, 1001, 1001), alice) is None
    assert file_refusal(_st(f | 0o644, 0, 0), alice) is None
    assert file_refusal(_st(f | 0o640, 0, 50), alice) is None
    assert "may not read it" in file_refusal(_st(f | 0o600, 0, 0), alice)  # /etc/shadow-like


def test_run_system_needs_root(users, place):
    a, _b = users
    assert as_user(a, lambda: run_forever(place["home"], system=True)) == 2


def test_skysync_run_system_serves_users_until_sigterm(users, place):
    a, _b = users
    main(["--home", place["home"], "connection", "add", "a-cloud", "--provider", "local", "--option",
          f"root={place['a_cloud']}", "--owner", a.name, "--no-test"])
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--home", place["home"], "run", "--system"],
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stderr is not None
        lines = iter(proc.stderr.readline, "")
        # the engine says it runs once its socket is bound (its own start is logged before)
        line = next(x for x in lines if "engine running" in x)
        assert "mode=system" in line
        st = os.stat(system_socket_path(place["home"]))
        assert stat.S_IMODE(st.st_mode) == 0o666
        seen = as_user(a, client(place).connections)
        assert [x["name"] for x in seen] == ["a-cloud"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert not os.path.exists(system_socket_path(place["home"]))


def test_a_user_engine_still_answers_only_its_user(users, place):
    a, _b = users
    eng = Engine(place["home"], watch=False)
    eng.start()
    try:
        assert client(place).running()
        assert as_user(a, client(place).running) is False  # cannot reach root's home socket; no system engine
    finally:
        eng.stop(5.0)


def cli_as(owner: Owner, *argv: str) -> tuple[int, str]:
    """`skysync ARGV` run by `owner`: exit code and what it printed (stdout and stderr)."""

    def run() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(argv))
        return code, out.getvalue()

    code, text = as_user(owner, run)
    return code, text


def test_users_run_their_commands_through_the_system_engine(users, place, engine):
    """A user's `skysync --home <system home> ...` cannot read the home (root's, 0700): it goes through the
    engine's socket, which answers for their own connections and tasks."""
    a, b = users
    h = ["--home", place["home"]]
    code, text = cli_as(a, *h, "connection", "add", "a-cloud", "--provider", "local", "--option",
                        f"root={place['a_cloud']}")
    assert code == 0, text
    assert as_user(a, lambda: serves_caller(place["home"])) is True and not serves_caller(place["home"])
    code, text = cli_as(a, *h, "task", "add", "a-task", "--connection", "a-cloud", "--local", place["a_local"],
                        "--remote", "/", "--direction", "download")
    assert code == 0, text
    assert "a-cloud" in cli_as(a, *h, "connection", "list")[1]
    assert cli_as(b, *h, "connection", "list") == (0, "")
    code, text = cli_as(b, *h, "task", "remove", "a-task")
    assert code == 2 and "no task named 'a-task'" in text
    code, text = cli_as(b, *h, "task", "add", "b-task", "--connection", "a-cloud", "--local", place["b_local"],
                        "--remote", "/", "--direction", "download")
    assert code == 2 and "no connection named 'a-cloud'" in text
    assert cli_as(a, *h, "sync", "a-task")[0] == 0
    assert engine.wait_idle(30)
    code, text = cli_as(a, *h, "status", "--json")
    assert code == 0 and set(json.loads(text)["tasks"]) == {"a-task"}
    assert "a-task" not in cli_as(b, *h, "status")[1]
    code, text = cli_as(a, *h, "settings", "get")
    assert code == 2 and "the rest is root's" in text
    assert cli_as(a, *h, "task", "remove", "a-task")[0] == 0
    assert Home(place["home"]).tasks() == []


def test_a_folder_swapped_for_a_link_mid_pass_leads_nowhere(users, place):
    """A user who replaces a folder of their task by a link to root's folder while the engine works gets every
    write, deletion and read through it refused: each call checks where its folder really is, then works
    relative to that open folder."""
    a, _b = users
    root_dir = Path(place["root_local"])
    (root_dir / "keep.txt").write_text("root's")
    secret = root_dir / "secret.txt"
    secret.write_text("root only")
    secret.chmod(0o600)
    local = Path(place["a_local"])
    fs = OwnedFileSystem(a.uid, a.gid, str(local), a.groups)
    (local / "sub").symlink_to(root_dir)  # what the user swapped in
    with pytest.raises(OutsideRoot):
        fs.open_new(str(local / "sub" / "planted.txt"))
    with pytest.raises(OutsideRoot):
        fs.unlink(str(local / "sub" / "keep.txt"))
    with pytest.raises(OutsideRoot):
        fs.open_read(str(local / "sub" / "secret.txt"))
    with pytest.raises(OutsideRoot):
        fs.mkdir(str(local / "sub" / "new" / "deeper"))
    with pytest.raises(OutsideRoot):
        fs.replace(str(local / "sub" / "keep.txt"), str(local / "stolen.txt"))
    assert sorted(os.listdir(root_dir)) == ["keep.txt", "secret.txt"]
    # A link as the file's own name is not followed; a file of root's, linked in place, is not read for A.
    (local / "link.txt").symlink_to(secret)
    with pytest.raises(OSError):
        fs.open_read(str(local / "link.txt"))
    os.link(secret, local / "hard.txt")  # root may; a user may not (protected_hardlinks)
    with pytest.raises(PermissionError, match="may not read it"):
        fs.open_read(str(local / "hard.txt"))
    # Inside the folder everything works, and is A's.
    with fs.open_new(str(local / "mine.tmp")) as f:
        f.write(b"ok")
    fs.replace(str(local / "mine.tmp"), str(local / "mine.txt"))
    fs.mkdir(str(local / "d1" / "d2"))
    assert all((p.stat().st_uid, p.stat().st_gid) == (a.uid, a.gid)
               for p in (local / "mine.txt", local / "d1", local / "d1" / "d2"))
    with fs.open_read(str(local / "mine.txt")) as f:
        assert f.read() == b"ok"
    fs.unlink(str(local / "mine.txt"))
    fs.rmdir(str(local / "d1" / "d2"))

