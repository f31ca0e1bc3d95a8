"""A scheme's settings: the keys of its ``[[sources]]`` table, declared once as the fields of
one frozen dataclass per scheme, each with its one default.

``setting(...)`` adds what the config loader needs beyond a default (a check, a secret, a
required value); ``declared_settings`` reads the declarations back for the loader, which
reports every problem with the file, source and field. The settings that several schemes
share (``accept_cookies``, ``public_origin``) are declared here, once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sidecar.core.urls import Url, is_origin
from sidecar.errors import SchemeError

SettingKind = type[str] | type[int] | type[bool]
SettingCheck = Callable[[Any], "str | None"]
_CHECK, _SECRET, _KIND, _REQUIRED = "check", "secret", "kind", "required"


def setting(
    default: Any,
    *,
    check: SettingCheck | None = None,
    secret: bool = False,
    required: bool = False,
    kind: SettingKind | None = None,
) -> Any:
    """A field of a scheme's settings dataclass, with what the config loader needs beyond
    its one default: ``check`` returns what is wrong with a value of the right type (None
    when it is fine); a ``secret`` (a string) may also be given as ``<name>_file`` or
    ``<name>_env``, like a key's secret, and is never shown; ``required`` settings have no
    usable default; ``kind`` is the value's type where the default (None) cannot say it."""
    metadata = {_CHECK: check, _SECRET: secret, _REQUIRED: required, _KIND: kind}
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Setting:
    """A scheme-specific key of the ``[[sources]]`` table, as the config loader reads it
    (derived from the settings dataclass: see ``setting``)."""

    name: str
    kind: SettingKind
    check: SettingCheck | None = None
    secret: bool = False
    required: bool = False


def declared_settings(settings_type: type[Any]) -> tuple[Setting, ...]:
    """The settings a scheme's settings dataclass declares, in field order (read once per
    type: a config of thousands of sources asks for each source's)."""
    declared = _DECLARED.get(settings_type)
    if declared is None:
        declared = _DECLARED[settings_type] = tuple(
            Setting(entry.name, _kind(entry), entry.metadata.get(_CHECK),
                    bool(entry.metadata.get(_SECRET)), bool(entry.metadata.get(_REQUIRED)))
            for entry in dataclasses.fields(settings_type)
        )  # fmt: skip
    return declared


_DECLARED: dict[type[Any], tuple[Setting, ...]] = {}


def _kind(entry: dataclasses.Field[Any]) -> SettingKind:
    kind = entry.metadata.get(_KIND) or type(entry.default)
    if kind not in (str, int, bool):
        raise TypeError(f"setting '{entry.name}': give its kind (str, int or bool)")
    return cast(SettingKind, kind)


@dataclass(frozen=True, slots=True)
class NoSettings:
    """The settings of a scheme that has none of its own."""


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """``accept_cookies``: the grant may also arrive in the scheme's cookies
    (docs/cookies.md). Schemes with a cookie form derive their settings from this."""

    accept_cookies: bool = False


def _origin_problem(value: str) -> str | None:
    return None if is_origin(value) else "must be http(s)://host[:port]"


@dataclass(frozen=True, slots=True)
class OriginSettings(CookieSettings):
    """For formats whose signed text begins with the URL's origin (CloudFront's Resource,
    Google's full URL): ``public_origin`` is how the URLs clients are given begin."""

    public_origin: str = setting("", check=_origin_problem, required=True)

    def absolute(self, url: Url) -> str:
        """A URL to sign as the full URL its signature covers: one given with an origin
        must name this one; one given as a path gets it."""
        origin = self.public_origin
        if url.origin and url.origin != origin:
            raise SchemeError(f"URL must start with the source's public_origin {origin}")
        return origin + url.uri
