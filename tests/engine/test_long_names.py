"""Names near the local file system's limit of 255 bytes: conflict copies are cut to fit it (and the service's
own limit), and a remote name the disk cannot hold is skipped by the policy with its reason, once."""

from __future__ import annotations

import os
import pathlib
import sys
from datetime import datetime

from engine.config import Home
from engine.executor import conflict_name, is_conflict_copy_of
from engine.policy import PathPolicy
from engine.state import StateDB
from engine.sync import run_pass

from .conftest import Env, write

_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fakes.feed_provider import FeedProvider  # noqa: E402

WHEN = datetime(2025, 1, 2, 3, 4, 5)
TAIL = "_host-abc123_Conflict_20250102-030405"


def utf8(name: str) -> int:
    return len(name.encode())


def test_a_short_name_keeps_the_exact_format() -> None:
    assert conflict_name("a/doc.txt", "host-abc123", WHEN) == f"a/doc{TAIL}.txt"
    assert conflict_name("a/doc.txt", "host-abc123", WHEN, 3) == f"a/doc{TAIL}-3.txt"
    assert conflict_name("README", "host-abc123", WHEN, 2) == f"README{TAIL}-2"
    # The number goes after the time, not into a host name or a leading dot.
    assert conflict_name(".bashrc", "h.local", WHEN, 2) == ".bashrc_h.local_Conflict_20250102-030405-2"


def test_a_long_stem_is_cut_to_fit_255_bytes_between_characters() -> None:
    for stem in ("n" * 240, "é" * 120, "€" * 80, "😀" * 60):
        for n in (1, 12):
            copy = conflict_name(f"dir/{stem}.txt", "host-abc123", WHEN, n).removeprefix("dir/")
            number = f"-{n}" if n > 1 else ""
            assert utf8(copy) <= 255 and utf8(copy) > 255 - 4, copy  # cut by bytes, on a character boundary
            cut = copy.removesuffix(f"{TAIL}{number}.txt")
            assert cut and stem.startswith(cut), copy
            assert is_conflict_copy_of(copy, f"{stem}.txt")
    # A suffix too long to leave the stem a character is cut too (the only case it is).
    copy = conflict_name("x." + "e" * 250, "host-abc123", WHEN)
    assert utf8(copy) == 255 and copy.startswith(f"x{TAIL}.eee")
    # A cut copy is recognised as a copy of its own original only.
    copy = conflict_name("n" * 240 + ".txt", "host-abc123", WHEN)
    assert not is_conflict_copy_of(copy, "n" * 200 + ".txt")
    assert not is_conflict_copy_of(copy, "n" * 240 + ".md")
    assert not is_conflict_copy_of(f"nn{TAIL}.txt", "n" * 240 + ".txt")


def test_the_services_own_name_limit_is_met_too() -> None:
    copy = conflict_name("n" * 120 + ".docx", "host-abc123", WHEN, max_chars=128)
    assert len(copy) == 128 and copy.endswith(f"{TAIL}.docx")
    assert is_conflict_copy_of(copy, "n" * 120 + ".docx", max_chars=128)
    assert PathPolicy("sharepoint").file_name_chars == 128 and PathPolicy("webdav").file_name_chars is None


def test_a_conflict_on_a_long_name_resolves_in_one_pass(env: Env) -> None:
    for name in ("n" * 240 + ".txt", "é" * 120 + ".txt"):
        write(env.local / name, "base")
        env.sync()
        write(env.local / name, "local version", mtime=2_000_000_000)
        write(env.cloud / name, "remote version!", mtime=2_000_000_100)
        r = env.sync()
        assert r.summary.get("conflict") == 1 and r.exit_code == 0, r.as_dict()
        local = env.local_tree()
        assert local == env.cloud_tree()
        assert local[name] == b"local version"
        copies = [k for k in local if "_testhost_Conflict_" in k and k.endswith(".txt") and k[0] == name[0]]
        assert len(copies) == 1 and local[copies[0]] == b"remote version!"
        assert utf8(copies[0]) <= 255 and name.startswith(copies[0].partition("_testhost_")[0])
        assert env.sync().summary == {}


def test_a_remote_name_of_more_than_255_bytes_is_skipped_once(env: Env) -> None:
    name = "é" * 200  # 200 characters, 400 bytes: no Linux file system holds it
    fake = FeedProvider()
    fake.put(name, b"x")
    fake.put("ok.txt", b"y")
    for _ in range(2):
        r = run_pass(Home(env.home.path), env.task, provider=fake, hostname="testhost")
        assert r.exit_code == 0 and not r.failed, r.as_dict()
    assert os.listdir(env.local) == ["ok.txt"]
    db = StateDB(env.home.setting("database-path"))
    try:
        reason = db.skipped(db.task_id(env.task))[name]
        assert "255 bytes" in reason
        assert [rec.path for rec in db.read_log(env.task, 20) if rec.kind == "skipped"] == [name]
    finally:
        db.close()
