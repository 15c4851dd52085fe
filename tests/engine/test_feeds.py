"""Change feeds through real passes (engine.feeds): the remote index fed by deltas by id, the saved cursor, the
fallbacks to a full listing, duplicates and case-insensitive names. The service is tests/fakes/feed_provider."""

from __future__ import annotations

import pathlib
import sys

import pytest

from engine.config import Home
from engine.feeds import DUPLICATE_REASON, FULL_LISTING_EVERY, OK, UNTRUSTED, apply_changes
from engine.providers.base import Change, RemoteEntry
from engine.state import FeedKey, StateDB
from engine.sync import run_pass

from .conftest import Env, write

_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fakes.feed_provider import FeedProvider  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def sync(env: Env, fake: FeedProvider, clock: Clock | None = None, **kw):
    kw.setdefault("hostname", "testhost")
    fake.calls.clear()
    return run_pass(Home(env.home.path), env.task, provider=fake, clock=clock or Clock(), **kw)


def index(env: Env) -> list[RemoteEntry]:
    db = StateDB(env.home.setting("database-path"))
    try:
        return list(db.index_entries(db.task_id(env.task)))
    finally:
        db.close()


def cursor(env: Env) -> str | None:
    db = StateDB(env.home.setting("database-path"))
    try:
        row = db._db.execute("SELECT cursor FROM feeds").fetchone()
        return row[0] if row else None
    finally:
        db.close()


@pytest.fixture(params=["parents", "paths"])
def fake(request: pytest.FixtureRequest) -> FeedProvider:
    return FeedProvider(paths_in_feed=request.param == "paths")


def test_first_pass_lists_then_the_feed_is_read(env: Env, fake: FeedProvider) -> None:
    fake.put("a.txt", b"A")
    fake.put("docs/b.txt", b"B")
    r = sync(env, fake)
    assert r.exit_code == 0
    assert fake.calls["changes_start"] == 1 and fake.calls["list"] == 1
    assert {e.path for e in index(env)} == {"a.txt", "docs", "docs/b.txt"}
    assert all(e.id for e in index(env)) and cursor(env) is not None
    assert (env.local / "docs/b.txt").read_bytes() == b"B"
    # A new process (a new StateDB, a new provider object over the same service) reads the feed, not a listing.
    again = sync(env, fake)
    assert again.summary == {} and fake.calls["list"] == 0 and fake.calls["changes"] == 1


def test_upsert_and_delete_by_id(env: Env, fake: FeedProvider) -> None:
    fake.put("a.txt", b"A")
    fake.put("gone.txt", b"G")
    write(env.local / "mine.txt", "M")
    sync(env, fake)
    fake.put("a.txt", b"A2", mtime=1_700_000_100.0)
    fake.put("new/c.txt", b"C")
    fake.remove("gone.txt")
    r = sync(env, fake)
    assert fake.calls["list"] == 0
    assert r.summary.get("downloaded") == 2 and r.summary.get("deleted-local") == 1, r.summary
    assert (env.local / "a.txt").read_bytes() == b"A2" and (env.local / "new/c.txt").read_bytes() == b"C"
    assert not (env.local / "gone.txt").exists() and (env.local / "mine.txt").exists()
    assert sync(env, fake).summary == {}
    assert {e.path for e in index(env)} == set(fake.tree())  # the index follows the service exactly


def test_a_folder_renamed_on_the_service_moves_locally_without_downloads(env: Env, fake: FeedProvider) -> None:
    for i in range(5):
        fake.put(f"old/sub/f{i}.txt", f"data {i}".encode())
    sync(env, fake)
    inode = (env.local / "old/sub/f0.txt").stat().st_ino
    fake.rename("old", "renamed")
    r = sync(env, fake)
    assert fake.calls["list"] == 0 and fake.calls["download"] == 0, (r.summary, fake.calls)
    assert r.summary.get("moved-local") == 5, r.summary
    assert (env.local / "renamed/sub/f0.txt").stat().st_ino == inode
    assert not (env.local / "old").exists()
    assert {e.path for e in index(env)} == set(fake.tree())
    assert sync(env, fake).summary == {}


def test_cursor_expired_lists_again_and_starts_a_fresh_cursor(env: Env, fake: FeedProvider) -> None:
    fake.put("a.txt", b"A")
    sync(env, fake)
    old = cursor(env)
    fake.put("b.txt", b"B")
    fake.expire()
    r = sync(env, fake)
    assert fake.calls["changes"] == 1 and fake.calls["list"] == 1 and fake.calls["changes_start"] == 1
    assert r.summary.get("downloaded") == 1 and cursor(env) != old
    sync(env, fake)
    assert fake.calls["list"] == 0  # the fresh cursor is used


