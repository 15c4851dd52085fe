"""Files of any size the service takes (issue 18 item 1): the part size chosen per file, each provider's largest
object, the skip before the first byte, and `policy check --size` at each limit."""

from __future__ import annotations

import io
import os
import pathlib

import boto3
import pytest

from engine import manage
from engine.cli import main
from engine.config import Home, Task
from engine.providers import objectstore, provider_class
from engine.providers.base import QuotaExceeded
from engine.providers.objectstore import PartLimits, part_schedule, part_size_for
from engine.sync import run_pass

from .servers import _moto, s3

MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40

# kind -> (options, the service's part count, largest part, largest object): the documented limits, written
# out here so a provider that drifts from them fails this table.
LIMITS = {
    "s3": ({}, 10_000, 5 * GIB, 5 * TIB),
    "jdcloud": ({}, 10_000, 5 * GIB, 19 * TIB),
    "oss": ({}, 10_000, 5 * GIB, int(48.8 * TIB)),
    "cos": ({}, 10_000, 5 * GIB, int(48.8 * TIB)),
    "azure": ({}, 50_000, 256 * MIB, int(4.75 * TIB)),  # 256 MiB: what one block may hold in memory here
    "b2": ({}, 10_000, 5 * 10**9, 10 * 10**12),
}
NO_PART_LIMIT = {"gcs": 5 * TIB, "swift": None}  # resumable uploads / DLO segments: no limit on the count


def _defaults(kind: str) -> int:
    """The configured part (block, segment) size a connection of `kind` has by default; 0 for GCS (none)."""
    spec = {s.name: s for s in provider_class(kind).option_specs}
    name = "block_size" if kind == "azure" else "segment_size" if kind == "swift" else "part_size"
    return int(spec[name].default or 0) * MIB if name in spec else 0


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_each_provider_declares_its_limits(kind: str) -> None:
    options, parts, part, largest = LIMITS[kind]
    cls = provider_class(kind)
    assert cls.max_object_size(options) == largest
    assert cls.part_limits(options) == PartLimits(parts, part, largest)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "largest"), sorted(NO_PART_LIMIT.items()))
def test_services_without_a_part_count_keep_the_configured_size(kind: str, largest: int | None) -> None:
    assert provider_class(kind).max_object_size({}) == largest
    limits = PartLimits(None, 5 * GIB, largest)
    configured = _defaults(kind) or 8 * MIB
    for size in (1, configured, 10 * configured, 5 * TIB):
        assert part_size_for(size, configured, limits) == configured


