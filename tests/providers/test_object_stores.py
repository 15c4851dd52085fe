"""What the S3 family, OSS and COS do beyond the shared contract: their options, storage classes, bucket rules,
and each kind used end to end through the command line (connection add/test, tasks in all three directions)."""

from __future__ import annotations

import io
import os
import pathlib
import tomllib
from typing import Any

import boto3
import pytest

from engine.cli import main
from engine.providers import objectstore, provider_class
from engine.providers.base import InvalidOption, ProviderError

from .servers import cos, jdcloud, oss, s3

# -- options --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["s3", "jdcloud", "oss", "cos"])
@pytest.mark.parametrize("archive", ["GLACIER", "DEEP_ARCHIVE", "Archive", "ColdArchive"])
def test_archive_storage_classes_are_refused_with_a_reason(kind: str, archive: str) -> None:
    options = {"bucket": "bkt", "region": "r", "access_key_id": "k", "secret_access_key": "s"}
    options |= {"access_key_secret": "s", "secret_id": "k", "secret_key": "s", "storage_class": archive}
    with pytest.raises(InvalidOption) as info:
        provider_class(kind).validate_options(options)
    message = str(info.value)
    assert "\n" not in message and ("not supported" in message or "must be one of" in message)


@pytest.mark.parametrize(
    ("kind", "given", "used"),
    [
        ("s3", "ia", "STANDARD_IA"),
        ("s3", "RRS", "REDUCED_REDUNDANCY"),
        ("s3", "STANDARD", "STANDARD"),
        ("oss", "ia", "IA"),
        ("oss", "standard", "Standard"),
        ("cos", "standard_ia", "STANDARD_IA"),
    ],
)
def test_storage_class_names_are_normalised(kind: str, given: str, used: str) -> None:
    options = {"bucket": "b-1250000000", "region": "ap-guangzhou", "access_key_id": "k"}
    options |= {"secret_access_key": "s", "access_key_secret": "s", "secret_id": "k", "secret_key": "s"}
    assert provider_class(kind)({**options, "storage_class": given}).storage_class == used  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "part"), [("s3", "4"), ("s3", "x"), ("oss", "0"), ("cos", "6000")])
def test_part_size_out_of_range_is_refused(kind: str, part: str) -> None:
    options = {"bucket": "bkt", "region": "r", "access_key_id": "k", "secret_access_key": "s"}
    options |= {"access_key_secret": "s", "secret_id": "k", "secret_key": "s", "part_size": part}
    with pytest.raises(InvalidOption, match="part_size"):
        provider_class(kind).validate_options(options)


def test_presets_fill_the_endpoint_and_identity_is_endpoint_plus_key() -> None:
    cls = provider_class("s3")
    base = {"bucket": "bkt", "access_key_id": "AKID", "secret_access_key": "very-secret"}
    assert cls.resolve_endpoint({**base, "preset": "hicloud"}).startswith("https://")  # type: ignore[attr-defined]
    assert cls.resolve_endpoint({**base, "preset": "aws"}) == ""  # type: ignore[attr-defined]
    with pytest.raises(InvalidOption, match="endpoint"):
        cls.validate_options({**base, "preset": "other"})
    ident = cls.identity({**base, "preset": "sfr"})
    assert "AKID" in ident and "very-secret" not in ident
    # The same key on the same service is the same account, whichever bucket (spec note 1).
    assert cls.identity({**base, "preset": "sfr"}) == cls.identity({**base, "bucket": "other", "preset": "sfr"})
    assert cls.identity({**base, "preset": "sfr"}) != cls.identity({**base, "preset": "megafon"})
    jd = provider_class("jdcloud")
    assert jd.resolve_endpoint({**base, "region": "cn-east-2"}) == "https://s3.cn-east-2.jdcloud-oss.com"  # type: ignore[attr-defined]


