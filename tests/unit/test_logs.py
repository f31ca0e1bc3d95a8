"""JSON log levels: every line names its level, and lines below the chosen one are dropped
without spending the per-second budget that denials share."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from sidecar.runtime.logs import JsonLog, JsonLogHandler


def lines(stream: io.BytesIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_carries_its_level() -> None:
    stream = io.BytesIO()
    log = JsonLog(stream, level="debug")
    log.event("start", pid=1)
    log.event("reload_failed", problems=["x"])
    log.event("proxy_headers_missing", missing=["X-Original-URI"])
    levels = [(line["event"], line["level"]) for line in lines(stream)]
    assert levels == [
        ("start", "info"),
        ("reload_failed", "error"),
        ("proxy_headers_missing", "warning"),
    ]


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        ("debug", ["start", "deny", "worker_exit", "error"]),
        ("info", ["start", "deny", "worker_exit", "error"]),
        ("warning", ["worker_exit", "error"]),
        ("error", ["error"]),
    ],
)
def test_lines_below_the_level_are_dropped(level: str, kept: list[str]) -> None:
    stream = io.BytesIO()
    log = JsonLog(stream, level=level)
    log.event("start")
    log.denial(result="invalid")
    log.event("worker_exit", exit_code=1)
    log.event("error", error="ValueError")
    assert [line["event"] for line in lines(stream)] == kept


def test_dropped_denials_spend_no_budget() -> None:
    stream = io.BytesIO()
    log = JsonLog(stream, level="warning", denials_per_second=1)
    for _ in range(5):
        log.denial(result="invalid")
    log.limited("library_error", level="warning", message="bad request line")
    assert [line["event"] for line in lines(stream)] == ["library_error"]


def test_a_library_error_keeps_its_own_level() -> None:
    stream = io.BytesIO()
    log = JsonLog(stream, level="error")
    handler = JsonLogHandler(log)
    for level in (logging.WARNING, logging.ERROR, logging.CRITICAL):
        record = logging.LogRecord("aiohttp.server", level, __file__, 1, "boom\nmore", None, None)
        if record.levelno >= handler.level:
            handler.emit(record)
    # The warning is below "error"; error and critical pass, as errors, first line only.
    assert [(line["level"], line["message"]) for line in lines(stream)] == [("error", "boom")] * 2


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="debug, info, warning, error"):
        JsonLog(io.BytesIO(), level="verbose")
