"""Object stores: skysync against `rclone sync` and `rclone bisync` on one moto S3 server (issue 19 item 3).

    python -m bench.moto_bench                         # 10,000 small files, then one 1 GiB file
    python -m bench.moto_bench --files 2000 --big-mib 64 --json bench/out/moto.json

One moto server (threaded, 127.0.0.1, a free port, in this process) sits behind a WSGI middleware that counts
every request by type, so the figures say what each tool asked of the service, not only how long it took. Each
tool gets its own bucket and its own `cp -a` copy of one generated tree, and runs as a child process (start-up
counts) through three steps on the same data:

1. initial upload of N small files (sync_bench's tree): `skysync sync`, `rclone sync`, `rclone bisync --resync`;
2. one large file of random bytes added to each tree, then the same commands (`rclone bisync` without
   `--resync`): the throughput of one big upload in parallel parts;
3. a no-change pass (median of --repeat, round-robin across the tools).

The baseline is a bare boto3 ListObjectsV2 pagination of skysync's bucket, as a child process too: a no-change
pass on an object store cannot ask less than one listing. rclone is configured by environment variables only
(an `s3` remote called `moto`, provider Other, path style, the moto endpoint; `--config /dev/null`), so nothing
reaches the internet and no user config is read. skysync runs a bidirectional task on the bucket's root with its
default settings (4 files at once, 16 MiB parts, 4 parts of one file at once); rclone with its own defaults (4
transfers, 8 checkers, 5 MiB chunks, 4 chunks at once).

moto's own CPU is reported per step (this process's rusage while the child runs) beside each tool's: the server
shares the machine's cores with the clients, so what a tool makes moto do counts as much as its own CPU.
`--skysync-before PATH` runs an earlier skysync build too, as `skysync-before`, for a before/after in one run.

Targets (issue 19): no-change ≤ 1.2× the bare listing with ≤ 1 listing request per 1,000 objects; initial
small files ≤ 0.5× `rclone sync`'s time; the large file at ≥ 1.0× rclone's throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from bench.sync_bench import BenchError, Run, build_tree, checked, copy_tree, default_skysync, measure, sandbox

ACCESS_KEY_ID = "skysync-bench"
SECRET_ACCESS_KEY = "skysync-bench-secret-0123456789"
REGION = "us-east-1"
BIG_NAME = "big/large.bin"

TARGET_NOOP_VS_LISTING = 1.2
TARGET_LISTS_PER_1000 = 1.0
TARGET_INITIAL_VS_RCLONE_SYNC = 0.5
TARGET_BIG_THROUGHPUT_VS_RCLONE = 1.0

Environ = dict[str, Any]


# --- the server ---------------------------------------------------------------------------------------------


def request_kind(method: str, query: str) -> str:
    """A request's S3 operation, from its method and query parameter names (path-style, no body needed)."""
    params = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    if method == "GET" and "uploads" in params:  # before ListObjects: it takes a prefix too
        return "ListMultipartUploads"
    if method == "GET" and ("list-type" in params or "prefix" in params or "delimiter" in params):
        return "ListObjects"
    if method == "GET" and "versioning" in params:
        return "GetBucketVersioning"
    if method == "PUT" and "partNumber" in params:
        return "UploadPart"
    if method == "POST" and "uploads" in params:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in params:
        return "CompleteMultipartUpload"
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    if method == "DELETE" and "uploadId" in params:
        return "AbortMultipartUpload"
    return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
        method, method)


