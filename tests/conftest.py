"""Project-wide test configuration: SVG snapshots (pytest-textual-snapshot) live in the repo's snapshots/, and
hypothesis runs fixed examples under CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

SNAPSHOT_DIR = Path(__file__).resolve().parent.parent / "snapshots"

# CI replays a fixed set of property-test examples so a landing never depends on luck; local runs explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


class _RepoSnapshots(SnapshotAssertion):
    """Whatever extension a plugin switches to (snap_compare picks its SVG one), store under snapshots/<test file>/."""

    def use_extension(self, extension_class=None):  # type: ignore[no-untyped-def]
        base = extension_class or self.extension_class

        class InRepo(base):  # type: ignore[valid-type, misc]
            @classmethod
            def dirname(cls, *, test_location: PyTestLocation) -> str:
                return str(SNAPSHOT_DIR / Path(test_location.filepath).stem)

        InRepo.__name__ = base.__name__
        return super().use_extension(InRepo)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return _RepoSnapshots(
        update_snapshots=snapshot.update_snapshots,
        extension_class=snapshot.extension_class,
        test_location=snapshot.test_location,
        session=snapshot.session,
    )
