"""``[tracing]`` (docs/tracing.md): OpenTelemetry spans for verify, sign and reload,
continuing the W3C ``traceparent`` the proxy sends, exported over OTLP/HTTP.

Imported only when ``[tracing]`` is set (``server.py``): without it nothing here, and
nothing of OpenTelemetry, is loaded, and ``/verify`` runs exactly as before. With it,
the verify listener calls ``Tracing.verify_function``'s function instead of
``State.verify``, bound once at start.

The verify loop only builds the span and hands it to the batch processor, whose queue is
bounded (``MAX_QUEUE``; full, it drops spans) and drained by its own thread: encoding,
sending and a collector that is down or never answers cost that thread, never a request.
A span names the source, scheme, result, decision and key id: never the URL, its query
or signature, nor a header's value but ``traceparent``'s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sidecar import __version__
from sidecar.policy.decide import NO_SOURCE, Decision
from sidecar.policy.settings import TracingSettings
from sidecar.runtime.state import STATE, State

MAX_QUEUE = 4096  # spans waiting for the exporter thread; past this, new ones are dropped
BATCH = 512  # spans per export request
EXPORT_DELAY_MS = 1000  # the exporter thread sends at least this often
EXPORT_TIMEOUT = 5.0  # seconds one export (its retries included) may take, on its thread
SHUTDOWN_WAIT = 2.0  # seconds the last export may hold up a stopping process
TRACEPARENT = "traceparent"
_TRACEPARENT_LENGTH = 55  # "00-" 32 hex "-" 16 hex "-" 2 hex
VerifyFunction = Callable[[str, str, dict[str, str]], Decision]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SIGN_ROUTES = {"signUrl": "sign", "signUrls": "sign", "revoke": "revoke"}


class Tracing:
    """One process's tracer provider, its batch processor and exporter thread."""

    def __init__(self, settings: TracingSettings) -> None:
        # process.pid: which worker made a span (each exports its own).
        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.version": __version__,
                "process.pid": os.getpid(),
            }
        )
        self.provider = TracerProvider(
            sampler=ParentBasedTraceIdRatio(settings.sample_ratio), resource=resource
        )
        exporter = OTLPSpanExporter(endpoint=settings.traces_url, timeout=EXPORT_TIMEOUT)
        self.provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=MAX_QUEUE,
                schedule_delay_millis=EXPORT_DELAY_MS,
                max_export_batch_size=BATCH,
            )
        )
        self.tracer = self.provider.get_tracer("sidecar", __version__)
        self.sample_ratio = settings.sample_ratio
        self._propagator = TraceContextTextMapPropagator()
        # A full queue warns once per dropped span: with a dead collector that would be a
        # log line per request, written on the verify loop.
        logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)

    def verify_function(self, state: State) -> VerifyFunction:
        """``State.verify``, then its span: started when the request arrived, parented
        by the proxy's ``traceparent`` when it sent a valid one."""
        verify, tracer, extract = state.verify, self.tracer, self._propagator.extract
        roots_kept = self.sample_ratio > 0

        def traced(method: str, path: str, headers: dict[str, str]) -> Decision:
            started = time.time_ns()
            decision = verify(method, path, headers)
            # As sent: nginx, HAProxy and Envoy write it in lower case; Caddy (Go) passes
            # the client's header on as Go spells it.
            parent = headers.get(TRACEPARENT) or headers.get("Traceparent")
            if not (roots_kept if parent is None else _maybe_sampled(parent)):
                return decision  # the sampler would drop it: no span built at all
            context = extract({TRACEPARENT: parent}) if parent is not None else None
            span = tracer.start_span(
                "verify",
                context,
                trace.SpanKind.SERVER,
                verify_attributes(decision),
                start_time=started,
            )
            span.end()
            return decision

        return traced

    @web.middleware
    async def sign_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A span per call of the signing API (``sign`` or ``revoke``): the team, its
        source and scheme, and the status; never the URL asked for or a key."""
        operation = _SIGN_ROUTES.get(request.path.rpartition("/")[2])
        if operation is None:
            return await handler(request)  # /healthz, and 404s
        parent = request.headers.get(TRACEPARENT)
        context = self._propagator.extract({TRACEPARENT: parent}) if parent else None
        with self.tracer.start_as_current_span(
            operation, context, trace.SpanKind.SERVER, record_exception=False
        ) as span:
            response = await handler(request)
            span.set_attributes(_team_attributes(request))
            span.set_attribute("http.response.status_code", response.status)
            return response

    def record_reload(self, started_ns: int, ok: bool, source_count: int | None) -> None:
        """The span of a reload that began at ``started_ns`` and ended now."""
        attributes: dict[str, Any] = {"sidecar.result": "success" if ok else "failure"}
        if source_count is not None:
            attributes["sidecar.source_count"] = source_count
        span = self.tracer.start_span("reload", attributes=attributes, start_time=started_ns)
        span.end()

    def close(self) -> None:
        """Send what is queued, waiting at most ``SHUTDOWN_WAIT`` (a dead collector would
        otherwise hold the stop for a whole export timeout)."""
        closer = threading.Thread(target=self.provider.shutdown, daemon=True)
        closer.start()
        closer.join(SHUTDOWN_WAIT)


def _maybe_sampled(traceparent: str) -> bool:
    """False when ``traceparent`` has a version-00 one's length and its sampled flag (the
    low bit of its last hex digit) is off: the parent-based sampler would drop the span, so
    none is built. Anything else goes to the propagator (an invalid one starts a trace;
    a malformed one of that length with the flag off gets no span)."""
    return len(traceparent) != _TRACEPARENT_LENGTH or traceparent[-1] not in "02468ace"


def verify_attributes(decision: Decision) -> dict[str, Any]:
    source = decision.source
    attributes: dict[str, Any] = {
        "sidecar.source": source.name if source is not None else NO_SOURCE,
        "sidecar.result": decision.reason.value,
        "sidecar.decision": decision.outcome.value,
        "http.response.status_code": decision.status,
    }
    if source is not None:
        attributes["sidecar.scheme"] = source.scheme
    if decision.key_id is not None:
        attributes["sidecar.key_id"] = decision.key_id[:128]
    if decision.counted is not None:  # max_uses: the store's count comes after this span
        attributes["sidecar.use_counted"] = True
    return attributes


def _team_attributes(request: web.Request) -> Mapping[str, str]:
    """Named only for a team of the config: the path's team id is the caller's text."""
    settings = request.app[STATE].decider.settings
    team = settings.team(request.match_info.get("team_id", ""))
    if team is None:
        return {}
    source = settings.source(team.source)
    scheme = source.scheme if source is not None else NO_SOURCE
    return {"sidecar.team": team.id, "sidecar.source": team.source, "sidecar.scheme": scheme}
