"""The verify listener's raw HTTP surface, request by request: stalled and trickling
clients, malformed, truncated and oversized requests, and bytes that are not text never
crash it, never wedge it, never allow unsigned. Malformed requests to the signing and
metrics listeners are logged as JSON lines, and throttled.

The stalling clients are left open first; the sweep test near the end checks that the
listener dropped them (the tests in between give it the time to).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.runtime.http_reader import MAX_FIELD_SIZE, MAX_HEADERS
from sidecar.runtime.verify_protocol import PARTIAL_REQUEST_TIMEOUT, SWEEP_INTERVAL
from tests.support.configs import md5_source, sidecar_config, team_toml
from tests.support.figures import record
from tests.support.raw_http import (
    CONFIG,
    SIGNED,
    UNSIGNED,
    Client,
    HostileCases,
    assert_refused,
    assert_still_serving,
    exchange,
    foreign_log_lines,
    verify_request,
)
from tests.support.requests import raw_exchange, verify
from tests.support.stacks import StackFactory
from tests.support.tokens import BOOKS_TOKEN, md5_signed

CASES = HostileCases()
hostile = CASES.sent
# The headers of the subrequest nginx sends (support/raw_http.py): between the request line
# and the empty line.
NGINX_HEADERS = verify_request(SIGNED).count(b"\r\n") - 2


def headers_in_all(total: int) -> tuple[bytes, ...]:
    """Filler headers that bring nginx's subrequest to ``total`` headers."""
    return tuple(b"X-Many-%d: v" % i for i in range(total - NGINX_HEADERS))


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(CONFIG, nginx=False)


# --- clients that stall (first: the sweep test at the end checks they were dropped) ------


class Stalled(NamedTuple):
    client: Client
    since: float
    stop: threading.Event


@pytest.fixture(scope="module")
def stalled(stack: LocalStack) -> Iterator[list[Stalled]]:
    """Clients left stalled mid-request; the last test checks the sweep dropped them."""
    held: list[Stalled] = []
    yield held
    for entry in held:
        entry.stop.set()
        entry.client.close()


def test_half_sent_request_does_not_block_others(stack: LocalStack, stalled: list[Stalled]) -> None:
    hostile("half a request, then stall")
    client = Client(stack.sidecar_port)
    client.send(verify_request(SIGNED)[:60])
    stalled.append(Stalled(client, time.monotonic(), threading.Event()))
    for _ in range(20):
        assert_still_serving(stack)


def test_trickled_request_does_not_block_others(stack: LocalStack, stalled: list[Stalled]) -> None:
    """One byte now and then: each byte is activity, but the request stays incomplete."""
    hostile("request trickled a byte at a time")
    client = Client(stack.sidecar_port)
    data = verify_request(SIGNED)
    client.send(data[:40])
    stop = threading.Event()

    def trickle() -> None:
        for byte in data[40:-4]:
            if stop.wait(1.0):
                return
            try:
                client.send(bytes([byte]))
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    stalled.append(Stalled(client, time.monotonic(), stop))
    for _ in range(20):
        assert_still_serving(stack)


# --- malformed, truncated, oversized ----------------------------------------------------

END = b"\r\n\r\n"


LONG_TARGET = b"/verify?" + b"a" * (MAX_FIELD_SIZE + 1024)


MALFORMED = {
    "garbage": b"GARBAGE\r\n\r\n",
    "method only": b"GET\r\n\r\n",
    "HTTP/0.9": b"GET /verify\r\n\r\n",
    "HTTP/9.9": b"GET /verify HTTP/9.9\r\n\r\n",
    "extra token": b"GET /verify HTTP/1.1 extra\r\n\r\n",
    "binary": b"\x00\x01\x02\x03\r\n\r\n",
    "TLS hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "NUL in target": b"GET /ver\x00ify HTTP/1.1\r\nHost: x\r\n\r\n",
    "byte 0xff in method": b"G\xffT /verify HTTP/1.1\r\nHost: x\r\n\r\n",
    "empty header name": b"GET /verify HTTP/1.1\r\n: v\r\n\r\n",
    "header without colon": b"GET /verify HTTP/1.1\r\nX-Original-URI " + SIGNED.encode() + END,
    "space before colon": b"GET /verify HTTP/1.1\r\nX-Original-URI : " + SIGNED.encode() + END,
    "request line over 16 KB": b"GET " + LONG_TARGET + b" HTTP/1.1" + END,
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_400_and_close(stack: LocalStack, name: str) -> None:
    hostile("malformed request lines and headers")
    assert_refused(*exchange(stack.sidecar_port, MALFORMED[name]))
    assert_still_serving(stack)


@pytest.mark.parametrize("cut", [1, 4, 15, 40, 120, -3, -1])
@pytest.mark.parametrize("ending", ["close", "half-close", "reset"])
def test_truncated_requests_then_gone(stack: LocalStack, cut: int, ending: str) -> None:
    hostile("truncated requests")
    data = verify_request(SIGNED)[:cut]
    client = Client(stack.sidecar_port)
    client.send(data)
    if ending == "half-close":
        client.sock.shutdown(socket.SHUT_WR)
        assert client.responses() == []  # never an answer to half a request
    elif ending == "reset":
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
    client.close()
    assert_still_serving(stack)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param((b"X-Filler: " + b"a" * (MAX_FIELD_SIZE + 1024),), id="header-17k"),
        pytest.param((b"X-" + b"n" * (MAX_FIELD_SIZE + 1024) + b": v",), id="name-17k"),
        pytest.param(headers_in_all(MAX_HEADERS + 1), id="65-headers"),
        pytest.param(headers_in_all(207), id="207-headers"),
        pytest.param(headers_in_all(5007), id="5007-headers"),
    ],
)
def test_oversized_headers_get_400_and_close(stack: LocalStack, extra: tuple[bytes, ...]) -> None:
    hostile("oversized header lines, too many headers")
    assert_refused(*exchange(stack.sidecar_port, verify_request(SIGNED, extra=extra)))
    assert_still_serving(stack)


