"""skysync's own files -- its home (config.toml, secrets.toml with every secret) and the state database with its
companions -- never belong inside a folder a task syncs, on either side.

A task's folders are its local folder and, for a connection whose storage is a folder of this machine (a `local`
connection's root), its cloud folder. Inside either, every pass would copy the live database (torn copies of a
SQLite file, churn at each pass) or secrets.toml into the user's folders. Commands refuse such a layout (task
add/edit, connection edit, settings set database-path); a layout that got there anyway (a --home given later, a
hand edit) has these files skipped by the pass, on both sides (engine.sync.Pairing).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from engine.names import shown

if TYPE_CHECKING:
    from engine.config import Home, Task

COMPANIONS = ("-wal", "-shm", ".lock")  # SQLite's write-ahead log and shared memory; StateDB's opening lock
HOME = "the skysync home"
DATABASE = "the state database"


def own_files(home_path: str, database_path: str) -> list[tuple[str, str]]:
    """(what, real path) of each of the engine's own files: the home folder, the database and its companions."""
    db = os.path.realpath(database_path)
    return [(HOME, os.path.realpath(home_path)), (DATABASE, db), *((DATABASE, db + c) for c in COMPANIONS)]


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def inside(files: list[tuple[str, str]], folder: str) -> list[tuple[str, str]]:
    """(what, path relative to `folder`) of the files that lie in the real folder `folder` ("." for the folder
    itself)."""
    return [(what, os.path.relpath(path, folder)) for what, path in files if _inside(path, folder)]


def task_folders(home: Home, task: Task) -> list[tuple[str, str]]:
    """(what, real path) of the folders of this machine the task syncs: its local folder, and its cloud folder
    where the connection's storage is a folder here."""
    from engine.connect import provider_kind

    folders = [("local folder", os.path.realpath(task.local))]
    conn = home.connection(task.connection)
    cloud = provider_kind(conn.provider).folder_here(home.all_options(conn.name), task.remote)
    if cloud is not None:
        folders.append(("cloud folder", cloud))
    return folders


def problem(home: Home, tasks: list[Task], database_path: str, advice: str) -> str | None:
    """Why one of these tasks' folders would hold the home or the database (one line ending with `advice`), or
    None."""
    files = own_files(home.path, database_path)[:2]  # the companions lie beside the database
    for task in tasks:
        for where, folder in task_folders(home, task):
            for what, _rel in inside(files, folder):
                path = home.path if what == HOME else database_path
                extra = " (secrets.toml included)" if what == HOME else ""
                return (f"{what} {shown(path)} would be inside the {where} of task '{task.name}' ({shown(folder)}) "
                        f"and be synced on every pass{extra}; {advice}")
    return None
