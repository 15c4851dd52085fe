"""Conflicts kept as revisions (issue 18 item 3) against moto S3, through the real pass.

With bucket versioning enabled, a file changed on both sides keeps the local version as the current object and
the cloud's edit as the previous version, read back with list_object_versions / get_object VersionId, and no
conflict copy exists on either side; the log line names that version. Suspended versioning, or a connection set
to `copy`, keeps today's conflict copies on both sides.
"""

from __future__ import annotations

import datetime
import io
import os
import pathlib
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from engine import manage, revisions
from engine.config import Home, Task
from engine.connect import open_provider
from engine.providers.base import PreconditionFailed
from engine.state import StateDB
from engine.sync import PassResult, run_pass

from .servers import _moto, s3


class Env:
    def __init__(self, root: pathlib.Path, conflict_mode: str | None = None) -> None:
        self.home = Home(str(root / "home"))
        self.local = root / "local"
        self.local.mkdir()
        options = s3.options(_moto.new_bucket())
        if conflict_mode is not None:
            options["conflict_mode"] = conflict_mode
        self.bucket = options["bucket"]
        manage.add_connection(self.home, "c", "s3", options)
        manage.add_task(self.home, Task("t", "c", str(self.local), "/docs"))
        self.home.save()
        self.client: Any = boto3.client(
            "s3", endpoint_url=options["endpoint"], region_name="us-east-1",
            aws_access_key_id=options["access_key_id"], aws_secret_access_key=options["secret_access_key"],
        )

    def versioning(self, status: str) -> None:
        self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": status})

    def sync(self) -> PassResult:
        return run_pass(Home(self.home.path), "t", hostname="testhost")

    def write(self, name: str, text: str, mtime: float) -> None:
        path = self.local / name
        path.write_text(text)
        os.utime(path, (mtime, mtime))

    def versions(self, key: str) -> list[dict[str, Any]]:
        """Every version of `key`, newest first (as S3 lists them)."""
        answer = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        found = [v for v in answer.get("Versions", ()) if v["Key"] == key]
        return sorted(found, key=lambda v: v["LastModified"], reverse=True)

    def read(self, key: str, version: str | None = None) -> bytes:
        extra = {"VersionId": version} if version else {}
        return self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()

    def keys(self) -> set[str]:
        """The files in the bucket (folder markers left out)."""
        found = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", ())
        return {o["Key"] for o in found if not o["Key"].endswith("/")}

    def conflict_log(self) -> list[str]:
        db = StateDB(self.home.setting("database-path"))
        try:
            return [r.message for r in db.read_log(task="t", limit=50, kinds=("conflict",))]
        finally:
            db.close()

    def two_sided_edit(self) -> None:
        self.write("doc.txt", "base", 1_700_000_000)
        assert self.sync().exit_code == 0
        self.write("doc.txt", "local edit", 1_800_000_000)
        self.client.put_object(Bucket=self.bucket, Key="docs/doc.txt", Body=b"cloud edit!")


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Iterator[Env]:
    made = Env(tmp_path)
    yield made
    made.client.close()


def test_versioned_bucket_keeps_the_cloud_edit_as_the_previous_version(env: Env) -> None:
    env.versioning("Enabled")
    env.two_sided_edit()
    cloud_edit = env.versions("docs/doc.txt")[0]
    assert env.read("docs/doc.txt", cloud_edit["VersionId"]) == b"cloud edit!"

    result = env.sync()
    assert result.exit_code == 0 and result.summary.get("conflict") == 1, result.as_dict()
    # The local version is the current object; the cloud's edit is the version right before it.
    versions = env.versions("docs/doc.txt")
    assert versions[0]["IsLatest"] and env.read("docs/doc.txt") == b"local edit"
    assert versions[1]["VersionId"] == cloud_edit["VersionId"]
    assert env.read("docs/doc.txt", versions[1]["VersionId"]) == b"cloud edit!"
    # No conflict copy on either side.
    assert sorted(p.name for p in env.local.iterdir()) == ["doc.txt"]
    assert env.keys() == {"docs/doc.txt"}
    # The log names the revision kept (its id and time).
    (line,) = env.conflict_log()
    assert f"the cloud's version is revision {cloud_edit['VersionId']} of " in line
    assert f"{cloud_edit['LastModified']:%Y-%m-%d %H:%M:%S} UTC" in line
    assert "kept the local version" in line
    # Settled: the next pass has nothing to do.
    assert env.sync().summary == {}


