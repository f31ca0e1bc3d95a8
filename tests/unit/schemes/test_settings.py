"""Scheme settings: one frozen dataclass per scheme, each field its one default, read back
for the config loader (sidecar/schemes/settings.py, docs/architecture.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sidecar import schemes
from sidecar.schemes.akamai import AkamaiSettings
from sidecar.schemes.base import Scheme
from sidecar.schemes.settings import NoSettings, OriginSettings, declared_settings, setting


def scheme(name: str) -> Scheme[Any]:
    found = schemes.get(name)
    assert found is not None, name
    return found


def test_declarations_are_read_from_the_dataclass_fields_in_order() -> None:
    declared = {entry.name: entry for entry in declared_settings(AkamaiSettings)}
    assert list(declared) == [
        "accept_cookies", "algorithm", "token_name", "field_delimiter", "acl_delimiter",
        "escape_early", "salt",
    ]  # fmt: skip
    assert declared["accept_cookies"].kind is bool and declared["algorithm"].kind is str
    assert declared["salt"].kind is str and declared["salt"].secret
    assert not declared["algorithm"].secret and declared["algorithm"].check is not None


def test_a_setting_left_out_takes_its_one_default() -> None:
    built, problems = scheme("akamai").settings_from({"token_name": "t"})
    assert problems == []
    assert built == AkamaiSettings(token_name="t")
    assert built.algorithm == AkamaiSettings().algorithm == "sha256"


def test_every_problem_is_named_by_its_setting_and_never_echoes_the_value() -> None:
    values = {"algorithm": "sha512", "token_name": "bad name!", "salt": ""}
    built, problems = scheme("akamai").settings_from(values)
    assert [name for name, _ in problems] == ["algorithm", "token_name", "salt"]
    assert all("sha512" not in text and "bad name!" not in text for _, text in problems)
    # A value with a problem takes its default, so the scheme's build still runs.
    assert built == AkamaiSettings()


def test_a_required_setting_left_out_is_a_problem() -> None:
    _, problems = scheme("gcdn").settings_from({})
    assert problems == [("public_origin", "required by scheme gcdn")]
    built, problems = scheme("gcdn").settings_from({"public_origin": "https://cdn.example"})
    assert problems == [] and built == OriginSettings(public_origin="https://cdn.example")


def test_a_secret_setting_is_not_in_the_repr() -> None:
    settings = AkamaiSettings(salt="s4lt-value")
    assert "s4lt-value" not in repr(settings)
    assert "algorithm='sha256'" in repr(settings)


@pytest.mark.parametrize("name", schemes.names())
def test_each_scheme_declares_a_frozen_settings_dataclass(name: str) -> None:
    entry = scheme(name)
    assert dataclasses.is_dataclass(entry.settings_type)
    defaults = entry.settings_type()
    first = next((field.name for field in dataclasses.fields(defaults)), "anything")
    # (Python 3.11 raises TypeError for a frozen dataclass with slots and a base class.)
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
        setattr(defaults, first, None)
    # Every default passes its own check: a source that leaves a setting out is valid
    # (a required setting has no usable default: leaving it out is reported instead).
    for declared in entry.settings:
        value = getattr(defaults, declared.name)
        if value is not None and declared.check is not None and not declared.required:
            assert declared.check(value) is None, (name, declared.name)


def test_a_kind_the_default_cannot_say_must_be_given() -> None:
    @dataclasses.dataclass(frozen=True)
    class Unclear:
        limit: int | None = setting(None)

    with pytest.raises(TypeError, match="limit"):
        declared_settings(Unclear)


def test_a_scheme_without_settings_declares_none() -> None:
    assert declared_settings(NoSettings) == ()
    assert scheme("md5-token").settings_from({}) == (scheme("md5-token").settings_type(), [])