def test_the_periodic_listing_and_force_list_everything(env: Env, fake: FeedProvider) -> None:
    clock = Clock()
    fake.put("a.txt", b"A")
    sync(env, fake, clock)
    clock.now += FULL_LISTING_EVERY - 10
    sync(env, fake, clock)
    assert fake.calls["list"] == 0
    clock.now += 20
    sync(env, fake, clock)
    assert fake.calls["list"] == 1
    sync(env, fake, clock)
    assert fake.calls["list"] == 0
    sync(env, fake, clock, force=True)
    assert fake.calls["list"] == 1


def test_an_unknown_parent_falls_back_to_a_listing(env: Env) -> None:
    fake = FeedProvider()
    fake.put("a.txt", b"A")
    sync(env, fake)
    fake.put("dir/b.txt", b"B")
    # The feed loses the folder's own change (as if the service had not reported it): its child cannot be placed.
    fake.journal = [i for i in fake.journal if fake.nodes.get(i) is None or fake.nodes[i].name != "dir"]
    r = sync(env, fake)
    assert fake.calls["list"] == 1 and r.summary.get("downloaded") == 1
    assert {e.path for e in index(env)} == {"a.txt", "dir", "dir/b.txt"}


def test_a_pass_killed_mid_feed_keeps_cursor_and_index_as_they_were(env: Env, fake: FeedProvider) -> None:
    fake.put("a.txt", b"A")
    sync(env, fake)
    before, at = index(env), cursor(env)
    fake.put("b.txt", b"B")
    fake.put("c.txt", b"C")
    fake.fail_changes_after = 1
    with pytest.raises(Exception, match="dropped"):
        sync(env, fake)
    assert index(env) == before and cursor(env) == at
    fake.fail_changes_after = None
    r = sync(env, fake)
    assert r.summary.get("downloaded") == 2 and fake.calls["list"] == 0


