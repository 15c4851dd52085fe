"""A local file whose ctime alone moved (chmod, a rename away and back, a new hard link) beside a deletion or an
edit in the cloud, through the real console script on moto's S3, whose listing carries each object's md5.

The inode, size and mtime say "unchanged", but an in-place rewrite that restores size and mtime says the same;
only the content can tell. S3's md5, recorded in the state when the file was synced, proves it: a file that
still holds that content follows the cloud (deleted, or replaced by the cloud's edit, no conflict copy), and
one that does not is kept and uploaded.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from .test_lost_update import Bucket, files


@pytest.fixture
def s3(tmp_path: pathlib.Path) -> Iterator[Bucket]:
    b = Bucket(tmp_path)
    yield b
    b.close()


def _synced(s3: Bucket) -> None:
    (s3.local / "doc.bin").write_bytes(b"version zero")
    (s3.local / "other.txt").write_bytes(b"stays")
    s3.cli("sync", "t")


def test_a_chmod_beside_a_deletion_in_the_cloud_lets_the_deletion_stand(s3: Bucket) -> None:
    _synced(s3)
    s3.client.delete_object(Bucket=s3.name, Key="doc.bin")
    os.chmod(s3.local / "doc.bin", 0o600)
    s3.cli("sync", "t")
    assert files(s3.local) == s3.objects() == {"other.txt": b"stays"}


def test_a_rewrite_that_restored_size_and_mtime_beside_a_deletion_is_kept(s3: Bucket) -> None:
    _synced(s3)
    s3.client.delete_object(Bucket=s3.name, Key="doc.bin")
    path = s3.local / "doc.bin"
    st = os.stat(path)
    path.write_bytes(b"VERSION ZERO")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    s3.cli("sync", "t")
    assert files(s3.local) == s3.objects() == {"doc.bin": b"VERSION ZERO", "other.txt": b"stays"}


def test_a_chmod_beside_an_edit_in_the_cloud_takes_the_edit_without_a_conflict_copy(s3: Bucket) -> None:
    _synced(s3)
    s3.put("doc.bin", b"edited in the cloud")
    os.chmod(s3.local / "doc.bin", 0o600)
    s3.cli("sync", "t")
    assert files(s3.local) == s3.objects() == {"doc.bin": b"edited in the cloud", "other.txt": b"stays"}
