"""The verify listener, and the metrics listener: a dedicated asyncio protocol on
httptools (``http_reader``).

nginx asks before every image, so this path must cost almost nothing. A framework's
request and response objects cost several times the verification itself; here each
request is read into plain strings and answered with pre-encoded bytes, synchronously, in
arrival order: HTTP/1.1 keep-alive and pipelining stay correct because nothing is awaited
between a request and its answer. The one exception is a use of a ``max_uses`` source,
which waits for the store (``runtime/uses.py``): the connection then stops reading, and
requests already read behind it wait their turn, so answers still keep the order.

Routes: ``/verify`` (also ``/verify?...``, and ``/verify/...`` for envoy), ``/probe/<id>``,
``/healthz``, ``/readyz``, and ``/metrics`` when the metrics share this listener. When
``metrics_listen`` differs from ``listen``, ``MetricsServer`` serves ``/healthz``,
``/readyz`` and ``/metrics`` there with this same protocol, so both ports answer alike
(``endpoints`` defines the answers). Requests with a body, upgrades and malformed HTTP get
a 400 and the connection is closed; oversized ones are denied and closed (``http_reader``
holds the bounds). Idle and half-sent connections are closed by a periodic sweep.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final, cast
from urllib.parse import quote

from sidecar.core.verdict import Reason
from sidecar.policy.decide import NO_SOURCE, Decision, Outcome
from sidecar.policy.proxies import VERIFY_PATH
from sidecar.runtime.endpoints import (
    METRICS,
    PLAIN_HEADERS,
    accepts_gzip,
    health,
    metrics_headers,
    route,
)
from sidecar.runtime.folder_cookies import FolderCookies
from sidecar.runtime.http_reader import Refusal, Request, RequestReader
from sidecar.runtime.probes import PROBE_PATH, ProbeBook
from sidecar.runtime.state import State

KEEPALIVE_TIMEOUT = 75.0  # above nginx's upstream keepalive_timeout (60 s)
PARTIAL_REQUEST_TIMEOUT = 10.0  # a request still incomplete after this is dropped
SWEEP_INTERVAL = 5.0
_PHRASES: Final = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip
_NO_CACHE: Final = b"X-Accel-Expires: 0\r\nCache-Control: no-store\r\n"
Unit = Request | Refusal  # what the reader hands over: a request, or why there is none


def _lines(headers: tuple[tuple[str, str], ...]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode()


def _head(status: int, extra: bytes, length: int, keep_alive: bool) -> bytes:
    connection = b"" if keep_alive else b"Connection: close\r\n"
    return (
        f"HTTP/1.1 {status} {_PHRASES[status]}\r\n".encode()
        + extra
        + f"Content-Length: {length}\r\n".encode()
        + connection
        + b"\r\n"
    )


_HEADS: Final[dict[tuple[int, str, int, bool], bytes]] = {}
_MAX_HEADS: Final = 4096
_IDENTITIES: Final[dict[tuple[str, str | None], bytes]] = {}
_MAX_IDENTITIES: Final = 65536
# Whole answers by everything they say: one lookup on nearly every request. Bounded (the
# cache lifetime takes many values near an expiry); started over when full.
_ANSWERS: Final[dict[tuple[int, str, int, bool, str, str | None], bytes]] = {}
_MAX_ANSWERS: Final = 8192
# A key id from a fetched key set is the issuer's text: a header carries it only as it is
# when every character is visible ASCII, else percent-encoded (never a CR or LF).
_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]{1,128}")


def verify_answer(
    status: int,
    reason: str,
    cache_ttl: int,
    keep_alive: bool,
    *,
    source: str = NO_SOURCE,
    key_id: str | None = None,
    cookies: bytes = b"",
) -> bytes:
    """The whole response, no body: status, ``X-Signature-Result``, the cache lifetime,
    and which source decided (``X-Signature-Source``) with the key that matched
    (``X-Signature-Key``, on allows), for nginx's log; ``cookies``: a folder grant's
    header lines (``runtime/folder_cookies``)."""
    if cookies:
        return (
            _verify_head(status, reason, cache_ttl, keep_alive)
            + cookies
            + _identity(source, key_id)
        )
    key = (status, reason, cache_ttl, keep_alive, source, key_id)
    answer = _ANSWERS.get(key)
    if answer is None:
        answer = _verify_head(status, reason, cache_ttl, keep_alive) + _identity(source, key_id)
        if len(_ANSWERS) >= _MAX_ANSWERS:
            _ANSWERS.clear()
        _ANSWERS[key] = answer
    return answer


def _verify_head(status: int, reason: str, cache_ttl: int, keep_alive: bool) -> bytes:
    """The status line and the decision's headers, made once per decision and lifetime."""
    key = (status, reason, cache_ttl, keep_alive)
    head = _HEADS.get(key)
    if head is None:
        if cache_ttl > 0:
            cache = (
                f"X-Accel-Expires: {cache_ttl}\r\nCache-Control: private, max-age={cache_ttl}\r\n"
            )
        else:
            cache = _NO_CACHE.decode()
        answer = _head(status, f"X-Signature-Result: {reason}\r\n{cache}".encode(), 0, keep_alive)
        head = answer[:-2]  # the empty line ending the header comes after the identity
        if len(_HEADS) >= _MAX_HEADS:  # lifetimes vary: stay bounded
            _HEADS.clear()
        _HEADS[key] = head
    return head


