"""The verify listener's raw HTTP surface: hostile bytes never crash or wedge it.

Raw sockets to the real ``sidecar serve`` process, no nginx in between: malformed,
truncated, oversized, pipelined and stalled requests. After every hostile case the process
must be alive and still answer a signed request with 200 and an unsigned one with 401.
The number of hostile cases sent is printed per test and in total (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.runtime.verify_protocol import MAX_FIELD_SIZE, PARTIAL_REQUEST_TIMEOUT, SWEEP_INTERVAL
from tests.conftest import BOOKS_TOKEN, HOST, StackFactory, md5_signed
from tests.support.figures import record

pytestmark = pytest.mark.e2e

CONFIG = f"""\
[server]
clock_skew = 30

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
  [[sources.keys]]
  id = "k1"
  secret = "{BOOKS_TOKEN}"
"""
SIGNED = md5_signed("/books/x.png?w=400")
UNSIGNED = "/books/x.png?w=400"
CASES: Counter[str] = Counter()


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def result(self) -> str:
        return self.headers.get("x-signature-result", "")


def verify_request(
    uri: bytes | str,
    *,
    extra: tuple[bytes, ...] = (),
    version: bytes = b"HTTP/1.1",
    method: bytes = b"GET",
) -> bytes:
    """The auth subrequest nginx sends (nginx/signed-url-auth.conf), plus ``extra`` lines."""
    raw_uri = uri.encode() if isinstance(uri, str) else uri
    lines = [
        method + b" /verify " + version,
        b"Host: 127.0.0.1",
        b"X-Original-URI: " + raw_uri,
        b"X-Original-Method: GET",
        b"X-Original-Host: " + HOST.encode(),
        b"X-Forwarded-Proto: http",
        b"X-Real-IP: 203.0.113.7",
        b"X-Request-ID: 0123456789abcdef0123456789abcdef",
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Client:
    """One raw connection: send bytes, parse answers, notice when the server closes."""

    def __init__(self, port: int, *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connecting, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        self.eof = not chunk
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> Response | None:
        """The next whole answer, or None when the connection ends (or stalls) first."""
        while b"\r\n\r\n" not in self.buffer:
            if self.eof or not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length and not self.eof:
            self._fill()
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return Response(int(status_line.split(" ")[1]), headers, rest[:length])

    def responses(self) -> list[Response]:
        """Every answer until the server closes the connection."""
        found = []
        while (answer := self.response()) is not None:
            found.append(answer)
        return found

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server ends the connection (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(10)
        return True

    def close(self) -> None:
        self.sock.close()


def exchange(port: int, data: bytes, expected: int = 1) -> tuple[list[Response], bool]:
    """Send ``data`` on a fresh connection; read up to ``expected`` answers (fewer if the
    server closes first); and whether the server then closed the connection by itself."""
    client = Client(port)
    try:
        client.send(data)
        answers = []
        while len(answers) < expected and (answer := client.response()) is not None:
            answers.append(answer)
        return answers, client.closed_by_server(timeout=0.5)
    finally:
        client.close()


@pytest.fixture(scope="module")
def stack(module_stacks: StackFactory) -> LocalStack:
    return module_stacks(CONFIG, nginx=False)


def hostile(test: str, count: int = 1) -> None:
    CASES[test] += count


def assert_still_serving(stack: LocalStack) -> None:
    """The process is alive and decides correctly on a new connection."""
    assert stack.sidecar is not None and stack.sidecar.poll() is None, "the sidecar died"
    answers, _ = exchange(
        stack.sidecar_port,
        verify_request(SIGNED) + verify_request(UNSIGNED, version=b"HTTP/1.0"),
        expected=2,
    )
    assert [(a.status, a.result) for a in answers] == [(200, "ok"), (401, "missing")]


def assert_refused(answers: list[Response], closed: bool) -> None:
    """Malformed HTTP: at most one answer, a 400 or a deny (an HTTP/0.9 line is read as a
    request without headers), and the connection closed."""
    assert [a.status for a in answers] in ([], [400], [401], [403]), answers
    assert closed, "the server kept a connection it could not parse"


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
        pytest.param(tuple(b"X-Many-%d: v" % i for i in range(58)), id="65-headers"),
        pytest.param(tuple(b"X-Many-%d: v" % i for i in range(200)), id="207-headers"),
        pytest.param(tuple(b"X-Many-%d: v" % i for i in range(5000)), id="5007-headers"),
    ],
)
def test_oversized_headers_get_400_and_close(stack: LocalStack, extra: tuple[bytes, ...]) -> None:
    hostile("oversized header lines, too many headers")
    assert_refused(*exchange(stack.sidecar_port, verify_request(SIGNED, extra=extra)))
    assert_still_serving(stack)


def test_headers_within_the_limits_are_answered(stack: LocalStack) -> None:
    hostile("headers within the limits")
    filler = (b"X-Filler: " + b"a" * (MAX_FIELD_SIZE - 512),)
    many = tuple(b"X-Many-%d: v" % i for i in range(50))  # 57 headers with nginx's 7
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
    for uri, allowed in ((UNSIGNED, {401, 400}), (SIGNED, {200, 401, 400})):
        base = verify_request(uri).split(b"\r\n")
        lines = [line for line in base if not line.startswith(name)]
        data = b"\r\n".join([*lines[:-2], header]) + b"\r\n\r\n"
        answers, _ = exchange(stack.sidecar_port, data)
        assert len(answers) == 1 and answers[0].status in allowed, (uri, answers)
        if name == b"X-Original-Method:" and answers[0].status != 400:
            assert answers[0].result == "method"  # "GET\0" is not GET
    assert_still_serving(stack)


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


def test_log_holds_json_lines_only(stack: LocalStack) -> None:
    """Hostile input is answered, not crashed on: no traceback, no "Fatal error" in the log."""
    lines = (stack.folder / "sidecar.log").read_text(errors="replace").splitlines()
    foreign = [line for line in lines if not line.startswith("{")]
    assert foreign == [], "\n".join(foreign[:20])


def test_summary_hostile_cases_sent() -> None:
    total = sum(CASES.values())
    for name, sent in sorted(CASES.items()):
        print(f"[http] {name}: {sent} cases")
    print(f"[http] total: {total} cases sent, each followed by a signed and an unsigned check")
    record("hostile HTTP cases sent", total)
    assert CASES, "the summary runs last: no case ran before it"