def test_storage_class_reaches_the_service() -> None:
    with s3.serve(pathlib.Path()) as options:
        p = provider_class("s3")({**options, "storage_class": "STANDARD_IA"})
        p.upload("ia.txt", io.BytesIO(b"rarely read"), 11, 1_600_000_000)
        client = _client(options)
        head = client.head_object(Bucket=options["bucket"], Key="ia.txt")
        assert head.get("StorageClass") == "STANDARD_IA"
        assert head["Metadata"]["mtime"] == "1600000000"
        p.close()
        client.close()
    with oss.serve(pathlib.Path()) as options:
        p = provider_class("oss")({**options, "storage_class": "IA"})
        p.upload("ia.txt", io.BytesIO(b"x"), 1, 1_600_000_000.5)
        stored = oss.fake().store.buckets[options["bucket"]]["ia.txt"]
        assert stored.storage_class == "IA" and stored.meta["x-oss-meta-mtime"] == "1600000000.5"
        p.close()
    with cos.serve(pathlib.Path()) as options:
        p = provider_class("cos")({**options, "storage_class": "STANDARD_IA"})
        p.upload("ia.txt", io.BytesIO(b"x"), 1, 1_600_000_000)
        stored = cos.fake().store.buckets[options["bucket"]]["ia.txt"]
        assert stored.storage_class == "STANDARD_IA" and stored.meta["x-cos-meta-mtime"] == "1600000000"
        p.close()


# -- buckets --------------------------------------------------------------------------------------------------


def test_create_bucket_makes_a_missing_bucket_after_checking_its_name() -> None:
    import uuid

    name = f"made-{uuid.uuid4().hex[:12]}"
    options = {**s3.options(name), "create_bucket": "true"}
    p = provider_class("s3")(options)
    p.check()
    assert list(p.list("")) == []
    p.close()
    # The name is checked with the options, before the provider exists (so before any request).
    with pytest.raises(InvalidOption, match=r"invalid .* bucket name 'Bad_Bucket_Name': .*lowercase"):
        provider_class("s3")({**s3.options("Bad_Bucket_Name"), "create_bucket": "true"})


def test_jdcloud_bucket_rule_is_stricter_than_s3() -> None:
    s3_cls, jd_cls = provider_class("s3"), provider_class("jdcloud")
    assert s3_cls.bucket_name_ok("my.bucket")  # type: ignore[attr-defined]
    assert not jd_cls.bucket_name_ok("my.bucket")  # type: ignore[attr-defined]
    assert not jd_cls.bucket_name_ok("bucket-")  # type: ignore[attr-defined]
    assert jd_cls.bucket_name_ok("my-bucket-1")  # type: ignore[attr-defined]


def test_missing_bucket_is_not_created_without_the_option() -> None:
    p = provider_class("s3")(s3.options("never-created-bucket"))
    with pytest.raises(ProviderError, match="does not exist"):
        p.check()
    p.close()


def test_unfinished_multipart_uploads_are_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.providers import s3 as s3_module

    with s3.serve(pathlib.Path()) as options:
        client = _client(options)
        client.create_multipart_upload(Bucket=options["bucket"], Key="task/half.bin")
        client.create_multipart_upload(Bucket=options["bucket"], Key="elsewhere/other.bin")
        monkeypatch.setattr(objectstore, "STALE_UPLOAD_AGE", -1)  # pretend they are a day old
        monkeypatch.setattr(s3_module, "_cleanups", objectstore.CleanupGate())
        p = provider_class("s3")(options)
        assert p.clean_interrupted("task") == 1
        assert p.clean_interrupted("task") == 0  # once a day per folder
        left = client.list_multipart_uploads(Bucket=options["bucket"]).get("Uploads", [])
        assert [u["Key"] for u in left] == ["elsewhere/other.bin"]
        p.close()
        client.close()


