"""JSON-lines logging. Callers pass only safe fields: never a secret or a signature."""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

import orjson


class JsonLog:
    def __init__(self, stream: IO[bytes] | None = None, *, denials_per_second: int = 20) -> None:
        self._stream = stream or sys.stderr.buffer
        self._budget = denials_per_second
        self._window = 0
        self._used = 0
        self._suppressed = 0

    def event(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event}
        record.update((name, _printable(value)) for name, value in fields.items())
        self._stream.write(orjson.dumps(record, default=str) + b"\n")
        self._stream.flush()

    def denial(self, **fields: Any) -> None:
        """Log a denial, at most ``denials_per_second`` lines a second (a flood costs no I/O)."""
        self.limited("deny", **fields)

    def limited(self, event: str, **fields: Any) -> None:
        """Log under the per-second budget that denials share: what a client can trigger
        at will (denials, malformed requests) must not flood the log."""
        second = int(time.monotonic())
        if second != self._window:
            if self._suppressed:
                self.event("lines_suppressed", count=self._suppressed)
            self._window, self._used, self._suppressed = second, 0, 0
        if self._used >= self._budget:
            self._suppressed += 1
            return
        self._used += 1
        self.event(event, **fields)


class JsonLogHandler(logging.Handler):
    """Library log records (aiohttp's "Error handling request", bad HTTP on the signing or
    metrics listener) as one throttled JSON line each: the exception type and the first
    line of the message, never a multi-line traceback, never request data beyond that."""

    def __init__(self, log: JsonLog) -> None:
        super().__init__(logging.WARNING)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self._log.limited(
            "library_error",
            logger=record.name,
            level=record.levelname.lower(),
            message=record.getMessage().partition("\n")[0][:200],
            error=type(error).__name__ if error is not None else None,
        )


def route_library_logs(log: JsonLog) -> None:
    """Send every library's warnings and errors through ``JsonLogHandler``."""
    root = logging.getLogger()
    root.handlers = [JsonLogHandler(log)]
    root.setLevel(logging.WARNING)


def _printable(value: Any) -> Any:
    """Request-derived text may hold undecodable bytes (lone surrogates): escape them."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value
