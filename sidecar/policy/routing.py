"""Which source a request belongs to: longest ``path_prefix`` on segment boundaries.

Routing runs on the *decoded canonical* path, the same one nginx serves, so no raw
spelling of a path can reach a source other than the one owning that file.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidecar.policy.settings import SourceSettings


class Router:
    def __init__(self, sources: Iterable[SourceSettings]) -> None:
        table: dict[str, list[SourceSettings]] = {}
        for source in sources:
            table.setdefault(source.path_prefix.rstrip("/"), []).append(source)
        # For one prefix, a source bound to the request's host beats a host-less one.
        self._by_prefix = {
            prefix: tuple(sorted(entries, key=lambda s: s.hosts is None))
            for prefix, entries in table.items()
        }

    def route(self, host: str | None, path: str) -> SourceSettings | None:
        candidate = path
        while True:
            for source in self._by_prefix.get(candidate, ()):
                if source.hosts is None or host in source.hosts:
                    return source
            if not candidate:
                return None
            candidate = candidate[: candidate.rfind("/")]
