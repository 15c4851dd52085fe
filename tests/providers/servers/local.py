"""`local`: a temporary directory plays the cloud; there is no server, credential or network to get wrong."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

KIND = "local"


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    root = tmp_path / "cloud"
    root.mkdir()
    yield {"root": str(root)}


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "root": options["root"] + "-missing"}
