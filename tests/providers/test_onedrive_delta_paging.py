"""OneDrive's delta feed over several pages: every change of a long delta arrives (a `@odata.nextLink` page is
followed until the `@odata.deltaLink`), and only that last link becomes the cursor — a leftover of issue 16."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import graph_server
from tests.fakes.graph_server import GraphFake

from .servers.onedrive import CLIENT_ID
from .test_onedrive_specifics import personal, put


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphFake]:
    monkeypatch.setattr(graph_server, "PAGE", 3)  # Graph pages by its own choice; three items make pages here
    server = GraphFake(CLIENT_ID).start()
    try:
        yield server
    finally:
        server.stop()


def test_every_change_of_a_delta_spread_over_pages_arrives_and_the_cursor_is_the_last_link(fake: GraphFake) -> None:
    p = personal(fake)
    fake.mkdirs(fake.drives[p.drive()], "Sync")
    cursor = p.changes_start("Sync")
    names = {f"f{i:02}.txt" for i in range(11)}
    for name in sorted(names):
        put(p, f"Sync/{name}", name.encode())
    before = fake.counts.get("delta", 0)
    changes, cursor = p.changes("Sync", cursor)
    assert {c.name for c in changes if not c.deleted} == names
    assert fake.counts["delta"] - before >= 4  # 11 changes in pages of 3: the pages were followed
    assert "skiptoken" not in cursor  # the delta link, not a page link
    again, _ = p.changes("Sync", cursor)
    assert not [c for c in again if not c.deleted]
