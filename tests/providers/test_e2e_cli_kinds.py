"""Each of b2, azure, gcs, swift and webdav used the way a user does: through the `skysync` commands.

`connection add` (secrets to the secrets store), `connection test`, then one task per direction (upload,
download, bidirectional) with `sync`, checked on both sides, and a second `sync` that has nothing to do. The
CLI runs in this process so B2's in-process simulator (its test server) is reachable.
"""

from __future__ import annotations

import io
import json
import pathlib
from collections.abc import Iterator

import pytest

from engine.cli import main
from engine.providers import provider_class
from engine.providers.base import Provider

from .servers import azure, b2, gcs, swift, webdav

SERVERS = {m.KIND: m for m in (azure, b2, gcs, swift, webdav)}


def run(capsys: pytest.CaptureFixture[str], home: pathlib.Path, *argv: str) -> str:
    code = main(["--home", str(home), *argv])
    out, err = capsys.readouterr()
    assert code == 0, f"skysync {' '.join(argv)} -> {code}: {err.strip()}"
    return out


def cloud_files(p: Provider, folder: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for e in p.list(folder):
        if not e.is_dir:
            buf = io.BytesIO()
            p.download(f"{folder}/{e.path}", buf)
            out[e.path] = buf.getvalue()
    return out


@pytest.fixture(params=sorted(SERVERS))
def kind_options(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[tuple[str, dict[str, str]]]:
    module = SERVERS[request.param]
    reason = getattr(module, "unavailable", lambda: None)()
    if reason:
        pytest.skip(reason)
    with module.serve(tmp_path) as options:
        yield request.param, options


def test_connection_and_tasks_in_all_directions(
    kind_options: tuple[str, dict[str, str]], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, options = kind_options
    home = tmp_path / "home"
    args = [arg for k, v in options.items() for arg in ("--option", f"{k}={v}")]
    run(capsys, home, "connection", "add", "c", "--provider", kind, *args)
    shown = run(capsys, home, "connection", "show", "c", "--json")
    secrets = [s.name for s in provider_class(kind).option_specs if s.secret and options.get(s.name)]
    for name in secrets:
        assert options[name] not in shown, f"secret option {name} shown by 'connection show'"
    run(capsys, home, "connection", "test", "c")

    cloud = provider_class(kind)(options)
    try:
        cloud.upload("down/remote.txt", io.BytesIO(b"from the cloud"), 14, 1_700_000_000)
        cloud.mkdir("both")
        cloud.upload("both/r.txt", io.BytesIO(b"r"), 1, 1_700_000_000)
        for direction, sub in (("upload", "up"), ("download", "down"), ("bidirectional", "both")):
            local = tmp_path / f"local-{sub}"
            local.mkdir()
            (local / "l.txt").write_bytes(b"local " + sub.encode())
            run(capsys, home, "task", "add", sub, "--connection", "c", "--local", str(local),
                "--remote", f"/{sub}", "--direction", direction)  # fmt: skip
        first = json.loads(run(capsys, home, "sync", "--json"))["tasks"]
        assert sorted(t["task"] for t in first) == ["both", "down", "up"]
        assert all(t["exit_code"] == 0 and t["summary"] for t in first), first

        assert cloud_files(cloud, "up") == {"l.txt": b"local up"}
        assert (tmp_path / "local-up/l.txt").read_bytes() == b"local up"
        assert cloud_files(cloud, "down") == {"remote.txt": b"from the cloud"}
        assert (tmp_path / "local-down/remote.txt").read_bytes() == b"from the cloud"
        assert (tmp_path / "local-down/l.txt").exists()  # download-only never touches local-only files
        assert cloud_files(cloud, "both") == {"l.txt": b"local both", "r.txt": b"r"}
        assert (tmp_path / "local-both/r.txt").read_bytes() == b"r"

        again = json.loads(run(capsys, home, "sync", "--json"))["tasks"]
        assert len(again) == 3 and all(t["summary"] == {} for t in again), f"not idempotent: {again}"
    finally:
        cloud.close()
