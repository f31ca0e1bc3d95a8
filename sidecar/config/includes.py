"""The files a config is read from: the main file, and those ``include = [...]`` names
(globs relative to the main file, each match read once, in sorted order). An included file
holds ``[[sources]]`` and ``[[teams]]``; its problems name it; what it may reach is
``trust.py``'s (docs/configuration.md, "include")."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli  # compiled where a wheel exists: 10,000 sources parse 3x faster than tomllib

from sidecar.config.fields import WORLD_WRITABLE, Problems, Table, file_mark, world_writable
from sidecar.config.trust import KeyPlaces, escapes, include_allowances

# An included file holds sources and the teams that sign for them; the rest is the main file's.
INCLUDED_FIELDS = {"sources", "teams"}
_INCLUDE_RULE = "must be a list of file paths or globs, relative to this file"


def read_toml(file: Path, problems: Problems) -> dict[str, Any] | None:
    problems.files_read.append((str(file), file_mark(file)))  # before reading, see read_file
    try:
        with open(file, "rb") as opened:
            # Reported, then still read: every other problem is reported too.
            if world_writable(os.fstat(opened.fileno())):
                problems.items.append(f"{file}: {WORLD_WRITABLE}")
            return tomli.loads(opened.read().decode("utf-8"))
    except OSError as error:
        problems.items.append(f"{file}: cannot read: {error.strerror}")
    except (tomli.TOMLDecodeError, UnicodeDecodeError) as error:
        problems.items.append(f"{file}: not valid TOML: {error}")
    return None


@dataclass(frozen=True)
class Part:
    """The main file or one it includes: its top-level table, and where its key fields
    may read from (its relative paths resolve against ``places.folder``)."""

    root: Table
    places: KeyPlaces
    included: bool

    def list(self, name: str) -> list[Any]:
        return self.root.get(name, list, []) or []


def included_parts(root: Table, folder: Path, problems: Problems) -> list[Part]:
    """The files ``include = [...]`` names, each with the problems it holds naming it."""
    allowances = include_allowances(root, folder)
    patterns = root.get("include", list, []) or []
    found: list[Part] = []
    seen: set[Path] = set()
    for pattern in patterns:
        if not root.check("include", isinstance(pattern, str) and bool(pattern), _INCLUDE_RULE):
            continue
        full = os.path.join(folder, pattern)  # an absolute pattern stays as it is
        # The folder is watched too: a file added to or removed from it is a change.
        watched = Path(full).parent
        while _is_glob(str(watched)):
            watched = watched.parent
        problems.files_read.append((str(watched), file_mark(watched)))
        matches = sorted(Path(match) for match in glob.glob(full) if os.path.isfile(match))
        if not matches:
            if _is_glob(pattern):
                problems.warn("include", f"'{pattern}' matches no file")
            else:
                problems.add("include", f"no file {full}")
        for path in (match for match in matches if match not in seen):
            seen.add(path)
            included = problems.in_file(str(path))
            if escapes(str(path), str(watched)):
                included.items.append(
                    f"{path}: a symlink resolving outside {watched}, the folder its include names"
                )
                continue
            data = read_toml(path, included)
            if data is not None:
                table = Table(data, "(top level)", included)
                table.check_names(INCLUDED_FIELDS)
                found.append(Part(table, allowances.places(path.parent), included=True))
    return found


def _is_glob(text: str) -> bool:
    return any(character in text for character in "*?[")
