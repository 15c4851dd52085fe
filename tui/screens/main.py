"""The main screen: connections on the left; Overview, Tasks, Settings and Schedule of the selected one.

Every action of the product is a binding here (and a command in the palette); flows that open several modals
run as workers that `await push_screen_wait`, so the screen never blocks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Label, Static, TabbedContent, TabPane, Tabs

from engine.auth.accounts import SignIn
from engine.config import Connection, Home, Task
from engine.errors import SkysyncError, UsageError
from engine.names import shown
from engine.providers.base import ProviderError
from engine.reconcile import HELD_DELETIONS
from engine.runtime.status import SIGNIN_NEEDED
from tui import bridge
from tui.screens.connection_wizard import (
    BACK,
    RCLONE_ENTRY,
    AdvancedStep,
    ConnectionDraft,
    ConnectionForm,
    ProviderStep,
    common_fields,
    option_fields,
    read_options,
)
from tui.screens.dialogs import ConfirmScreen, PromptScreen
from tui.screens.dry_run import DryRunScreen
from tui.screens.filters import FileFilterScreen
from tui.screens.rclone_import import RcloneImportScreen
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.screens.signin import DriveStep, SignInScreen
from tui.screens.task_flow import new_task
from tui.screens.task_wizard import DIRECTION_LABELS, TaskForm
from tui.text import cell, plain
from tui.widgets.conflict_mode import ConflictModeLine
from tui.widgets.connection_list import ConnectionList, badge, connection_state, state_text, text_key
from tui.widgets.fields import Field, button, first_failure, number
from tui.widgets.schedule_grid import ScheduleGrid

TABS = ("overview", "tasks", "settings", "schedule")


@dataclass
class HeldSignIn:
    """The wizard's sign-in and the options it was made with (a change to them means signing in again)."""

    options: dict[str, str]
    signed: bridge.SignedIn
BAR = 12


def progress_bar(done: int, total: int) -> str:
    frac = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
    full = round(frac * BAR)
    return "█" * full + "░" * (BAR - full) + f" {frac:4.0%}"


def human_rate(bytes_per_s: float) -> str:
    for unit in ("B/s", "KiB/s", "MiB/s", "GiB/s"):
        if bytes_per_s < 1024 or unit == "GiB/s":
            return f"{bytes_per_s:.0f} {unit}" if unit == "B/s" else f"{bytes_per_s:.1f} {unit}"
        bytes_per_s /= 1024
    return ""


def set_rows(table: DataTable, rows: list[tuple[Any, ...]], keys: list[str] | None = None) -> bool:
    """Fill a table with `rows` unless it already shows exactly them (a rebuilt table redraws whole); True when
    it was rebuilt."""
    wanted = ([tuple(text_key(c) for c in row) for row in rows], keys)
    if getattr(table, "shown_rows", None) == wanted:
        return False
    table.shown_rows = wanted  # type: ignore[attr-defined]
    table.clear()
    for i, row in enumerate(rows):
        table.add_row(*row, key=keys[i] if keys else None)
    return True


