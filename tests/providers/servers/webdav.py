"""`webdav`: wsgidav (filesystem provider) on cheroot, in a thread of the test process on 127.0.0.1.

One server for the session, serving a temporary folder with basic auth from a simple user/password domain
controller (so wrong credentials are refused for real). `honor_mtime_header` makes it accept the
ownCloud/Nextcloud `X-OC-Mtime` header on PUT, as those servers do; getlastmodified is also a mutable live
property, so PROPPATCH works too. Every `serve()` gets a fresh sub-folder as the connection's root URL.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

KIND = "webdav"
USER = "sky"
PASSWORD = "s3cret-dav"

_lock = threading.Lock()
_state: dict[str, Any] = {}
_counter = itertools.count()


def config(root: str, **overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/": root},
        "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
        "honor_mtime_header": True,
        "mutable_live_props": ["{DAV:}getlastmodified"],
        "verbose": 1,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "lock_storage": True,
    }
    conf.update(overrides)
    return conf


@contextlib.contextmanager
def running(conf: dict[str, Any], wrap: Callable[[Any], Any] | None = None) -> Iterator[str]:
    """A wsgidav server for `conf` in a daemon thread; yields its base URL. `wrap` puts a WSGI middleware in
    front of it (a test that plays a server answering some requests wrongly)."""
    from cheroot import wsgi
    from cheroot.workers.threadpool import WorkerThread
    from wsgidav.wsgidav_app import WsgiDAVApp

    app = WsgiDAVApp(conf)
    if wrap is not None:
        app = wrap(app)
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8)

    def daemon_worker() -> WorkerThread:
        # cheroot's workers are not daemons, and Python joins those before running atexit handlers: a session
        # server left running would hang the test process at exit.
        worker = WorkerThread(server)
        worker.daemon = True
        worker.start()
        return worker

    server.requests._spawn_worker = daemon_worker
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.bind_addr[1]}"
    finally:
        server.stop()
        thread.join(5)


def _stop() -> None:
    proc = _state.pop("proc", None)
    if proc is not None:
        proc.stdin.close()  # the server exits when its stdin closes (also if this process dies)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(_state.pop("root", ""), ignore_errors=True)


def base() -> tuple[str, pathlib.Path]:
    """(URL, folder) of the session's server, started on first use.

    It runs in a child process so the server's Python work uses the second core instead of competing with
    the tests for this process's GIL (a 1,000-file test takes about half the time).
    """
    with _lock:
        if "url" not in _state:
            root = tempfile.mkdtemp(prefix="skysync-webdav-")
            repo = str(pathlib.Path(__file__).resolve().parents[3])
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.providers.servers.webdav", root],
                cwd=repo, env={**os.environ, "PYTHONPATH": repo},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            _state.update(root=root, proc=proc)
            atexit.register(_stop)
            line = proc.stdout.readline().decode().strip() if proc.stdout else ""
            if not line.startswith("http://"):
                _stop()
                raise RuntimeError("the wsgidav test server did not start")
            _state["url"] = line
        return _state["url"], pathlib.Path(_state["root"])


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    url, root = base()
    name = f"t{next(_counter)}"
    (root / name).mkdir()
    try:
        yield {"url": f"{url}/{name}", "user": USER, "password": PASSWORD}
    finally:
        shutil.rmtree(root / name, ignore_errors=True)


def populate(options: dict[str, str], paths: list[str]) -> None:
    """Files of one byte written straight into the served folder: a thousand PUTs through a loaded machine
    took most of a test about listing, and one stale keep-alive connection among them failed it."""
    _, root = base()
    folder = root / options["url"].rstrip("/").rpartition("/")[2]
    for path in paths:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    return {**options, "password": "wrong-" + options["password"]}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "url": options["url"] + "-missing"}


def unreachable(options: dict[str, str], address: str) -> dict[str, str]:
    return {**options, "url": f"http://{address}/"}


if __name__ == "__main__":  # the session server's child process: serve argv[1] until stdin closes
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    with running(config(sys.argv[1])) as url:
        print(url, flush=True)
        sys.stdin.read()
