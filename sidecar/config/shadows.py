"""An included file may not shadow a source another file defines.

Routing takes the longest ``path_prefix`` on segment boundaries, and at one prefix a
source bound to the request's host beats a host-less one (``sidecar/policy/routing.py``).
So a source X shadows a source Y, for the requests of a host both can apply to
(host-less: every host), when X's prefix lies under Y's, or when both have one prefix and
X is bound to hosts while Y is not. An included file doing that to another file's source
could open its subtree (``mode = "off"``) or take its URLs. The main file (the operator's)
may nest anywhere, and a file's sources may nest among themselves.

Indexed by prefix, as the router is: each source looks up only its own prefix and its
ancestors (a handful of segments), so 10,000 sources cost 10,000 short walks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sidecar.config.fields import Problems
from sidecar.policy.settings import SourceSettings

Held = tuple[SourceSettings, str]  # a source and the file defining it


@dataclass
class _AtPrefix:
    """The sources of one prefix, the first of each file: host-less, and by host."""

    hostless: dict[str, SourceSettings] = field(default_factory=dict)
    by_host: dict[str, dict[str, SourceSettings]] = field(default_factory=dict)
    hosted: dict[str, SourceSettings] = field(default_factory=dict)  # any host

    def add(self, source: SourceSettings, file: str) -> None:
        if source.hosts is None:
            self.hostless.setdefault(file, source)
            return
        self.hosted.setdefault(file, source)
        for host in source.hosts:
            self.by_host.setdefault(host, {}).setdefault(file, source)


def check_shadowing(sources: list[Held], main_file: str, problems: Problems) -> None:
    """A problem for each included source that shadows another file's source."""
    index: dict[str, _AtPrefix] = {}
    for source, file in sources:
        index.setdefault(_key(source.path_prefix), _AtPrefix()).add(source, file)
    for source, file in sources:
        if file == main_file:
            continue
        found = _shadowed(source, file, index)
        if found is not None:
            shadowed, other = found
            problems.in_file(file).add(
                f"source '{source.name}'.path_prefix",
                f"'{source.path_prefix}' ({_hosts(source)}) would shadow source "
                f"'{shadowed.name}' ('{shadowed.path_prefix}', {_hosts(shadowed)}) of "
                f"{other}: an included file may not take requests from a source another "
                "file defines (the main file may nest it)",
            )


def _shadowed(source: SourceSettings, file: str, index: dict[str, _AtPrefix]) -> Held | None:
    prefix = _key(source.path_prefix)
    same = index[prefix]
    if source.hosts is not None:  # beats a host-less source at its own prefix
        found = _other(same.hostless, file)
        if found is not None:
            return found
    for ancestor in _ancestors(prefix):
        entry = index.get(ancestor)
        if entry is None:
            continue
        hosted = [entry.hosted] if source.hosts is None else [
            entry.by_host.get(host, {}) for host in sorted(source.hosts)
        ]  # fmt: skip
        for candidates in (entry.hostless, *hosted):
            found = _other(candidates, file)
            if found is not None:
                return found
    return None


def _other(by_file: dict[str, SourceSettings], file: str) -> Held | None:
    # At most two steps: the keys are distinct files.
    return next(((source, other) for other, source in by_file.items() if other != file), None)


def _key(prefix: str) -> str:
    return prefix.rstrip("/")  # "/books" and "/books/" are one prefix, "/" is ""


def _ancestors(prefix: str) -> Iterable[str]:
    while prefix:
        prefix = prefix[: prefix.rfind("/")]
        yield prefix


def _hosts(source: SourceSettings) -> str:
    if source.hosts is None:
        return "every host"
    return "hosts " + ", ".join(sorted(source.hosts))
