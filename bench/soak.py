"""Soak test of the running engine: `skysync run` under random writers on both sides, then the invariants.

    .venv/bin/python -m bench.soak                    # 10 minutes, seed 1
    .venv/bin/python -m bench.soak --minutes 60 --seed 7 --keep

Not part of `make test` or `make bench`. Everything goes through the real console script (`skysync` next to this
Python, or `--skysync PATH`) with SKYSYNC_HOME set to a throwaway home: a `local` connection whose root folder
plays the cloud (polling every 10 s, transfers throttled to 2 MiB/s so a few-MiB file takes seconds to move), one
bidirectional task, and `skysync run` as a child process logging to `run.log`.

For `--minutes`, one writer thread per side (the local folder, the cloud folder) picks operations from a seeded
RNG at a few per second: create, edit in place, append (mostly to a 2-8 MiB file of its own, so appends land while
that file is being transferred), delete, rename, mkdir, rmdir, folder rename (non-empty ones too) and rm -r of
a small folder. Every operation goes to `ops.jsonl`. The writers act on what is on their disk at that moment, so
the seed fixes their choices but not the engine's timing: two runs with one seed are alike, not identical.

Then the writers stop, the engine is left to settle (`skysync status --json`: idle, nothing pending, and a pass
that found nothing to do after a poll period), RSS is read, the engine gets SIGTERM, one `skysync sync` settles
anything left (it is repeated until it has nothing to do), and the invariants are checked:

- both sides byte-identical (files and folders);
- no `.skysync-tmp-*` file on either side;
- the engine exited 0 within 10 s of SIGTERM;
- no traceback in any stderr, and no pass aborted by an internal exception (`error=SomeError: ...`);
- the final `skysync sync` reached "nothing to do" with exit 0 (settled);
- no file lost: every content a writer last wrote (or moved by a rename) at a path that no writer deleted or
  renamed afterwards is on both sides, at that path or as a conflict copy (`_Conflict_` in the name).

A write that the engine's download or delete replaced while it was being written (the path no longer names the
inode written to) is counted as "raced" and not expected to survive; the count is in the summary. Also reported,
without failing the run: conflict copies that duplicate another copy of the same file (same content), and files
holding a content no writer wrote whole (a half-written cloud file read by a download and kept as a copy).

Exit status 0 when every invariant holds, 1 otherwise, 2 when the soak could not run. The work folder is removed
unless `--keep` is given or an invariant failed.
"""

from __future__ import annotations

import argparse
import collections
import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

SIDES = ("local", "cloud")
TEMP_PREFIX = ".skysync-tmp-"
CONFLICT = "_Conflict_"
TASK, CONN = "t", "c"

MiB = 1 << 20
BIG = {"local": "big-local.bin", "cloud": "big-cloud.bin"}
BIG_MIN, BIG_MAX = 2 * MiB, 8 * MiB
POLLING = 10  # seconds; the smallest polling_period skysync accepts
LIMIT_KIB = 2048  # upload_limit and download_limit: a 4 MiB file takes 2 s
FILE_FLOOR = 15  # a writer does not delete below this many files on its side (the empty-side guard)
MAX_DEPTH = 3
STOP_LIMIT = 10.0  # "stops within a few seconds" (the engine's own STOP_TIMEOUT is 5 s)
SETTLE_TIMEOUT = 240.0

# operation -> weight
OPS = {
    "create": 18,
    "edit": 16,
    "append": 10,
    "delete": 10,
    "rename": 8,
    "mkdir": 6,
    "rmdir": 4,
    "rename-dir": 4,
    "rmtree": 2,
}
NAME_FLAVOURS = ("", "", "", " copy", " é", "-ü")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def is_conflict(rel: str) -> bool:
    return CONFLICT in rel.rsplit("/", 1)[-1]


def depth(rel: str) -> int:
    return 0 if not rel else rel.count("/") + 1


def under(rel: str, folder: str) -> bool:
    return rel == folder or rel.startswith(folder + "/")


@dataclass
class Expect:
    digest: str
    size: int
    side: str
    op: int
    kind: str


