"""Every screen at 80x24 and 120x40 on fixed sample data (clock, host name, cursor blink and animations fixed).

Snapshots live in snapshots/test_snapshots/; after a deliberate UI change run
`pytest tests/tui/test_snapshots.py --snapshot-update` and look at the report before committing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, Static

from engine.auth.oauth import OAuthSpec
from engine.auth.signin import Console, SignInCancelled
from engine.auth.tokens import Token
from tests.tui.helpers import SAMPLE_ROOT, SAMPLE_STATUS, sample_app, text_of, wait_for
from tui.screens.connection_wizard import AdvancedStep, ConnectionDraft, ConnectionForm
from tui.screens.filters import FileFilterScreen
from tui.screens.first_pass import FirstPassReview
from tui.screens.pickers import RemoteFolderBrowser
from tui.screens.selective_sync import SelectiveSyncScreen
from tui.screens.signin import DriveStep, SignInScreen
from tui.widgets.check_tree import FolderTree

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def ready(pilot: Pilot) -> None:
    app: Any = pilot.app
    await wait_for(pilot, lambda: app.status is SAMPLE_STATUS, what="first status")
    await pilot.pause()


async def settle(pilot: Pilot) -> None:
    """Let late refreshes land before the picture is taken: on a loaded machine a table's widened column was
    once drawn on every line but the cursor's (one pause is not always enough)."""
    await pilot.pause()
    await pilot.pause(0.1)
    await pilot.pause()

# The sample app lives at one fixed path (paths show on screen): its tests share one xdist worker.
pytestmark = pytest.mark.xdist_group("tui-sample-folder")


def pressing(
    *keys: str, until: Callable[[Pilot], bool] | None = None, then: tuple[str, ...] = ()
) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await ready(pilot)
        await pilot.press(*keys)
        if until is not None:
            await wait_for(pilot, lambda: until(pilot), what="screen content")
        await pilot.press(*then)
        await settle(pilot)

    return run


def pushing(make: Callable[[], Any], until: Callable[[Pilot], bool] | None = None) -> Callable[[Pilot], Any]:
    async def run(pilot: Pilot) -> None:
        await ready(pilot)
        pilot.app.push_screen(make())
        await pilot.pause()
        if until is not None:
            await wait_for(pilot, lambda: until(pilot), what="screen content")
        await settle(pilot)

    return run


def tree_loaded(pilot: Pilot) -> bool:
    trees = pilot.app.screen.query(FolderTree)
    return bool(trees) and bool(trees.first().root.children) and "loading" not in str(
        trees.first().root.children[0].label)


def sample_task() -> Any:
    from engine.config import Home

    return Home(str(SAMPLE_ROOT / "home")).task("photos")


def filled_s3_form() -> ConnectionForm:
    return ConnectionForm(str(SAMPLE_ROOT / "home"), ConnectionDraft("s3", "photos-s3", {
        "bucket": "My_Bucket", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "hunter2-secret"}))


# The sign-in screens on fixed words: a real flow's address carries a random state and a free port.
SPEC = OAuthSpec("test-client", None, "https://accounts.example/o/oauth2/auth", "https://oauth2.example/token")
AUTH_URL = ("https://accounts.example/o/oauth2/auth?response_type=code&client_id=1234567890-desktop.apps.example"
            "&redirect_uri=http%3A%2F%2F127.0.0.1%3A53682%2F&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fdrive"
            "&state=fixed-state&code_challenge=fixed-challenge&code_challenge_method=S256&access_type=offline")


def scripted(*lines: str) -> Callable[[OAuthSpec, Console], Token]:
    def flow(_spec: OAuthSpec, console: Console) -> Token:
        for line in lines:
            console.say(line)
        console.out.write("> ")
        console.inp.readline()  # until the screen closes (end of input)
        raise SignInCancelled("the sign-in was cancelled")

    return flow


CODE_FLOW = scripted(
    "Open this address in a browser on any computer and sign in:", "", AUTH_URL, "",
    "The browser then goes to an address starting with http://127.0.0.1:53682/; if it cannot open it (the browser "
    "is on another computer), copy that whole address from the address bar and paste it here (or just the code in "
    "it).")
DEVICE_FLOW = scripted("Open this address in a browser on any computer:", "", "https://example.com/device", "",
                       "and enter this code:", "", "WDJB-MJHT", "",
                       "Waiting for the sign-in to be approved (Ctrl-C stops)...")


DEVICE_SPEC = OAuthSpec("test-client", None, SPEC.auth_url, SPEC.token_url, device_url="https://example.com/code")


def signin_screen(flow: Callable[[OAuthSpec, Console], Token], title: str, spec: OAuthSpec = SPEC) -> SignInScreen:
    return SignInScreen(title, lambda signin: signin(spec), flow=flow, can_go_back=True)


