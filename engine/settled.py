"""The no-change fast path: a task whose two trees have not moved since a pass that planned nothing is not
planned again.

Planning a quiet 50,000-file tree costs about a second of per-entry Python (three streams merged, one object
per entry and side) for an answer known in advance: nothing to do. Here each side's tree is reduced to one
digest of its metadata (engine.treedigest: every entry's name, mode, size, mtimes, ctime, inode), the two walks
run at once in two processes, and the digests are compared with those recorded after the last pass that planned
nothing. Equal digests, equal configuration and an untouched state mean the plan would be empty again, so the
pass ends there; any difference, however small, leads to the full pass, which decides as always. The fast path
can only ever skip a pass that would have done nothing; it never decides anything itself.

Where it applies: a full pass (not scoped, forced or a dry run) of a task on a `local` connection (another
folder or disk playing the cloud: both sides can be walked), unencrypted, without the consistency check (which
compares contents on every pass), through the plain file system (an owned folder of a system engine, and the
fault-injecting file systems of the tests, take the full path).

When digests are recorded: the pass planned nothing at all (no transfer, deletion, move, record or held
deletion, no leftover temporary file, not a new pairing) and ran without a failure, and both trees had the same
digests before its walk and after its end — so what the plan saw is exactly what they describe.

What makes them void: a write to the task's state rows, skip list, pairing or remote index (SQLite triggers
delete the record in the same statement: engine.state), another configuration (the digest of the task, the
connection's kind and options, the guard settings and FORMAT), and age: the full plan runs at least once every
MAX_AGE seconds even when nothing moved, so a planner fixed by an upgrade looks at every quiet tree again.

A recording pass also leaves a walk hint for `skysync sync TASK`, which starts both walks before the engine is
loaded (engine.prewalk); a pass takes those digests only for the very folders it would walk itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from engine import prewalk, treedigest
from engine.config import Home, Task
from engine.localfs import FileSystem, LocalTree
from engine.prewalk import PreWalk
from engine.providers.base import Provider
from engine.reconcile import Plan
from engine.state import StateDB

# Bumped whenever the planner could decide differently on the same trees and state: every recorded digest
# then stops matching, and the next pass of every task is a full one.
FORMAT = 1
MAX_AGE = 24 * 3600.0
# From this many tracked entries on, the remote tree is walked by a child process beside the local walk: below
# it, starting a process (~15 ms) costs more than the second walk it saves.
PARALLEL_FROM = 5000


@dataclass(frozen=True)
class Sides:
    local: str
    remote: str


@dataclass
class Watch:
    """One pass's use of the fast path: the digests taken before its walk, and what to compare them with."""

    db: StateDB
    task_id: int
    config: str
    local_root: str
    remote_root: str
    prune: Callable[[str], bool] | None
    parallel: bool = False
    before: Sides | None = None
    unmoved: bool = False  # the trees are as they were after the last pass that planned nothing
    home_path: str = ""
    task_name: str = ""

    @classmethod
    def begin(
        cls,
        home: Home,
        task: Task,
        db: StateDB,
        provider: Provider,
        fs: FileSystem | None,
        prune: Callable[[str], bool] | None,
        now: float,
        early: PreWalk | None = None,
    ) -> Watch | None:
        """None where the fast path does not apply; else a Watch, `unmoved` when the pass can end here. `early`:
        the walks `skysync sync` started from the task's walk hint (engine.prewalk), taken when they walked the
        trees this pass would."""
        remote_root = _walkable_remote(task, provider, fs)
        if remote_root is None:
            if early is not None:
                early.stop()
            return None
        task_id = db.task_id(task.name)
        watch = cls(db, task_id, config_digest(home, task), task.local, remote_root, prune,
                    parallel=db.tracks_at_least(task_id, PARALLEL_FROM), home_path=home.path, task_name=task.name)
        recorded = db.settled(task_id)
        fresh = recorded is not None and recorded[0] == watch.config and 0 <= now - recorded[3] < MAX_AGE
        if not fresh:
            prewalk.forget(home.path, task.name)  # not known to be quiet: the next `sync` walks no earlier
            if not _last_pass_was_quiet(db, task.name):
                # A pass after one that changed something rarely finds nothing to do: no digest walk (it would
                # only add to its time); the next quiet pass records them.
                if early is not None:
                    early.stop()
                return watch
        watch.before = watch.take(early)
        if fresh and watch.before is not None and recorded is not None:
            watch.unmoved = (watch.before.local, watch.before.remote) == (recorded[1], recorded[2])
        return watch

    def take(
        self,
        early: PreWalk | None = None,
        pruned: list[str] | None = None,
        wheres: tuple[prewalk.Side | None, prewalk.Side | None] | None = None,
    ) -> Sides | None:
        """Both digests: from `early` when it walked these very trees; else, for a large tree, the remote one in a
        child process while this one walks the local one. `pruned` receives the local folders left out; `wheres`:
        both trees as `_where` sees them, when the caller has them already."""
        local_where, remote_where = wheres or (_where(self.local_root), _where(self.remote_root))
        if local_where is None or remote_where is None:
            if early is not None:
                early.stop()
            return None
        if early is not None:
            digests = early.claim(local_where, remote_where)
            if digests is not None:
                local, remote = digests
                return None if local is None or remote is None else Sides(local, remote)
        child = _start_child(remote_where) if self.parallel else None
        try:
            local = treedigest.tree_digest(local_where.root, local_where.mounts, self.prune, pruned)
        except BaseException:
            if child is not None:
                prewalk.stop_child(child)  # an interrupt (Ctrl+C) leaves no walker behind
            raise
        if child is not None:
            remote = prewalk.child_digest(child)
        else:
            remote = treedigest.tree_digest(remote_where.root, remote_where.mounts)
        if local is None or remote is None:
            return None
        return Sides(local, remote)

    def finish(self, plan: Plan, temps: list[str], new_pairing: bool, failed: int, stopped: bool,
               now: float) -> bool:
        """After a pass: record the digests when it planned nothing and both trees stayed as they were during
        it, and leave the walk hint for the next `sync`. Returns whether they were recorded."""
        if self.before is None or not quiet(plan, temps, new_pairing, failed, stopped):
            return False
        pruned: list[str] = []
        local_where, remote_where = _where(self.local_root), _where(self.remote_root)
        after = self.take(pruned=pruned, wheres=(local_where, remote_where))
        if after != self.before:
            return False
        self.db.set_settled(self.task_id, self.config, after.local, after.remote, now)
        if not self.home_path:
            return True
        if not self.parallel:
            # A small tree is walked here in less time than two child processes take to start.
            prewalk.forget(self.home_path, self.task_name)
        elif local_where is not None and remote_where is not None:
            prewalk.save(self.home_path, self.task_name, dataclasses.replace(local_where, prune=tuple(pruned)),
                         remote_where)
        return True