class Counting:
    """WSGI middleware: counts requests by S3 operation (thread-safe; moto's server is threaded)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = request_kind(environ["REQUEST_METHOD"], environ.get("QUERY_STRING", ""))
        with self._lock:
            self.counts[kind] += 1
        return self.app(environ, start_response)

    def take(self) -> dict[str, int]:
        """The counts since the last take, and start counting afresh."""
        with self._lock:
            counts = dict(self.counts)
            self.counts.clear()
        return counts


class MotoServer:
    """moto's S3 app straight under werkzeug's threaded server (moto's host dispatcher would stat module
    folders on every request), on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        import logging

        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.counter = Counting(create_backend_app("s3"))
        self._server = make_server("127.0.0.1", 0, self.counter, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the tools ----------------------------------------------------------------------------------------------


class Tool:
    """One tool's bucket, its copy of the data and its state folder."""

    name = ""

    def __init__(self, work: str, seed: str, server: MotoServer) -> None:
        self.server = server
        self.bucket = f"bench-{self.name}"
        self.base = os.path.join(work, self.name)
        self.local = os.path.join(self.base, "local")
        self.state = os.path.join(self.base, "state")
        os.makedirs(self.state)
        copy_tree(seed, self.local)
        client = server.client()
        client.create_bucket(Bucket=self.bucket)
        client.close()

    def setup(self) -> None:
        """Untimed one-off configuration."""

    def initial(self) -> Run:
        raise NotImplementedError

    def again(self) -> Run:
        """A pass after the first (the large file's, and the no-change one)."""
        raise NotImplementedError


class Skysync(Tool):
    name = "skysync"

    def __init__(self, work: str, seed: str, server: MotoServer, exe: str, name: str = "skysync") -> None:
        self.exe = exe
        self.name = name
        super().__init__(work, seed, server)
        self.env = {**os.environ, "SKYSYNC_HOME": os.path.join(self.state, "home")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # as sync_bench: measure the cached bytecode users run

    def setup(self) -> None:
        options = {"preset": "other", "endpoint": self.server.endpoint, "region": REGION, "bucket": self.bucket,
                   "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}
        argv = [self.exe, "connection", "add", "bench", "--provider", "s3"]
        for key, value in options.items():
            argv += ["--option", f"{key}={value}"]
        checked(measure(argv, env=self.env), "skysync connection add")
        checked(measure([self.exe, "task", "add", "bench", "--connection", "bench", "--local", self.local,
                         "--remote", "/", "--direction", "bidirectional"], env=self.env), "skysync task add")

    def initial(self) -> Run:
        return checked(measure([self.exe, "sync", "bench"], env=self.env), "skysync sync")

    def again(self) -> Run:
        return self.initial()


class Rclone(Tool):
    """`rclone sync` (one way) or `rclone bisync` against the env-var remote `moto:`."""

    def __init__(self, work: str, seed: str, server: MotoServer, exe: str, mode: str) -> None:
        self.exe = exe
        self.mode = mode
        self.name = f"rclone-{mode}"
        super().__init__(work, seed, server)
        prefix = "RCLONE_CONFIG_MOTO_"
        # AWS_CA_BUNDLE (set on some machines for HTTPS proxies) makes rclone's S3 backend refuse to start
        # ("unsupported transport"); the endpoint here is plain http on 127.0.0.1 and needs no CA.
        inherited = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.env = {**inherited, prefix + "TYPE": "s3", prefix + "PROVIDER": "Other",
                    prefix + "ENDPOINT": server.endpoint, prefix + "REGION": REGION,
                    prefix + "ACCESS_KEY_ID": ACCESS_KEY_ID, prefix + "SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                    prefix + "FORCE_PATH_STYLE": "true"}

    def run(self, what: str, *extra: str) -> Run:
        argv = [self.exe, self.mode, self.local, f"moto:{self.bucket}", "--config", "/dev/null", "-q", *extra]
        if self.mode == "bisync":
            argv += ["--workdir", self.state]
        return checked(measure(argv, env=self.env), what)

    def initial(self) -> Run:
        return self.run(f"rclone {self.mode}", *(["--resync"] if self.mode == "bisync" else []))

    def again(self) -> Run:
        return self.run(f"rclone {self.mode}")


LISTING = """
import sys, time, boto3
t0 = time.perf_counter()
client = boto3.client("s3", endpoint_url=sys.argv[1], region_name=sys.argv[2], aws_access_key_id=sys.argv[3],
                      aws_secret_access_key=sys.argv[4])
t1 = time.perf_counter()
n = sum(page.get("KeyCount", 0) for page in client.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[5]))
print(n, time.perf_counter() - t1, t1 - t0)
"""


def bare_listing(server: MotoServer, bucket: str) -> tuple[Run, int, float]:
    """A boto3 listing of the whole bucket as a child process: (run, objects, seconds of the listing alone)."""
    run = checked(measure([sys.executable, "-c", LISTING, server.endpoint, REGION, ACCESS_KEY_ID,
                           SECRET_ACCESS_KEY, bucket]), "bare listing")
    objects, listing, _ = run.out.split()
    return run, int(objects), float(listing)


# --- the data -----------------------------------------------------------------------------------------------


def write_random(path: str, size: int) -> None:
    """`size` random bytes (incompressible, so no tool gains from zeros), written a MiB at a time."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            out.write(chunk)
            left -= len(chunk)


# --- the run ------------------------------------------------------------------------------------------------


def step(tool: Tool, server: MotoServer, action: Callable[[], Run]) -> dict[str, Any]:
    """One timed command with the requests it made; {"error": ...} when it failed (the tool is then left out
    of the later steps: a peer that breaks is reported, never fatal)."""
    server.counter.take()
    before = server_cpu()
    try:
        run = action()
    except BenchError as exc:
        server.counter.take()
        return {"error": str(exc)}
    spent = server_cpu() - before
    requests = server.counter.take()
    return {"wall": run.wall, "cpu": run.cpu, "rss_kib": run.rss_kib, "requests": requests,
            "total_requests": sum(requests.values()), "server_cpu": spent}


def server_cpu() -> float:
    """CPU seconds of this process so far: moto's, as the bench's own thread only waits for the child (whose
    CPU is counted apart, by wait4). On shared cores the server's CPU is taken from the clients': a tool that
    makes moto work less leaves more of the machine to itself."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "MISSED")


def summarize(results: dict[str, dict[str, Any]], baseline: dict[str, Any], files: int, big: int) -> dict[str, Any]:
    """The issue's ratios from one run's figures."""
    sky, rsync = results.get("skysync", {}), results.get("rclone-sync", {})

    def throughput(r: dict[str, Any]) -> float | None:
        return big / r["big"]["wall"] / (1 << 20) if r.get("big", {}).get("wall") else None

    noop = sky.get("noop", {}).get("wall")
    lists = sky.get("noop", {}).get("requests", {}).get("ListObjects")
    objects = baseline.get("objects") or 0
    lists_per_1000 = lists / objects * 1000 if lists is not None and objects else None
    rclone_mibs = [throughput(r) for name, r in results.items() if name.startswith("rclone")]
    best_rclone = max((m for m in rclone_mibs if m is not None), default=None)
    summary = {
        "noop_vs_listing": ratio(noop, baseline.get("wall")),
        "noop_lists_per_1000_objects": lists_per_1000,
        "initial_vs_rclone_sync": ratio(sky.get("initial", {}).get("wall"), rsync.get("initial", {}).get("wall")),
        "before_initial_vs_rclone_sync": ratio(results.get("skysync-before", {}).get("initial", {}).get("wall"),
                                               rsync.get("initial", {}).get("wall")),
        "big_mib_s": {name: throughput(r) for name, r in results.items()},
        "big_throughput_vs_best_rclone": ratio(throughput(sky), best_rclone),
    }
    summary["targets"] = {
        f"no-change ≤ {TARGET_NOOP_VS_LISTING}× bare listing": _within(summary["noop_vs_listing"],
                                                                        TARGET_NOOP_VS_LISTING),
        # S3 pages hold at most 1,000 keys: one pagination of N objects is ceil(N / 1,000) requests.
        f"≤ {TARGET_LISTS_PER_1000:g} listing request per 1,000 objects (one pagination)": (
            None if lists is None else lists <= -(-objects // 1000) * TARGET_LISTS_PER_1000),
        f"initial {files:,} small files ≤ {TARGET_INITIAL_VS_RCLONE_SYNC}× rclone sync": _within(
            summary["initial_vs_rclone_sync"], TARGET_INITIAL_VS_RCLONE_SYNC),
        f"large file ≥ {TARGET_BIG_THROUGHPUT_VS_RCLONE}× rclone's throughput": (
            None if summary["big_throughput_vs_best_rclone"] is None
            else summary["big_throughput_vs_best_rclone"] >= TARGET_BIG_THROUGHPUT_VS_RCLONE),
    }
    return summary


def _within(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def requests_text(requests: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(requests.items(), key=lambda kv: -kv[1]))


def report(results: dict[str, dict[str, Any]], baseline: dict[str, Any], summary: dict[str, Any],
           emit: Callable[[str], None]) -> None:
    for phase, title in (("initial", "initial upload of the small files"), ("big", "the large file"),
                         ("noop", "no-change pass (median wall)")):
        emit(f"\n{title}:")
        for name, r in results.items():
            if "error" in r.get(phase, {}):
                emit(f"  {name:13} failed: {r[phase]['error']}")
            elif phase in r:
                f = r[phase]
                emit(f"  {name:13} {f['wall']:8.2f} s (CPU {f['cpu']:6.2f} s, moto {f['server_cpu']:6.2f} s)  "
                     f"{f['total_requests']:>7,} requests: {requests_text(f['requests'])}")
                if phase == "initial" and f["total_requests"]:
                    emit(f"  {'':13} per request: {f['cpu'] / f['total_requests'] * 1000:.2f} ms of the tool's CPU, "
                         f"{f['server_cpu'] / f['total_requests'] * 1000:.2f} ms of moto's")
    emit(f"\nbare boto3 listing of skysync's bucket ({baseline['objects']:,} objects): {baseline['wall']:.2f} s as a "
         f"process, {baseline['listing']:.2f} s listing alone; {requests_text(baseline['requests'])}")
    emit("\nratios:")
    for key in ("noop_vs_listing", "noop_lists_per_1000_objects", "initial_vs_rclone_sync",
                "before_initial_vs_rclone_sync", "big_throughput_vs_best_rclone"):
        value = summary[key]
        if value is None and key.startswith("before"):
            continue
        emit(f"  {key:32} {'n/a' if value is None else f'{value:.2f}'}")
    emit("  large file MiB/s: " + ", ".join(f"{name} {v:.1f}" for name, v in summary["big_mib_s"].items()
                                             if v is not None))
    emit("\ntargets (issue 19):")
    for name, ok in summary["targets"].items():
        emit(f"  {verdict(ok):6} {name}")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.moto_bench", description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=10_000, help="number of small files (default 10,000)")
    p.add_argument("--big-mib", type=int, default=1024, help="size of the large file in MiB (default 1024; 0: none)")
    p.add_argument("--repeat", type=int, default=3, help="no-change passes per tool; the median is shown")
    p.add_argument("--tools", default="skysync,rclone-sync,rclone-bisync", help="comma-separated subset")
    p.add_argument("--workdir", help="parent folder for the sandboxes (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the sandboxes for inspection")
    p.add_argument("--skysync", default=default_skysync(), help="the skysync executable")
    p.add_argument("--skysync-before", metavar="PATH",
                   help="another skysync executable (an earlier build) run first as the tool 'skysync-before', "
                        "for a before/after in one run: same server, same data, same load")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.files < 1 or args.repeat < 1 or args.big_mib < 0:
        p.error("--files and --repeat must be at least 1, --big-mib at least 0")
    return args


def make_tools(names: list[str], work: str, seed: str, server: MotoServer, args: argparse.Namespace) -> list[Tool]:
    rclone = shutil.which("rclone")
    tools: list[Tool] = []
    if args.skysync_before:
        tools.append(Skysync(work, seed, server, args.skysync_before, "skysync-before"))
    for name in names:
        if name == "skysync":
            if not args.skysync:
                raise BenchError("no skysync executable (pip install -e . or --skysync PATH)")
            tools.append(Skysync(work, seed, server, args.skysync))
        elif name in ("rclone-sync", "rclone-bisync"):
            if rclone is None:
                print(f"{name}: skipped, rclone is missing (apt-get install rclone)", flush=True)
                continue
            tools.append(Rclone(work, seed, server, rclone, name.partition("-")[2]))
        else:
            raise BenchError(f"unknown tool {name!r}: skysync, rclone-sync or rclone-bisync")
    return tools


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    work = sandbox("skysync-moto-bench-", args.workdir)
    server = MotoServer()
    try:
        seed = os.path.join(work, "seed")
        os.makedirs(seed)
        build_tree(seed, args.files)
        tools = make_tools(args.tools.split(","), work, seed, server, args)
        for tool in tools:
            tool.setup()
        print(f"moto at {server.endpoint}; {args.files:,} small files, a {args.big_mib} MiB file; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        results: dict[str, dict[str, Any]] = {tool.name: {} for tool in tools}
        def run_step(phase: str, tool: Tool, action: Callable[[], Run]) -> None:
            if any("error" in figures for figures in results[tool.name].values()):
                return
            figures = results[tool.name][phase] = step(tool, server, action)
            print(f"  {tool.name}: {phase} " + (f"failed: {figures['error']}" if "error" in figures
                                               else f"{figures['wall']:.1f} s"), flush=True)

        for tool in tools:
            run_step("initial", tool, tool.initial)
        if args.big_mib:
            big_seed = os.path.join(work, "large.bin")
            write_random(big_seed, args.big_mib << 20)
            for tool in tools:
                target = os.path.join(tool.local, BIG_NAME)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(big_seed, target)
            os.unlink(big_seed)
            for tool in tools:
                run_step("big", tool, tool.again)
        noops: dict[str, list[dict[str, Any]]] = {tool.name: [] for tool in tools}
        for _ in range(args.repeat):  # round-robin, so background load hits every tool alike
            for tool in tools:
                if not any("error" in figures for figures in results[tool.name].values()):
                    noops[tool.name].append(step(tool, server, tool.again))
        for name, runs in noops.items():
            failed = [r for r in runs if "error" in r]
            if failed:
                results[name]["noop"] = failed[0]
            elif runs:
                middle = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
                results[name]["noop"] = {**middle, "walls": [r["wall"] for r in runs]}
        baseline: dict[str, Any] = {}
        if "skysync" in results:
            walls = []
            for _ in range(args.repeat):
                server.counter.take()
                run, objects, listing = bare_listing(server, "bench-skysync")
                walls.append((run.wall, listing))
                baseline = {"objects": objects, "requests": server.counter.take()}
            wall, listing = sorted(walls)[len(walls) // 2]
            baseline.update(wall=wall, listing=listing)
        summary = summarize(results, baseline, args.files, args.big_mib << 20) if baseline else {}
        print(f"load after: {os.getloadavg()[0]:.1f}")
        if baseline:
            report(results, baseline, summary, print)
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as out:
                json.dump({"files": args.files, "big_mib": args.big_mib, "results": results,
                           "baseline": baseline, "summary": summary}, out, indent=2)
        return 0
    except BenchError as exc:
        print(f"moto_bench: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"sandboxes kept in {work}")


if __name__ == "__main__":
    sys.exit(main())