def shows_address(pilot: Pilot) -> bool:
    """The flow's last line is on screen (the instructions after the address, or the device wait)."""
    words = pilot.app.screen.query("#signin-words")
    return bool(words) and any(w in text_of(words.first()) for w in ("paste it here", "Esc stops"))


SCENARIOS: dict[str, Callable[[Pilot], Awaitable[None]]] = {
    "main_overview": pressing(),
    "main_tasks": pressing("2"),
    "main_settings": pressing("3", until=lambda p: "Conflicts: checking" not in text_of(p.app.screen.query_one(
        "#conflict-mode"))),  # the connection's conflict mode comes from a thread worker
    "main_schedule": pressing("4", "right", "right", "shift+down", "shift+right"),
    "provider_step": pressing("n"),
    "connection_form_local": pressing("n", "enter"),
    "connection_form_s3": pushing(filled_s3_form),
    "advanced_step_s3": pushing(lambda: AdvancedStep(ConnectionDraft("s3", "photos-s3"))),
    "task_form": pressing("t"),
    "remote_browser": pushing(lambda: RemoteFolderBrowser(str(SAMPLE_ROOT / "home"), "nas-cloud"),
                              until=tree_loaded),
    "selective_sync": pressing("2", "o", until=tree_loaded, then=("down", "down", "space")),
    "file_filter": pressing("2", "f", until=lambda p: "Preview" in text_of(p.app.screen.query_one("#preview"))),
    "wizard_folders": pushing(lambda: SelectiveSyncScreen(str(SAMPLE_ROOT / "home"), sample_task(), step="2/4",
                                                          wizard=True), until=tree_loaded),
    "wizard_filter": pushing(lambda: FileFilterScreen(sample_task(), step="3/4", wizard=True),
                             until=lambda p: "Preview" in text_of(p.app.screen.query_one("#preview"))),
    "wizard_review": pushing(lambda: FirstPassReview(str(SAMPLE_ROOT / "home"), "photos"),
                             until=lambda p: "first pass will do" in text_of(p.app.screen.query_one("#review"))),
    "dry_run": pressing("2", "d", until=lambda p: "Would do" in text_of(p.app.screen.query_one("#summary"))),
    "log": pressing("g", until=lambda p: p.app.screen.query_one(DataTable).row_count == 6),
    "log_detail": pressing("g", "up", "up", "up", "enter"),
    "settings": pressing("comma"),
    "help": pressing("f1"),
    "confirm_unlink": pressing("2", "u"),
    "remove_connection": pressing("x"),
    "signin_code": pushing(lambda: signin_screen(CODE_FLOW, "New connection · sign in · Google Drive"),
                           until=shows_address),
    "signin_device": pushing(lambda: signin_screen(DEVICE_FLOW, "Sign in again · mail · OAuth service", DEVICE_SPEC),
                             until=shows_address),
    "drive_step": pushing(lambda: DriveStep("New connection · drive · Google Drive",
                                            lambda: [("0AFixedTeamId", "Team"), ("0AFixedArchiveId", "Archive")],
                                            lambda drive_id: drive_id),
                          until=lambda p: p.app.screen.query_one(OptionList).option_count == 3),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_screen(snap_compare: Any, scenario: str, size: tuple[int, int]) -> None:
    assert snap_compare(sample_app(), terminal_size=size, run_before=SCENARIOS[scenario])


@pytest.mark.parametrize("size", SIZES)
def test_signin_needed(snap_compare: Any, size: tuple[int, int]) -> None:
    """A connection whose sign-in is gone: its own style in the list, and the fix in words in the Overview."""
    status = {**SAMPLE_STATUS, "connections": {**SAMPLE_STATUS["connections"],
                                               "nas-cloud": {"state": "sign-in needed", "error": None}}}
    app = sample_app(status=status)

    async def run(pilot: Pilot) -> None:
        def shown() -> bool:
            found = pilot.app.screen.query("#overview-status")
            return bool(found) and "Press l" in text_of(found.first(Static))

        await wait_for(pilot, shown, what="the sign-in words")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_empty_home(snap_compare: Any, tmp_path: Any, size: tuple[int, int]) -> None:
    app = sample_app(status={"connections": {}, "tasks": {}}, records=False, home=str(tmp_path))

    def empty(pilot: Pilot) -> bool:
        found = pilot.app.screen.query("#overview-status")
        return bool(found) and "No connections" in text_of(found.first(Static))

    async def run(pilot: Pilot) -> None:
        await wait_for(pilot, lambda: empty(pilot), what="the empty-home overview")

    assert snap_compare(app, terminal_size=size, run_before=run)