def test_headers_within_the_limits_are_answered(stack: LocalStack) -> None:
    hostile("headers within the limits")
    filler = (b"X-Filler: " + b"a" * (MAX_FIELD_SIZE - 512),)
    many = headers_in_all(MAX_HEADERS)  # the most a request may carry
    for extra in (filler, many):
        answers, _ = exchange(stack.sidecar_port, verify_request(SIGNED, extra=extra))
        assert [(a.status, a.result) for a in answers] == [(200, "ok")]
    assert_still_serving(stack)


def test_12kb_original_uri_is_answered(stack: LocalStack) -> None:
    """Longer than nginx lets through, shorter than the header bound: a deny, not a 400."""
    hostile("12 KB X-Original-URI", 3)
    long_path = "/books/" + "a" * 12 * 1024 + ".png"
    for uri in (long_path, md5_signed(long_path), long_path + "?s=" + "0" * 32):
        answers, closed = exchange(stack.sidecar_port, verify_request(uri))
        assert [(a.status, a.result) for a in answers] == [(403, "non_canonical")]
        assert not closed
    # Just under the canonical bound (8 KB, nginx's own), a signed URI still verifies.
    near_limit = md5_signed("/books/" + "b" * 8000 + ".png")
    answers, _ = exchange(stack.sidecar_port, verify_request(near_limit))
    assert [(a.status, a.result) for a in answers] == [(200, "ok")]
    assert_still_serving(stack)


def test_a_uri_longer_than_the_parser_reads_is_denied_not_400(stack: LocalStack) -> None:
    reply = verify(stack, "/books/x.png?pad=" + "a" * 16_900)
    assert (reply.status, reply.headers["x-signature-result"]) == (403, "non_canonical")


# --- bytes that are not text ---------------------------------------------------------------

NEVER_ALLOWED_URIS = {
    "NUL": SIGNED.encode().replace(b"x.png", b"x\x00.png"),
    "ESC": SIGNED.encode().replace(b"x.png", b"x\x1b.png"),
    "DEL": SIGNED.encode().replace(b"x.png", b"x\x7f.png"),
    "bare CR": SIGNED.encode().replace(b"x.png", b"x\r.png"),
    "TAB inside": SIGNED.encode().replace(b"x.png", b"x\t.png"),
    "byte 0xff": b"/books/\xff.png",
    "overlong slash": b"/books/\xc0\xaf.png",
    "lone continuation": b"/books/\x80.png",
    "UTF-16 surrogate": b"/books/\xed\xa0\x80.png",
}


def md5_signed_bytes(unsigned: bytes) -> bytes:
    """The md5-token formula over raw bytes: a correct signature for a URI that is not UTF-8."""
    digest = hashlib.md5(unsigned + BOOKS_TOKEN.encode()).hexdigest()
    return unsigned + b"?s=" + digest.encode()


@pytest.mark.parametrize("name", list(NEVER_ALLOWED_URIS))
@pytest.mark.parametrize("signed", [False, True], ids=["as-is", "signed-over-the-bytes"])
def test_control_bytes_and_invalid_utf8_in_the_uri_never_allow(
    stack: LocalStack, name: str, signed: bool
) -> None:
    hostile("control bytes and invalid UTF-8 in X-Original-URI")
    uri = NEVER_ALLOWED_URIS[name]
    if signed:
        uri = md5_signed_bytes(uri.partition(b"?")[0])
    answers, closed = exchange(stack.sidecar_port, verify_request(uri))
    statuses = [a.status for a in answers]
    assert (statuses == [400] and closed) or statuses in ([401], [403]), answers
    assert_still_serving(stack)