def test_a_pass_killed_after_the_feed_resumes_consistently(env: Env, fake: FeedProvider,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake.put("a.txt", b"A")
    sync(env, fake)
    fake.put("b.txt", b"B")
    fake.put("c.txt", b"C")
    real = fake.download

    def killed(path, out):
        raise KeyboardInterrupt  # the process dies in the middle of its downloads

    monkeypatch.setattr(fake, "download", killed)
    with pytest.raises(KeyboardInterrupt):
        sync(env, fake)
    monkeypatch.setattr(fake, "download", real)
    assert {e.path for e in index(env)} == {"a.txt", "b.txt", "c.txt"}  # saved with its cursor, together
    r = sync(env, fake)
    assert r.summary.get("downloaded") == 2 and fake.calls["list"] == 0
    assert env.local_tree() == {"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"}


def test_a_new_pairing_forgets_the_cursor_and_the_index(env: Env, fake: FeedProvider, tmp_path: pathlib.Path) -> None:
    from engine import manage

    fake.put("a.txt", b"A")
    sync(env, fake)
    assert cursor(env) is not None
    other = tmp_path / "other"
    other.mkdir()
    manage.edit_task(env.home, env.task, {"local": str(other)})
    env.home.save()
    r = sync(env, fake)
    assert fake.calls["list"] == 1 and fake.calls["changes"] == 0  # the old cursor was not used
    assert (other / "a.txt").read_bytes() == b"A" and r.exit_code == 0


def test_duplicates_from_the_feed_are_skipped_never_deleted(env: Env) -> None:
    fake = FeedProvider(duplicate_names=True)
    fake.put("dup.txt", b"one")
    fake.put("keep.txt", b"K")
    sync(env, fake)
    fake.add_duplicate("dup.txt", b"two")
    r = sync(env, fake)
    assert fake.calls["list"] == 0
    assert r.summary.get("skipped") == 1 and not r.failed, r.summary
    assert (env.local / "dup.txt").read_bytes() == b"one"
    db = StateDB(env.home.setting("database-path"))
    try:
        assert db.skipped(db.task_id(env.task)) == {"dup.txt": DUPLICATE_REASON}
        assert any(rec.kind == "skipped" and rec.path == "dup.txt" for rec in db.read_log(env.task, 20))
    finally:
        db.close()
    (env.local / "dup.txt").unlink()  # even a local deletion is not carried to either duplicate
    sync(env, fake)
    assert sorted(n.data for n in fake.nodes.values() if not n.is_dir) == [b"K", b"one", b"two"]


def test_duplicates_in_a_full_listing_stay_skipped_through_the_feed(env: Env) -> None:
    fake = FeedProvider(duplicate_names=True)
    fake.put("dup.txt", b"one")
    fake.add_duplicate("dup.txt", b"two")
    r = sync(env, fake)
    assert fake.calls["list"] == 1 and r.summary == {"skipped": 1}
    r = sync(env, fake)
    assert fake.calls["list"] == 0 and r.summary.get("skipped") == 1
    assert not (env.local / "dup.txt").exists()


def test_case_twins_locally_one_is_synced_the_other_skipped(env: Env) -> None:
    fake = FeedProvider(case_insensitive=True)
    write(env.local / "Report.txt", "upper")
    write(env.local / "report.txt", "lower")
    r = sync(env, fake)
    assert r.exit_code == 0 and r.summary.get("uploaded") == 1 and r.summary.get("skipped") == 1, r.summary
    assert fake.tree() == {"Report.txt": b"upper"}
    assert sync(env, fake).summary == {"skipped": 1}
    assert (env.local / "report.txt").read_text() == "lower" and (env.local / "Report.txt").read_text() == "upper"
    db = StateDB(env.home.setting("database-path"))
    try:
        assert "report.txt" in db.skipped(db.task_id(env.task))
    finally:
        db.close()


def test_a_rename_by_case_on_the_service_is_a_local_rename_not_a_new_file(env: Env) -> None:
    fake = FeedProvider(case_insensitive=True)
    fake.put("Docs/Report.txt", b"R")
    sync(env, fake)
    fake.rename("Docs/Report.txt", "Docs/REPORT.txt")
    fake.rename("Docs", "DOCS")
    for force in (False, True):  # through the feed (the renames, engine.case_names), then a full listing
        r = sync(env, fake, force=force)
        assert not r.failed and not any(r.summary.get(k) for k in ("downloaded", "deleted-local", "moved-local",
                                                                   "uploaded", "deleted-remote")), r.summary
        assert sorted(p.relative_to(env.local).as_posix() for p in env.local.rglob("*")) == ["DOCS",
                                                                                            "DOCS/REPORT.txt"]
    write(env.local / "DOCS/REPORT.txt", "edited", mtime=1_900_000_000)
    sync(env, fake)
    assert fake.tree() == {"DOCS": None, "DOCS/REPORT.txt": b"edited"}


def test_apply_changes_table(tmp_path: pathlib.Path) -> None:
    """The index by id: renames move subtrees, a child before its parent waits, an unknown parent is untrusted."""
    db = StateDB(str(tmp_path / "s.db"))
    key = FeedKey("", "p")
    d = RemoteEntry("d", True, id="D", parent_id="R")
    f = RemoteEntry("d/f", False, 1, 1.0, "h", "1", "F", "D")
    db.save_index(1, key, "c0", 0.0, [d, f], {})
    with db.index_update(1, key) as idx:
        assert apply_changes(idx, [Change("D", d._replace(path="e"), "R", "e")], "R", {}) == OK
        idx.commit("c1")
    assert [e.path for e in db.index_entries(1)] == ["e", "e/f"]
    child = RemoteEntry("?", False, 2, 2.0, "h2", "1", "G", "N")
    with db.index_update(1, key) as idx:
        verdict = apply_changes(idx, [Change("G", child, "N", "g"), Change("N", RemoteEntry("?", True, id="N"),
                                                                            "D", "new")], "R", {})
        assert verdict == OK
        idx.commit("c2")
    assert [e.path for e in db.index_entries(1)] == ["e", "e/f", "e/new", "e/new/g"]
    with db.index_update(1, key) as idx:
        assert apply_changes(idx, [Change("X", child._replace(id="X"), "nowhere", "x")], "R", {}) == UNTRUSTED
    assert db.feed(1, "", "p") is not None and db.feed(1, "", "p").cursor == "c2"  # nothing of it was kept
    with db.index_update(1, key) as idx:  # a deletion by path alone (no id known to the service's feed)
        assert apply_changes(idx, [Change("", None, path="e/new/g")], "R", {}) == OK
        idx.commit("c3")
    assert [e.path for e in db.index_entries(1)] == ["e", "e/f", "e/new"]
    with db.index_update(1, key) as idx:
        assert apply_changes(idx, [Change("D", None)], "R", {}) == OK
        idx.commit("c3")
    assert list(db.index_entries(1)) == []
    db.close()


def test_the_state_keeps_the_remote_id_of_each_entry(env: Env, fake: FeedProvider) -> None:
    fake.put("down/a.txt", b"A")
    write(env.local / "up.txt", "U")
    sync(env, fake)
    db = StateDB(env.home.setting("database-path"))
    try:
        rids = {row.path: row.rid for row in db.rows(db.task_id(env.task))}
    finally:
        db.close()
    ids = {e.path: e.id for e in fake.list("")}
    assert rids == ids and all(rids.values())
