"""What the listeners share: the swappable policy, the metrics, the log, and the one
function that turns a verify request into a decision (extract, decide, record, log).

The verify answer is 200, 401 or 403 and nothing else (nginx turns any other status
into a 500), with no body, and never echoes the URI, a key or an expected signature.
The aiohttp listeners (signing API, console) find the state under ``STATE``.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry

from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Decider, Decision, Outcome, RequestFacts
from sidecar.policy.proxies import EXTRACTORS, REQUIRED_HEADERS
from sidecar.policy.revocations import RevokedView
from sidecar.policy.settings import Settings
from sidecar.runtime.endpoints import HEALTHZ, PLAIN_HEADERS, health
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.metrics import Metrics
from sidecar.runtime.offload import Offload

if TYPE_CHECKING:
    from sidecar.runtime.uses import UseCounter

T = TypeVar("T")
PROFILE_WARNING_INTERVAL = 60.0  # seconds between two proxy_headers_missing log lines
SCRAPE_SHARE = 0.05  # of the time, at most, spent rendering /metrics
SCRAPE_PAUSE_LIMIT = 2.0  # seconds: a scrape never waits longer (Prometheus times out at 10)
_ALLOW: Final = Outcome.ALLOW  # a C static once compiled (an enum member costs ~90 ns)


@dataclass
class State:
    """Shared by every listener of a process; ``decider`` is swapped whole on reload."""

    decider: Decider
    metrics: Metrics
    log: JsonLog = field(default_factory=JsonLog)
    ready: bool = True
    offload: Offload | None = None  # CPU-heavy work goes here, never on the verify loop
    # [state]: the revocations in force (kept current by runtime/revocation_sync.py) and
    # the use counter of max_uses sources (runtime/uses.py). None without [state].
    revocations: RevokedView | None = None
    uses: UseCounter | None = None
    _profile_warned: float = field(default=float("-inf"), repr=False)
    _scrapes: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _next_scrape: float = field(default=float("-inf"), repr=False)

    async def scrape(self, *, gzipped: bool = False) -> bytes:
        """The metrics text, rendered in the offload pool, one scrape at a time and at most
        ``SCRAPE_SHARE`` of the time: an offload thread still takes the GIL from the verify
        loop while it computes, so scrapes back to back wait their turn (each answer
        still shows every count made before it was asked for). ``gzipped`` (Prometheus
        asks for it): a tenth of the bytes, compressed by zlib without the GIL."""
        async with self._scrapes:
            wait = self._next_scrape - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            started = time.monotonic()
            body = await self.off_loop(self._exposition, gzipped)
            took = time.monotonic() - started
            self._next_scrape = time.monotonic() + min(
                SCRAPE_PAUSE_LIMIT, took * (1 - SCRAPE_SHARE) / SCRAPE_SHARE
            )
            return body

    def _exposition(self, gzipped: bool) -> bytes:
        text = self.metrics.exposition()
        return gzip.compress(text, compresslevel=1, mtime=0) if gzipped else text

    async def off_loop(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function`` in the offload pool (inline only where there is none: tools)."""
        if self.offload is None:
            return function(*args)
        return await self.offload.run(function, *args)

    def swap_decider(self, decider: Decider) -> None:
        """Serve ``decider`` from the next request on (its metrics already initialised)."""
        decider.revocations = self.revocations
        self.decider = decider  # one reference assignment: atomic for requests

    def set_revocations(self, view: RevokedView) -> None:
        """Deny what ``view`` revokes from the next request on."""
        self.revocations = view
        self.decider.revocations = view

    def verify(self, method: str, raw_path: str, headers: dict[str, str]) -> Decision:
        decider = self.decider
        facts = EXTRACTORS[decider.settings.server.proxy](method, raw_path, headers)
        started = time.perf_counter()
        decision = decider.decide(facts, time.time())
        if decision.counted is not None:
            return decision  # recorded once counted (verify_counted)
        self.metrics.record(decision, time.perf_counter() - started)
        if decision.outcome is not _ALLOW:
            _log_denial(self.log, decision, facts, headers.get("X-Request-ID"))
            if facts.uri is None:
                self._missing_profile_headers(decider.settings.server.proxy, headers)
        return decision

    async def verify_counted(
        self, decision: Decision, method: str, raw_path: str, headers: dict[str, str]
    ) -> Decision:
        """A counted allow (``max_uses``) made final by the store, recorded and logged as
        ``verify`` records the others."""
        started = time.perf_counter()
        facts = EXTRACTORS[self.decider.settings.server.proxy](method, raw_path, headers)
        if self.uses is None:  # [state] removed by a reload while this request waited
            source = decision.source
            assert source is not None
            final = Decision(source.deny_status, Reason.UNAVAILABLE, Outcome.DENY, source)
        else:
            final = await self.uses.count(decision, facts.client_ip)
        self.metrics.record(final, time.perf_counter() - started)
        if final.outcome is not Outcome.ALLOW:
            _log_denial(self.log, final, facts, headers.get("X-Request-ID"))
        return final

    def _missing_profile_headers(self, proxy: str, headers: dict[str, str]) -> None:
        """A request without the active profile's headers is a misconfigured proxy, not a
        bad signature: counted, and logged once a minute with what was expected."""
        missing = [name for name in REQUIRED_HEADERS[proxy] if name not in headers]
        if not missing:
            return
        self.metrics.profile_headers_missing.inc()
        now = time.monotonic()
        if now - self._profile_warned >= PROFILE_WARNING_INTERVAL:
            self._profile_warned = now
            self.log.event(
                "proxy_headers_missing",
                proxy=proxy,
                expected=list(REQUIRED_HEADERS[proxy]),
                missing=missing,
                hint="[server] proxy names which proxy sends the request's facts; "
                "check it matches the proxy in front (nginx, ingress-nginx, traefik, envoy, "
                "caddy, haproxy)",
            )


def create_state(
    settings: Settings, *, registry: CollectorRegistry, log: JsonLog, offload: Offload | None = None
) -> State:
    metrics = Metrics(registry)
    metrics.initialise(settings)
    return State(Decider(settings), metrics, log, offload=offload)


def _log_denial(
    log: JsonLog, decision: Decision, facts: RequestFacts, request_id: str | None
) -> None:
    # The path before "?" identifies the file; the query (which holds the signature) is
    # never logged.
    path = (facts.uri or "").partition("?")[0][:256]
    log.denial(
        request_id=(request_id or "")[:64],
        source=decision.source.name if decision.source else NO_SOURCE,
        result=decision.reason.value,
        decision=decision.outcome.value,
        method=(facts.method or "")[:16],
        path=path,
    )


STATE = web.AppKey("state", State)


async def healthz(request: web.Request) -> web.Response:
    """``/healthz`` on the aiohttp listeners (the signing API), answered as the verify
    and metrics listeners answer it (``endpoints.health``)."""
    status, body = health(HEALTHZ, request.app[STATE].ready) or (500, b"")
    return web.Response(status=status, body=body, headers=dict(PLAIN_HEADERS))


async def without_banner(request: web.Request, response: web.StreamResponse) -> None:
    """No ``Server: Python/… aiohttp/…``: versions tell a scanner what to try."""
    response.headers.popall("Server", None)
