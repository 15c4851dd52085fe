"""The import-linter contracts stay whole as providers are added: every registered provider module is in the
independence contract, so no service can quietly start importing another."""

from __future__ import annotations

import tomllib
from pathlib import Path

from engine.providers import _REGISTRY

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _contract(name: str) -> dict:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"] == name)


def test_every_provider_module_is_independent_of_the_others():
    registered = {target.split(":")[0] for target in _REGISTRY.values()}
    assert set(_contract("providers never import each other")["modules"]) == registered


def test_the_runtime_is_protected():
    contract = _contract("only the CLI, the demo and the TUI start or drive the runtime")
    assert contract["protected_modules"] == ["engine.runtime"]
