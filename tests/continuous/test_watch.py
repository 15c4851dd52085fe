"""The local watcher: real inotify events through watchfiles, the new-folder recheck and the full rescan."""

from __future__ import annotations

import os
import threading
import time

import watchfiles

from engine.runtime.watch import LocalWatcher, tree_signature

from .conftest import wait_for


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str, list[str]]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, reason: str, paths: list[str]) -> None:
        with self.lock:
            self.calls.append((time.monotonic(), reason, paths))

    def reasons(self) -> list[str]:
        with self.lock:
            return [r for _, r, _ in self.calls]

    def paths(self) -> set[str]:
        with self.lock:
            return {p for _, _, ps in self.calls for p in ps}


def _watcher(root, rec: Recorder, **kw) -> LocalWatcher:
    w = LocalWatcher(str(root), rec, on_error=rec.errors.append, **kw)
    w.start()
    assert w.ready.wait(2)
    time.sleep(0.2)  # inotify is armed a moment after the thread starts
    return w


def test_a_saved_file_is_reported_well_within_a_second(tmp_path):
    rec = Recorder()
    w = _watcher(tmp_path, rec)
    try:
        t0 = time.monotonic()
        (tmp_path / "doc.txt").write_text("hello")
        assert wait_for(lambda: "doc.txt" in rec.paths(), 2)
        assert rec.calls[0][0] - t0 < 1.0, rec.calls[0][0] - t0  # typically ~0.06 s (watchfiles step)
        assert rec.reasons()[0] == "local"
    finally:
        w.stop()


def test_engine_temp_files_do_not_count_as_changes(tmp_path):
    rec = Recorder()
    w = _watcher(tmp_path, rec)
    try:
        (tmp_path / ".skysync-tmp-0123abcd0").write_bytes(b"x" * 100)
        os.unlink(tmp_path / ".skysync-tmp-0123abcd0")
        time.sleep(0.6)
        assert rec.calls == []
        (tmp_path / "real").write_text("1")
        assert wait_for(lambda: rec.calls, 10)
    finally:
        w.stop()


def test_files_in_a_new_folder_are_reported(tmp_path):
    rec = Recorder()
    w = _watcher(tmp_path, rec)
    try:
        deep = tmp_path / "new" / "sub"
        deep.mkdir(parents=True)
        for i in range(20):
            (deep / f"f{i}.txt").write_text(str(i))
        assert wait_for(lambda: rec.calls, 10)
    finally:
        w.stop()


def test_new_folder_recheck_catches_files_that_came_without_events(tmp_path):
    """Simulates inotify's gap: the folder's own event arrives, the files inside bring none."""
    rec = Recorder()
    w = LocalWatcher(str(tmp_path), rec, use_events=False, new_folder_recheck=0.3, rescan_interval=3600)
    w.start()
    try:
        folder = tmp_path / "incoming"
        folder.mkdir()
        w._handle({(watchfiles.Change.added, str(folder))})
        (folder / "a.jpg").write_bytes(b"jpeg")  # no event for this one
        assert wait_for(lambda: "new-folder" in rec.reasons(), 10)
        assert ("incoming" in rec.paths()) and rec.reasons() == ["local", "new-folder"]

        quiet = tmp_path / "quiet"
        quiet.mkdir()
        w._handle({(watchfiles.Change.added, str(quiet))})
        time.sleep(0.6)
        assert rec.reasons() == ["local", "new-folder", "local"]  # nothing new inside: no extra pass
    finally:
        w.stop()


def test_periodic_rescan_reports_changes_events_missed(tmp_path):
    (tmp_path / "kept").write_text("1")
    rec = Recorder()
    w = LocalWatcher(str(tmp_path), rec, use_events=False, rescan_interval=0.3)
    w.start()
    try:
        time.sleep(0.8)
        assert rec.calls == []  # an unchanged tree is not a change
        (tmp_path / "kept").write_text("changed, longer")
        assert wait_for(lambda: "rescan" in rec.reasons(), 10)
    finally:
        w.stop()


def test_a_missing_folder_is_reported_and_watched_once_it_exists(tmp_path, monkeypatch):
    import engine.runtime.watch as watch_mod

    monkeypatch.setattr(watch_mod, "RETRY_MISSING_ROOT", 0.2)
    root = tmp_path / "later"
    rec = Recorder()
    w = LocalWatcher(str(root), rec, on_error=rec.errors.append)
    w.start()
    try:
        assert wait_for(lambda: rec.errors, 10)
        assert "does not exist" in rec.errors[0]
        root.mkdir()
        time.sleep(0.6)
        (root / "x").write_text("1")
        assert wait_for(lambda: "x" in rec.paths(), 10)
    finally:
        w.stop()


def test_stop_is_prompt(tmp_path):
    w = LocalWatcher(str(tmp_path), Recorder())
    w.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 2.5


def test_tree_signature_follows_content_not_temp_files(tmp_path):
    (tmp_path / "a").write_text("1")
    s1 = tree_signature(str(tmp_path))
    (tmp_path / ".skysync-tmp-0123abcdff").write_text("partial")
    assert tree_signature(str(tmp_path)) == s1
    (tmp_path / "b").mkdir()
    assert tree_signature(str(tmp_path)) != s1
    assert tree_signature(str(tmp_path / "nope")) == "missing"


def test_deletions_spread_over_seconds_are_reported_once_they_stop(tmp_path):
    """A tree deleted folder by folder (a file manager, `rm -rf` on a slow disk) comes as one report: a pass
    started in the middle would see only a part, each part small enough to pass the mass-delete guard."""
    from engine.runtime.watch import DELETION_QUIET

    for d in range(20):
        (tmp_path / f"d{d}").mkdir()
        (tmp_path / f"d{d}" / "f").write_text("x")
    rec = Recorder()
    w = _watcher(tmp_path, rec)
    try:
        for d in range(20):
            (tmp_path / f"d{d}" / "f").unlink()
            (tmp_path / f"d{d}").rmdir()
            time.sleep(0.1)  # two seconds in all: several watchfiles batches
        last = time.monotonic()
        assert wait_for(lambda: len(rec.paths()) >= 40, 5)
        with rec.lock:
            calls = [c for c in rec.calls if c[2]]
        assert len(calls) == 1, [len(c[2]) for c in calls]
        assert calls[0][0] - last >= DELETION_QUIET * 0.9
    finally:
        w.stop()
