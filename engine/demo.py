"""The demo home behind `make demo`: a `local` connection to a folder playing the cloud, a two-way task,
sample files on both sides (and a few system files the rules keep out), and one pass already run.

Everything lives under `.demo/` in the repository (git-ignored). Running it again opens the demo as it was left:
what was tried in it (files added to "My files", another task) stays, and an app already running on it is not
pulled out from under (a rebuild used to delete the home and both folders while its engine synced them).
`rm -rf .demo` starts over.
"""

from __future__ import annotations

import os
import shutil
import sys

from engine import manage
from engine.config import CONFIG_NAME, Home, Task
from engine.sync import run_pass

LOCAL_FILES = {
    "Documents/notes.txt": "Shopping: milk, bread, coffee.\n",
    "Documents/report-2026.md": "# Annual report\n\nEverything is in sync.\n",
    "Photos/2026/holiday-01.jpg": bytes(range(256)) * 40,
    "Photos/2026/holiday-02.jpg": bytes(reversed(range(256))) * 40,
    "Music/playlist.m3u": "#EXTM3U\nsong-one.mp3\nsong-two.mp3\n",
    ".DS_Store": b"\x00\x00\x00\x01Bud1",  # never synced (spec: general rules)
    "Photos/@eaDir/thumb.jpg": b"thumbnail",  # never synced
    "Thumbs.db": b"thumbs",  # never synced
}
CLOUD_FILES = {
    "From the cloud/welcome.txt": "This file started in the cloud and was downloaded by the first pass.\n",
    "From the cloud/budget.csv": "month,amount\njan,100\nfeb,120\n",
    "Documents/shared-plan.txt": "A plan someone shared through the cloud.\n",
}


def _write(root: str, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def prepare(base: str) -> str:
    """Build the demo under `base` and run its first pass, unless it was built before; returns the home path."""
    local, cloud, home_path = (os.path.join(base, n) for n in ("My files", "cloud", "home"))
    if os.path.exists(os.path.join(home_path, CONFIG_NAME)):
        return home_path
    shutil.rmtree(home_path, ignore_errors=True)  # a build cut short; the folders keep whatever is in them
    _write(local, LOCAL_FILES)
    _write(cloud, CLOUD_FILES)
    home = Home(home_path)
    manage.add_connection(home, "demo-cloud", "local", {"root": cloud, "polling_period": "10"})
    manage.add_task(home, Task("my-files", "demo-cloud", local, "/", direction="bidirectional"))
    home.save()
    run_pass(Home(home_path), "my-files")
    return home_path


def main() -> int:
    base = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".demo")
    home = prepare(base)
    print(f"demo home: {home}")
    print(f"local folder: {os.path.join(base, 'My files')}   cloud folder: {os.path.join(base, 'cloud')}")
    print(f"try: SKYSYNC_HOME={home} skysync status")
    return 0


if __name__ == "__main__":
    sys.exit(main())
