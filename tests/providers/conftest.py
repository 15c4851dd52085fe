"""Fixtures of the provider contract suite: one parametrised `provider` per discovered test server."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import ModuleType

import pytest

# Server modules import the protocol fakes as `tests.fakes`; make that work however pytest was started.
_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from engine.providers import provider_class  # noqa: E402
from engine.providers.base import Provider  # noqa: E402

from .servers import discover  # noqa: E402

SERVERS: dict[str, ModuleType] = discover()


@dataclass
class Harness:
    """One kind's server, the options of a fresh namespace on it, and a way to make more providers."""

    kind: str
    module: ModuleType
    options: dict[str, str]
    _made: list[Provider] = field(default_factory=list)

    def make(self, options: dict[str, str] | None = None) -> Provider:
        """A provider for `options` (default: the harness's own), closed at the end of the test."""
        opts = dict(self.options if options is None else options)
        build = getattr(self.module, "make", None)  # a wrapper (EncryptedProvider) rather than a registry kind
        provider = build(opts) if build is not None else provider_class(self.kind)(opts)
        self._made.append(provider)
        return provider

    def hook(self, name: str) -> Callable[..., dict[str, str] | None]:
        func = getattr(self.module, name, None)
        if func is None:
            pytest.skip(f"the '{self.kind}' test server defines no {name}()")
        return func

    def extra(self, key: str, default: object) -> object:
        return getattr(self.module, "EXTRA", {}).get(key, default)

    def secrets(self) -> list[str]:
        """The secret option values, which must never appear in a message."""
        names = {spec.name for spec in type(self.make()).option_specs if spec.secret}
        return [v for k, v in self.options.items() if k in names and v]


@pytest.fixture(params=sorted(SERVERS), ids=str)
def harness(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Harness]:
    module = SERVERS[request.param]
    reason = getattr(module, "unavailable", lambda: None)()
    if reason:
        pytest.skip(reason)
    with ExitStack() as stack:
        options = stack.enter_context(module.serve(tmp_path))
        h = Harness(request.param, module, dict(options))
        try:
            yield h
        finally:
            for p in h._made:
                p.close()


@pytest.fixture
def provider(harness: Harness) -> Provider:
    return harness.make()
