"""What only GCS does: MD5 but never for composite objects, mtime metadata, storage class, service-account keys."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pathlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from engine.providers.base import InvalidOption
from engine.providers.gcs import MTIME_KEY, GCSProvider, _md5_hex

from .servers import gcs as server


@pytest.fixture
def options(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    with server.serve(tmp_path) as opts:
        yield opts


def test_mtime_and_storage_class_are_stored_on_the_object(options: dict[str, str]) -> None:
    p = GCSProvider({**options, "storage_class": "NEARLINE"})
    entry = p.upload("docs/a.txt", io.BytesIO(b"abc"), 3, 1_600_000_123.5)
    blob = p._bucket().get_blob("docs/a.txt")
    assert blob.metadata[MTIME_KEY] == "1600000123.5"
    assert blob.storage_class == "NEARLINE"
    assert entry.hash == hashlib.md5(b"abc").hexdigest() and entry.revision == str(blob.generation)
    out = io.BytesIO()
    assert p.download("docs/a.txt", out).mtime == 1_600_000_123.5 and out.getvalue() == b"abc"
    p.close()


def test_empty_folder_is_a_slash_placeholder(options: dict[str, str]) -> None:
    p = GCSProvider(options)
    p.mkdir("a/b")
    assert [b.name for b in p._bucket().list_blobs()] == ["a/b/"]
    assert {(e.path, e.is_dir) for e in p.list("")} == {("a", True), ("a/b", True)}
    p.rmdir("a/b")
    assert list(p.list("")) == []
    p.close()


def test_composite_objects_report_no_hash() -> None:
    # Spec note 5: the CRC32C of a composite object is not used, and GCS gives such objects no MD5. (The
    # emulator does not model composite objects, so this checks the rule on the client's object model.)
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    assert _md5_hex(SimpleNamespace(md5_hash=md5, component_count=None)) == hashlib.md5(b"x").hexdigest()
    assert _md5_hex(SimpleNamespace(md5_hash=md5, component_count=2)) is None
    assert _md5_hex(SimpleNamespace(md5_hash=None, component_count=None)) is None


def test_service_account_key_from_file_or_json(tmp_path: pathlib.Path) -> None:
    key = server.service_account_json("http://127.0.0.1:9/token")
    path = tmp_path / "key.json"
    path.write_text(key)
    GCSProvider.validate_options({"bucket": "b", "credentials_file": str(path)})
    GCSProvider.validate_options({"bucket": "b", "credentials_json": key})
    assert GCSProvider.identity({"bucket": "b", "credentials_json": key}) == (
        "gcs:skysync-test@test.iam.gserviceaccount.com"
    )
    with pytest.raises(InvalidOption):
        GCSProvider.validate_options({"bucket": "b", "credentials_json": "{not json"})
    with pytest.raises(InvalidOption):
        GCSProvider.validate_options({"bucket": "b", "credentials_json": json.dumps({"type": "authorized_user"})})
    with pytest.raises(InvalidOption):
        GCSProvider.validate_options({"bucket": "b", "credentials_file": str(tmp_path / "missing.json")})
    with pytest.raises(InvalidOption):
        GCSProvider.validate_options({"bucket": "b"})
    with pytest.raises(InvalidOption):
        GCSProvider.validate_options({"bucket": "b", "credentials_json": key, "storage_class": "ARCHIVE"})
