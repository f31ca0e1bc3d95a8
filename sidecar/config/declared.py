"""A source as its file declares it, read before the config can load: ``sidecar token
new`` makes the very key files a config names, so it cannot wait for them to exist.

Only the source's ``scheme`` and its keys' file names are read (from the main file or
the file including it); nothing is validated beyond what finding them needs.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sidecar.config.fields import Problems, Table
from sidecar.config.includes import Part, included_parts
from sidecar.config.trust import KeyPlaces
from sidecar.errors import ConfigError, UsageError


@dataclass(frozen=True)
class DeclaredKey:
    """A key's files, resolved against the folder of the file naming them."""

    id: str
    public_key_file: str | None
    private_key_file: str | None


@dataclass(frozen=True)
class DeclaredSource:
    scheme: str
    keys: tuple[DeclaredKey, ...]


def declared_source(path: str, name: str) -> DeclaredSource:
    """The source ``name`` as the config at ``path`` (or a file it includes) declares it."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError([f"{path}: cannot read the config ({error})"]) from None
    folder = Path(path).resolve().parent
    problems = Problems(path)  # the includes' own problems are check-config's to report
    root = Table(data, "(top level)", problems)
    for part in [Part(root, KeyPlaces(folder), included=False),
                 *included_parts(root, folder, problems)]:  # fmt: skip
        for raw in part.list("sources"):
            if isinstance(raw, dict) and raw.get("name") == name:
                return _declared(raw, part)
    raise UsageError(f"--source: {path} has no source named '{name}'")


def _declared(raw: dict[str, object], part: Part) -> DeclaredSource:
    keys = raw.get("keys")
    found = (
        [_key(key, part) for key in keys if isinstance(key, dict)] if isinstance(keys, list) else []
    )
    return DeclaredSource(str(raw.get("scheme", "")), tuple(found))


def _key(raw: dict[str, object], part: Part) -> DeclaredKey:
    return DeclaredKey(
        str(raw.get("id", "")),
        _path(raw.get("public_key_file"), part),
        _path(raw.get("private_key_file"), part),
    )


def _path(value: object, part: Part) -> str | None:
    """The file a key field names, when it may be read from there (an included file's key
    files stay in its folder, as they do when the config loads)."""
    if not isinstance(value, str) or not value:
        return None
    path = os.path.join(part.places.folder, value)
    problem = part.places.file_problem(path)
    if problem is not None:
        raise ConfigError([f"{part.root.problems.file}: {problem}"])
    return path


def key_pair_files(source: DeclaredSource | None, out: str | None) -> tuple[str, str]:
    """Where a new key pair goes (private, public): the files the config names for the one
    key whose files do not exist yet, ``--out`` taking the private key's place
    when given; with nothing named, ``--out`` and ``--out.pub.pem``."""
    keys = source.keys if source is not None else ()
    if out is not None:
        named = [k for k in keys if k.private_key_file and _same(k.private_key_file, out)]
        if named:
            return out, named[0].public_key_file or out + ".pub.pem"
    unmade = [k for k in keys if k.public_key_file and not _exist(k)]
    if len(unmade) > 1:
        ids = ", ".join(f"'{key.id}'" for key in unmade)
        raise UsageError(f"--source: keys {ids} name files that do not exist yet: "
                         "give --out naming one's private_key_file")  # fmt: skip
    if unmade:
        return _for_unmade(unmade[0], out)
    if out is None:
        raise UsageError(
            "a key pair needs --out FILE (the private key; FILE.pub.pem gets the public)"
        )
    return out, out + ".pub.pem"


def _for_unmade(key: DeclaredKey, out: str | None) -> tuple[str, str]:
    assert key.public_key_file is not None  # an unmade key names its public key file
    if key.private_key_file is None and out is None:
        raise UsageError(
            f"--out: key '{key.id}' names no private_key_file: give --out FILE for the "
            f"private key (the public key goes to {key.public_key_file})"
        )
    if key.private_key_file is not None and out is not None:
        raise UsageError(f"--out: key '{key.id}' names {key.private_key_file} for its "
                         "private key: give that path, or no --out")  # fmt: skip
    return out or key.private_key_file or "", key.public_key_file


def _exist(key: DeclaredKey) -> bool:
    """Whether every file the key names exists (one missing: the key is yet to be made)."""
    named = (key.public_key_file, key.private_key_file)
    return all(os.path.lexists(path) for path in named if path is not None)


def _same(one: str, other: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)
