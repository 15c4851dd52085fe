"""Test servers for the provider contract suite, one module per provider kind, discovered automatically.

The plug-in convention (add a module here and the whole contract suite runs against it; nothing else to edit):

- `KIND: str` -- the registry kind, e.g. "s3".
- `serve(tmp_path: pathlib.Path) -> contextlib.AbstractContextManager[dict[str, str]]` -- yields connection
  options for `engine.providers.provider_class(KIND)(options)` naming a fresh, empty bucket/container/root.
  Server processes may be shared by the whole session (cache them at module level, stop them with `atexit`).

Optional:

- `unavailable() -> str | None` -- a reason to skip this kind (e.g. an emulator binary that is not installed).
- `SMALL_PART_OPTIONS: dict[str, str]` -- options that lower the multipart threshold, so a file of a few MiB
  exercises multipart upload; the provider's `capabilities.multipart_threshold` must reflect them.
- `EXTRA: dict[str, object]` -- hints for the suite:
  - "multipart_hash": "none" (listing must report no hash for multipart uploads), "exact" (it must be the
    real hash), or "any" (default: None or the real hash, never a wrong one);
  - "mtime_tolerance": seconds of rounding the service applies to mtimes (default 1.0).
- `populate(options, paths) -> None` -- create the files `paths` (content b"x") directly on the server; the
  listing-paging test uses it, when present, instead of a thousand uploads through the provider.
- `bad_credentials(options) -> dict[str, str] | None` -- the options with a wrong secret
  (None: the kind has no credentials).
- `missing_container(options) -> dict[str, str] | None` -- options naming a bucket/container that does not
  exist.
- `unreachable(options, address) -> dict[str, str] | None` -- options pointing at `address`
  ("127.0.0.1:PORT"), a port where nothing listens.

- `make(options) -> Provider` -- build the provider under test from the options (a wrapper such as
  EncryptedProvider around a registry kind); without it, `provider_class(KIND)(options)`.
- `put_duplicate(options, path, data) -> None` -- store a second file under the name `path` (for kinds whose
  capabilities allow duplicate names).

A hook that is missing skips the tests that need it, with the reason shown in the pytest summary.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover() -> dict[str, ModuleType]:
    """Every server module in this package, by the kind it serves."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, str):
            raise RuntimeError(f"{module.__name__} defines no KIND")
        if kind in found:
            raise RuntimeError(f"two server modules serve '{kind}': {found[kind].__name__} and {info.name}")
        found[kind] = module
    return found
