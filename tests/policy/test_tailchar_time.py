"""Note 4 for folders: a folder named `Folder.` is stored as `Folder.._DiskStation_<date>_TailCharacterConflict`
with the real local time of its rename (never the YYYYMMDD-HHMMSS pattern), and keeps that one name: its
content made in the same pass, in later passes and from the other side all live under it."""

from __future__ import annotations

import os
import pathlib
import re
import time

from engine import manage
from engine.config import Home, Task
from engine.policy import PathPolicy
from engine.policy.check import policy_check
from engine.sync import run_pass

WHEN = 1_790_000_000.0  # some second in 2026
PATTERN = re.compile(r"(?P<name>.*)\._DiskStation_(?P<date>\d{8}-\d{6})_TailCharacterConflict")


def local_stamp(t: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t))


def test_a_folder_is_dated_with_the_local_time_of_its_rename() -> None:
    policy = PathPolicy("local", rename_clock=lambda: WHEN)
    folder = policy.check("Folder.", True)
    expected = f"Folder.._DiskStation_{local_stamp(WHEN)}_TailCharacterConflict"
    assert (folder.action, folder.remote_name) == ("rename", expected)
    assert "YYYYMMDD" not in expected
    spaced = policy.check("a/Folder ", True)
    assert spaced.remote_name == f"a/Folder ._DiskStation_{local_stamp(WHEN)}_TailCharacterConflict"
    assert policy.local_name(expected) == "Folder."


def test_the_name_is_made_once_and_kept_for_everything_inside() -> None:
    ticks = iter([WHEN, WHEN + 3600, WHEN + 7200])
    policy = PathPolicy("local", rename_clock=lambda: next(ticks))
    folder = policy.check("Folder.", True).remote_name
    # later checks in the same pass (the clock has moved on) reuse the name made first
    assert policy.check("Folder.", True).remote_name == folder
    assert policy.check("Folder./a.txt", False, 1, mtime=WHEN).remote_name == f"{folder}/a.txt"
    assert policy.check("Folder./sub", True).remote_name == f"{folder}/sub"


def test_a_name_seen_in_the_remote_listing_wins() -> None:
    # the folder was renamed by an earlier pass (or another computer): new content goes into that folder
    policy = PathPolicy("local", rename_clock=lambda: WHEN)
    seen = "Folder.._DiskStation_20200101-000000_TailCharacterConflict"
    assert policy.local_name(f"{seen}/x.txt") == "Folder./x.txt"
    assert policy.check("Folder./new.txt", False, 1, mtime=WHEN).remote_name == f"{seen}/new.txt"
    assert policy.check("Folder.", True).remote_name == seen
    # and a remote folder named with the pattern by an older version keeps its name (no rename churn)
    old = "Old.._DiskStation_YYYYMMDD-HHMMSS_TailCharacterConflict"
    assert policy.local_name(f"{old}/y.txt") == "Old./y.txt"
    assert policy.check("Old./z.txt", False, 1, mtime=WHEN).remote_name == f"{old}/z.txt"


def test_policy_check_still_shows_the_pattern_for_a_name_alone() -> None:
    lines, code = policy_check("local", ["Folder./"], None, {})
    assert code == 1
    assert lines == [
        "Folder./: renamed to Folder.._DiskStation_YYYYMMDD-HHMMSS_TailCharacterConflict (tail-character rule: "
        "a name ending in '.' or ' ' gets a suffix on the remote)"
    ]


def _files(root: pathlib.Path) -> set[str]:
    out = set()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def test_real_passes_keep_one_dated_folder(tmp_path: pathlib.Path) -> None:
    home = Home(str(tmp_path / "home"))
    local, cloud = tmp_path / "local", tmp_path / "cloud"
    local.mkdir()
    cloud.mkdir()
    manage.add_connection(home, "c", "local", {"root": str(cloud)})
    manage.add_task(home, Task("t", "c", str(local), "/"))
    home.save()

    def sync() -> dict[str, int]:
        result = run_pass(Home(home.path), "t", hostname="testhost")
        assert result.exit_code == 0, result.as_dict()
        return result.summary

    (local / "Folder.").mkdir()
    (local / "Folder." / "a.txt").write_text("a")
    before = time.time()
    sync()
    after = time.time()
    (folder,) = os.listdir(cloud)
    match = PATTERN.fullmatch(folder)
    assert match and match["name"] == "Folder.", folder
    assert local_stamp(before) <= match["date"] <= local_stamp(after), folder  # the local time of the pass
    assert _files(cloud) == {f"{folder}/a.txt"}

    time.sleep(1.1)  # a new pass a second later must not make a second folder with a newer date
    (local / "Folder." / "b.txt").write_text("b")
    (local / "Folder." / "Sub ").mkdir()
    (local / "Folder." / "Sub " / "c.txt").write_text("c")
    sync()
    assert os.listdir(cloud) == [folder]
    (sub,) = [n for n in os.listdir(cloud / folder) if n.startswith("Sub ")]
    assert PATTERN.fullmatch(sub)
    assert _files(cloud) == {f"{folder}/a.txt", f"{folder}/b.txt", f"{folder}/{sub}/c.txt"}

    # a file added in the cloud comes back under the local name; nothing else moves
    (cloud / folder / "from-cloud.txt").write_text("remote")
    summary = sync()
    assert summary.get("downloaded") == 1 and summary.get("uploaded", 0) == 0, summary
    assert (local / "Folder." / "from-cloud.txt").read_text() == "remote"
    summary = sync()
    assert not {k: v for k, v in summary.items() if k != "skipped"}, summary  # a pass with nothing to do
    assert _files(local) == {"Folder./a.txt", "Folder./b.txt", "Folder./Sub /c.txt", "Folder./from-cloud.txt"}
