"""`connection add`/`edit` refuse a bucket (container) name the service would refuse, before any network call
(issue 18 item 2; spec notes 16 and 22), with every broken rule in one line.

Every connection points at a closed port: a name that got past the check would end in a connection error, not
in the rule. `edit` is tried on a connection to moto, whose request counter must not move.
"""

from __future__ import annotations

import socket

import pytest

from engine.cli import main
from tests.providers.servers import _moto, s3


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


CLOSED = _closed_port()

# kind -> the options besides the bucket (or container), every address at the closed port
OPTIONS = {
    "s3": {"preset": "other", "endpoint": CLOSED, "access_key_id": "k", "secret_access_key": "s"},
    "s3-aws": {"access_key_id": "k", "secret_access_key": "s", "endpoint": CLOSED},
    "s3-hicloud": {"preset": "hicloud", "endpoint": CLOSED, "access_key_id": "k", "secret_access_key": "s"},
    "s3-sfr": {"preset": "sfr", "endpoint": CLOSED, "access_key_id": "k", "secret_access_key": "s"},
    "jdcloud": {"endpoint": CLOSED, "access_key_id": "k", "secret_access_key": "s"},
    "oss": {"endpoint": CLOSED, "access_key_id": "k", "access_key_secret": "s"},
    "cos": {"region": "ap-guangzhou", "endpoint": CLOSED, "secret_id": "k", "secret_key": "s"},
    "b2": {"endpoint": CLOSED, "key_id": "k", "application_key": "s"},
    "swift": {"auth_url": CLOSED + "/auth/v1.0", "user": "u", "key": "s"},
}
S3_FAMILY = ["s3", "s3-aws", "s3-hicloud", "s3-sfr", "oss"]

# (kinds, name, the rules the message must hold): every class of invalid name the spec lists per service
CASES = [
    *[(k, "ab", ["between 3 and 63"]) for k in S3_FAMILY],
    *[(k, "a" * 64, ["between 3 and 63"]) for k in S3_FAMILY],
    *[(k, "-photos", ["must start with a lowercase letter or number"]) for k in S3_FAMILY],
    *[(k, "Photos", ["must start with a lowercase letter or number", "can only contain"]) for k in S3_FAMILY],
    *[(k, "my_photos", ["can only contain lowercase letters, numbers, '.' or '-'"]) for k in S3_FAMILY],
    # every rule broken at once, all of them named in the one line
    *[(k, "_", ["between 3 and 63", "must start with", "can only contain"]) for k in S3_FAMILY],
    ("jdcloud", "ab", ["between 3 and 63"]),
    ("jdcloud", "a" * 64, ["between 3 and 63"]),
    ("jdcloud", "photos-", ["must start and end with a lowercase letter or number"]),
    ("jdcloud", "my.photos", ["can only contain lowercase letters, numbers or '-'"]),
    ("jdcloud", "-M", ["between 3 and 63", "start and end", "can only contain"]),
    ("cos", "a" * 41, ["cannot exceed 40 characters"]),
    ("cos", "my-photos", ["can only contain lowercase letters or numbers"]),
    ("cos", "My_Photos" + "x" * 40 + "-1250000000", ["cannot exceed 40", "only contain lowercase"]),
    ("b2", "abcde", ["between 6 and 50"]),
    ("b2", "a" * 51, ["between 6 and 50"]),
    ("b2", "b2-photos", ["cannot start with 'b2-'"]),
    ("b2", "my.photos", ["can only contain letters, numbers or '-'"]),
    ("b2", "b2-.", ["between 6 and 50", "cannot start with 'b2-'", "can only contain"]),
    ("swift", "a" * 256, ["cannot exceed 255 characters"]),
    ("swift", "photos/2024", ["cannot include '/'"]),
]


def _argv(home: str, *args: str, options: dict[str, str]) -> list[str]:
    argv = ["--home", home, *args]
    for key, value in options.items():
        argv += ["--option", f"{key}={value}"]
    return argv


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(("kind", "name", "rules"), CASES, ids=[f"{c[0]}-{c[1][:12]}" for c in CASES])
def test_connection_add_refuses_the_name_with_every_rule(
    tmp_path, capsys: pytest.CaptureFixture[str], kind: str, name: str, rules: list[str]
) -> None:
    provider = kind.partition("-")[0]
    location = "container" if provider == "swift" else "bucket"
    options = {**OPTIONS[kind], location: name}
    line = _refused(capsys, _argv(str(tmp_path / "home"), "connection", "add", "c", "--provider", provider,
                                  options=options))
    assert "name" in line and "cannot reach" not in line and "network" not in line, line
    for rule in rules:
        assert rule in line, (rule, line)
    assert not (tmp_path / "home" / "config.toml").exists() or "[connections.c]" not in (
        tmp_path / "home" / "config.toml"
    ).read_text()


def test_a_valid_name_gets_as_far_as_the_network(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the same options with a good name fail on the closed port, so the refusals above are the
    rule's, not the address's."""
    line = _refused(capsys, _argv(str(tmp_path / "home"), "connection", "add", "c", "--provider", "s3",
                                  options={**OPTIONS["s3"], "bucket": "photos"}))
    assert "name" not in line and "127.0.0.1" in line, line


def test_connection_edit_refuses_a_bad_name_without_a_request(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "home")
    assert main(_argv(home, "connection", "add", "c", "--provider", "s3",
                      options=s3.options(_moto.new_bucket()))) == 0
    capsys.readouterr()
    _moto.reset_counts()
    line = _refused(capsys, _argv(home, "connection", "edit", "c", options={"bucket": "Holiday_Photos"}))
    assert "must start with a lowercase letter or number" in line and "can only contain" in line, line
    assert _moto.request_counts() == {}
    assert main(["--home", home, "connection", "show", "c", "--json"]) == 0
    assert "Holiday_Photos" not in capsys.readouterr().out
