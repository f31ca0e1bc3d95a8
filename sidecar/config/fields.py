"""Reading TOML tables field by field: type checks, ranges, and every problem collected.

The building blocks of ``sidecar.config``: a problem names the file, the place and the
field, never a value (values may be secrets).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sidecar.policy.settings import Address, FileMark

T = TypeVar("T")

WORLD_WRITABLE = "is world-writable: anyone on this machine could change it (chmod o-w)"

# Names of sources, keys and teams: they become metric labels and log fields.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "letters, digits, '_', '.', '-' only"


@dataclass
class Problems:
    """What one load collects: every problem, every warning (weak but working settings),
    and every file it read (to watch them)."""

    file: str
    items: list[str] = field(default_factory=list)
    files_read: list[tuple[str, FileMark | None]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.file}: {where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{self.file}: {where}: {message}")

    def in_file(self, file: str) -> Problems:
        """The same collection, its messages naming ``file`` (an included file)."""
        return Problems(file, self.items, self.files_read, self.warnings)


@dataclass
class Table:
    """A TOML table read field by field, type-checked, unknown names reported."""

    data: dict[str, Any]
    where: str
    problems: Problems

    def check_names(self, allowed: set[str]) -> None:
        for name in sorted(set(self.data) - allowed):
            self.problems.add(self.where, f"unknown field '{name}'")

    def get(self, name: str, kind: type[T], default: T | None = None) -> T | None:
        value = self.data.get(name)
        if value is None:
            return default
        # bool is an int in Python; a config "workers = true" is still a type error.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problems.add(f"{self.where}.{name}", f"must be a {kind.__name__}")
            return default
        return value

    def require(self, name: str, kind: type[T]) -> T | None:
        if name not in self.data:
            self.problems.add(f"{self.where}.{name}", "is required")
            return None
        return self.get(name, kind)

    def check(self, name: str, ok: bool, message: str) -> bool:
        if not ok:
            self.problems.add(f"{self.where}.{name}", message)
        return ok


def ranged(table: Table, name: str, default: int, low: int, high: int) -> int:
    """An integer field within [low, high]; out of range is a problem (0 included)."""
    value = table.get(name, int)
    if value is None:
        return default
    return value if table.check(name, low <= value <= high, f"must be {low}..{high}") else default


def address(table: Table, name: str, default: str | None) -> Address | None:
    text = table.get(name, str, default)
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        table.check(name, False, f"'{text}' is not host:port")
        return None
    return Address(host, int(port))


def world_writable(status: os.stat_result) -> bool:
    """Config and key files are refused as ssh refuses them. Group-writable is accepted:
    the group is one the operator chose (Kubernetes' fsGroup makes mounted files
    group-owned on purpose)."""
    return stat.S_ISREG(status.st_mode) and bool(status.st_mode & stat.S_IWOTH)


def file_mark(path: str | os.PathLike[str]) -> FileMark | None:
    """What identifies a file's content cheaply; ``os.stat`` follows symlinks, so a
    Kubernetes Secret update (a symlink swapped to a new inode) shows as a change."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)


def read_file(table: Table, name: str, path: str) -> bytes | None:
    # Marked *before* reading: a change made while the config loads is seen by the next
    # check instead of being taken for what was read. (Plain strings, not Path: 10,000
    # key files are read on every load.)
    table.problems.files_read.append((path, file_mark(path)))
    try:
        with open(path, "rb") as file:
            # Of the file opened (a symlink's target), so a swap cannot slip between.
            if world_writable(os.fstat(file.fileno())):
                table.check(name, False, f"{path} {WORLD_WRITABLE}")
                return None
            return file.read()
    except OSError as error:
        table.check(name, False, f"cannot read {path} ({error.strerror})")
        return None
