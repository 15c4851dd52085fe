"""The fake OAuth server and the in-process OAuth test kind."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

# The fakes and the test kind are imported as `tests.…` (in this process and in the console script's, where the
# kind is registered by name); make that work however pytest was started.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # appended: inserted first, it would shadow the test package tests/engine (engine.conftest)

from engine import providers  # noqa: E402
from tests.auth.oauth_kind import KIND, TARGET  # noqa: E402
from tests.fakes.oauth_server import FakeOAuthServer  # noqa: E402


@pytest.fixture
def oauth_server() -> Iterator[FakeOAuthServer]:
    server = FakeOAuthServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def test_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(providers._REGISTRY, KIND, TARGET)
    return KIND