class Model:
    """What the writers did, shared by both: expected contents by path, counters and the journal.

    Both writers hold `lock` for the whole of an operation (the file-system call and the model update), so the
    model's order is the order in which the operations happened."""

    def __init__(self, journal_path: str) -> None:
        self.lock = threading.Lock()
        self.expected: dict[str, Expect] = {}
        self.seq = 0
        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.raced: list[dict[str, Any]] = []
        self._journal = open(journal_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.history: dict[str, list[int]] = collections.defaultdict(list)
        self.times: dict[int, float] = {}
        self.contents: set[str] = set()  # every whole content a writer wrote (renames excluded)

    def close(self) -> None:
        self._journal.close()

    def log(self, side: str, kind: str, outcome: str, **fields: Any) -> int:
        self.seq += 1
        self.times[self.seq] = time.time()
        self.counts[(side, kind, outcome)] += 1
        rec = {
            "op": self.seq,
            "t": round(self.times[self.seq], 3),
            "side": side,
            "kind": kind,
            "outcome": outcome,
            **fields,
        }
        self._journal.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for key in ("path", "to"):
            if key in fields:
                self.history[fields[key]].append(self.seq)
        return self.seq

    def wrote(self, side: str, kind: str, rel: str, data_digest: str, size: int, op: int) -> None:
        self.expected[rel] = Expect(data_digest, size, side, op, kind)

    def gone(self, rel: str) -> None:
        self.expected.pop(rel, None)


def walk(root: str) -> tuple[list[str], list[str]]:
    """Files and folders (relative, "/"-separated, root excluded) as they are now; temporary files left out."""
    files: list[str] = []
    dirs: list[str] = []
    for top, dnames, fnames in os.walk(root):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top.replace(os.sep, "/")
        for d in dnames:
            dirs.append(f"{rel_top}/{d}" if rel_top else d)
        for f in fnames:
            if not f.startswith(TEMP_PREFIX):
                files.append(f"{rel_top}/{f}" if rel_top else f)
    return sorted(files), sorted(dirs)


class Writer(threading.Thread):
    def __init__(self, side: str, root: str, seed: int, model: Model, rate: float, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{side}", daemon=True)
        self.side, self.root, self.model, self.rate, self.stop = side, root, model, rate, stop
        self.rng = random.Random(f"{seed}-{side}")
        self.tag = side[0]
        self.counter = 0
        self.error: BaseException | None = None

    # -- helpers --------------------------------------------------------------------------------------------
    def abs(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def fresh(self, prefix: str, ext: str = "") -> str:
        self.counter += 1
        return f"{prefix}-{self.tag}{self.counter}{self.rng.choice(NAME_FLAVOURS)}{ext}"

    def small_size(self) -> int:
        r = self.rng.random()
        if r < 0.7:
            return self.rng.randrange(0, 4096)
        if r < 0.95:
            return self.rng.randrange(4096, 64 * 1024)
        return self.rng.randrange(64 * 1024, 512 * 1024)

    def pick_folder(self, dirs: list[str], max_depth: int = MAX_DEPTH, avoid: str | None = None) -> str:
        choices = [d for d in dirs if depth(d) < max_depth and not (avoid and under(d, avoid))]
        if not choices or self.rng.random() < 0.3:
            return ""
        return self.rng.choice(choices)

    def candidates(self, files: list[str]) -> list[str]:
        """Files a writer edits, deletes or renames: not the big files, not conflict copies (a conflict copy
        may be where a lost-looking content survives; the writers leave them alone, folder operations aside)."""
        return [f for f in files if not is_conflict(f) and f not in BIG.values()]

    def write(self, rel: str, data: bytes, create: bool) -> str:
        """Write `data` over `rel` in place. Returns "ok", "raced" (the path no longer names the inode written
        to: the engine replaced or deleted it meanwhile), or "vanished" (the file or its folder was gone)."""
        path = self.abs(rel)
        flags = os.O_WRONLY | os.O_TRUNC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            return "vanished"
        try:
            ino = os.fstat(fd).st_ino
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return "ok" if self._same_inode(path, ino) else "raced"

    @staticmethod
    def _same_inode(path: str, ino: int) -> bool:
        try:
            return os.stat(path).st_ino == ino
        except FileNotFoundError:
            return False

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self) -> None:
        kinds, weights = list(OPS), list(OPS.values())
        try:
            while not self.stop.wait(self.rng.expovariate(self.rate)):
                kind = self.rng.choices(kinds, weights)[0]
                with self.model.lock:
                    getattr(self, "op_" + kind.replace("-", "_"))()
        except BaseException as exc:  # reported by main; a writer bug must not look like an engine defect
            self.error = exc

    def done(self, kind: str, rel: str, outcome: str, **fields: Any) -> int:
        return self.model.log(self.side, kind, outcome, path=rel, **fields)

    def failed(self, kind: str, rel: str, exc: OSError) -> None:
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        self.done(kind, rel, "vanished" if exc.errno in (errno.ENOENT, errno.ENOTDIR) else f"error:{name}")

    def after_write(self, kind: str, rel: str, outcome: str, data_digest: str, size: int) -> None:
        op = self.done(kind, rel, outcome, sha=data_digest[:12], size=size)
        if outcome in ("ok", "raced"):
            self.model.contents.add(data_digest)
        if outcome == "ok":
            self.model.wrote(self.side, kind, rel, data_digest, size, op)
        elif outcome == "raced":
            self.model.gone(rel)
            self.model.raced.append({"op": op, "side": self.side, "kind": kind, "path": rel})

    # -- operations -----------------------------------------------------------------------------------------
    def op_create(self) -> None:
        dirs = walk(self.root)[1]
        folder = self.pick_folder(dirs)
        if self.rng.random() < 0.1:  # a small shared pool of names: both sides create the same path
            name = f"shared-{self.rng.randrange(8)}.txt"
        else:
            name = self.fresh("f", self.rng.choice((".txt", ".bin", ".md", "")))
        rel = f"{folder}/{name}" if folder else name
        data = self.rng.randbytes(self.small_size())
        try:
            outcome = self.write(rel, data, create=True)
        except OSError as exc:
            self.failed("create", rel, exc)
            return
        self.after_write("create", rel, outcome, sha(data), len(data))

    def op_edit(self) -> None:
        files = self.candidates(walk(self.root)[0])
        if not files:
            self.done("edit", "", "skipped")
            return
        rel = self.rng.choice(files)
        data = self.rng.randbytes(self.small_size())
        try:
            outcome = self.write(rel, data, create=False)
        except OSError as exc:
            self.failed("edit", rel, exc)
            return
        self.after_write("edit", rel, outcome, sha(data), len(data))

    def op_append(self) -> None:
        r = self.rng.random()
        if r < 0.8:
            rel = BIG[self.side]
        elif r < 0.9:
            rel = BIG["cloud" if self.side == "local" else "local"]
        else:
            files = self.candidates(walk(self.root)[0])
            if not files:
                self.done("append", "", "skipped")
                return
            rel = self.rng.choice(files)
        big = rel in BIG.values()
        path = self.abs(rel)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            self.failed("append", rel, exc)
            return
        h = hashlib.sha256()
        try:
            ino = os.fstat(fd).st_ino
            size = 0
            while chunk := os.read(fd, MiB):
                h.update(chunk)
                size += len(chunk)
            extra = self.rng.randrange(64 * 1024, MiB) if big else self.rng.randrange(1, 16 * 1024)
            if big and size + extra > BIG_MAX:
                data, size, h = self.rng.randbytes(BIG_MIN), 0, hashlib.sha256()
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
            else:
                data = self.rng.randbytes(extra)
                os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        h.update(data)
        outcome = "ok" if self._same_inode(path, ino) else "raced"
        self.after_write("append", rel, outcome, h.hexdigest(), size + len(data))

    def op_delete(self) -> None:
        files = self.candidates(walk(self.root)[0])
        if len(files) < FILE_FLOOR:
            self.done("delete", "", "skipped")
            return
        rel = self.rng.choice(files)
        try:
            os.unlink(self.abs(rel))
        except OSError as exc:
            self.failed("delete", rel, exc)
            return
        self.done("delete", rel, "ok")
        self.model.gone(rel)

    def op_rename(self) -> None:
        files, dirs = walk(self.root)
        files = self.candidates(files)
        if not files:
            self.done("rename", "", "skipped")
            return
        rel = self.rng.choice(files)
        folder = os.path.dirname(rel) if self.rng.random() < 0.5 else self.pick_folder(dirs)
        ext = os.path.splitext(rel.rsplit("/", 1)[-1])[1]
        name = self.fresh("r", ext)
        to = f"{folder}/{name}" if folder else name
        try:
            os.rename(self.abs(rel), self.abs(to))
        except OSError as exc:
            self.failed("rename", rel, exc)
            return
        self.model.gone(rel)
        self.moved(self.done("rename", rel, "ok", to=to), to)

    def moved(self, op: int, rel: str) -> None:
        """A rename put a file at `rel`: what it holds now is expected there (nothing else writes it yet)."""
        try:
            digest, size = file_sha(self.abs(rel)), os.path.getsize(self.abs(rel))
        except OSError:
            return
        self.model.wrote(self.side, "rename", rel, digest, size, op)

    def op_mkdir(self) -> None:
        dirs = walk(self.root)[1]
        parent = self.pick_folder(dirs, MAX_DEPTH - 1)
        name = f"shared-dir-{self.rng.randrange(4)}" if self.rng.random() < 0.15 else self.fresh("d")
        rel = f"{parent}/{name}" if parent else name
        try:
            os.mkdir(self.abs(rel))
        except FileExistsError:
            self.done("mkdir", rel, "exists")
            return
        except OSError as exc:
            self.failed("mkdir", rel, exc)
            return
        self.done("mkdir", rel, "ok")

    def op_rmdir(self) -> None:
        dirs = walk(self.root)[1]
        empty = [d for d in dirs if self._is_empty(d)]
        if not empty:
            self.done("rmdir", "", "skipped")
            return
        rel = self.rng.choice(empty)
        try:
            os.rmdir(self.abs(rel))
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                self.done("rmdir", rel, "not-empty")  # the engine put something there meanwhile
            else:
                self.failed("rmdir", rel, exc)
            return
        self.done("rmdir", rel, "ok")

    def _is_empty(self, rel: str) -> bool:
        try:
            return not os.listdir(self.abs(rel))
        except OSError:
            return False

    def op_rename_dir(self) -> None:
        files, dirs = walk(self.root)
        if not dirs:
            self.done("rename-dir", "", "skipped")
            return
        full = [d for d in dirs if any(under(f, d) for f in files)]
        src = self.rng.choice(full if full and self.rng.random() < 0.7 else dirs)
        below = max((depth(d) - depth(src) for d in dirs if under(d, src)), default=0)
        parent = self.pick_folder(dirs, MAX_DEPTH - 1 - below, avoid=src)
        to = f"{parent}/{self.fresh('d')}" if parent else self.fresh("d")
        try:
            os.rename(self.abs(src), self.abs(to))
        except OSError as exc:
            self.failed("rename-dir", src, exc)
            return
        moved = walk(self.abs(to))[0]
        op = self.done("rename-dir", src, "ok", to=to, files=len(moved))
        for f in moved:
            self.model.gone(f"{src}/{f}")
            self.moved(op, f"{to}/{f}")

    def op_rmtree(self) -> None:
        files, dirs = walk(self.root)
        small = [d for d in dirs if 0 < sum(under(f, d) for f in files) <= 12]
        if not small:
            self.done("rmtree", "", "skipped")
            return
        rel = self.rng.choice(small)
        inside = [f for f in files if under(f, rel)]
        if len(self.candidates(files)) - len(inside) < FILE_FLOOR:
            self.done("rmtree", rel, "skipped")
            return
        removed = 0
        for f in inside:
            digest = None
            if is_conflict(f):
                try:
                    digest = file_sha(self.abs(f))
                except OSError:
                    pass
            try:
                os.unlink(self.abs(f))
            except OSError:
                continue
            removed += 1
            self.model.gone(f)
            if digest:  # the content may have survived only in this copy
                for p, e in list(self.model.expected.items()):
                    if e.digest == digest and under(p, rel):
                        self.model.gone(p)
        for d in sorted((d for d in dirs if under(d, rel)), key=depth, reverse=True):
            try:
                os.rmdir(self.abs(d))
            except OSError:
                pass  # the engine (or a temporary file) put something there: it stays
        self.done("rmtree", rel, "ok" if not os.path.exists(self.abs(rel)) else "partial", files=removed)


# -- the engine -----------------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = tempfile.mkdtemp(prefix="skysync-soak-")
        self.home = os.path.join(self.work, "home")
        self.roots = {"local": os.path.join(self.work, "local"), "cloud": os.path.join(self.work, "cloud")}
        self.run_log = os.path.join(self.work, "run.log")
        self.env = dict(os.environ, SKYSYNC_HOME=self.home)
        self.model = Model(os.path.join(self.work, "ops.jsonl"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.figures: dict[str, Any] = {}
        self.results: list[tuple[str, bool, str]] = []

    def cli(self, *argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cp = subprocess.run([self.args.skysync, *argv], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and cp.returncode != 0:
            raise RuntimeError(f"skysync {' '.join(argv)} exited {cp.returncode}: {cp.stderr.strip()}")
        return cp

    def setup(self) -> None:
        for root in self.roots.values():
            os.makedirs(root)
        rng = random.Random(f"{self.args.seed}-seed-tree")
        seeds = {"local": (["docs", "docs/old", "photos", "photos/2025", "misc"], 30), "cloud": (["shared"], 10)}
        for side, (folders, n) in seeds.items():
            root = self.roots[side]
            for d in folders:
                os.makedirs(os.path.join(root, d))
            for i in range(n):
                folder = rng.choice(["", *folders])
                rel = f"{folder}/seed-{side[0]}{i}.txt" if folder else f"seed-{side[0]}{i}.txt"
                self._seed_file(side, rel, rng.randbytes(rng.randrange(0, 8192)))
            self._seed_file(side, BIG[side], rng.randbytes(3 * MiB))
        self.cli("connection", "add", CONN, "--provider", "local", "--option", f"root={self.roots['cloud']}")
        self.cli(
            "connection",
            "edit",
            CONN,
            "--option",
            f"polling_period={POLLING}",
            "--option",
            f"upload_limit={LIMIT_KIB}",
            "--option",
            f"download_limit={LIMIT_KIB}",
        )
        self.cli(
            "task", "add", TASK, "--connection", CONN, "--local", self.roots["local"], "--remote", "/",
            "--direction", "bidirectional",
        )  # fmt: skip
        # A folder rename or rm -r of a big share of the tree is what the writers do on purpose: the mass-delete
        # guard would (rightly) stop the task, which is not what this soak measures.
        self.cli("settings", "set", "mass-delete-percent", "100")

    def _seed_file(self, side: str, rel: str, data: bytes) -> None:
        with open(os.path.join(self.roots[side], *rel.split("/")), "wb") as f:
            f.write(data)
        op = self.model.log(side, "seed", "ok", path=rel, sha=sha(data)[:12], size=len(data))
        self.model.wrote(side, "seed", rel, sha(data), len(data), op)
        self.model.contents.add(sha(data))

    def log_text(self) -> str:
        with open(self.run_log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def passes(self) -> int:
        return len(re.findall(r" pass-finished\b", self.log_text()))

    def rss(self) -> dict[str, int]:
        out: dict[str, int] = {}
        assert self.proc is not None
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM"):
                        out[key] = int(value.split()[0]) * 1024
        except OSError:
            pass
        return out

    def start_engine(self) -> None:
        with open(self.run_log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.args.skysync, "run"], env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while self.passes() == 0:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skysync run exited {self.proc.returncode} at start:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("skysync run finished no pass within 120 s")
            time.sleep(0.2)
        self.figures["rss_start"] = self.rss().get("VmRSS", 0)

    def status(self) -> dict[str, Any] | None:
        try:
            cp = self.cli("status", "--json", check=False, timeout=30)
            return json.loads(cp.stdout)["tasks"][TASK]
        except (subprocess.TimeoutExpired, ValueError, KeyError):
            return None

    def settle(self, stopped_at: float) -> float | None:
        """Seconds from the writers' stop until the engine is idle with nothing to do after a poll period."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return None
            live = (self.status() or {}).get("live") or {}
            last = live.get("last_pass") or {}
            if (
                live.get("state") == "idle"
                and not live.get("pending")
                and not live.get("transfers")
                and (last.get("finished") or 0) > stopped_at + POLLING + 1
                and not last.get("summary")
                and not last.get("failed")
                and not last.get("error")
            ):
                return time.time() - stopped_at
            time.sleep(2)
        return None

    def stop_engine(self) -> tuple[int | None, float]:
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None, time.monotonic() - started
        return rc, time.monotonic() - started

    def final_syncs(self) -> tuple[bool, list[str], str]:
        """`skysync sync TASK` until a pass has nothing to do (at most 3); returns (settled, summaries, stderr)."""
        summaries, stderr = [], ""
        for _ in range(3):
            cp = self.cli("sync", TASK, "--json", check=False)
            stderr += cp.stderr
            try:
                res = json.loads(cp.stdout)["tasks"][0]
            except (ValueError, KeyError, IndexError):
                summaries.append(f"exit {cp.returncode}, no JSON: {cp.stderr.strip()[:200]}")
                continue
            done = " ".join(f"{k}={v}" for k, v in sorted(res["summary"].items())) or "nothing to do"
            if res.get("failed"):
                done += f" failed={res['failed']}"
            if res.get("error"):
                done += f" error={res['error']}"
            summaries.append(f"exit {cp.returncode}: {done}")
            if cp.returncode == 0 and not res["summary"] and not res.get("failed"):
                return True, summaries, stderr
        return False, summaries, stderr

    # -- checks -------------------------------------------------------------------------------------------
    def tree(self, side: str) -> tuple[dict[str, str | None], list[str]]:
        """path -> sha256 (None for a folder), and the temporary files found."""
        root = self.roots[side]
        out: dict[str, str | None] = {}
        temps: list[str] = []
        for top, dnames, fnames in os.walk(root):
            rel_top = os.path.relpath(top, root)
            rel_top = "" if rel_top == "." else rel_top.replace(os.sep, "/")
            for d in dnames:
                out[f"{rel_top}/{d}" if rel_top else d] = None
            for f in fnames:
                rel = f"{rel_top}/{f}" if rel_top else f
                if f.startswith(TEMP_PREFIX):
                    temps.append(rel)
                else:
                    out[rel] = file_sha(os.path.join(top, f))
        return out, temps

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.results.append((name, ok, detail))

    def lost(self, trees: dict[str, dict[str, str | None]], log: str) -> list[str]:
        """Expected contents found on a side neither at their path nor in any conflict copy, with the ops on
        that path and the engine's log lines about it, for the report."""
        problems = []
        for rel, exp in sorted(self.model.expected.items()):
            missing = []
            for side in SIDES:
                tree = trees[side]
                if tree.get(rel) == exp.digest:
                    continue
                if any(d == exp.digest and is_conflict(p) for p, d in tree.items()):
                    continue
                missing.append(f"{side}: " + ("missing" if rel not in tree else "other content"))
            if not missing:
                continue
            when = time.strftime("%H:%M:%S", time.localtime(self.model.times[exp.op]))
            when += f".{int(self.model.times[exp.op] * 1000) % 1000:03d}"
            lines = [
                f"{rel}: {exp.kind} by the {exp.side} writer (op {exp.op} at {when}, sha {exp.digest[:12]}, "
                f"{exp.size} B) lost ({', '.join(missing)}); writer ops on this path: "
                f"{self.model.history.get(rel, [])[-8:]}"
            ]
            quoted = {f"path={rel}", f"path={json.dumps(rel, ensure_ascii=False)}"}
            about = [ln for ln in log.splitlines() if any(q + " " in ln + " " for q in quoted)]
            lines += [f"  log: {ln}" for ln in about[-5:]]
            problems.append("\n      ".join(lines))
        return problems

    def run(self) -> int:
        args = self.args
        self.setup()
        self.start_engine()
        assert self.proc is not None
        print(
            f"soak: {args.minutes:g} min, seed {args.seed}, {args.rate:g} ops/s per side, work folder {self.work}",
            flush=True,
        )
        stop = threading.Event()
        writers = [Writer(s, self.roots[s], args.seed, self.model, args.rate, stop) for s in SIDES]
        for w in writers:
            w.start()
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_report = t0 + 30
        died = False
        while (now := time.monotonic()) < end:
            if self.proc.poll() is not None:
                died = True
                break
            if any(not w.is_alive() for w in writers):
                break
            if now >= next_report:
                print(
                    f"  {now - t0:5.0f} s: {self.model.seq} operations, {self.passes()} passes, "
                    f"RSS {self.rss().get('VmRSS', 0) / MiB:.1f} MiB",
                    flush=True,
                )
                next_report += 30
            time.sleep(0.5)
        stop.set()
        for w in writers:
            w.join()
        stopped_at = time.time()
        self.figures["duration"] = time.monotonic() - t0
        for w in writers:
            if w.error is not None:
                raise RuntimeError(f"writer {w.side} failed: {type(w.error).__name__}: {w.error}")

        settled = None if died else self.settle(stopped_at)
        self.figures["settled_after"] = settled
        rss_end = self.rss()
        self.figures["rss_end"], self.figures["rss_peak"] = rss_end.get("VmRSS", 0), rss_end.get("VmHWM", 0)
        trees_before = {s: self.tree(s)[0] for s in SIDES}
        self.figures["converged_alone"] = trees_before["local"] == trees_before["cloud"]
        rc, took = self.stop_engine()
        self.figures["stop"] = (rc, took)
        sync_ok, summaries, sync_stderr = self.final_syncs()
        self.figures["final_syncs"] = summaries

        # -- invariants ---------------------------------------------------------------------------------------
        trees, temps = {}, {}
        for s in SIDES:
            trees[s], temps[s] = self.tree(s)
        log = self.log_text()
        only = {s: sorted(set(trees[s]) - set(trees[o])) for s, o in (("local", "cloud"), ("cloud", "local"))}
        differ = sorted(p for p in set(trees["local"]) & set(trees["cloud"]) if trees["local"][p] != trees["cloud"][p])
        same = not (only["local"] or only["cloud"] or differ)
        detail = "" if same else "; ".join(
            f"{what}: {', '.join(paths[:8])}{' …' if len(paths) > 8 else ''}"
            for what, paths in (("only local", only["local"]), ("only cloud", only["cloud"]), ("differ", differ))
            if paths
        )  # fmt: skip
        self.check("both sides byte-identical", same, detail)
        all_temps = [f"{s}:{p}" for s in SIDES for p in temps[s]]
        self.check("no temporary files", not all_temps, ", ".join(all_temps[:8]))
        self.check(
            f"engine exit 0 within {STOP_LIMIT:g} s of SIGTERM",
            rc == 0 and took <= STOP_LIMIT and not died,
            "it died during the soak" if died else f"exit {rc} after {took:.1f} s",
        )
        tracebacks = log.count("Traceback (most recent call last)") + sync_stderr.count("Traceback (most recent")
        self.check("no traceback in stderr", tracebacks == 0, f"{tracebacks} traceback(s)" if tracebacks else "")
        internal = [
            line for line in log.splitlines() + sync_stderr.splitlines()
            if re.search(r'error="?[A-Z]\w*(Error|Exception)\b', line) or "unexpected " in line
        ]  # fmt: skip
        self.check(
            "no pass aborted by an internal exception",
            not internal,
            f"{len(internal)} line(s), first: {internal[0][:200]}" if internal else "",
        )
        self.check(
            "settled (engine idle after the writers stopped, final sync: nothing to do)",
            settled is not None and sync_ok,
            ("engine did not settle; " if settled is None else "") + " | ".join(summaries),
        )
        lost = self.lost(trees, log)
        self.check(f"no file lost ({len(self.model.expected)} expected contents)", not lost, "\n      ".join(lost[:10]))
        self.report(trees, log)
        return 0 if all(ok for _, ok, _ in self.results) else 1

    def report(self, trees: dict[str, dict[str, str | None]], log: str) -> None:
        f = self.figures
        print(f"\nskysync soak, seed {self.args.seed}: writers ran {f['duration'] / 60:.1f} min")
        print("operations (local / cloud; ok, then other outcomes):")
        by_kind: dict[str, dict[str, collections.Counter[str]]] = collections.defaultdict(
            lambda: {s: collections.Counter() for s in SIDES}
        )
        for (side, kind, outcome), n in self.model.counts.items():
            if kind != "seed":
                by_kind[kind][side][outcome] += n
        total = 0
        for kind in OPS:
            sides = by_kind.get(kind, {s: collections.Counter() for s in SIDES})
            oks = [sides[s]["ok"] for s in SIDES]
            total += sum(oks)
            other = collections.Counter()
            for s in SIDES:
                other.update({k: v for k, v in sides[s].items() if k != "ok"})
            extra = ", ".join(f"{k} {v}" for k, v in sorted(other.items()))
            print(f"  {kind:<11}{oks[0]:>5} / {oks[1]:<5}{'  (' + extra + ')' if extra else ''}")
        print(
            f"  {'total ok':<11}{total:>5}; writes overwritten or deleted by the engine while written: "
            f"{len(self.model.raced)}"
        )
        finished = re.findall(r" pass-finished ok=(\d)(.*)", log)
        kinds = collections.Counter(m.group(1) for m in re.finditer(r"^\S+ skysync task=\S+ ([a-z-]+)", log, re.M))
        kinds.pop("pass-started", None)
        kinds.pop("pass-finished", None)
        print(
            f"engine: {len(finished)} passes ({sum(ok == '0' for ok, _ in finished)} not ok); log events: "
            + (", ".join(f"{k} {v}" for k, v in kinds.most_common()) or "none")
        )
        errors = collections.Counter(
            re.sub(r'path=("[^"]*"|\S+) ', "", m.group(0)).split(" ", 3)[-1][:160]
            for m in re.finditer(r"^\S+ skysync task=\S+ error .*$", log, re.M)
        )
        for text, n in errors.most_common(5):
            print(f"  {n} x {text}")
        pass_errors = collections.Counter(
            rest.split(" error=", 1)[1][:160] for _, rest in finished if " error=" in rest
        )
        for text, n in pass_errors.most_common(5):
            print(f"  pass error {n} x {text}")
        print(
            f"RSS of skysync run: {f['rss_start'] / MiB:.1f} MiB after the first pass, {f['rss_end'] / MiB:.1f} MiB "
            f"at the end (peak {f['rss_peak'] / MiB:.1f} MiB)"
        )
        settled = f["settled_after"]
        print(
            "settled "
            + (f"{settled:.0f} s after the writers stopped" if settled is not None else "NOT within the timeout")
            + f"; sides identical before the final sync: {'yes' if f['converged_alone'] else 'no'}"
        )
        rc, took = f["stop"]
        print(f"SIGTERM: exit {rc} after {took:.1f} s; final sync: {' | '.join(f['final_syncs'])}")
        files = sum(1 for d in trees["local"].values() if d is not None)
        folders = len(trees["local"]) - files
        conflicts = sorted(p for p in trees["local"] if is_conflict(p))
        # Two copies of one file with the same content are one conflict kept twice (issue 12, item 6).
        groups = collections.Counter(
            (p.rpartition("/")[0], p.rpartition("/")[2].split(CONFLICT)[0].rsplit("_", 1)[0], trees["local"][p])
            for p in conflicts
        )
        duplicates = sum(n - 1 for n in groups.values())
        print(
            f"end state: {files} files, {folders} folders (local side); conflict copies: {len(conflicts)}, "
            f"of which {duplicates} duplicate another copy of the same file"
        )
        for p in conflicts[:10]:
            print(f"  {p}")
        # Not an invariant of this soak, a warning: with the local provider the cloud writer's in-place writes
        # can be read half-done; a main path is fixed by the next pass, a conflict copy keeps what was read.
        torn = [
            f"{side}:{p} ({os.path.getsize(os.path.join(self.roots[side], *p.split('/')))} B)"
            for side in SIDES
            for p, d in sorted(trees[side].items())
            if d is not None and d not in self.model.contents
        ]
        if torn:
            print(
                f"WARN  {len(torn)} file(s) hold a content no writer wrote whole (a torn read kept): "
                + ", ".join(torn[:6])
            )
        print("invariants:")
        for name, ok, detail in self.results:
            print(f"  {'PASS' if ok else 'FAIL'}  {name}{(': ' + detail) if detail and not ok else ''}")
        verdict = all(ok for _, ok, _ in self.results)
        print(f"result: {'PASS' if verdict else 'FAIL'}")

    def cleanup(self, keep: bool) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.model.close()
        if keep:
            print(f"work folder kept: {self.work} (run.log, ops.jsonl, home/, local/, cloud/)")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the writers run (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=3.0, help="operations per second per side (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (it is also kept on a failure)")
    ap.add_argument(
        "--skysync",
        default=os.path.join(os.path.dirname(sys.executable), "skysync"),
        help="the console script to run (default: skysync next to this Python)",
    )
    args = ap.parse_args(argv)
    soak = Soak(args)
    code = 2
    try:
        code = soak.run()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"soak: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        code = 130
    finally:
        soak.cleanup(args.keep or code != 0)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
