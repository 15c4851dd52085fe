"""The skysync terminal app: the engine in worker threads, its events streamed into the screens.

`run_app(home)` is what `skysync` (no command) and `make demo` call. Engine events arrive on engine threads and
cross to the UI only through `post_message` (thread-safe); status polls run in a thread worker and re-arm with
`set_timer` when they finish, so two polls never overlap (dolphie's worker manager).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.config import Home
from engine.errors import SkysyncError
from engine.events import Event, LogRecord, PassFinished, PassStarted, TransferProgress
from engine.names import shown
from tui import background, bridge, hangup
from tui.engine_host import EngineHost, EngineLike
from tui.messages import LogBatchReady, PassChanged, TransferUpdated
from tui.refresh import PROGRESS_INTERVAL, Stamp, config_stamp, remember_work, status_view
from tui.screens.admin import AdminScreen
from tui.screens.dialogs import QUIT_BACKGROUND, QUIT_SERVICE, QUIT_STOP, QuitScreen
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.main import MainScreen
from tui.screens.settings import SettingsScreen

RECORDS_MAX = 100_000  # the history log's own maximum; the view never holds more


def declared_here(cls: type, key: str) -> bool:
    """Whether a class of this app (not Textual's, even when subclassed) declares a binding for `key`."""
    return any(
        klass.__module__.startswith("tui.")
        and any(isinstance(b, Binding) and b.key == key for b in vars(klass).get("BINDINGS", ()))
        for klass in cls.__mro__
    )


class SkysyncApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "skysync"
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        # Admin mode: only while a system engine answers this app as root (check_action hides it otherwise).
        Binding("A", "admin", "All users", show=False, tooltip="Every user's connections (admin mode)",
                id="app.admin"),
    ]

    def __init__(
        self,
        home_path: str,
        *,
        engine_factory: Callable[[str], EngineLike] | None = None,
        start_engine: bool = True,
        poll_interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        hostname: str | None = None,
        timezone: tzinfo | None = None,
        steady: bool = False,
        home_label: str | None = None,
    ) -> None:
        super().__init__()
        self.home_path = home_path
        self.host = EngineHost(home_path, engine_factory)
        self.start_engine = start_engine
        self.poll_interval = poll_interval
        self.clock = clock
        self.tz = timezone
        self.steady = steady  # fixed screenshots: no cursor blink, no animation
        if steady:
            self.animation_level = "none"
        self.where = f"{hostname or socket.gethostname().split('.')[0]} · {home_label or home_path}"
        self.sub_title = self.where
        self.status: dict[str, Any] = {"connections": {}, "tasks": {}}
        self.records: deque[LogRecord] = deque(maxlen=self._records_cap())
        self.transfers: dict[tuple[str, str], dict[str, Any]] = {}
        self._incoming: list[LogRecord] = []
        self._incoming_lock = threading.Lock()
        self._stopping = False
        self.exit_message: str | None = None
        self.last_work: dict[str, Any] = {}  # per task, the last pass that changed something
        self._view: dict[str, Any] | None = None  # the status as last drawn, without its countdowns
        self._home: tuple[Stamp, Home] | None = None  # the config as last read, with the files' stamp
        self._progress_due = False  # a progress redraw is already scheduled
        self.admin = False  # a system engine (skysync run --system) answers this app as root
        self.host.subscribe(self._on_engine_event)

    def _records_cap(self) -> int:
        try:
            return min(RECORDS_MAX, int(Home(self.home_path).setting("log-max-records")))
        except (SkysyncError, ValueError):
            return RECORDS_MAX

    def get_default_screen(self) -> Screen:
        return MainScreen()

    @property
    def main(self) -> MainScreen | None:
        """The main screen, or None while the app starts or closes (workers can finish then)."""
        try:
            stack = self.screen_stack
        except Exception:
            return None
        return next((s for s in stack if isinstance(s, MainScreen)), None)

    def show_engine(self) -> None:
        """The header says who syncs: a background engine (it outlives the app), this app's own, or none."""
        word = ("background engine" if self.host.remote else "engine in this app" if self.host.running
                else "no engine")
        sub_title = f"{self.where} · {word}"
        if self.sub_title != sub_title:
            self.sub_title = sub_title

    def config_home(self) -> Home:
        """The home's config for the screens to read, loaded again only when its files changed (reading and
        parsing it on every status tick is what made the idle app busy). Flows that change the config load
        their own copy."""
        stamp = config_stamp(self.home_path)
        if self._home is None or self._home[0] != stamp:
            self._home = (stamp, Home(self.home_path))
        return self._home[1]

    def refresh_main(self) -> None:
        main = self.main
        if main is not None and main.is_mounted:
            main.refresh_view()

    def on_mount(self) -> None:
        self._load_history()
        if self.start_engine:
            self._start_engine()
        else:
            self.poll_status()

    # -- engine lifecycle ------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="engine-start")
    def _start_engine(self) -> bool:
        return self.host.start()

    @work(thread=True, exclusive=True, exit_on_error=False, group="admin-check")
    def _check_admin(self) -> bool:
        from engine.runtime.client import EngineClient

        return EngineClient(self.home_path).is_system_admin()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "admin":
            return self.admin
        return True

    def action_admin(self) -> None:
        if not self.admin or isinstance(self.screen, AdminScreen):
            return
        try:
            order = str(self.config_home().setting("admin-order"))
        except SkysyncError:
            order = "user"
        self.push_screen(AdminScreen(self.home_path, order))

    @work(thread=True, exclusive=True, exit_on_error=False, group="history")
    def _load_history(self) -> list[LogRecord]:
        return bridge.load_history(Home(self.home_path), limit=self._records_cap())

    @work(thread=True, exclusive=True, exit_on_error=False, group="status")
    def poll_status(self) -> tuple[dict[str, Any], tuple[Stamp, Home] | None]:
        """The engine's status, and the config when its files changed since it was last read (both can block:
        a socket, a disk), so the event loop only compares and draws."""
        status = self.host.status()
        stamp = config_stamp(self.home_path)
        cached = self._home
        if cached is not None and cached[0] == stamp:
            return status, None
        try:
            return status, (stamp, Home(self.home_path))
        except SkysyncError:
            return status, None  # the screen shows the config's error when it reads it itself

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group = event.worker.group
        if event.state == WorkerState.ERROR:
            if group == "engine-start":
                self.notify(shown(f"The engine did not start: {event.worker.error}"), severity="error", markup=False)
                self.poll_status()
            elif group == "status" and not self._stopping:
                self.set_timer(self.poll_interval, self.poll_status)
            return
        if event.state != WorkerState.SUCCESS:
            return
        if group == "admin-check":
            self.admin = bool(event.worker.result)
            self.refresh_bindings()
        elif group == "engine-start":
            self.show_engine()
            if self.host.remote:
                self._check_admin()
                self.notify("Connected to the engine already running for this home (skysync run).", timeout=6)
            elif not event.worker.result:
                self.notify(shown(f"Background sync is off: {self.host.fallback_reason}. Sync now still works."),
                            severity="warning", timeout=8, markup=False)
            self.poll_status()
        elif group == "history":
            older = list(event.worker.result or [])
            with self._incoming_lock:
                self.records.extendleft(reversed(older))
            self._refresh_log_screen(refill=True)
        elif group == "status":
            status, home = event.worker.result or (self.status, None)
            self.status = status
            self.last_work = remember_work(self.last_work, status)
            self.show_engine()  # a background engine that stopped: passes now run here
            view = status_view(status)
            if home is not None:
                self._home = home
            if home is not None or view != self._view:
                self._view = view
                self.refresh_main()  # nothing the user sees changed: no redraw, no bytes over SSH
            if not self._stopping:
                self.set_timer(self.poll_interval, self.poll_status)

    def engine_call(self, method: str, *args: Any) -> None:
        """Run a host method off the event loop (pause, resume, reload)."""
        self.run_worker(lambda: getattr(self.host, method)(*args), thread=True, group="engine-call",
                        exit_on_error=False)

    def config_changed(self) -> None:
        self._home = None
        self.records = deque(self.records, maxlen=self._records_cap())
        self.engine_call("reload")
        self.refresh_main()
        self.poll_status()

    def sync_now(self, tasks: list[str]) -> None:
        self.engine_call("sync_now", tasks)

    # -- events from engine threads --------------------------------------------------------------------------
    def _on_engine_event(self, event: Event) -> None:
        """Called on engine threads: buffer, then post one mergeable message (no UI calls from here)."""
        if isinstance(event, LogRecord):
            with self._incoming_lock:
                self._incoming.append(event)
            self.post_message(LogBatchReady())
        elif isinstance(event, TransferProgress):
            now = self.clock()
            key = (event.task, event.path)
            with self._incoming_lock:
                info = self.transfers.get(key)
                if info is None:
                    info = {"direction": event.direction, "started": now, "done": 0, "total": event.total,
                            "rate": 0.0}
                elapsed = max(now - info["started"], 1e-3)
                info.update(done=event.done, total=event.total, rate=event.done / elapsed)
                if event.total and event.done >= event.total:
                    self.transfers.pop(key, None)
                else:
                    self.transfers[key] = info
            self.post_message(TransferUpdated())
        elif isinstance(event, PassStarted | PassFinished):
            if isinstance(event, PassFinished):
                with self._incoming_lock:
                    for key in [k for k in self.transfers if k[0] == event.task]:
                        self.transfers.pop(key, None)
                self.post_message(PassChanged(event.task, True, event.ok, event.error))
            else:
                self.post_message(PassChanged(event.task, False))

    def on_log_batch_ready(self, _message: LogBatchReady) -> None:
        with self._incoming_lock:
            batch, self._incoming = self._incoming, []
        self.records.extend(batch)
        self._refresh_log_screen(batch)

    def _refresh_log_screen(self, batch: Iterable[LogRecord] = (), *, refill: bool = False) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, LogScreen):
                screen.refill() if refill else screen.append(batch)

    def on_transfer_updated(self, _message: TransferUpdated) -> None:
        """Progress arrives per chunk; the screen follows a few times a second."""
        if not self._progress_due:
            self._progress_due = True
            self.set_timer(PROGRESS_INTERVAL, self._show_progress)

    def _show_progress(self) -> None:
        self._progress_due = False
        self.refresh_main()

    def on_pass_changed(self, message: PassChanged) -> None:
        if message.finished and not message.ok and message.error:
            self.notify(shown(f"{message.task}: {message.error}"), title="Pass stopped", severity="error",
                        markup=False)
        if message.finished:
            self.refresh_main()  # its transfers are gone, whether or not the status shows a change
        self.poll_status()

    # -- app-wide actions ------------------------------------------------------------------------------------
    def format_time(self, t: float) -> str:
        return datetime.fromtimestamp(t, tz=self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def action_help(self) -> None:
        """List this screen's actions first, then the keys of the focused area (posting's help screen)."""
        if isinstance(self.screen, HelpScreen):
            return
        ours: list[tuple[str, str]] = []
        area: list[tuple[str, str]] = []
        seen: set[str] = set()
        # The screen's own actions always (even while a text field has focus), then the app's, then the keys of
        # the focused widget.
        active_now = self.screen.active_bindings
        for binding in [*type(self.screen).BINDINGS, *type(self).BINDINGS]:
            if not isinstance(binding, Binding):
                continue
            holder = active_now.get(binding.key)
            if holder is not None and not isinstance(holder.node, App | Screen) and declared_here(
                    type(holder.node), binding.key):
                continue  # the focused widget of ours takes this key (d on the schedule grid): listed below
            if binding.description and binding.key not in seen and self.check_action(binding.action, ()) is not False:
                seen.add(binding.key)
                ours.append((self.get_key_display(binding), binding.tooltip or binding.description))
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.system or key in seen or binding.key in seen:
                continue
            seen.add(key)
            # Our widgets' keys only: a table's or a list's own movement keys (pageup, ctrl+home...) padded the
            # list with what every terminal user knows.
            if not isinstance(active.node, App | Screen) and declared_here(type(active.node), binding.key):
                area.append((self.get_key_display(binding), binding.tooltip or binding.description))
        self.push_screen(HelpScreen(ours, area))

    def action_log(self, task: str | None = None) -> None:
        tasks = [t.name for t in Home(self.home_path).tasks()]
        self.push_screen(LogScreen(tasks, task))

    def action_settings(self) -> None:
        def done(saved: bool | None) -> None:
            if saved:
                self.notify("App settings saved.")
                self.config_changed()

        self.push_screen(SettingsScreen(self.home_path), done)

    async def action_quit(self) -> None:
        """Leave; while this app's own engine syncs, ask first whether syncing goes on without the app."""
        if self._stopping or isinstance(self.screen, QuitScreen):
            return
        try:
            tasks = len(self.config_home().tasks())
        except SkysyncError:
            tasks = 0
        if not (self.host.running and not self.host.remote and tasks):
            await self._leave(QUIT_STOP)  # a background engine carries on by itself; no engine, nothing stops
            return
        self.push_screen(QuitScreen(tasks, probe=background.systemd_problem), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        if choice is not None:
            self.run_worker(self._leave(choice), group="quit", exclusive=True)

    async def _leave(self, choice: str) -> None:
        """Stop this app's engine (transfers are dropped without partial files), start the chosen background
        engine in its place (it needs the home's lock the app's engine held), then exit."""
        self._stopping = True
        self.notify("Stopping the engine…")
        await asyncio.to_thread(self.host.stop)
        message = None
        try:
            if choice == QUIT_BACKGROUND:
                pid = await asyncio.to_thread(background.start_detached, self.home_path)
                message = (f"skysync keeps syncing in the background (skysync run, pid {pid}); 'skysync status' "
                           f"shows it, its log is {self.home_path}/{background.LOG_NAME}.")
            elif choice == QUIT_SERVICE:
                done = await asyncio.to_thread(background.install_user_service, self.home_path)
                message = f"skysync: {done}; journalctl --user -u skysync shows its log."
        except (SkysyncError, OSError) as exc:
            # Nothing syncs now: take the engine back here and stay, saying why in one line.
            self.notify(shown(f"Still here, syncing in this app: {exc}"), severity="error", timeout=10,
                        markup=False)
            self._stopping = False
            self._start_engine()
            return
        self.exit_message = message  # printed once the terminal is back; kept for whoever ran the app
        self.exit(0, message=message)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self.main
        if main is None:
            return
        commands = [
            ("New connection", "Create a connection with the wizard", "new_connection"),
            ("New sync task", "Pair a local folder with a remote folder", "new_task"),
            ("Sync now", "Run a pass of the selected connection's tasks", "sync_now"),
            ("Pause or resume task", "Pause the selected task, or resume it", "pause_task"),
            ("Pause or resume connection", "Pause every task of the connection, or resume them", "pause_connection"),
            ("Edit task", "Direction, folders and options of the selected task", "edit_task"),
            ("Selective sync", "Choose the folders the selected task syncs", "selective_sync"),
            ("File filter", "Exclude extensions, names and large files", "filters"),
            ("Dry-run preview", "What a pass of the selected task would do", "dry_run"),
            ("Unlink task", "Remove the task; files stay on both sides", "unlink_task"),
            ("Remove connection", "Remove the connection; files stay on both sides", "remove_connection"),
            ("Export encryption key", "Save the connection's key.zip somewhere safe", "export_key"),
            ("History log", "The live log with filters and search", "log"),
            ("App settings", "Concurrency, log size, database location, admin order", "settings"),
            ("Schedule", "The connection's 7 × 24 schedule grid", "show_tab('schedule')"),
            ("Connection settings", "Polling, traffic control and options of the connection", "show_tab('settings')"),
            ("Traffic control", "Upload and download limits of the connection", "show_tab('settings')"),
        ]
        for title, help_text, action in commands:
            yield SystemCommand(title, help_text, lambda a=action: self.call_later(main.run_action, a))
        if self.admin:
            yield SystemCommand("All users' connections", "Admin mode: every user's connections, by user or "
                                "cloud type", self.action_admin)


def run_app(home_path: str) -> int:
    """Open the app on a home; returns the exit code for the CLI."""
    app = SkysyncApp(home_path)
    # Gone with the terminal, as after a SIGHUP that may never come (tui.hangup).
    hangup.watch(sys.__stdin__.fileno() if sys.__stdin__ else -1,
                 lambda: hangup.stop_and_leave(app.host.stop))
    try:
        result = app.run()
    finally:
        app.host.stop()  # idempotent: covers an exit that did not go through action_quit
    return int(result or 0)