def _sizes(configured: int, parts: int, largest: int) -> list[int]:
    """Just under and over each limit: where the configured size stops fitting, and the largest object."""
    edge = configured * parts
    return [1, configured, edge - 1, edge, edge + 1, edge + parts, largest // 2, largest - 1, largest]


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_part_size_keeps_the_count_up_to_the_largest_object(kind: str) -> None:
    options, parts, part, largest = LIMITS[kind]
    limits = provider_class(kind).part_limits(options)  # type: ignore[attr-defined]
    configured = _defaults(kind)
    for size in _sizes(configured, parts, largest):
        chosen = part_size_for(size, configured, limits)
        count = -(-size // chosen)
        assert configured <= chosen <= part, (kind, size, chosen)
        assert count <= parts, (kind, size, chosen, count)
        assert chosen % MIB == 0 or chosen == configured
        if chosen > configured:  # the smallest whole MiB that keeps the count: one MiB less would not
            assert -(-size // (chosen - MIB)) > parts, (kind, size, chosen)
    # Up to the edge the configured size is kept; one byte more takes the next MiB.
    assert part_size_for(configured * parts, configured, limits) == configured
    assert part_size_for(configured * parts + 1, configured, limits) == configured + MIB


@pytest.mark.parametrize(
    ("kind", "size", "expected_mib"),
    [
        ("s3", 16 * MIB * 10_000, 16),  # the old ceiling (~156 GiB) still in 16 MiB parts
        ("s3", 16 * MIB * 10_000 + 1, 17),  # failed at part 10,001 before
        ("s3", 5 * TIB, 525),  # 5 TiB / 10,000 = 524.3 MiB
        ("jdcloud", 19 * TIB, 1993),
        ("oss", int(48.8 * TIB), 5118),
        ("cos", int(48.8 * TIB), 5118),
        ("azure", int(4.75 * TIB), 100),  # 50,000 blocks of 100 MiB: the service's documented limit
        ("b2", 10 * 10**12, 954),
    ],
)
def test_part_size_at_the_largest_object(kind: str, size: int, expected_mib: int) -> None:
    options, *_ = LIMITS[kind]
    limits = provider_class(kind).part_limits(options)  # type: ignore[attr-defined]
    assert part_size_for(size, _defaults(kind), limits) == expected_mib * MIB


@pytest.mark.parametrize("kind", ["s3", "oss", "cos", "azure"])
def test_a_stream_of_unknown_length_grows_its_parts(kind: str) -> None:
    """An upload encrypted on the way has no size beforehand: its parts start at the configured size and grow,
    so the count reaches at least S3's 5 TiB from S3's smallest part, without ever passing the largest part."""
    options, parts, part, largest = LIMITS[kind]
    limits = provider_class(kind).part_limits(options)  # type: ignore[attr-defined]
    smallest = 5 * MIB if kind == "s3" else _defaults(kind)
    size_of = part_schedule(-1, smallest, limits)
    sizes = [size_of(n) for n in range(1, parts + 1)]
    assert sizes[0] == smallest and max(sizes) <= part and sizes == sorted(sizes)
    assert sum(sizes) >= min(largest, 5 * TIB)
    assert sizes[parts // 20 - 1] == smallest  # ordinary files stay in configured parts


def test_parts_refuses_the_part_past_the_count() -> None:
    body = io.BytesIO(b"x" * 40)
    sent = []
    with pytest.raises(QuotaExceeded, match="more than 3 parts"):
        for number, chunk in objectstore.parts(body, body.read(11), 10, "writing /f", 3):
            sent.append((number, len(chunk)))
    assert sent == [(1, 10), (2, 10), (3, 10)]  # the fourth is refused before it is sent


def test_a_real_multipart_upload_chooses_a_larger_part_when_the_count_is_low(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto with S3's part count forced to 3: 16 MiB in the configured 5 MiB parts would need 4, so the rule
    sends 3 parts of 6 MiB (the ETag counts them), and the bytes come back whole."""
    monkeypatch.setattr(objectstore, "MAX_PARTS", 3)
    options = {**s3.options(_moto.new_bucket()), "part_size": "5"}
    provider = provider_class("s3")(options)
    data = os.urandom(16 * MIB)
    try:
        entry = provider.upload("big.bin", io.BytesIO(data), len(data), 1_600_000_000)
        assert entry.revision.endswith("-3"), entry.revision
        out = io.BytesIO()
        provider.download("big.bin", out)
        assert out.getvalue() == data
        # Without the rule the fourth part is refused before it is sent: nothing half-made is left.
        with pytest.raises(QuotaExceeded):
            provider._multipart("other.bin", io.BytesIO(data[5 * MIB + 1:]), data[: 5 * MIB + 1], {}, "writing",
                                1.0, None, lambda _n: 5 * MIB)
        assert "other.bin" not in {e.path for e in provider.list("")}
    finally:
        provider.close()


def test_a_file_larger_than_the_service_takes_is_skipped_before_its_first_byte(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's largest object lowered to 10 bytes: a 20-byte file is skipped with that reason (no request
    writes it), the rest of the pass goes on, and a direct upload is refused before any byte too."""
    s3_class = provider_class("s3")
    monkeypatch.setattr(s3_class, "max_object_size", classmethod(lambda cls, options: 10))
    home = Home(str(tmp_path / "home"))
    local = tmp_path / "local"
    local.mkdir()
    (local / "small.txt").write_bytes(b"12345")
    (local / "large.bin").write_bytes(b"x" * 20)
    options = s3.options(_moto.new_bucket())
    manage.add_connection(home, "c", "s3", options)
    manage.add_task(home, Task("t", "c", str(local), "/", direction="upload"))
    home.save()
    _moto.reset_counts()
    result = run_pass(Home(home.path), "t", hostname="testhost")
    assert result.exit_code == 0, result.as_dict()
    assert result.summary.get("uploaded") == 1 and result.summary.get("skipped") == 1, result.summary
    client = boto3.client("s3", endpoint_url=options["endpoint"], region_name="us-east-1",
                          aws_access_key_id=options["access_key_id"],
                          aws_secret_access_key=options["secret_access_key"])
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=options["bucket"]).get("Contents", ())]
    client.close()
    assert keys == ["small.txt"]
    assert _moto.request_counts().get("PUT", 0) == 1  # the small file's; none for the large one
    provider = s3_class(options)
    with pytest.raises(QuotaExceeded, match="larger than the 10 bytes"):
        provider.upload("large.bin", io.BytesIO(b"x" * 20), 20, 1.0)
    provider.close()


def _check(capsys: pytest.CaptureFixture[str], kind: str, size: int, *options: str) -> tuple[int, str]:
    argv = ["policy", "check", "--provider", kind, "--size", str(size), "f.bin"]
    for option in options:
        argv += ["--option", option]
    code = main(argv)
    return code, capsys.readouterr().out.strip()


@pytest.mark.parametrize(
    ("kind", "largest", "options"),
    [
        ("s3", 5 * TIB, ()),
        ("s3", 5 * TIB, ("preset=other",)),  # no spec row: the provider's own limit answers
        ("s3", 1 * TIB, ("preset=hicloud",)),
        ("s3", int(3.9 * GIB), ("preset=sfr",)),
        ("jdcloud", 19 * TIB, ()),
        ("oss", int(48.8 * TIB), ()),
        ("cos", int(48.8 * TIB), ()),
        ("azure", int(4.75 * TIB), ()),
        ("b2", 10 * 10**12, ()),
        ("gcs", 5 * TIB, ()),
    ],
)
def test_policy_check_size_at_each_largest_object(
    capsys: pytest.CaptureFixture[str], kind: str, largest: int, options: tuple[str, ...]
) -> None:
    assert _check(capsys, kind, largest, *options) == (0, "f.bin: syncs")
    code, line = _check(capsys, kind, largest + 1, *options)
    assert code == 1 and line.startswith("f.bin: skipped: ") and "the file is larger than" in line, line
    assert f"({largest + 1:,} bytes)" in line


def test_policy_check_swift_has_no_largest_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(capsys, "swift", 100 * TIB) == (0, "f.bin: syncs")
