"""What only Azure does: connection strings, .synoemptyblob markers, MD5 in content settings, mtime metadata."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
from collections.abc import Iterator

import pytest

from engine.providers.azure import MARKER, MTIME_KEY, AzureProvider
from engine.providers.base import AuthError, InvalidOption

from .servers import azure as server

pytestmark = pytest.mark.skipif(server.unavailable() is not None, reason=str(server.unavailable()))


@pytest.fixture
def options(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with server.serve(tmp_path) as opts:
        yield opts


def test_connection_string_works_like_account_and_key(options: dict[str, str]) -> None:
    p = AzureProvider({"container": options["container"], "connection_string": server.connection_string()})
    p.check()
    p.upload("a/b.txt", io.BytesIO(b"hello"), 5, 1_600_000_000)
    assert {e.path for e in p.list("")} == {"a", "a/b.txt"}
    p.close()
    bad = server.connection_string().replace(server.KEY, "bm90IHRoZSBrZXk=")
    with pytest.raises(AuthError) as info:
        AzureProvider({"container": options["container"], "connection_string": bad}).check()
    assert "bm90IHRoZSBrZXk=" not in str(info.value)


def test_block_upload_stores_the_whole_file_md5_and_mtime(options: dict[str, str]) -> None:
    p = AzureProvider({**options, "block_size": "1"})
    data = os.urandom((2 << 20) + 3)  # three blocks
    entry = p.upload("big.bin", io.BytesIO(data), len(data), 1_600_000_123.25)
    props = p._container().get_blob_client("big.bin").get_blob_properties()
    blocks = p._container().get_blob_client("big.bin").get_block_list()[0]
    assert len(blocks) == 3
    assert bytes(props.content_settings.content_md5).hex() == hashlib.md5(data).hexdigest() == entry.hash
    assert float(props.metadata[MTIME_KEY]) == 1_600_000_123.25
    p.close()


def test_empty_folder_marker_is_never_a_file(options: dict[str, str]) -> None:
    p = AzureProvider(options)
    p.mkdir("x/y")
    assert [b.name for b in p._container().list_blobs()] == [f"x/y/{MARKER}"]
    assert {(e.path, e.is_dir) for e in p.list("")} == {("x", True), ("x/y", True)}
    p.rmdir("x/y")
    assert list(p.list("")) == []
    p.close()


@pytest.mark.parametrize("name", ["ab", "x" * 64, "Upper", "double--hyphen", "-start"])
def test_container_name_rule(name: str) -> None:
    with pytest.raises(InvalidOption):
        AzureProvider.validate_options({"container": name, "account_name": "a", "account_key": "k"})


def test_credentials_are_required() -> None:
    with pytest.raises(InvalidOption):
        AzureProvider.validate_options({"container": "abc"})
    ident = AzureProvider.identity({"connection_string": "AccountName=acct;AccountKey=SECRET", "container": "abc"})
    assert ident == "azure:acct" and "SECRET" not in ident
