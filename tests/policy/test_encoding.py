"""Beyond the spec: `encode_names=true` stores characters a service refuses as look-alikes and brings the
original names back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.policy import PathPolicy
from engine.policy.encoding import QUOTE, NameEncoder

ON = {"encode_names": "true"}


def test_refused_characters_are_stored_as_full_width_look_alikes() -> None:
    policy = PathPolicy("onedrive", ON)
    got = policy.check('a:b*c?"<>|.txt', False, 1)
    assert (got.action, got.remote_name) == ("rename", "a：b＊c？＂＜＞｜.txt")
    assert "encode_names" in got.reason
    assert policy.local_name("a：b＊c？＂＜＞｜.txt") == 'a:b*c?"<>|.txt'


def test_only_the_services_refused_characters_are_encoded() -> None:
    gcs = PathPolicy("gcs", ON)
    assert gcs.check("a#b[1].txt", False, 1).remote_name == "a＃b［1］.txt"
    assert gcs.check("a<b>.txt", False, 1).action == "sync"  # GCS takes "<" and ">"
    # the general rule's ":" and "\" are encoded on every service
    assert PathPolicy("local", ON).check("10:30.txt", False, 1).remote_name == "10：30.txt"


def test_leading_characters() -> None:
    onedrive = PathPolicy("onedrive", ON)
    assert onedrive.check(" notes.txt", False, 1).remote_name == "␠notes.txt"
    assert onedrive.check("notes .txt", False, 1).action == "sync"
    assert onedrive.local_name("␠notes.txt") == " notes.txt"
    baidu = PathPolicy("baidu", ON)
    assert baidu.check(".profile", False, 1).remote_name == "．profile"
    assert baidu.check(".config", True).action == "sync"  # Baidu takes folders starting with "."
    assert baidu.local_name("．profile") == ".profile"
    dropbox = PathPolicy("dropbox", ON)
    assert dropbox.check(".bashrc", False, 1).action == "sync"  # only the refused prefixes
    assert dropbox.check(".cache-x", False, 1).remote_name == "．cache-x"


def test_look_alikes_already_in_a_local_name_survive() -> None:
    policy = PathPolicy("onedrive", ON)
    for name in ["a：b.txt", "x‛y", "‛：", "trail‛"]:
        remote = policy.check(name, False, 1).remote_name or name
        assert policy.local_name(remote) == name
    assert policy.check("a：b.txt", False, 1).remote_name == f"a{QUOTE}：b.txt"


def test_what_encoding_cannot_fix_is_still_skipped() -> None:
    assert PathPolicy("sharepoint", ON).check("forms", True).action == "skip"
    assert PathPolicy("b2", ON).check(".bzEmpty", False, 1).action == "skip"
    assert PathPolicy("baidu", ON).check("app.cache", False, 1).action == "skip"
    assert PathPolicy("local", ON).check(".DS_Store", False, 1).action == "skip"


def test_off_by_default_and_no_decoding_when_off() -> None:
    assert PathPolicy("onedrive").check("a:b.txt", False, 1).action == "skip"
    assert PathPolicy("onedrive").local_name("a：b.txt") == "a：b.txt"
    assert PathPolicy("onedrive", {"encode_names": "false"}).check("a*b", False, 1).action == "skip"


def test_bad_option_value() -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="encode_names"):
        PathPolicy("onedrive", {"encode_names": "maybe"})


def test_encoding_and_tail_rename_together() -> None:
    policy = PathPolicy("onedrive-business", ON)
    got = policy.check("what?.", False, 1, mtime=0.0)
    assert got.remote_name == "what？.._DiskStation_19700101-000000_TailCharacterConflict"
    assert policy.local_name(got.remote_name) == "what?."


SPECIALS = ':*?"<>|\\#[]{}^%`~+ .‛：＊？＃．␠'


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(SPECIALS + "ab"), min_size=1, max_size=12), st.booleans())
def test_encode_then_decode_is_the_identity(name: str, is_file: bool) -> None:
    enc = NameEncoder(':*?"<>|\\#[]', (" ", ".cache", "."))
    assert enc.decode(enc.encode(name, is_file)) == name


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(SPECIALS + "ab"), min_size=1, max_size=12))
def test_every_service_round_trips_what_it_syncs(name: str) -> None:
    for kind in ("onedrive", "gcs", "baidu", "cos", "s3", "jdcloud", "megadisk"):
        policy = PathPolicy(kind, ON)
        got = policy.check(name, False, 1, mtime=0.0)
        if got.action != "skip":
            assert policy.local_name(got.remote_name or name) == name
