"""What only B2 does: .bzEmpty markers, no hash for large files, hiding on delete, the bucket-name rule."""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Iterator

import pytest

from engine.providers import b2
from engine.providers.b2 import MARKER, MTIME_KEY, B2Provider
from engine.providers.base import HashKind, InvalidOption, MtimeMode

from .servers import b2 as server


@pytest.fixture
def provider(tmp_path: pathlib.Path) -> Iterator[B2Provider]:
    with server.serve(tmp_path) as options:
        p = B2Provider({**options, **server.SMALL_PART_OPTIONS})
        yield p
        p.close()


def names(p: B2Provider) -> set[str]:
    return {v.file_name for v, _ in p._bucket().ls("", latest_only=True, recursive=True)}


def test_capabilities_match_the_spec_table(provider: B2Provider) -> None:
    assert provider.capabilities.hash_kind is HashKind.SHA1
    assert provider.capabilities.mtime_mode is MtimeMode.METADATA
    assert provider.capabilities.multipart_threshold == 1 << 20


def test_empty_folder_is_a_hidden_bzempty_marker(provider: B2Provider) -> None:
    provider.mkdir("photos/2024")
    assert names(provider) == {f"photos/2024/{MARKER}"}
    assert {e.path for e in provider.list("")} == {"photos", "photos/2024"}
    provider.upload("photos/2024/a.jpg", io.BytesIO(b"jpg"), 3, 1_600_000_000)
    provider.delete("photos/2024/a.jpg")
    provider.rmdir("photos/2024")
    assert names(provider) == set() and list(provider.list("")) == []


def test_large_file_goes_in_parts_and_has_no_hash(provider: B2Provider) -> None:
    data = os.urandom((2 << 20) + 10)
    entry = provider.upload("big.bin", io.BytesIO(data), len(data), 1_600_000_000.5)
    version = provider._bucket().get_file_info_by_name("big.bin")
    assert version.content_sha1 in (None, "none")  # b2_upload_part: no whole-file sha1 (spec note 4)
    assert entry.hash is None and entry.size == len(data)
    assert version.file_info[MTIME_KEY] == "1600000000500"
    small = provider.upload("small.bin", io.BytesIO(b"abc"), 3, 1_600_000_000)
    assert small.hash == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_delete_hides_and_keeps_the_old_version(provider: B2Provider) -> None:
    provider.upload("v.txt", io.BytesIO(b"one"), 3, 1_600_000_000)
    provider.delete("v.txt")
    assert list(provider.list("")) == []
    actions = [v.action for v in provider._bucket().list_file_versions("v.txt")]
    assert sorted(actions) == ["hide", "upload"]


@pytest.mark.parametrize(
    "bucket", ["short", "b2-reserved-prefix", "x" * 51], ids=["too-short", "b2-prefix", "too-long"]
)
def test_bucket_name_rule(bucket: str) -> None:
    with pytest.raises(InvalidOption):
        B2Provider.validate_options({"bucket": bucket, "key_id": "k", "application_key": "s"})


def test_part_size_floor_is_b2s_minimum() -> None:
    assert b2.min_part_size_bytes == 5 << 20  # outside serve(), which lowers it for the simulator
    with pytest.raises(InvalidOption):
        B2Provider.validate_options({"bucket": "my-bucket", "key_id": "k", "application_key": "s", "part_size": "4"})
    assert B2Provider.identity({"key_id": "abc", "application_key": "secret", "bucket": "x"}) == "b2:abc"
