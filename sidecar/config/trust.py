"""The include trust model: what the main file (the operator's) may do and a file it
includes (a tenant's, a team's) may not (docs/configuration.md, "What an included file
may do").

An included file adds sources and the teams that sign for them. It may not reach past
what it adds: read a key file outside its own folder (or the roots the main file
allows), read an environment variable the main file does not list, sign for another
file's source, or shadow a source another file defines (``shadows.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.config.fields import Table

# The main file's own top-level fields: what its included files may reach.
MAIN_FIELDS = {"include_key_roots", "include_key_env"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both already real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class KeyPlaces:
    """Where one file's key fields may read from. The main file: anywhere. An included
    file: its folder and the main file's ``include_key_roots`` (real paths, so neither
    ``..`` nor a symlink leads out), and only the variables ``include_key_env`` lists."""

    folder: Path  # relative key paths resolve against it
    roots: tuple[str, ...] | None = None  # None: anywhere
    env_names: frozenset[str] | None = None  # None: any variable
    # Real paths of the folders key files lie in, for this load only (a Kubernetes update
    # swaps symlinks between loads): 10,000 realpath calls would double the load time.
    _real_folders: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def file_problem(self, path: str) -> str | None:
        if self.roots is None:
            return None
        real = self._real(path)
        if any(inside(real, root) for root in self.roots):
            return None
        return (
            f"{path} lies outside this included file's folder (after resolving '..' and "
            "symlinks): the main file's include_key_roots may allow its folder"
        )

    def _real(self, path: str) -> str:
        """``os.path.realpath(path)``, its folder's part looked up once."""
        head, name = os.path.split(path)
        if name in ("", ".", "..") or os.path.islink(path):
            return os.path.realpath(path)
        real_head = self._real_folders.get(head)
        if real_head is None:
            real_head = self._real_folders[head] = os.path.realpath(head)
        return os.path.join(real_head, name)

    def env_problem(self, name: str) -> str | None:
        if self.env_names is None or name in self.env_names:
            return None
        return f"'{name}' is not listed in the main file's include_key_env"


@dataclass(frozen=True)
class IncludeAllowances:
    """What the main file lets every included file reach beyond its own folder."""

    roots: tuple[str, ...] = ()
    env_names: frozenset[str] = frozenset()

    def places(self, folder: Path) -> KeyPlaces:
        own = os.path.realpath(folder)
        return KeyPlaces(folder, (own, *self.roots), self.env_names)


def include_allowances(root: Table, folder: Path) -> IncludeAllowances:
    """The main file's ``include_key_roots`` (folders, relative to it) and
    ``include_key_env`` (variable names), each problem reported."""
    roots = root.get("include_key_roots", list, []) or []
    folders = [value for value in roots if isinstance(value, str) and value]
    root.check("include_key_roots", len(folders) == len(roots),
               "must be a list of folders, relative to this file")  # fmt: skip
    names = root.get("include_key_env", list, []) or []
    valid = [name for name in names if isinstance(name, str) and _ENV_NAME.fullmatch(name)]
    root.check("include_key_env", len(valid) == len(names),
               "must be a list of environment variable names")  # fmt: skip
    real = tuple(os.path.realpath(os.path.join(folder, value)) for value in folders)
    return IncludeAllowances(real, frozenset(valid))


def escapes(match: str, base: str) -> bool:
    """An included file that is a symlink resolving outside the folder its include names
    (a Kubernetes mount's ``name -> ..data/name`` stays inside)."""
    return not inside(os.path.realpath(match), os.path.realpath(base))