def quiet(plan: Plan, temps: list[str], new_pairing: bool, failed: int, stopped: bool) -> bool:
    """A pass that planned nothing and did nothing (skips are allowed: they are part of the trees' digests)."""
    return not (plan.actions or plan.refresh or plan.held or temps or new_pairing or failed or stopped)


def config_digest(home: Home, task: Task) -> str:
    """Everything the plan reads from the configuration, in one digest (secrets are not part of it: the
    options of a `local` connection hold none, and a digest reveals nothing anyway)."""
    conn = home.connection(task.connection)
    parts = {
        "format": FORMAT,
        "task": task.public_dict(),
        "provider": conn.provider,
        "options": home.all_options(conn.name),
        "conflict_mode": conn.conflict_mode,
        "guard": [home.setting("mass-delete-percent"), home.setting("mass-delete-min-files")],
    }
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _walkable_remote(task: Task, provider: Provider, fs: FileSystem | None) -> str | None:
    """The folder playing the cloud, where both sides can be walked as plain folders; else None."""
    from engine.providers.local import LocalProvider

    if type(provider) is not LocalProvider or task.encrypt or task.consistency_check:
        return None
    if (fs is not None and type(fs) is not FileSystem) or type(provider.tree.fs) is not FileSystem:
        return None
    return provider.tree.abspath(task.remote_folder)


def _last_pass_was_quiet(db: StateDB, task: str) -> bool:
    last = db.last_pass(task)
    return bool(last and last.get("ok") and not set(last.get("summary") or {}) - {"skipped"})


def _where(root: str) -> prewalk.Side | None:
    """The folder as a walk of it sees it (links at the root followed) and its mount points; None if missing."""
    tree = LocalTree(root)
    try:
        return prewalk.Side(tree.root, tuple(sorted(tree.devices()[1])))
    except OSError:
        return None


def _start_child(side: prewalk.Side) -> subprocess.Popen[bytes] | None:
    try:
        return prewalk.start_child(side)
    except OSError:
        return None  # no process to spare: the walk runs here, after the local one