def _identity(source: str, key_id: str | None) -> bytes:
    """``X-Signature-Source`` (and ``X-Signature-Key``) lines and the header's end: made
    once per source and key (names from the config, bounded)."""
    found = _IDENTITIES.get((source, key_id))
    if found is None:
        lines = f"X-Signature-Source: {source}\r\n"
        if key_id is not None:
            shown = key_id if _HEADER_SAFE.fullmatch(key_id) else quote(key_id[:128], safe="")
            lines += f"X-Signature-Key: {shown}\r\n"
        found = (lines + "\r\n").encode()
        if len(_IDENTITIES) >= _MAX_IDENTITIES:
            _IDENTITIES.clear()
        _IDENTITIES[(source, key_id)] = found
    return found


_PLAIN: Final = _lines(PLAIN_HEADERS)
_JSON: Final = _lines((("Content-Type", "application/json"), ("Cache-Control", "no-store")))


def _plain(status: int, body: bytes, keep_alive: bool, extra: bytes = _PLAIN) -> bytes:
    return _head(status, extra, len(body), keep_alive) + body


class VerifyProtocol(asyncio.Protocol):
    """One connection: its bytes go to a ``RequestReader``; each request it completes is
    answered at once, so answers keep the arrival order."""

    def __init__(self, server: VerifyServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._reader = RequestReader()
        self.last_active = time.monotonic()
        self.partial = False  # bytes of an unanswered request are buffered
        self.partial_since = 0.0  # when that request's first bytes arrived
        self.closing = False
        self._scrape: asyncio.Task[None] | None = None  # a /metrics answer being rendered
        self._counting: asyncio.Task[None] | None = None  # a max_uses answer being counted
        self._waiting: deque[Unit] = deque()  # requests read behind it, in order

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        reader = self._reader
        requests = reader.feed(data)
        if requests or reader.partial:
            # Bytes that are no request (bare CRLFs between requests, which llhttp skips)
            # do not keep an idle connection open.
            self.last_active = now
        for request in requests:
            if self._transport is None or self._scrape is not None:
                break  # closed, or closing after a scrape, by an earlier request
            if self._counting is not None:
                self._waiting.append(request)  # answered after the one being counted
            else:
                self._handle(request)
        # A request trickling in is dropped by the sweep: its clock starts at its first byte.
        if reader.began and reader.partial:
            self.partial_since = now
        self.partial = reader.partial
        if self.closing and not self.partial:
            self.close()

    def pause_writing(self) -> None:
        # A client that pipelines without reading its answers is not read from either,
        # so answers never pile up without bound.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    # --- answering --------------------------------------------------------------------

    def _handle(self, request: Unit) -> None:
        if isinstance(request, Request):  # first: nearly every unit is a request
            self._answer(request)
        elif request is Refusal.OVERSIZED:
            # nginx accepts longer request lines than we parse when an operator raises
            # large_client_header_buffers: such a URI is denied, not answered 400
            # (which nginx would turn into a 500).
            self._finish(self._server.deny_oversized())
        else:
            self._finish(_plain(400, b"", keep_alive=False))  # Refusal.MALFORMED

    def _answer(self, request: Request) -> None:
        transport = self._transport
        assert transport is not None
        if self._server.is_scrape(request.path):
            transport.pause_reading()
            self._scrape = self._server.loop.create_task(self._answer_scrape(request))
            return
        keep_alive = request.keep_alive and not self.closing
        try:
            answer = self._server.answer(request, keep_alive)
        except Exception as error:  # fail closed: nginx turns a 500 into a refusal
            self._server.state.log.event("error", error=type(error).__name__)
            self._finish(_plain(500, b"", keep_alive=False))
            return
        if not isinstance(answer, bytes):
            transport.pause_reading()
            self._counting = self._server.loop.create_task(self._answer_counted(answer, keep_alive))
            return
        transport.write(answer)
        if not keep_alive:
            self.close()

    async def _answer_counted(self, pending: Coroutine[Any, Any, bytes], keep_alive: bool) -> None:
        """Write a counted answer, then the requests read behind it, in order."""
        try:
            answer = await pending
        except Exception as error:  # fail closed, as for any other request
            self._server.state.log.event("error", error=type(error).__name__)
            answer, keep_alive = _plain(500, b"", keep_alive=False), False
        self._counting = None
        if self._transport is None:
            return
        self._transport.write(answer)
        if not keep_alive:
            self.close()
            return
        while self._waiting and self._counting is None and self._scrape is None:
            if self._transport is None:
                return
            self._handle(self._waiting.popleft())
        if self._counting is None and self._scrape is None and self._transport is not None:
            self._transport.resume_reading()
            if self.closing and not self.partial:
                self.close()

    async def _answer_scrape(self, request: Request) -> None:
        try:
            gzipped = accepts_gzip(request.headers.get("Accept-Encoding"))
            answer = await self._server.scrape(request.method == "HEAD", gzipped)
        except Exception as error:  # fail closed, as for any other request
            self._server.state.log.event("error", error=type(error).__name__)
            answer = _plain(500, b"", keep_alive=False)
        self._finish(answer)

    def _finish(self, answer: bytes) -> None:
        if self._transport is not None:
            self._transport.write(answer)
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class VerifyServer:
    """Owns the listening socket's connections: routing, sweeping, graceful close."""

    def __init__(self, state: State, *, serve_metrics: bool) -> None:
        self.state = state
        self.serve_metrics = serve_metrics
        self.loop = asyncio.get_running_loop()
        self.connections: weakref.WeakSet[VerifyProtocol] = weakref.WeakSet()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.probes = ProbeBook()  # what `sidecar doctor` probes looked like (never decides)
        self.folder_cookies = FolderCookies(state)  # folder_grant allows' cookies, kept
        # [tracing]: State.verify and its span (runtime/tracing.py), bound at start; None
        # without it, and /verify pays this one attribute test.
        self.traced: Callable[[str, str, dict[str, str]], Decision] | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool) -> None:
        self._server = await self.loop.create_server(
            lambda: VerifyProtocol(self), host, port, reuse_port=reuse_port, backlog=1024
        )
        self._sweeper = asyncio.create_task(self._sweep())

    def deny_oversized(self) -> bytes:
        """The answer to a request too long to parse: a counted ``non_canonical`` denial."""
        status = self.state.decider.settings.server.deny_status
        self.state.metrics.record(Decision(status, Reason.NON_CANONICAL, Outcome.DENY), 0.0)
        return verify_answer(status, Reason.NON_CANONICAL, 0, keep_alive=False)

    def answer(self, request: Request, keep_alive: bool) -> bytes | Coroutine[Any, Any, bytes]:
        """The answer's bytes; for a use to count (``max_uses``), a coroutine making them."""
        method, path, headers, _ = request
        # "/verify?...": Caddy's forward_auth keeps the client's query on the auth request.
        # The header profiles never read the target, and envoy's refuses it (non_canonical).
        if path == VERIFY_PATH or path.startswith((VERIFY_PATH + "/", VERIFY_PATH + "?")):
            traced = self.traced
            if traced is None:
                decision = self.state.verify(method, path, headers)
            else:
                decision = traced(method, path, headers)
            if decision.counted is not None:
                return self._counted(decision, request, keep_alive)
            if decision.folder is not None:  # signed off the loop unless kept
                return self.folder_cookies.answer(
                    decision,
                    lambda lines: self._verify_answer(decision, request, keep_alive, lines),
                )
            return self._verify_answer(decision, request, keep_alive)
        if path.startswith(PROBE_PATH):
            status, record = self.probes.take(path)
            return _plain(status, record, keep_alive, _JSON)
        return self.health_answer(method, path, keep_alive)

    def _verify_answer(
        self, decision: Decision, request: Request, keep_alive: bool, cookies: bytes = b""
    ) -> bytes:
        method, path, headers, _ = request
        self.probes.notice(self.state, method, path, headers, decision)
        source = decision.source.name if decision.source is not None else NO_SOURCE
        return verify_answer(
            decision.status,
            decision.reason,
            decision.cache_ttl,
            keep_alive,
            source=source,
            key_id=decision.key_id,
            cookies=cookies,
        )

    async def _counted(self, decision: Decision, request: Request, keep_alive: bool) -> bytes:
        method, path, headers, _ = request
        final = await self.state.verify_counted(decision, method, path, headers)
        return self._verify_answer(final, request, keep_alive)

    def health_answer(self, method: str, target: str, keep_alive: bool) -> bytes:
        """``/healthz`` and ``/readyz`` (a HEAD gets their headers alone), else a 404."""
        answer = health(route(target), self.state.ready)
        if answer is None:
            return _plain(404, b"", keep_alive)
        status, body = answer
        return _plain(status, b"" if method == "HEAD" else body, keep_alive)

    def is_scrape(self, target: str) -> bool:
        # Asked before every request: the prefix test keeps a /verify from paying more.
        return self.serve_metrics and target.startswith(METRICS) and route(target) == METRICS

    async def scrape(self, head_only: bool, gzipped: bool) -> bytes:
        """The metrics answer, rendered off the verify loop (thousands of series cost
        milliseconds), always closing: nothing pipelined behind it is waited for."""
        exposition = await self.state.scrape(gzipped=gzipped)
        body = b"" if head_only else exposition
        return _head(200, _lines(metrics_headers(gzipped)), len(body), False) + body

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.partial:
                    stuck = now - connection.partial_since > PARTIAL_REQUEST_TIMEOUT
                else:
                    stuck = now - connection.last_active > KEEPALIVE_TIMEOUT
                if stuck:
                    connection.close()

    async def stop(self, timeout: float) -> None:
        """Stop accepting; close idle connections now and busy ones after their answer."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.closing = True
            if not connection.partial:
                connection.close()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.close()
        if self._sweeper is not None:
            self._sweeper.cancel()


class MetricsServer(VerifyServer):
    """The metrics listener (``metrics_listen`` apart from ``listen``): ``/healthz``,
    ``/readyz`` and ``/metrics``, answered by the same code as on the verify listener;
    never ``/verify`` or a probe record, and never a decision counted."""

    def __init__(self, state: State) -> None:
        super().__init__(state, serve_metrics=True)

    def answer(self, request: Request, keep_alive: bool) -> bytes:
        return self.health_answer(request.method, request.path, keep_alive)

    def deny_oversized(self) -> bytes:
        return _plain(400, b"", keep_alive=False)  # no verify request: nothing to deny