def test_valid_utf8_signed_over_its_bytes_is_allowed(stack: LocalStack) -> None:
    uri = md5_signed_bytes("/books/é/日本.png".encode())
    answers, _ = exchange(stack.sidecar_port, verify_request(uri))
    assert [(a.status, a.result) for a in answers] == [(200, "ok")]


@pytest.mark.parametrize(
    "header",
    [
        b"X-Real-IP: 203.0.113.7\x00",
        b"X-Request-ID: \xff\xfe\x00\x01",
        b"X-Original-Host: \xc3(",
        b"X-Request-ID: \x1b[31mred",
        b"X-Original-Method: GET\x00",
        b"X-Original-Method: G\xffT",
    ],
)
def test_control_bytes_and_invalid_utf8_in_other_headers(stack: LocalStack, header: bytes) -> None:
    """Denied requests are logged with these values: never a 500, never an allow unsigned."""
    hostile("control bytes and invalid UTF-8 in other headers", 2)
    name = header.partition(b":")[0] + b":"
    cases = [(UNSIGNED, {401, 400}), (SIGNED, {200, 401, 400})]
    if name == b"X-Original-Host:":  # not a valid ASCII host name: denied (docs/security.md)
        cases = [(UNSIGNED, {403}), (SIGNED, {403})]
    for uri, allowed in cases:
        base = verify_request(uri).split(b"\r\n")
        lines = [line for line in base if not line.startswith(name)]
        data = b"\r\n".join([*lines[:-2], header]) + b"\r\n\r\n"
        answers, _ = exchange(stack.sidecar_port, data)
        assert len(answers) == 1 and answers[0].status in allowed, (uri, answers)
        if name == b"X-Original-Method:" and answers[0].status != 400:
            assert answers[0].result == "method"  # "GET\0" is not GET
        if name == b"X-Original-Host:":
            assert answers[0].result == "non_canonical"
    assert_still_serving(stack)


def test_stalled_clients_are_dropped_by_the_sweep(
    stack: LocalStack, stalled: list[Stalled]
) -> None:
    """A request still incomplete after PARTIAL_REQUEST_TIMEOUT is dropped (verify_protocol)."""
    assert stalled, "the stalling tests run first"
    limit = PARTIAL_REQUEST_TIMEOUT + SWEEP_INTERVAL + 2.0
    kept = []
    for entry in stalled:
        left = max(0.1, entry.since + limit - time.monotonic())
        if not entry.client.closed_by_server(timeout=left):
            kept.append(round(time.monotonic() - entry.since, 1))
        assert b"HTTP/" not in entry.client.buffer  # never an answer to a partial request
    assert kept == [], f"connections still open after {kept} s with an incomplete request"
    assert_still_serving(stack)


# --- the signing and metrics listeners --------------------------------------------------------

API_KEY = "malformed-api-key-" + "7" * 24
MALFORMED_ELSEWHERE = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /public/team/x/signUrl HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /\x00 HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",  # TLS hello
]


def test_malformed_requests_to_the_other_listeners_log_json_lines_only(
    fresh_stack: StackFactory,
) -> None:
    signing = sidecar_config(
        md5_source("books", "/books/", {"k": BOOKS_TOKEN}),
        server={"clock_skew": 0},
        signing={},
        teams=[team_toml("books", "books", API_KEY)],
    )
    other = fresh_stack(signing, nginx=False)  # its own log: every line counted is ours
    sent = 0
    for _ in range(20):
        for port in (other.signing_port, other.metrics_port):
            for data in MALFORMED_ELSEWHERE:
                raw_exchange(port, data)
                sent += 1
    time.sleep(0.2)
    lines = (other.folder / "sidecar.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert not any("Traceback" in line for line in lines)
    library = [r for r in records if r["event"] == "library_error"]
    record("malformed requests sent to the signing and metrics listeners", sent)
    assert len(library) < sent  # throttled: a flood of bad requests is not a flood of lines


# --- last: the log, and the figures ------------------------------------------------------


def test_log_holds_json_lines_only(stack: LocalStack) -> None:
    """Hostile input is answered, not crashed on: no traceback, no "Fatal error" in the log."""
    foreign = foreign_log_lines(stack)
    assert foreign == [], "\n".join(foreign[:20])


def test_summary_hostile_cases_sent() -> None:
    CASES.print_and_record()
    assert CASES, "the summary runs last: no case ran before it"
