"""The aiohttp service: ``/verify`` for nginx, ``/healthz``, ``/readyz`` and ``/metrics``.

Handlers only read headers, call the pure core, record and answer. The verify path
answers 200, 401 or 403 and nothing else (nginx turns any other status into a 500),
with no body, and never echoes the URI, a key or an expected signature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sidecar.decide import Decision, Outcome, Policy, RequestFacts
from sidecar.logs import JsonLog
from sidecar.metrics import NO_SOURCE, Metrics
from sidecar.proxies import EXTRACTORS, VERIFY_PATH
from sidecar.settings import Settings

# nginx accepts request lines up to 8 KB; the X-Original-URI carrying one must still be
# answered (aiohttp's default 8190-byte field limit would turn it into a 400, a 500).
MAX_FIELD_SIZE = 16384
RESULT_HEADER = "X-Signature-Result"
_NO_CACHE = {"X-Accel-Expires": "0", "Cache-Control": "no-store"}


@dataclass
class State:
    """What a running service shares between handlers; ``policy`` is swapped on reload."""

    policy: Policy
    metrics: Metrics
    log: JsonLog = field(default_factory=JsonLog)
    ready: bool = True

    def swap(self, settings: Settings) -> None:
        self.metrics.initialise(settings)
        self.policy = Policy(settings)  # one reference assignment: atomic for handlers


STATE = web.AppKey("state", State)


def answer_headers(decision: Decision) -> dict[str, str]:
    headers = {RESULT_HEADER: decision.reason.value}
    if decision.cache_ttl > 0:
        headers["X-Accel-Expires"] = str(decision.cache_ttl)
        headers["Cache-Control"] = f"private, max-age={decision.cache_ttl}"
    else:
        headers.update(_NO_CACHE)
    return headers


async def verify(request: web.Request) -> web.Response:
    state = request.app[STATE]
    extract = EXTRACTORS[state.policy.settings.server.proxy]
    facts = extract(request.method, request.raw_path, request.headers)
    started = time.perf_counter()
    decision = state.policy.decide(facts, time.time())
    state.metrics.record(decision, time.perf_counter() - started)
    if decision.outcome is not Outcome.ALLOW:
        _log_denial(state.log, decision, facts, request.headers.get("X-Request-ID"))
    return web.Response(status=decision.status, headers=answer_headers(decision))


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


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    ready = request.app[STATE].ready
    return web.Response(status=200 if ready else 503, text="ready\n" if ready else "not ready\n")


async def metrics(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry,
    with_metrics: bool = True,
    log: JsonLog | None = None,
) -> web.Application:
    metric_set = Metrics(registry)
    metric_set.initialise(settings)
    app = web.Application()
    app[STATE] = State(Policy(settings), metric_set, log or JsonLog())
    app.router.add_route("*", VERIFY_PATH, verify)
    app.router.add_route("*", VERIFY_PATH + "/{original:.*}", verify)  # the envoy profile
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if with_metrics:
        app.router.add_get("/metrics", metrics)
    return app


def create_metrics_app(state: State) -> web.Application:
    """The metrics listener, when ``metrics_listen`` differs from ``listen``."""
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app
