"""The running engine's control socket: `skysync status` and the TUI ask it for status or send it commands.

A Unix stream socket, mode 0600 inside a 0700 folder of the home, so only its user can talk to it; the peer's
uid is checked too. Protocol: one JSON object per line in, one JSON object per line out, then close.

Requests: {"cmd": "status"} | {"cmd": "sync-now", "task": NAME|null, "force": bool}
        | {"cmd": "pause"|"resume", "task": NAME} | {"cmd": "pause"|"resume", "connection": NAME}
        | {"cmd": "reload"} | {"cmd": "ping"}
Answers: {"ok": true, ...} or {"ok": false, "error": "one line"}; status answers {"ok": true, "engine": {...},
"connections": {...}, "tasks": {...}} (Engine.status() documents the fields).

A system engine (`skysync run --system`, engine.runtime.system) serves several users: its socket lives outside
the home (which stays 0700, secrets and all) in a root-owned 0755 folder under /run, mode 0666 so that any local
user can connect, and every request is answered for the peer's uid as the kernel reports it (SO_PEERCRED), never
for what the request claims. A platform without SO_PEERCRED gets no system socket at all (fail closed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RUN_DIR = ".run"
SOCKET_NAME = "engine.sock"
# Written by the engine while some task's folders have no inotify watch (the kernel's limit is reached): JSON
# {"pid", "limit", "rescan_every", "tasks": {name: {"since", "folder"}}}; removed when all are watched again.
# `skysync doctor` reads it.
INOTIFY_MARKER = "inotify-exhausted"
MAX_REQUEST = 64 * 1024
# sun_path holds 108 bytes on Linux (104 on BSD/macOS) including the NUL; stay clear of both.
MAX_SUN_PATH = 100

# The system engine's sockets, one folder per home (named after it) under a root-owned folder.
SYSTEM_RUN_ROOT = "/run/skysync"

Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of a control connection, as the kernel says (SO_PEERCRED)."""

    uid: int
    gid: int
    pid: int


PeerHandler = Callable[[dict[str, Any], Peer], dict[str, Any]]


def private_dir(path: str) -> str:
    """Create `path` as a 0700 folder owned by us, refusing one that someone else could have planted."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a folder owned by this user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def socket_dir(home_path: str) -> str:
    home = os.path.abspath(home_path)
    preferred = os.path.join(home, RUN_DIR)
    if len(os.path.join(preferred, SOCKET_NAME).encode()) <= MAX_SUN_PATH:
        return preferred
    # A deep home cannot hold a socket; use a per-user folder in the temp dir, named after the home.
    digest = hashlib.sha256(home.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"skysync-{os.getuid()}", digest)


def socket_path(home_path: str) -> str:
    return os.path.join(socket_dir(home_path), SOCKET_NAME)


def system_run_root() -> str:
    """/run/skysync where /run exists (systemd's RuntimeDirectory), else a folder in the temp dir."""
    return SYSTEM_RUN_ROOT if os.path.isdir(os.path.dirname(SYSTEM_RUN_ROOT)) else os.path.join(
        tempfile.gettempdir(), "skysync-system")


def system_socket_path(home_path: str) -> str:
    """Where the system engine of `home_path` listens: short whatever the home, and outside it."""
    home = os.path.abspath(home_path)
    digest = hashlib.sha256(home.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(system_run_root(), digest, SOCKET_NAME)


def public_dir(path: str) -> str:
    """Create `path` as a 0755 folder owned by root (us), refusing one anybody else could change."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a folder owned by this user")
    if stat.S_IMODE(st.st_mode) != 0o755:
        os.chmod(path, 0o755)
    return path


def inotify_marker_path(home_path: str) -> str:
    """Always inside the home (a plain file has no path length limit, unlike the socket)."""
    return os.path.join(os.path.abspath(home_path), RUN_DIR, INOTIFY_MARKER)


def peer_of(conn: socket.socket) -> Peer | None:
    """The connected process's credentials, or None where the platform cannot say."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    data = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", data)
    return Peer(uid, gid, pid)


def _read_line(conn: socket.socket) -> bytes:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST:
            raise ValueError("request too large")
    return bytes(buf.split(b"\n", 1)[0])


class ControlServer:
    """Serves `handler(request) -> answer` on the home's socket from a background thread."""

    def __init__(self, home_path: str, handler: Handler) -> None:
        self.home_path = home_path
        self.path = socket_path(home_path)
        self._handler = handler
        self._peer_handler: PeerHandler | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _prepare_folder(self) -> None:
        folder = os.path.dirname(self.path)
        home = os.path.abspath(self.home_path)
        if os.path.dirname(folder) == home:
            os.makedirs(home, mode=0o700, exist_ok=True)
        else:
            private_dir(os.path.dirname(folder))  # /tmp/skysync-UID: checked, since /tmp is shared
        private_dir(folder)

    def _socket_mode(self) -> int:
        return 0o600  # the folder is 0700 already, so there is no window for others

    def start(self) -> None:
        """Bind the socket. The caller holds the engine lock, so a leftover socket is stale: replace it."""
        self._prepare_folder()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        os.chmod(self.path, self._socket_mode())
        sock.listen(16)
        sock.settimeout(0.25)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2.0)
        if self._sock:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), name="control-conn", daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                peer = peer_of(conn)
                if not self._admits(peer):
                    answer: dict[str, Any] = {"ok": False, "error": "permission denied"}
                else:
                    request = json.loads(_read_line(conn) or b"{}")
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    answer = self._dispatch(request, peer)
            except (ValueError, OSError) as exc:
                answer = {"ok": False, "error": f"bad request: {exc}"}
            except Exception as exc:  # the engine's bug must not take the server down; report it in one line
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer, default=str).encode() + b"\n")

    def _admits(self, peer: Peer | None) -> bool:
        """A user engine answers its own user and root only."""
        return peer is None or peer.uid in (os.getuid(), 0)

    def _dispatch(self, request: dict[str, Any], peer: Peer | None) -> dict[str, Any]:
        return self._handler(request)


