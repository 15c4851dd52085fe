"""Every option of every registered provider carries the words the wizard shows (a human label, not the option's
raw name) and a help text; the CLI keeps the option names. Walking the registry means a provider added later
cannot ship a form of bare `access_key_id`s."""

from __future__ import annotations

import pytest

from engine.providers import kinds, provider_class
from engine.providers.base import OptionSpec


def _specs() -> list[tuple[str, OptionSpec]]:
    return [(kind, spec) for kind in kinds() for spec in provider_class(kind).option_specs]


def test_the_registry_is_walked() -> None:
    # the walk below must not pass by finding nothing
    assert {"s3", "local", "webdav", "gdrive"} <= set(kinds())
    assert len(_specs()) > 50


@pytest.mark.parametrize(("kind", "spec"), _specs(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_every_option_has_a_human_label_and_a_help_text(kind: str, spec: OptionSpec) -> None:
    assert spec.label, f"{kind}: {spec.name} has no label"
    assert spec.title == spec.label
    assert spec.label != spec.name and "_" not in spec.label, f"{kind}: label of {spec.name} is its raw name"
    assert spec.label[0].isupper(), f"{kind}: label '{spec.label}' should start as a sentence does"
    assert spec.help.strip(), f"{kind}: {spec.name} has no help text"
    assert spec.help.strip() != spec.label, f"{kind}: the help of {spec.name} only repeats its label"


def test_the_cli_keeps_option_names() -> None:
    # the label is for the wizard only: a provider's options are still parsed by name
    s3 = {spec.name: spec for spec in provider_class("s3").option_specs}
    assert s3["access_key_id"].title == "Access key ID"
    assert "addressing_style" in s3 and s3["addressing_style"].title != "addressing_style"
