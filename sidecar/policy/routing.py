"""Which source a request belongs to: longest ``path_prefix`` on segment boundaries.

Routing runs on the *decoded canonical* path, the same one nginx serves, so no raw
spelling of a path can reach a source other than the one owning that file.

A host decides routing only where the config names it. A host no source names may be
one the proxy never routed on: nginx's default server answers every unknown name with
its own files, and its ``$host`` is then whatever the client sent. Such a request must
not walk past a prefix some source holds for its hosts to a source the host does not
choose (a host-less one with signing off, say), so it is denied there
(docs/security.md, "Hosts").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sidecar.policy.settings import SourceSettings


class Router:
    def __init__(self, sources: Iterable[SourceSettings]) -> None:
        # Per prefix: the sources bound to hosts, by host (one dictionary lookup, however
        # many tenants share a prefix on their own domains), and the host-less one, which
        # a host-bound source beats. The loader refuses two sources on one host and prefix;
        # were there two, the first would win.
        self._by_prefix: dict[str, tuple[dict[str, SourceSettings], SourceSettings | None]] = {}
        for source in sources:
            prefix = source.path_prefix.rstrip("/")
            by_host, hostless = self._by_prefix.get(prefix, ({}, None))
            if source.hosts is None:
                hostless = hostless or source
            for host in source.hosts or ():
                by_host.setdefault(host, source)
            self._by_prefix[prefix] = (by_host, hostless)
        self._named_hosts = frozenset(
            host for by_host, _ in self._by_prefix.values() for host in by_host
        )

    def route(self, host: str | None, path: str) -> SourceSettings | None:
        candidate = path
        while True:
            entry = self._by_prefix.get(candidate)
            if entry is not None:
                by_host, hostless = entry
                if by_host and host not in self._named_hosts:
                    return None  # the routed host is unknown: whose files these are is too
                source = by_host.get(host) if host is not None else None
                if source is not None or hostless is not None:
                    return source or hostless
            if not candidate:
                return None
            candidate = candidate[: candidate.rfind("/")]


def hostless_beside_hosts(sources: Sequence[SourceSettings]) -> list[SourceSettings]:
    """Sources without ``hosts`` on a prefix that others hold for their hosts: a host the
    config does not name gets ``no_source`` there, so such a source rules only the named
    hosts the others do not take (``check-config`` says so)."""
    bound = {source.path_prefix.rstrip("/") for source in sources if source.hosts is not None}
    return [
        source
        for source in sources
        if source.hosts is None and source.path_prefix.rstrip("/") in bound
    ]