def test_suspended_versioning_makes_conflict_copies_as_before(env: Env) -> None:
    env.versioning("Enabled")
    env.versioning("Suspended")
    assert revisions.for_connection(env.home, "c") == (
        "copy", f"bucket '{env.bucket}' has versioning suspended: the cloud's version of a conflict is kept as a "
        "conflict copy")
    env.two_sided_edit()
    result = env.sync()
    assert result.exit_code == 0 and result.summary.get("conflict") == 1, result.as_dict()
    copies = [p.name for p in env.local.iterdir() if p.name.startswith("doc_testhost_Conflict_")]
    assert len(copies) == 1 and (env.local / copies[0]).read_text() == "cloud edit!"
    assert (env.local / "doc.txt").read_text() == "local edit"
    assert env.keys() == {"docs/doc.txt", f"docs/{copies[0]}"}
    assert env.read("docs/doc.txt") == b"local edit"


def test_a_bucket_never_versioned_is_copy_mode_with_the_reason(env: Env) -> None:
    provider = open_provider(env.home, "c")
    try:
        assert provider.keeps_revisions() == f"bucket '{env.bucket}' has versioning off"
    finally:
        provider.close()
    env.versioning("Enabled")
    assert revisions.for_connection(env.home, "c")[0] == "revision"


def test_copy_mode_asked_for_keeps_copies_on_a_versioned_bucket(tmp_path: pathlib.Path) -> None:
    env = Env(tmp_path, conflict_mode="copy")
    try:
        env.versioning("Enabled")
        assert revisions.for_connection(env.home, "c")[0] == "copy"
        env.two_sided_edit()
        result = env.sync()
        assert result.summary.get("conflict") == 1, result.as_dict()
        assert len([p for p in env.local.iterdir() if "_Conflict_" in p.name]) == 1
        assert len(env.keys()) == 2
    finally:
        env.client.close()


