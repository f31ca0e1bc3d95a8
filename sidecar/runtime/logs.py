"""JSON-lines logging. Callers pass only safe fields: never a secret or a signature.

Every line carries a ``level``; ``--log-level`` drops the lines below it. An event's level
comes from ``EVENT_LEVELS`` (``info`` when it is not listed), so call sites name what
happened and this table alone decides how loud it is.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

import orjson

LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LEVEL = "info"
EVENT_LEVELS = {
    "error": "error",
    "reload_failed": "error",
    "listen_failed": "error",
    "supervisor_giving_up": "error",
    "worker_exit": "warning",
    "worker_restart": "warning",
    "proxy_headers_missing": "warning",
    "library_error": "warning",
    "lines_suppressed": "warning",
}
_RANK = {name: rank for rank, name in enumerate(LEVELS)}


class JsonLog:
    def __init__(
        self,
        stream: IO[bytes] | None = None,
        *,
        denials_per_second: int = 20,
        level: str = DEFAULT_LEVEL,
    ) -> None:
        if level not in _RANK:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
        self._stream = stream or sys.stderr.buffer
        self._threshold = _RANK[level]
        self.level = level
        self._budget = denials_per_second
        self._window = 0
        self._used = 0
        self._suppressed = 0

    def enabled(self, event: str, level: Any = None) -> bool:
        return _RANK[_level_of(event, level)] >= self._threshold

    def event(self, event: str, **fields: Any) -> None:
        level = _level_of(event, fields.pop("level", None))
        if _RANK[level] < self._threshold:
            return
        record = {"ts": round(time.time(), 3), "level": level, "event": event}
        record.update((name, _printable(value)) for name, value in fields.items())
        self._stream.write(orjson.dumps(record, default=str) + b"\n")
        self._stream.flush()

    def denial(self, **fields: Any) -> None:
        """Log a denial, at most ``denials_per_second`` lines a second (a flood costs no I/O)."""
        self.limited("deny", **fields)

    def limited(self, event: str, **fields: Any) -> None:
        """Log under the per-second budget that denials share: what a client can trigger
        at will (denials, malformed requests) must not flood the log."""
        if not self.enabled(event, fields.get("level")):
            return  # filtered lines spend no budget
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
        super().__init__(_library_level(log))
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
    root.setLevel(_library_level(log))


def _level_of(event: str, level: Any) -> str:
    """An explicit ``level`` (a library record's own) wins over the event's usual one."""
    if level == "critical":
        return "error"
    return level if level in _RANK else EVENT_LEVELS.get(event, DEFAULT_LEVEL)


def _library_level(log: JsonLog) -> int:
    # Never below WARNING, even at --log-level debug: libraries' debug and info lines may
    # quote request bytes (a request line holds the signature).
    return logging.ERROR if log.level == "error" else logging.WARNING


def _printable(value: Any) -> Any:
    """Request-derived text may hold undecodable bytes (lone surrogates): escape them."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value