@pytest.mark.parametrize("kind", ["oss", "cos"])
def test_day_old_unfinished_uploads_are_aborted_and_young_ones_kept(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import time

    from tests.fakes.object_store import Upload

    monkeypatch.setattr(importlib.import_module(f"engine.providers.{kind}"), "_cleanups", objectstore.CleanupGate())
    server = SERVERS[kind]
    with server.serve(pathlib.Path()) as options:
        uploads = server.fake().store.uploads
        bucket = options["bucket"]
        uploads["OLD"] = Upload(bucket, "task/killed.bin", {}, "", initiated=time.time() - 2 * 86400)
        uploads["YOUNG"] = Upload(bucket, "task/running.bin", {}, "", initiated=time.time() - 60)
        uploads["ELSEWHERE"] = Upload(bucket, "other/killed.bin", {}, "", initiated=time.time() - 2 * 86400)
        p = provider_class(kind)(options)
        assert p.clean_interrupted("task") == 1
        assert p.clean_interrupted("task") == 0  # once a day per folder
        assert {"YOUNG", "ELSEWHERE"} <= set(uploads) and "OLD" not in uploads
        p.close()


def _client(options: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=options["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=options["access_key_id"],
        aws_secret_access_key=options["secret_access_key"],
    )


# -- the command line, per kind -------------------------------------------------------------------------------

SECRET_OPTION = {
    "s3": "secret_access_key",
    "jdcloud": "secret_access_key",
    "oss": "access_key_secret",
    "cos": "secret_key",
}
SERVERS = {"s3": s3, "jdcloud": jdcloud, "oss": oss, "cos": cos}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_each_kind_end_to_end_through_the_cli(
    kind: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "home")
    with SERVERS[kind].serve(tmp_path) as options:
        argv = ["--home", home, "connection", "add", "c", "--provider", kind]
        for key, value in options.items():
            argv += ["--option", f"{key}={value}"]
        assert main(argv) == 0, capsys.readouterr().err
        assert main(["--home", home, "connection", "test", "c"]) == 0, capsys.readouterr().err
        secret = options[SECRET_OPTION[kind]]
        config = pathlib.Path(home, "config.toml").read_text()
        assert secret not in config
        secrets = tomllib.loads(pathlib.Path(home, "secrets.toml").read_text())
        assert secret in str(secrets)
        assert os.stat(pathlib.Path(home, "secrets.toml")).st_mode & 0o077 == 0

        for direction in ("upload", "download", "bidirectional"):
            local = tmp_path / direction
            local.mkdir()
            (local / f"{direction}.txt").write_text(direction)
            argv = ["--home", home, "task", "add", direction, "--connection", "c", "--local", str(local)]
            assert main([*argv, "--remote", f"/{direction}", "--direction", direction]) == 0, capsys.readouterr().err
        provider = provider_class(kind)(options)
        provider.upload("download/from-cloud.txt", io.BytesIO(b"cloud"), 5, 1_600_000_000)
        provider.upload("bidirectional/from-cloud.txt", io.BytesIO(b"cloud"), 5, 1_600_000_000)
        capsys.readouterr()
        assert main(["--home", home, "sync"]) == 0, capsys.readouterr().err

        remote = {e.path for e in provider.list("") if not e.is_dir}
        assert "upload/upload.txt" in remote
        assert "download/download.txt" not in remote  # download only: local files stay local
        assert (tmp_path / "download" / "from-cloud.txt").read_bytes() == b"cloud"
        assert "bidirectional/bidirectional.txt" in remote
        assert (tmp_path / "bidirectional" / "from-cloud.txt").read_bytes() == b"cloud"
        assert os.stat(tmp_path / "download" / "from-cloud.txt").st_mtime == 1_600_000_000
        capsys.readouterr()
        assert main(["--home", home, "sync", "--json"]) == 0
        provider.close()


def test_an_object_in_glacier_is_listed_but_its_download_fails_in_one_line() -> None:
    # Listed, so the engine neither deletes the local copy nor overwrites the archived object by mistake.
    with s3.serve(pathlib.Path()) as options:
        client = _client(options)
        client.put_object(Bucket=options["bucket"], Key="cold.bin", Body=b"frozen", StorageClass="GLACIER")
        p = provider_class("s3")(options)
        assert [e.path for e in p.list("")] == ["cold.bin"]
        with pytest.raises(ProviderError) as info:
            p.download("cold.bin", io.BytesIO())
        assert "archive storage" in str(info.value) and "\n" not in str(info.value)
        p.close()
        client.close()