def test_the_cloud_edited_again_before_the_upload_is_not_replaced(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The revision's upload is conditional on what the plan saw: a version written after the listing is never
    the one replaced unseen; the next pass keeps it (as a revision) too."""
    env.versioning("Enabled")
    env.two_sided_edit()
    from engine.providers.s3 import S3Provider

    original = S3Provider.replaced_version

    def meanwhile(self: S3Provider, path: str, listed: Any) -> tuple[str, float | None]:
        env.client.put_object(Bucket=env.bucket, Key="docs/doc.txt", Body=b"third device")
        return original(self, path, listed)

    monkeypatch.setattr(S3Provider, "replaced_version", meanwhile)
    first = env.sync()
    assert first.summary.get("conflict") is None, first.as_dict()
    assert env.read("docs/doc.txt") == b"third device"
    monkeypatch.setattr(S3Provider, "replaced_version", original)
    second = env.sync()
    assert second.summary.get("conflict") == 1, second.as_dict()
    contents = [env.read("docs/doc.txt", v["VersionId"]) for v in env.versions("docs/doc.txt")]
    assert contents == [b"local edit", b"third device", b"cloud edit!", b"base"]


# -- the other object stores: what each checks before it says "revision" ----------------------------------------


def test_b2_keeps_versions_unless_a_lifecycle_rule_removes_them(tmp_path: pathlib.Path) -> None:
    """A two-sided edit on the B2 simulator: the local version on top, B2's edit the previous version of the
    file, no copy; then a rule that deletes hidden versions turns the connection to copy mode, with the rule."""
    from .servers import b2

    with b2.serve(tmp_path) as options:
        home = Home(str(tmp_path / "home"))
        local = tmp_path / "local"
        local.mkdir()
        manage.add_connection(home, "b", "b2", options)
        manage.add_task(home, Task("t", "b", str(local), "/"))
        home.save()
        provider = open_provider(home, "b")
        try:
            assert provider.keeps_revisions() is None
            bucket: Any = provider._bucket()  # type: ignore[attr-defined]
            (local / "doc.txt").write_text("base")
            assert run_pass(Home(home.path), "t", hostname="testhost").exit_code == 0
            (local / "doc.txt").write_text("local edit")
            edit = bucket.upload_bytes(b"b2 edit!", "doc.txt")
            result = run_pass(Home(home.path), "t", hostname="testhost")
            assert result.summary.get("conflict") == 1, result.as_dict()
            assert sorted(p.name for p in local.iterdir()) == ["doc.txt"]
            versions = [v for v, _ in bucket.ls("", latest_only=False, recursive=True) if v.file_name == "doc.txt"]
            contents = []
            for version in versions:
                with tempfile.SpooledTemporaryFile() as sink:
                    bucket.download_file_by_id(version.id_).save(sink)
                    sink.seek(0)
                    contents.append(sink.read())
            assert contents[:2] == [b"local edit", b"b2 edit!"]
            db = StateDB(home.setting("database-path"))
            try:
                (line,) = [r.message for r in db.read_log(task="t", kinds=("conflict",))]
            finally:
                db.close()
            uploaded = datetime.datetime.fromtimestamp(edit.upload_timestamp / 1000, datetime.UTC)
            assert line.endswith(f"the cloud's version is revision {edit.id_} of {uploaded:%Y-%m-%d %H:%M:%S} UTC")

            bucket.update(lifecycle_rules=[{"fileNamePrefix": "", "daysFromHidingToDeleting": 1,
                                            "daysFromUploadingToHiding": None}])
            reason = provider.keeps_revisions()
            assert reason is not None and "lifecycle rule" in reason and "1 day" in reason
            assert revisions.for_connection(home, "b")[0] == "copy"
        finally:
            provider.close()


def test_gcs_needs_object_versioning_on_the_bucket(tmp_path: pathlib.Path) -> None:
    from .servers import gcs

    with gcs.serve(tmp_path) as options:
        home = Home(str(tmp_path / "home"))
        manage.add_connection(home, "g", "gcs", options)
        home.save()
        provider = open_provider(home, "g")
        try:
            assert provider.keeps_revisions() == f"bucket '{options['bucket']}' has object versioning off"
            bucket: Any = provider._bucket()  # type: ignore[attr-defined]
            bucket.versioning_enabled = True
            bucket.patch()
            assert provider.keeps_revisions() is None
            assert revisions.for_connection(home, "g")[0] == "revision"
            # The generation a conflict's upload replaces, while it is still the listed one.
            provider.upload("doc.txt", io.BytesIO(b"first"), 5, 1_700_000_000.0)
            listed = next(e for e in provider.list("") if e.path == "doc.txt")
            generation, when = provider.replaced_version("doc.txt", listed)
            assert generation == listed.revision and when is not None and abs(when - time.time()) < 600
            provider.upload("doc.txt", io.BytesIO(b"second"), 6, 1_700_000_000.0)
            with pytest.raises(PreconditionFailed):
                provider.replaced_version("doc.txt", listed)
        finally:
            provider.close()


def test_azure_says_why_it_keeps_copies() -> None:
    from engine.providers.azure import AzureProvider

    reason = AzureProvider({"container": "c", "connection_string": "UseDevelopmentStorage=true"}).keeps_revisions()
    assert reason is not None and "storage account" in reason
    assert revisions.decide(revisions.REVISION, reason)[0] == "copy"


def test_an_encrypted_task_keeps_the_cloud_container_as_the_previous_version(tmp_path: pathlib.Path) -> None:
    """The encrypting wrapper asks the service underneath: the replaced container stays as a version, and
    decrypting it gives the other device's edit back."""
    from engine.crypto import AccountKey, DecryptingWriter, EncryptingReader

    password = "correct horse battery staple"
    env = Env.__new__(Env)
    env.home = Home(str(tmp_path / "home"))
    env.local = tmp_path / "local"
    env.local.mkdir()
    options = s3.options(_moto.new_bucket())
    env.bucket = options["bucket"]
    manage.add_connection(env.home, "c", "s3", options)
    manage.add_task(env.home, Task("t", "c", str(env.local), "/docs", encrypt=True), password)
    env.home.save()
    env.client = boto3.client(
        "s3", endpoint_url=options["endpoint"], region_name="us-east-1",
        aws_access_key_id=options["access_key_id"], aws_secret_access_key=options["secret_access_key"],
    )
    try:
        env.versioning("Enabled")
        account = AccountKey.from_secrets(Home(env.home.path).secrets("c"))
        env.write("doc.txt", "base", 1_700_000_000)
        assert env.sync().exit_code == 0
        env.write("doc.txt", "local edit", 1_800_000_000)
        body = EncryptingReader(io.BytesIO(b"other device"), account, "doc.txt").read()
        env.client.put_object(Bucket=env.bucket, Key="docs/doc.txt", Body=body, Metadata={"mtime": "1800000100"})
        result = env.sync()
        assert result.summary.get("conflict") == 1, result.as_dict()
        assert sorted(p.name for p in env.local.iterdir()) == ["doc.txt"]

        def plain(version: str) -> bytes:
            out = io.BytesIO()
            writer = DecryptingWriter(out, password=account.password)  # type: ignore[arg-type]
            writer.write(env.read("docs/doc.txt", version))
            writer.close()
            return out.getvalue()

        assert [plain(v["VersionId"]) for v in env.versions("docs/doc.txt")][:2] == [b"local edit", b"other device"]
    finally:
        env.client.close()
