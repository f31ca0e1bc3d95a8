"""``sidecar.toml`` text built from its parts: sources, teams, ``[server]`` and
``[signing]``, with every value spelled as a TOML literal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from tests.support.tokens import BOOKS_TOKEN

# The smallest working config: one md5-token source, its token in the file.
ONE_SOURCE_CONFIG = f"""
[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
  [[sources.keys]]
  id = "k1"
  secret = "{BOOKS_TOKEN}"
"""

TomlValue: TypeAlias = str | int | bool | Sequence[str]


def toml_value(value: TomlValue) -> str:
    """A TOML literal: JSON's string escapes are TOML's basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return json.dumps(value)
    return "[" + ", ".join(json.dumps(item) for item in value) + "]"


def toml_fields(fields: Mapping[str, TomlValue], indent: str = "") -> str:
    return "".join(f"{indent}{name} = {toml_value(value)}\n" for name, value in fields.items())


def source_toml(
    name: str,
    scheme: str,
    prefix: str,
    keys: Mapping[str, Mapping[str, TomlValue]] | None = None,
    **fields: TomlValue,
) -> str:
    """One ``[[sources]]`` table: its fields in the order given, then a ``[[sources.keys]]``
    table per key id (newest first: the first key signs)."""
    text = "[[sources]]\n"
    text += toml_fields({"name": name, "scheme": scheme, "path_prefix": prefix, **fields})
    for key_id, key_fields in (keys or {}).items():
        text += "  [[sources.keys]]\n" + toml_fields({"id": key_id, **key_fields}, "  ")
    return text + "\n"


def md5_source(
    name: str, prefix: str, keys: Mapping[str, str] | None = None, **fields: TomlValue
) -> str:
    """An ``md5-token`` source; ``keys`` maps each key id to its secret."""
    secrets = {key_id: {"secret": token} for key_id, token in (keys or {}).items()}
    return source_toml(name, "md5-token", prefix, secrets, **fields)


def cloudfront_source(
    name: str,
    prefix: str,
    keys: Mapping[str, str | tuple[str, str]],
    *,
    public_origin: str,
    **fields: TomlValue,
) -> str:
    """A ``cloudfront`` source; ``keys`` maps each Key-Pair-Id to its public key file, or to
    (public key file, private key file) for a key that also signs."""
    files: dict[str, dict[str, TomlValue]] = {}
    for key_id, paths in keys.items():
        public, private = (paths, None) if isinstance(paths, str) else paths
        files[key_id] = {"public_key_file": public}
        if private is not None:
            files[key_id]["private_key_file"] = private
    return source_toml(name, "cloudfront", prefix, files, public_origin=public_origin, **fields)


def team_toml(team: str, source: str, *api_keys: str) -> str:
    """A ``[[teams]]`` table: the team's source and the SHA-256 of each of its API keys."""
    digests = [hashlib.sha256(key.encode()).hexdigest() for key in api_keys]
    return "[[teams]]\n" + toml_fields({"id": team, "source": source, "api_key_sha256": digests})


def sidecar_config(
    *sources: str,
    server: Mapping[str, TomlValue] | None = None,
    signing: Mapping[str, TomlValue] | None = None,
    teams: Sequence[str] = (),
) -> str:
    """A whole ``sidecar.toml``: ``[server]`` and ``[signing]`` when given (an empty mapping
    still writes the table: ``[signing]`` alone turns the signing API on), the sources,
    then the teams."""
    text = ""
    if server is not None:
        text += "[server]\n" + toml_fields(server) + "\n"
    if signing is not None:
        text += "[signing]\n" + toml_fields(signing) + "\n"
    return text + "".join(sources) + "\n".join(teams)
