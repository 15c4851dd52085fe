"""`sharepoint`: a document library of a site on the Graph fake, chosen by site address and library name (a
second library beside it, so the choice matters). Office files are rewritten by the fake after upload."""

from __future__ import annotations

import contextlib
import pathlib
import secrets
from collections.abc import Iterator

from tests.fakes.graph_server import Drive

from .onedrive import SMALL_PART_OPTIONS, fake, options_for, unreachable
from .onedrive import bad_credentials as _bad

KIND = "sharepoint"
EXTRA = {"multipart_hash": "exact"}
__all__ = ["SMALL_PART_OPTIONS", "unreachable"]
_libraries: dict[tuple[str, str], Drive] = {}  # (site address, library) -> the fake's drive


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    server = fake()
    path = "sites/team-" + secrets.token_hex(4)
    _site, drives = server.new_site("contoso.sharepoint.com", path, ["Documents", "Archive"])
    options = {k: v for k, v in options_for(server, drives[1]).items() if k != "drive_id"}
    options["site"] = f"https://contoso.sharepoint.com/{path}"
    options["library"] = "Archive"
    _libraries[(options["site"], "Archive")] = drives[1]
    try:
        yield options
    finally:
        _libraries.pop((options["site"], "Archive"), None)


def library_of(options: dict[str, str]) -> Drive:
    return _libraries[(options["site"], options["library"])]


def populate(options: dict[str, str], paths: list[str]) -> None:
    for path in paths:
        fake().put(library_of(options), path, b"x")


def bad_credentials(options: dict[str, str]) -> dict[str, str]:
    return _bad(options)


def missing_container(options: dict[str, str]) -> dict[str, str]:
    return {**options, "library": "No such library"}
