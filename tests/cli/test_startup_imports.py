"""What a one-shot command imports before it starts: a `sync` or `status` of a task on a `local` connection loads
neither the OAuth stack, nor tomlkit (reading a home is tomllib's job), nor the engine's client, nor a cloud SDK
or Textual, and pydantic does not scan installed distributions for plugins. Start-up is a large share of a
no-change pass (issue 19), and each of these was loaded by every such pass once; the figures are in bench/.
Checked by module names in a fresh interpreter, never by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs the console script's entry point in a fresh interpreter and reports what it loaded. Pydantic's plugin
# loader binds importlib.metadata.entry_points when it is imported, so wrapping it first counts any scan.
PROBE = r"""
import importlib.metadata, json, sys
scans = []
_entry_points = importlib.metadata.entry_points
importlib.metadata.entry_points = lambda **kw: scans.append(kw) or _entry_points(**kw)
from tui.launch import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules), "scans": len(scans)}))
"""

# Loaded only by what a local task's pass never does: sign in, change the config, talk to a running engine,
# reach a cloud service, draw the app.
NEVER = {
    "tomlkit",
    "engine.auth.oauth",
    "engine.providers.oauth",
    "urllib.request",
    "engine.runtime.client",
    "engine.runtime.status",
    "engine.runtime.daemon",
    "concurrent.futures",  # the executor's pool: only for transfers to a network service or of large files
    "boto3",
    "botocore",
    "textual",
    "tui.app",
}


def _run(home: Path, *args: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}  # the entry point sets it
    p = subprocess.run([sys.executable, "-c", PROBE, "--home", str(home), *args], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    *output, report = p.stdout.splitlines()
    return json.loads(report), "\n".join(output)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    for d in ("local", "cloud"):
        (tmp_path / d).mkdir()
    (tmp_path / "local" / "a.txt").write_text("a")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(
        f'[connections.here]\nprovider = "local"\n\n[connections.here.options]\nroot = "{tmp_path / "cloud"}"\n\n'
        f'[tasks.docs]\nconnection = "here"\nlocal = "{tmp_path / "local"}"\nremote = "/"\n'
    )
    return home


def test_a_local_sync_loads_only_what_the_pass_uses(home: Path) -> None:
    report, output = _run(home, "sync", "docs")
    assert report["code"] == 0 and "synced 'docs'" in output, output
    assert (home.parent / "cloud" / "a.txt").read_text() == "a"  # the pass really ran
    assert sorted(NEVER.intersection(report["modules"])) == []
    assert report["scans"] == 0


def test_status_loads_no_pass_machinery(home: Path) -> None:
    report, output = _run(home, "status")
    assert report["code"] == 0 and "docs" in output, output
    loaded = set(report["modules"])
    assert sorted((NEVER - {"engine.runtime.client", "engine.runtime.status"}) & loaded) == []
    assert sorted({"engine.sync", "engine.executor", "engine.connect"} & loaded) == []
    assert report["scans"] == 0


def test_help_loads_no_config_schema(home: Path) -> None:
    report, output = _run(home, "--help")
    assert report["code"] == 0 and "usage: skysync" in output
    assert sorted({"pydantic", "engine.config", "tomllib"} & set(report["modules"])) == []