class ConnectionSettingsForm(VerticalScroll):
    """The Settings tab: general settings (polling), traffic control and the provider's advanced options."""

    BINDINGS = [Binding("ctrl+s", "apply", "Apply", id="conn-settings.apply")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.conn: Connection | None = None

    def compose(self) -> ComposeResult:
        conn = self.conn
        if conn is None:
            yield Label("No connection selected.", classes="hint")
            return
        yield Label(f"General settings · {escape(bridge.provider_title(conn.provider))}", classes="section")
        yield ConflictModeLine(self.app.home_path, conn.name, id="conflict-mode")  # type: ignore[attr-defined]
        yield from common_fields(conn.polling_period, conn.upload_limit, conn.download_limit)
        specs = self.specs()
        if specs:
            yield Label("Advanced settings", classes="section")
            yield from option_fields(specs, conn.options)
        yield Label("", id="conn-settings-status", classes="status")
        yield button("Apply (Ctrl+S)", id="conn-settings-apply", variant="primary")

    def specs(self) -> list[Any]:
        info = next((p for p in bridge.providers() if self.conn and p.kind == self.conn.provider), None)
        return [s for s in bridge.editable(info.options if info else ()) if s.advanced]

    def show(self, conn: Connection | None) -> None:
        if conn == self.conn:
            return
        self.conn = conn
        self.refresh(recompose=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "conn-settings-apply":
            event.stop()
            self.action_apply()

    def action_apply(self) -> None:
        if self.conn is None:
            return
        status = self.query_one("#conn-settings-status", Label)
        problem = first_failure(*self.query(Field))
        if problem is not None:
            status.update(problem)
            status.set_classes("status error")
            return
        common = {
            "polling_period": number(self.query_one("#polling", Field).value),
            "upload_limit": number(self.query_one("#upload-limit", Field).value),
            "download_limit": number(self.query_one("#download-limit", Field).value),
        }
        options = {k: v for k, v in read_options(self, self.specs()).items() if v}
        try:
            self.conn = bridge.update_connection(Home(self.app.home_path), self.conn.name, options, common)  # type: ignore[attr-defined]
        except UsageError as exc:
            status.update(plain(exc))
            status.set_classes("status error")
            return
        status.update("Saved.")
        status.set_classes("status ok")
        self.app.config_changed()  # type: ignore[attr-defined]


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("n", "new_connection", "New conn", tooltip="New connection (wizard)", id="main.new-connection"),
        Binding("t", "new_task", "New task", tooltip="New sync task on the selected connection", id="main.new-task"),
        Binding("s", "sync_now", "Sync", id="main.sync-now",
                tooltip="Sync now: the selected task (Tasks tab) or the whole connection"),
        Binding("p", "pause_task", "Pause", tooltip="Pause or resume the selected task", id="main.pause-task"),
        Binding("g", "log", "Log", tooltip="History log (live, with filters and search)", id="main.log"),
        Binding("e", "edit_task", "Edit task", show=False, id="main.edit-task"),
        Binding("o", "selective_sync", "Folders (selective sync)", show=False, id="main.selective-sync"),
        Binding("f", "filters", "File filter", show=False, id="main.filters"),
        Binding("d", "dry_run", "Dry-run preview", show=False, id="main.dry-run"),
        Binding("u", "unlink_task", "Unlink task", show=False, id="main.unlink-task"),
        Binding("P", "pause_connection", "Pause/resume connection", show=False, id="main.pause-connection"),
        Binding("x", "remove_connection", "Remove connection", show=False, id="main.remove-connection"),
        Binding("comma", "settings", "App settings", show=False, id="main.settings",
                tooltip="App settings for all connections (concurrency, log size, database); this connection's "
                        "own settings are on tab 3"),
        Binding("k", "export_key", "Export encryption key", show=False, id="main.export-key"),
        Binding("l", "login", "Sign in again", show=False, id="main.login",
                tooltip="Sign in again (a connection that shows 'sign-in needed'): skysync connection login"),
        Binding("1", "show_tab('overview')", "Overview tab", show=False, id="main.tab-overview"),
        Binding("2", "show_tab('tasks')", "Tasks tab", show=False, id="main.tab-tasks"),
        Binding("3", "show_tab('settings')", "Connection settings tab", show=False, id="main.tab-settings"),
        Binding("4", "show_tab('schedule')", "Schedule tab", show=False, id="main.tab-schedule"),
        Binding("ctrl+s", "apply_schedule", "Apply (Settings, Schedule)", show=False, id="main.apply-schedule"),
        Binding("escape", "to_list", "Back to the connection list", show=False, id="main.to-list"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield Label("Connections", classes="pane-title")
                yield ConnectionList(id="connections")
            with TabbedContent(id="tabs", initial="overview"):
                with TabPane("1 Overview", id="overview"), VerticalScroll(id="overview-scroll"):
                    yield Static("", id="overview-status")
                    yield Label("Current transfers", id="transfers-title", classes="section")
                    transfers: DataTable[str] = DataTable(id="transfers", cursor_type="none")
                    # the file last: a long path is what gets cut at 80 columns, not the rate
                    transfers.add_columns("Progress", "Rate", "File")
                    yield transfers
                    yield Label("s sync · P pause all · x remove · k key · , app settings",
                                id="overview-hint", classes="hint")
                with TabPane("2 Task list", id="tasks"):
                    tasks: DataTable[str] = DataTable(id="task-table", cursor_type="row", zebra_stripes=True)
                    tasks.add_column("Task", key="name")
                    tasks.add_column("State", key="state")
                    tasks.add_column("Direction", key="direction")
                    tasks.add_column("Local → remote", key="paths")
                    yield tasks
                    yield Label("t new · e edit · o folders · f filter · s sync · p pause · d dry run · u unlink",
                                classes="hint")
                with TabPane("3 Settings", id="settings"):
                    yield ConnectionSettingsForm(id="conn-settings")
                with TabPane("4 Schedule", id="schedule"), VerticalScroll():
                    yield Label("Schedule: hours when this connection may sync", classes="section")
                    yield ScheduleGrid(id="schedule-grid")
                    yield Label("space toggle, shift+arrows range, d/h/a day/hour/all",
                                classes="hint")
                    yield Label("", id="schedule-status", classes="status")
                    yield button("Apply (Ctrl+S)", id="schedule-apply", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one("#connections", ConnectionList).focus()

    # -- reading the state -----------------------------------------------------------------------------------
    @property
    def home_path(self) -> str:
        return self.app.home_path  # type: ignore[attr-defined]

    def home(self) -> Home:
        return Home(self.home_path)

    @property
    def selected_connection(self) -> str | None:
        return self.query_one("#connections", ConnectionList).selected_name

    @property
    def selected_task(self) -> str | None:
        table = self.query_one("#task-table", DataTable)
        if table.row_count == 0:
            return None
        row = max(0, min(table.cursor_row, table.row_count - 1))
        return str(table.coordinate_to_cell_key((row, 0)).row_key.value)

    def status(self) -> dict[str, Any]:
        return self.app.status  # type: ignore[attr-defined]

    def refresh_view(self) -> None:
        """Re-read the config and the latest status into the list and the tabs (cheap; called often)."""
        if not self.query("#connections"):
            return  # mounted but not composed yet (a worker of the app finished first): its mount shows it all
        try:
            home = self.app.config_home()  # type: ignore[attr-defined]
            conns = bridge.ordered_connections(home)
        except SkysyncError as exc:
            self._set_overview(plain(exc, "red"))
            return
        by_conn: dict[str, list[str]] = {}
        for task in home.tasks():
            by_conn.setdefault(task.connection, []).append(task.name)
        self.query_one("#connections", ConnectionList).show(conns, self.status(), by_conn)
        self._show_connection(home)

    def on_option_list_option_highlighted(self, _event: ConnectionList.OptionHighlighted) -> None:
        try:
            self._show_connection(self.app.config_home())  # type: ignore[attr-defined]
        except SkysyncError as exc:
            self._set_overview(plain(exc, "red"))

    def _set_overview(self, text: Text) -> None:
        """Update the Overview's text only when it differs: an equal update still redraws the pane."""
        overview = self.query_one("#overview-status", Static)
        if getattr(overview, "shown_text", None) != text_key(text):
            overview.shown_text = text_key(text)  # type: ignore[attr-defined]
            overview.update(text)

    def _show_connection(self, home: Home) -> None:
        name = self.selected_connection
        conn = home.connection(name) if name and home.has_connection(name) else None
        self._show_overview(home, conn)
        self._show_tasks(home, conn)
        self.query_one("#conn-settings", ConnectionSettingsForm).show(conn)
        grid = self.query_one("#schedule-grid", ScheduleGrid)
        # No connection, no schedule to edit: a grid that took keys and a Save that refused them misled.
        grid.disabled = conn is None
        self.query_one("#schedule-apply", Button).disabled = conn is None
        if conn is None and getattr(grid, "connection", "") is not None:
            grid.connection = None  # type: ignore[attr-defined]
            self.query_one("#schedule-status", Label).update("No connection yet: press n to create one.")
        if conn is not None and getattr(grid, "connection", None) != conn.name:
            grid.set_value(conn.schedule)
            grid.connection = conn.name  # type: ignore[attr-defined]
            self.query_one("#schedule-status", Label).update("")

    def _show_overview(self, home: Home, conn: Connection | None) -> None:
        visible = conn is not None
        self.query_one("#transfers").display = self.query_one("#transfers-title").display = visible
        self.query_one("#overview-hint").display = visible
        if conn is None:
            self._set_overview(Text.from_markup(
                "[b]No connections yet.[/b]\n\nPress [b]n[/b] to create one: choose a cloud service, fill in its "
                "settings, and skysync tests the connection before saving it.\nThen press [b]t[/b] to add a sync "
                "task (a local folder paired with a remote folder).\n\nF1 or ? shows every key."))
            return
        status = self.status()
        cstate = status.get("connections", {}).get(conn.name, {})
        tasks = home.tasks(conn.name)
        text = Text()
        text.append(f"{badge(conn.provider)} ", "bold magenta")
        text.append(f"{conn.name}", "bold")
        text.append(f"  {bridge.provider_title(conn.provider)}\n")
        text.append("State: ")
        task_states = status.get("tasks", {})
        text.append_text(state_text(connection_state(
            str(cstate.get("state", "…")), [str(task_states.get(t.name, {}).get("state", "")) for t in tasks])))
        if cstate.get("state") == SIGNIN_NEEDED:
            # The engine will not retry: only a new sign-in brings the connection back. Say how, in words.
            text.append("\nThe service no longer accepts this connection's sign-in, so its tasks wait. Press l to "
                        "sign in again (or run: skysync connection login " + shown(conn.name) + "); tasks and "
                        "their sync state are kept.", "bold dark_orange")
        elif cstate.get("error"):
            text.append(f"  {shown(str(cstate['error']))}", "red")
        limits = [
            f"up {conn.upload_limit} KiB/s" if conn.upload_limit else "up unlimited",
            f"down {conn.download_limit} KiB/s" if conn.download_limit else "down unlimited",
        ]
        text.append(f"\nPolling every {conn.polling_period:,} s · {' · '.join(limits)}")
        hours = conn.schedule.count("1")
        text.append(f" · schedule {'always' if hours == 168 else f'{hours}/168 h'}\n")
        where = {k: v for k, v in conn.options.items() if k in ("root", "bucket", "container", "url", "endpoint")}
        if where:
            text.append(" · ".join(f"{k} {shown(v)}" for k, v in where.items()) + "\n", "dim")
        text.append(f"\nTasks ({len(tasks)})\n", "bold")
        if not tasks:
            text.append("  none yet: press t to create one\n", "dim")
        task_states = status.get("tasks", {})
        for task in tasks:
            ts = task_states.get(task.name, {})
            text.append(f"  {task.name} ")
            text.append_text(state_text(str(ts.get("state", "…"))))
            text.append(f"  {DIRECTION_LABELS[task.direction].split(' ')[0].lower()}\n")
            text.append(f"    {self._last_pass(ts.get('last_pass'))}\n", "dim")
            work = self.app.last_work.get(task.name)  # type: ignore[attr-defined]
            if work and work != ts.get("last_pass"):
                text.append(f"    last changes{self._pass_words(work)}\n", "dim")
            last = ts.get("last_pass") or {}
            held = int((last.get("summary") or {}).get(HELD_DELETIONS, 0))
            if held:
                # The mass-delete guard left these out of the pass (the rest ran); they wait for the user.
                text.append(f"    {held} deletions held back (more than the mass-delete limit); check, then allow "
                            f"them: skysync sync --force {shown(task.name)}\n", "yellow")
            error = ts.get("error") or last.get("error")
            if error:
                text.append(f"    {shown(str(error))}\n", "red")
        names = {t.name for t in tasks}
        problems = [r for r in reversed(self.app.records) if r.task in names  # type: ignore[attr-defined]
                    and r.kind in ("error", "conflict")][:3]
        if problems:
            text.append("\nRecent problems (g: log)\n", "bold")
            for r in problems:
                text.append(f"  {r.kind:<8} ", "red" if r.kind == "error" else "yellow")
                text.append(f"{shown(r.task)}: {shown(r.path or r.message)}\n")
        self._set_overview(text)
        rows = [(progress_bar(info["done"], info["total"]), human_rate(info["rate"]),
                 cell(f"{'↑' if info['direction'] == 'up' else '↓'} {path}"))
                for (task, path), info in sorted(self.app.transfers.items())  # type: ignore[attr-defined]
                if task in names]
        set_rows(self.query_one("#transfers", DataTable), rows or [("", "", "no transfer in progress")])

    def _last_pass(self, last: dict[str, Any] | None) -> str:
        if not last:
            return "no pass yet"
        return f"last pass{self._pass_words(last, with_outcome=True)}"

    def _pass_words(self, last: dict[str, Any], *, with_outcome: bool = False) -> str:
        summary = last.get("summary") or {}
        parts = ", ".join(f"{n} {k}" for k, n in sorted(summary.items()) if n) or "nothing to do"
        when = last.get("finished")
        at = f" {self.app.format_time(when)[5:16]}" if when else ""  # type: ignore[attr-defined]
        outcome = f" {'ok' if last.get('ok', True) else 'failed'}" if with_outcome else ""
        return f"{at}{outcome}: {parts}"

    def _show_tasks(self, home: Home, conn: Connection | None) -> None:
        table = self.query_one("#task-table", DataTable)
        current = self.selected_task
        states = self.status().get("tasks", {})
        tasks = home.tasks(conn.name) if conn is not None else []
        rows = [(cell(task.name), state_text(str(states.get(task.name, {}).get("state", "paused" if task.paused
                                                                                else "…"))),
                 DIRECTION_LABELS[task.direction].split(" ")[0], cell(f"{task.local} → {task.remote}"))
                for task in tasks]
        names = [t.name for t in tasks]
        if not set_rows(table, rows, names):
            return
        if current in names:
            table.move_cursor(row=names.index(current))

    # -- tabs ------------------------------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        target = {"tasks": "#task-table", "schedule": "#schedule-grid"}.get(tab)
        if target:
            self.query_one(target).focus()
        else:
            # Not the Settings tab's first field: the next digit would be typed into it (3 then 4 turned a
            # polling period of 10 into 4). The tab strip keeps the digits for switching; Tab enters the form.
            self.query_one("#tabs", TabbedContent).query_one(Tabs).focus()

    def action_to_list(self) -> None:
        self.query_one("#connections", ConnectionList).focus()

    # -- helpers ---------------------------------------------------------------------------------------------
    def _need_connection(self) -> str | None:
        name = self.selected_connection
        if name is None:
            self.notify("Create a connection first (n).", severity="warning")
        return name

    def _need_task(self) -> Task | None:
        if self._need_connection() is None:
            return None
        name = self.selected_task
        if name is None:
            self.notify("This connection has no task yet: press t to create one.", severity="warning")
            return None
        return self.home().task(name)

    def _changed(self, message: str) -> None:
        self.notify(message)
        self.app.config_changed()  # type: ignore[attr-defined]

    def _failed(self, exc: Exception) -> None:
        self.notify(shown(str(exc)), title="Refused", severity="error", markup=False)

    # -- connection flows ------------------------------------------------------------------------------------
    def action_new_connection(self) -> None:
        self.connection_wizard()

    @work(exclusive=True, group="flow")
    async def connection_wizard(self) -> None:
        """provider → options → advanced → (OAuth) sign-in → (shared drives) drive → save."""
        draft: ConnectionDraft | None = None
        held: HeldSignIn | None = None
        drive_chosen = False  # shared_drive came from the drive step (asked again after a refused save)
        step = 0
        while True:
            if step == 0:
                kind = await self.app.push_screen_wait(ProviderStep(draft.kind if draft else None))
                if kind is None:
                    return
                if kind == RCLONE_ENTRY:
                    imported = await self.app.push_screen_wait(RcloneImportScreen(self.home_path))
                    if imported is None:
                        return
                    if imported != BACK:
                        self._changed(f"Connection '{imported}' imported from rclone. Press t to add a sync task.")
                        self._select_connection(imported)
                        return
                    continue
                if draft is None or draft.kind != kind:
                    draft = ConnectionDraft(kind=kind, name=draft.name if draft else "")
                step = 1
            elif step == 1 and draft is not None:
                result = await self.app.push_screen_wait(ConnectionForm(self.home_path, draft))
                if result is None:
                    return
                step = 0 if result == BACK else 2
            elif step == 2 and draft is not None:
                result = await self.app.push_screen_wait(AdvancedStep(draft))
                if result is None:
                    return
                step = 1 if result == BACK else 3 if bridge.signs_in(draft.kind) else 5
            elif step == 3 and draft is not None:
                # Sign in (or read the pasted token's account) once; coming back with the same options keeps it.
                wanted = {k: v for k, v in draft.options.items() if k != "shared_drive"}
                if held is None or held.options != wanted:
                    got = await self.app.push_screen_wait(self._sign_in_step(draft))
                    if got is None:
                        return
                    if got == BACK:
                        step = 2
                        continue
                    held = HeldSignIn(wanted, got)
                step = 4 if bridge.offers_drives(draft.kind) and not draft.options.get("shared_drive") else 5
            elif step == 4 and draft is not None and held is not None:
                drive = await self.app.push_screen_wait(self._drive_step(draft, held))
                if drive is None:
                    return
                if drive == BACK:
                    step = 2
                    continue
                draft.options["shared_drive"], drive_chosen = drive, True
                step = 5
            elif draft is not None:
                if await self._save_connection(draft, held.signed if held else None):
                    return
                if drive_chosen:
                    draft.options.pop("shared_drive", None)
                    drive_chosen = False
                step = 1

    def _sign_in_step(self, draft: ConnectionDraft) -> SignInScreen:
        kind, name, options = draft.kind, draft.name, dict(draft.options)
        return SignInScreen(f"New connection · sign in · {bridge.provider_title(kind)}",
                            lambda signin: bridge.read_account(kind, name, options, signin),
                            signs_in=not options.get("token"), can_go_back=True)

    def _drive_step(self, draft: ConnectionDraft, held: HeldSignIn) -> DriveStep:
        seen: list[tuple[str, str]] = []
        kind, options = draft.kind, dict(draft.options)

        def load() -> list[tuple[str, str]]:
            drives, held.signed = bridge.drive_choices(kind, options, held.signed)  # a refreshed token is kept
            seen[:] = drives or []
            return seen

        return DriveStep(f"New connection · drive · {bridge.provider_title(kind)}", load,
                         lambda drive_id: bridge.drive_option(drive_id, seen))

    async def _save_connection(self, draft: ConnectionDraft, signed: bridge.SignedIn | None) -> bool:
        common = {"polling_period": draft.polling_period, "upload_limit": draft.upload_limit,
                  "download_limit": draft.download_limit}
        try:
            if signed is None:
                bridge.add_connection(self.home(), draft.name, draft.kind, draft.options, common)
            else:
                self.notify("Saving and testing the connection…")
                # It reaches the service (the account, then a test through the new token store): off the loop.
                await asyncio.to_thread(bridge.add_signed_in_connection, self.home(), draft.name, draft.kind,
                                        draft.options, common, signed)
        except (SkysyncError, ProviderError) as exc:  # a refusal or the service's answer; back to the form
            self._failed(exc)
            return False
        self._changed(f"Connection '{draft.name}' created. Press t to add a sync task.")
        self._select_connection(draft.name)
        return True

    def _select_connection(self, name: str) -> None:
        if not self.is_attached or not self.query("#connections"):
            return  # the app is closing (a save that finished after the user quit): nothing left to show
        self.refresh_view()
        listing = self.query_one("#connections", ConnectionList)
        try:
            listing.highlighted = listing.get_option_index(name)
        except Exception:
            pass

    def action_remove_connection(self) -> None:
        name = self._need_connection()
        if name is not None:
            self.remove_connection_flow(name)

    @work(exclusive=True, group="flow")
    async def remove_connection_flow(self, name: str) -> None:
        tasks = [t.name for t in self.home().tasks(name)]
        body = f"Remove the connection '{name}'?"
        if tasks:
            body += f"\n\nIts tasks ({', '.join(tasks)}) are unlinked."
        body += "\n\nNo file is deleted: local and remote files stay where they are."
        if not await self.app.push_screen_wait(ConfirmScreen("Remove connection", body, "Remove")):
            return
        try:
            await asyncio.to_thread(bridge.remove_connection, self.home(), name)  # the state database may wait
        except SkysyncError as exc:
            self._failed(exc)
            return
        self._changed(f"Connection '{name}' removed; files stay on both sides.")

    def action_pause_connection(self) -> None:
        name = self._need_connection()
        if name is None:
            return
        home = self.home()
        tasks = home.tasks(name)
        pause = not (tasks and all(t.paused for t in tasks))
        for task in tasks:
            bridge.set_paused(home, task.name, pause)
        self.app.engine_call("pause_connection", name, pause)  # type: ignore[attr-defined]
        self._changed(f"Connection '{name}' {'paused' if pause else 'resumed'}.")

    # -- task flows ------------------------------------------------------------------------------------------
    def action_new_task(self) -> None:
        name = self._need_connection()
        if name is not None:
            self.task_wizard(name)

    @work(exclusive=True, group="flow")
    async def task_wizard(self, connection: str) -> None:
        await new_task(self, connection)  # settings → folders → filter → review; nothing syncs before Start

    def action_edit_task(self) -> None:
        task = self._need_task()
        if task is not None:
            self.edit_flow(TaskForm(self.home_path, task.connection, task))

    def action_selective_sync(self) -> None:
        task = self._need_task()
        if task is not None:
            self.edit_flow(SelectiveSyncScreen(self.home_path, task), task)

    def action_filters(self) -> None:
        task = self._need_task()
        if task is not None:
            self.edit_flow(FileFilterScreen(task))

    @work(exclusive=True, group="flow")
    async def edit_flow(self, screen: Any, task: Task | None = None) -> None:
        result = await self.app.push_screen_wait(screen)
        if result is None:
            return
        if isinstance(result, list) and task is not None:
            result = replace(task, exclude_folders=result)
        try:
            bridge.edit_task(self.home(), result)
        except SkysyncError as exc:
            self._failed(exc)
            return
        self._changed(f"Task '{result.name}' saved.")

    def action_unlink_task(self) -> None:
        task = self._need_task()
        if task is not None:
            self.unlink_flow(task.name)

    @work(exclusive=True, group="flow")
    async def unlink_flow(self, name: str) -> None:
        body = (
            f"Unlink the task '{name}'?\n\nFiles stay on both sides: nothing is deleted locally or in the cloud. "
            "Only the task and its sync state go; linking the folders again may need a full re-sync."
        )
        if not await self.app.push_screen_wait(ConfirmScreen("Unlink task", body, "Unlink")):
            return
        try:
            await asyncio.to_thread(bridge.remove_task, self.home(), name)  # the state database may wait
        except SkysyncError as exc:
            self._failed(exc)
            return
        self._changed(f"Task '{name}' unlinked; its files stay on both sides.")

    def action_pause_task(self) -> None:
        task = self._need_task()
        if task is None:
            return
        bridge.set_paused(self.home(), task.name, not task.paused)
        self.app.engine_call("pause_task", task.name, not task.paused)  # type: ignore[attr-defined]
        self._changed(f"Task '{task.name}' {'resumed' if task.paused else 'paused'}.")

    def action_sync_now(self) -> None:
        name = self._need_connection()
        if name is None:
            return
        home = self.home()
        if self.query_one("#tabs", TabbedContent).active == "tasks" and self.selected_task:
            names = [self.selected_task]
        else:
            names = [t.name for t in home.tasks(name)]
        names = [n for n in names if not home.task(n).paused]
        if not names:
            self.notify("Nothing to sync: no task, or every task is paused.", severity="warning")
            return
        self.app.sync_now(names)  # type: ignore[attr-defined]
        self.notify(f"Syncing {', '.join(names)}…")

    def action_login(self) -> None:
        name = self._need_connection()
        if name is None:
            return
        kind = self.home().connection(name).provider
        if not bridge.signs_in(kind):
            self.notify(f"Connection '{name}' ({kind}) signs in with its keys or password, not a browser: edit "
                        "them in its settings instead.", severity="warning", markup=False)
            return
        self.login_flow(name)

    @work(exclusive=True, group="flow")
    async def login_flow(self, name: str) -> None:
        home_path = self.home_path

        def run(signin: SignIn) -> str:
            bridge.login(home_path, name, signin)
            return name

        title = f"Sign in again · {name} · {bridge.provider_title(self.home().connection(name).provider)}"
        if await self.app.push_screen_wait(SignInScreen(title, run)) is None:
            return
        self._changed(f"Connection '{name}' is signed in; its tasks carry on.")

    def action_export_key(self) -> None:
        name = self._need_connection()
        if name is not None:
            self.export_key_flow(name)

    @work(exclusive=True, group="flow")
    async def export_key_flow(self, name: str) -> None:
        if not bridge.has_encryption_key(self.home(), name):
            self.notify(f"Connection '{name}' has no encryption key yet (no encrypted task).", severity="warning")
            return
        out = await self.app.push_screen_wait(PromptScreen("Export the key to (file or folder)", "~/key.zip"))
        if not out:
            return
        try:
            await asyncio.to_thread(bridge.export_key, self.home(), name, out)
        except SkysyncError as exc:
            self._failed(exc)
            return
        self.notify(f"Key exported to {out}; keep it somewhere safe.")

    def action_dry_run(self) -> None:
        task = self._need_task()
        if task is not None:
            self.app.push_screen(DryRunScreen(task.name))

    def action_log(self) -> None:
        self.app.action_log(self.selected_task if self.query_one("#tabs", TabbedContent).active == "tasks"  # type: ignore[attr-defined]
                            else None)

    def action_settings(self) -> None:
        self.app.action_settings()  # type: ignore[attr-defined]

    # -- schedule --------------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "schedule-apply":
            self.action_apply_schedule()

    def action_apply_schedule(self) -> None:
        """Ctrl+S applies whatever the visible tab edits."""
        active = self.query_one("#tabs", TabbedContent).active
        if active == "settings":
            self.query_one("#conn-settings", ConnectionSettingsForm).action_apply()
            return
        if active != "schedule":
            return
        name = self._need_connection()
        if name is None:
            return
        grid = self.query_one("#schedule-grid", ScheduleGrid)
        try:
            bridge.update_connection(self.home(), name, None, {"schedule": grid.value})
        except SkysyncError as exc:
            self._failed(exc)
            return
        hours = grid.value.count("1")
        self.query_one("#schedule-status", Label).update(f"Saved: {hours} of 168 hours allowed.")
        self._changed(f"Schedule of '{name}' saved.")

    def on_schedule_grid_changed(self, _event: ScheduleGrid.Changed) -> None:
        self.query_one("#schedule-status", Label).update("Changed: Ctrl+S or Apply saves.")
