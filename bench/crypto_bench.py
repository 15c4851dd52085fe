"""Encryption throughput: encrypt and decrypt a large file in Cloud Sync's container, next to a plain copy.

    python -m bench.crypto_bench                    # 256 MiB of mixed data, best of 3
    python -m bench.crypto_bench --size-mib 64 --data random --repeat 1 --json out.json

The input is generated once with fixed content. "mixed" alternates 64 KiB of random bytes with 64 KiB of text,
so LZ4 both fails and succeeds; "random" is the worst case for LZ4, "text" the best. Each operation reads and
writes real files in one temporary folder (page cache warm, as for `cp`), and every decrypted result is checked
against the source MD5. Ratios are crypto time over `shutil.copyfile` time: how many copies one encryption costs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

from engine.crypto import AccountKey, decrypt_stream, encrypt_file

MiB = 1 << 20
PASSWORD = "bench password"


def make_input(path: str, size: int, kind: str) -> str:
    """Write `size` bytes of the chosen kind; returns their MD5."""
    rng = random.Random(2024)
    text = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 1000)[: 64 * 1024]
    md5 = hashlib.md5()
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            n = min(64 * 1024, left)
            use_text = kind == "text" or (kind == "mixed" and i % 2)
            chunk = text[:n] if use_text else rng.randbytes(n)
            f.write(chunk)
            md5.update(chunk)
            left -= n
            i += 1
    return md5.hexdigest()


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Best wall time and best CPU time (user + system of this process) over `repeat` runs.

    CPU time is reported too because a shared machine's load inflates wall time but not the work done.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--data", choices=["mixed", "random", "text"], default="mixed")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per operation")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary folder, removed after)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    size = args.size_mib * MiB
    work = tempfile.mkdtemp(prefix="crypto-bench-", dir=args.dir)
    try:
        plain, copy, enc, dec = (os.path.join(work, n) for n in ("plain.bin", "copy.bin", "enc.bin", "dec.bin"))
        print(f"generating {args.size_mib} MiB of {args.data} data in {work} ...", flush=True)
        source_md5 = make_input(plain, size, args.data)
        account = AccountKey.create(PASSWORD)

        def decrypt(**cred: object) -> None:
            with open(enc, "rb") as src, open(dec, "wb") as out:
                decrypt_stream(src, out, **cred)  # type: ignore[arg-type]

        t_cp = best_of(args.repeat, lambda: shutil.copyfile(plain, copy))
        t_enc = best_of(args.repeat, lambda: encrypt_file(plain, enc, account))
        t_dec = best_of(args.repeat, lambda: decrypt(password=PASSWORD))
        t_dec_key = best_of(args.repeat, lambda: decrypt(private_key=account.private_pem))
        with open(dec, "rb") as f:
            if hashlib.file_digest(f, "md5").hexdigest() != source_md5:
                print("FAILED: the decrypted file differs from the source", file=sys.stderr)
                return 1
        enc_size = os.path.getsize(enc)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)

    mb = size / 1e6
    rows = [
        ("cp (shutil.copyfile)", t_cp),
        ("encrypt", t_enc),
        ("decrypt (password)", t_dec),
        ("decrypt (private key)", t_dec_key),
    ]
    (w_cp, c_cp) = t_cp
    print(f"\n{args.size_mib} MiB {args.data} data, container {enc_size / size:.1%} of the plaintext")
    print(f"{'operation':<24}{'wall s':>8}{'MB/s':>8}{'x cp':>7}{'cpu s':>8}{'MB/s':>8}{'x cp':>7}")
    for name, (w, c) in rows:
        print(f"{name:<24}{w:>8.2f}{mb / w:>8.0f}{w / w_cp:>7.1f}{c:>8.2f}{mb / c:>8.0f}{c / c_cp:>7.1f}")
    env = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"({env}, load average {load:.1f}, best of {args.repeat}; MB = 10^6 bytes)")
    if args.json:
        figures = {
            "size_bytes": size,
            "data": args.data,
            "container_bytes": enc_size,
            "repeat": args.repeat,
            "results": {
                name: {"wall_s": w, "cpu_s": c, "wall_mb_per_s": mb / w, "cpu_mb_per_s": mb / c, "wall_vs_cp": w / w_cp}
                for name, (w, c) in rows
            },
        }
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
