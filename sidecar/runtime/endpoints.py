"""``/healthz``, ``/readyz`` and ``/metrics``: the one definition of their answers (status,
headers, body), whichever listener serves them.

The verify listener, and the metrics listener when ``metrics_listen`` differs from
``listen``, are the same bare protocol (``verify_protocol.py``) and write these answers as
bytes; the signing API answers ``/healthz`` with them too (``state.healthz``). An
orchestrator or a scraper then sees the same thing on every port it is pointed at.
"""

from __future__ import annotations

from typing import Final

from prometheus_client.exposition import CONTENT_TYPE_LATEST

HEALTHZ: Final = "/healthz"
READYZ: Final = "/readyz"
METRICS: Final = "/metrics"
# Never cached by anything in between: a probe or a scrape must see this very moment.
PLAIN_HEADERS: Final = (("Content-Type", "text/plain"), ("Cache-Control", "no-store"))


def route(target: str) -> str:
    """The path these endpoints route on: the request target without its query (a probe
    or scraper configured with parameters still reaches them)."""
    return target.partition("?")[0]


def health(path: str, ready: bool) -> tuple[int, bytes] | None:
    """``/healthz`` (the process answers) or ``/readyz`` (it serves, and is not stopping):
    status and body; None for any other path."""
    if path == HEALTHZ:
        return 200, b"ok\n"
    if path == READYZ:
        return (200, b"ready\n") if ready else (503, b"not ready\n")
    return None


def metrics_headers(gzipped: bool) -> tuple[tuple[str, str], ...]:
    """The headers of a scrape's answer (its body is ``State.scrape``'s)."""
    headers = (("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store"),
               ("Vary", "Accept-Encoding"))  # fmt: skip
    return (*headers, ("Content-Encoding", "gzip")) if gzipped else headers


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip (``gzip`` listed without
    ``q=0``; RFC 9110 §12.5.3). Prometheus sends ``gzip``."""
    for item in (accept_encoding or "").split(","):
        coding, _, parameters = item.partition(";")
        if coding.strip().lower() == "gzip":
            quality = parameters.strip().lower().removeprefix("q=")
            try:
                return float(quality or "1") > 0
            except ValueError:
                return False
    return False
