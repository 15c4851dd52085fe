"""The connection form at 80x24 (issue 20 items 10 and 12): labels instead of option names, a preset list with no
blank entry, bucket rules checked as the user types (every broken rule at once), errors that go away once fixed,
focus on the field to fix with its text selected, and a wrong S3 secret named as the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from textual.widgets import Label, Select

from engine.connect import open_unsaved
from tests.tui.helpers import text_of, wait_for
from tests.tui.test_flows import make_app
from tui.screens.connection_wizard import ConnectionDraft, ConnectionForm
from tui.screens.dialogs import ConfirmScreen
from tui.screens.main import MainScreen
from tui.widgets.fields import Field

pytestmark = pytest.mark.anyio


def s3_form(home: Path) -> ConnectionForm:
    return ConnectionForm(str(home), ConnectionDraft("s3", "photos"))


async def test_s3_form_speaks_in_labels(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        app.push_screen(s3_form(tmp_path))
        await wait_for(pilot, lambda: bool(app.screen.query("#opt-bucket")), what="form")
        labels = [text_of(label) for label in app.screen.query(Label)]
        assert any(t.startswith("Access key ID *") for t in labels), labels
        assert not any(t.startswith("access_key_id") for t in labels)
        preset = app.screen.query_one("#opt-preset", Select)
        assert preset.value == "aws" and not preset._allow_blank


async def test_bucket_rules_live_and_errors_clear(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        app.push_screen(s3_form(tmp_path))
        await wait_for(pilot, lambda: bool(app.screen.query("#form-status")), what="form")
        status = app.screen.query_one("#form-status", Label)
        bucket = app.screen.query_one("#opt-bucket", Field)
        bucket.focus()
        await pilot.press("M", "y", "_")
        # shown while typing, not only on Next, and every broken rule at once (capitals and underscore)
        await wait_for(pilot, lambda: "invalid" in text_of(status), what="the bucket rule")
        assert text_of(status).count(";") >= 1, text_of(status)
        await pilot.press("backspace", "backspace", "backspace", "m", "y", "b")
        await wait_for(pilot, lambda: text_of(status) == "", what="the error gone once fixed")
        # Next with a required field empty: focus lands there with its text selected, so typing replaces it
        access = app.screen.query_one("#opt-access_key_id", Field)
        access.value = "  "
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: access.has_focus, what="focus on the field to fix")
        await pilot.pause()
        assert "required" in text_of(status)
        await pilot.press("A", "K")
        assert access.value == "AK"
        await wait_for(pilot, lambda: "required" not in text_of(status), what="stale error gone")


def test_wrong_secret_is_named_as_the_secret() -> None:
    provider = open_unsaved("s3", {"bucket": "bbb", "access_key_id": "AKIA", "secret_access_key": "s",
                                   "endpoint": "http://127.0.0.1:9"})
    try:
        def refusal(code: str) -> str:
            error = ClientError({"Error": {"Code": code, "Message": "no"},
                                 "ResponseMetadata": {"HTTPStatusCode": 403}}, "ListObjectsV2")
            return str(provider._translate(error, "listing"))  # type: ignore[attr-defined]

        assert "secret access key" in refusal("SignatureDoesNotMatch")
        assert "access key ID" in refusal("InvalidAccessKeyId")
    finally:
        provider.close()


async def test_escape_asks_before_discarding_typed_work(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        app.push_screen(ConnectionForm(str(tmp_path), ConnectionDraft("local")))
        await wait_for(pilot, lambda: bool(app.screen.query("#name")), what="form")
        await pilot.press("escape")  # nothing typed: it just closes
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="closed at once")
        app.push_screen(ConnectionForm(str(tmp_path), ConnectionDraft("local")))
        await wait_for(pilot, lambda: bool(app.screen.query("#name")), what="form again")
        await pilot.press("m", "y")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard?")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectionForm), what="kept")
        assert app.screen.query_one("#name", Field).value == "my"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard? again")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="discarded")