class SystemControlServer(ControlServer):
    """The system engine's socket: every local user may connect, and each request is answered for the peer's
    uid by `handler(request, peer)` (engine.runtime.system decides what that uid may see and do)."""

    def __init__(self, home_path: str, handler: PeerHandler) -> None:
        super().__init__(home_path, lambda request: {"ok": False, "error": "permission denied"})
        self.path = system_socket_path(home_path)
        self._peer_handler = handler

    def _prepare_folder(self) -> None:
        if not hasattr(socket, "SO_PEERCRED"):
            raise OSError("this system cannot tell who connects to a socket (no SO_PEERCRED): no system engine")
        public_dir(os.path.dirname(os.path.dirname(self.path)))
        public_dir(os.path.dirname(self.path))

    def _socket_mode(self) -> int:
        return 0o666  # anyone may ask; what they get is decided per request by their uid

    def _admits(self, peer: Peer | None) -> bool:
        return peer is not None  # fail closed: a peer the kernel cannot name gets nothing

    def _dispatch(self, request: dict[str, Any], peer: Peer | None) -> dict[str, Any]:
        assert peer is not None and self._peer_handler is not None
        return self._peer_handler(request, peer)


def query(home_path: str, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """Send one request to the engine running for `home_path` (its own user engine, else a system engine of
    that home); None when no engine runs there."""
    answer = query_socket(socket_path(home_path), request, timeout)
    system = system_socket_path(home_path)
    if answer is None and trusted_system_socket(system):
        answer = query_socket(system, request, timeout)
    return answer


def trusted_system_socket(path: str) -> bool:
    """Whether `path` can only have been made by root: its folder and the one above are root's and nobody
    else may write them. Where the run root falls back to the shared temp dir, another user could plant a
    socket posing as the engine and collect the secrets a client sends it (connection-add)."""
    for folder in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        try:
            st = os.lstat(folder)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
            return False
    return True


def query_socket(path: str, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """One request to the engine listening on `path`; None when nobody listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError, PermissionError):
            # no socket, a stale one left by a crash, or one in a folder that is not ours (a system engine's
            # home, where a user then finds the system socket): nobody is listening for us there
            return None
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = bytearray()
        while b"\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data:
        return None
    answer = json.loads(bytes(data).split(b"\n", 1)[0])
    return answer if isinstance(answer, dict) else None
