"""Properties of every verdict, on generated paths: never a crash, and whatever syncs comes back by name."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.policy import PathPolicy

from .helpers import ALL_CONNECTIONS

POLICIES = [PathPolicy(kind, options) for kind, options in ALL_CONNECTIONS]
POLICIES_ENCODING = [PathPolicy(kind, {**options, "encode_names": "true"}) for kind, options in ALL_CONNECTIONS]

names = st.text(alphabet=st.sampled_from("ab. _-:?#~*<>|%+[]{}\"'\\é‛：．"), min_size=1, max_size=8)
paths = st.lists(names, min_size=1, max_size=4).map("/".join)


@settings(max_examples=150, deadline=None)
@given(paths, st.booleans(), st.integers(min_value=0, max_value=2**45), st.floats(0, 2**31))
def test_whatever_syncs_comes_back_under_its_own_name(path: str, is_dir: bool, size: int, mtime: float) -> None:
    for policy in POLICIES + POLICIES_ENCODING:
        verdict = policy.check(path, is_dir, size, mtime=mtime)
        assert verdict.action in ("sync", "rename", "skip")
        if verdict.action == "skip":
            assert verdict.reason
            continue
        remote = verdict.remote_name if verdict.action == "rename" else path
        assert remote is not None
        assert policy.local_name(remote) == path
        # and the stored name passes the same rules again: the next pass sees no new problem
        again = policy.check(policy.local_name(remote), is_dir, size, mtime=mtime)
        assert again == verdict
