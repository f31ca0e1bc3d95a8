"""The verify listener's raw HTTP connections: HTTP/1.0, keep-alive, pipelining, bodies
and upgrades, clients that do not read, many clients at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.raw_http import (
    CONFIG,
    SIGNED,
    UNSIGNED,
    Client,
    HostileCases,
    Response,
    assert_still_serving,
    exchange,
    foreign_log_lines,
    verify_request,
)
from tests.support.stacks import StackFactory
from tests.support.tokens import md5_signed

CASES = HostileCases()
hostile = CASES.sent


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(CONFIG, nginx=False)


# --- connections: HTTP/1.0, keep-alive, pipelining ---------------------------------------


def test_http10_without_keepalive_answers_then_closes(stack: LocalStack) -> None:
    hostile("HTTP/1.0")
    answers, closed = exchange(stack.sidecar_port, verify_request(SIGNED, version=b"HTTP/1.0"))
    assert [(a.status, a.result) for a in answers] == [(200, "ok")]
    assert closed
    keep = verify_request(UNSIGNED, version=b"HTTP/1.0", extra=(b"Connection: keep-alive",))
    client = Client(stack.sidecar_port)
    try:
        client.send(keep)
        first = client.response()
        client.send(verify_request(SIGNED, version=b"HTTP/1.0"))
        second = client.response()
        assert first is not None and (first.status, first.result) == (401, "missing")
        assert second is not None and (second.status, second.result) == (200, "ok")
        assert client.closed_by_server()
    finally:
        client.close()
    assert_still_serving(stack)


def test_keepalive_50_requests_on_one_connection(stack: LocalStack) -> None:
    hostile("keep-alive, 50 requests")
    client = Client(stack.sidecar_port)
    try:
        for number in range(50):
            signed = number % 2 == 0
            client.send(verify_request(SIGNED if signed else UNSIGNED))
            answer = client.response()
            assert answer is not None, f"no answer to request {number}"
            assert (answer.status, answer.result) == ((200, "ok") if signed else (401, "missing"))
        assert not client.closed_by_server(timeout=0.3)
    finally:
        client.close()
    assert_still_serving(stack)


def pipeline_case(number: int) -> tuple[str, int, str]:
    """Signed and unsigned in turn; the unsigned ones cycle through four reasons."""
    if number % 2 == 0:
        return md5_signed(f"/books/p{number}.png"), 200, "ok"
    kind = (number // 2) % 4
    if kind == 0:
        return f"/books/p{number}.png", 401, "missing"
    if kind == 1:
        signed = md5_signed(f"/books/p{number}.png")
        return signed[:-1] + ("1" if signed.endswith("0") else "0"), 401, "invalid"
    if kind == 2:
        return md5_signed(f"/books/../p{number}.png"), 403, "non_canonical"
    return md5_signed(f"/elsewhere/p{number}.png"), 403, "no_source"


def test_100_pipelined_requests_are_answered_in_order(stack: LocalStack) -> None:
    hostile("100 pipelined requests")
    cases = [pipeline_case(number) for number in range(100)]
    client = Client(stack.sidecar_port)
    try:
        client.send(b"".join(verify_request(uri) for uri, _, _ in cases))
        answers = [client.response() for _ in cases]
    finally:
        client.close()
    got = [(a.status, a.result) if a else None for a in answers]
    assert got == [(status, result) for _, status, result in cases]
    assert_still_serving(stack)


BODIES = {
    "content-length": (b"Content-Length: 5",),
    "chunked": (b"Transfer-Encoding: chunked",),
    "both": (b"Content-Length: 5", b"Transfer-Encoding: chunked"),
    "negative length": (b"Content-Length: -1",),
    "two lengths": (b"Content-Length: 5", b"Content-Length: 6"),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_requests_with_a_body_get_400_and_close(stack: LocalStack, name: str) -> None:
    hostile("requests with a body")
    body = b"5\r\nhello\r\n0\r\n\r\n" if b"chunked" in b"".join(BODIES[name]) else b"hello"
    # A signed request smuggled after the body must never be answered.
    data = verify_request(UNSIGNED, extra=BODIES[name]) + body + verify_request(SIGNED)
    answers, closed = exchange(stack.sidecar_port, data, expected=2)
    assert [a.status for a in answers] == [400], answers
    assert closed
    assert_still_serving(stack)


def test_content_length_zero_is_no_body(stack: LocalStack) -> None:
    answers, _ = exchange(stack.sidecar_port, verify_request(SIGNED, extra=(b"Content-Length: 0",)))
    assert [(a.status, a.result) for a in answers] == [(200, "ok")]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param((b"Connection: Upgrade", b"Upgrade: websocket"), id="websocket"),
        pytest.param(
            (
                b"Connection: Upgrade, HTTP2-Settings",
                b"Upgrade: h2c",
                b"HTTP2-Settings: AAMAAABkAAQAAP__",
            ),
            id="h2c",
        ),
    ],
)
def test_connection_upgrade_gets_exactly_one_answer(
    stack: LocalStack, extra: tuple[bytes, ...]
) -> None:
    """Refused (400, then close), or ignored (RFC 9110 §7.8: answered as plain HTTP/1.1);
    never both, so the next answer on the connection belongs to the next request."""
    hostile("Connection: Upgrade")
    client = Client(stack.sidecar_port)
    try:
        client.send(verify_request(SIGNED, extra=extra))
        first = client.response()
        assert first is not None
        if first.status == 400:
            assert client.closed_by_server()
            assert client.buffer == b"", f"more after the 400: {client.buffer!r}"
        else:
            assert (first.status, first.result) == (200, "ok")
            client.send(verify_request(UNSIGNED))
            second = client.response()
            assert second is not None and (second.status, second.result) == (401, "missing")
    finally:
        client.close()
    assert_still_serving(stack)


# --- clients that do not read ------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_2000_pipelined_requests_without_reading(stack: LocalStack) -> None:
    """The server stops reading a client that does not read; everyone else is served."""
    hostile("2000 pipelined requests, answers not read", 2)
    assert stack.sidecar is not None
    before = rss_kib(stack.sidecar.pid)
    cases = [pipeline_case(number) for number in range(2000)]
    hog = Client(stack.sidecar_port, receive_buffer=4096)
    data = b"".join(verify_request(uri) for uri, _, _ in cases)
    sender = threading.Thread(target=hog.send, args=(data,), daemon=True)
    sender.start()
    time.sleep(0.5)
    for _ in range(10):
        assert_still_serving(stack)
    grown = rss_kib(stack.sidecar.pid) - before
    answers = [hog.response() for _ in cases]
    sender.join(timeout=10)
    assert not sender.is_alive(), "the server stopped reading for good"
    hog.close()
    got = [(a.status, a.result) if a else None for a in answers]
    assert got == [(status, result) for _, status, result in cases]
    print(f"\n[http] {len(data)} bytes pipelined; sidecar RSS grew {grown} KiB meanwhile")
    assert grown < 64 * 1024
    # The same, but the client goes away without reading a single answer.
    quitter = Client(stack.sidecar_port, receive_buffer=4096)
    quitter.sock.settimeout(2)
    with contextlib.suppress(TimeoutError):  # the server stopped reading: what it must do
        quitter.send(data)
    quitter.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
    quitter.close()
    assert_still_serving(stack)


def test_many_connections_at_once(stack: LocalStack) -> None:
    hostile("200 simultaneous connections", 200)
    clients = [Client(stack.sidecar_port) for _ in range(200)]
    try:
        for number, client in enumerate(clients):
            client.send(verify_request(SIGNED if number % 2 else UNSIGNED))
        statuses = [(client.response() or Response(0, {}, b"")).status for client in clients]
    finally:
        for client in clients:
            client.close()
    assert statuses == [200 if number % 2 else 401 for number in range(200)]
    assert_still_serving(stack)


# --- last: the log, and the figures ------------------------------------------------------


def test_log_holds_json_lines_only(stack: LocalStack) -> None:
    """Hostile input is answered, not crashed on: no traceback, no "Fatal error" in the log."""
    foreign = foreign_log_lines(stack)
    assert foreign == [], "\n".join(foreign[:20])


def test_summary_hostile_cases_sent() -> None:
    CASES.print_and_record()
    assert CASES, "the summary runs last: no case ran before it"
