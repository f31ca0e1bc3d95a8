"""The verify listener's request reader (httptools): what it keeps of a request, and
where it refuses. The raw HTTP surface through a real socket: tests/process/test_http_*."""

from __future__ import annotations

import pytest

from bench.tools import paced_load
from sidecar.runtime.http_reader import (
    MAX_FIELD_SIZE,
    MAX_HEADERS,
    MAX_REQUEST_BYTES,
    Refusal,
    Request,
    RequestReader,
)

URI = "/books/a.png?w=400&s=0123456789abcdef0123456789abcdef"


def verify_request(uri: str, extra: tuple[bytes, ...] = ()) -> bytes:
    """nginx's subrequest for ``uri``, with ``extra`` header lines before its end."""
    return (
        paced_load.verify_request(uri)[:-2] + b"".join(line + b"\r\n" for line in extra) + b"\r\n"
    )


def only_request(items: list[Request | Refusal]) -> Request:
    assert len(items) == 1 and isinstance(items[0], Request), items
    return items[0]


def test_a_subrequest_is_read_with_the_header_spellings_the_code_asks_for() -> None:
    raw = (b"GET /verify HTTP/1.1\r\nhost: 127.0.0.1\r\nx-original-uri: " + URI.encode()
           + b"\r\nX-ORIGINAL-METHOD: HEAD\r\nX-Custom: kept as sent\r\n\r\n")  # fmt: skip
    request = only_request(RequestReader().feed(raw))
    assert (request.method, request.path, request.keep_alive) == ("GET", "/verify", True)
    assert request.headers == {"Host": "127.0.0.1", "X-Original-URI": URI,
                               "X-Original-Method": "HEAD", "X-Custom": "kept as sent"}  # fmt: skip


def test_the_first_of_duplicate_headers_the_listener_does_not_read_wins() -> None:
    raw = verify_request(URI, extra=(b"X-Custom: first", b"X-Custom: second"))
    assert only_request(RequestReader().feed(raw)).headers["X-Custom"] == "first"


@pytest.mark.parametrize(
    "line",
    [
        b"X-Original-URI: /other/b.png",
        b"x-original-uri: /other/b.png",
        b"X-Original-Method: GET",
        b"X-Original-Host: other.example.com",
        b"X-Real-IP: 203.0.113.9",
        b"X-Forwarded-For: 203.0.113.9",
        b"X-Forwarded-Uri: /other/b.png",
        b"X-Original-URL: http://other.example.com/b.png",
        b"X-Request-ID: two",
    ],
)
def test_a_second_line_of_a_header_the_listener_reads_is_refused(line: bytes) -> None:
    sent_by_nginx = line.partition(b":")[0].lower() + b":" in verify_request(URI).lower()
    raw = verify_request(URI, extra=(line,) if sent_by_nginx else (line, line))
    assert RequestReader().feed(raw) == [Refusal.MALFORMED]


def test_a_second_cookie_line_is_refused() -> None:
    raw = verify_request(URI, extra=(b"Cookie: a=1", b"Cookie: b=2"))
    assert RequestReader().feed(raw) == [Refusal.MALFORMED]


@pytest.mark.parametrize("byte", [b"\x01", b"\x1b", b"\x7f", b"\x08"])
def test_a_control_byte_in_a_cookie_is_read_not_refused(byte: bytes) -> None:
    raw = verify_request(URI, extra=(b"Cookie: tracker=a" + byte + b"b; other=1",))
    request = only_request(RequestReader().feed(raw))
    assert request.headers["Cookie"] == "tracker=a" + byte.decode() + "b; other=1"
    assert request.headers["X-Original-URI"] == URI


def test_cookies_may_add_up_to_more_than_one_field() -> None:
    cookies = b"; ".join(b"c%d=" % index + b"x" * 1000 for index in range(40))
    assert MAX_FIELD_SIZE < len(cookies) < MAX_REQUEST_BYTES
    request = only_request(
        RequestReader().feed(verify_request(URI, extra=(b"Cookie: " + cookies,)))
    )
    assert request.headers["Cookie"] == cookies.decode()
    too_many = b"Cookie: " + b"x" * (MAX_REQUEST_BYTES + 1)
    assert RequestReader().feed(verify_request(URI, extra=(too_many,))) == [Refusal.OVERSIZED]


def test_whitespace_around_a_value_is_not_part_of_it() -> None:
    raw = b"GET /verify HTTP/1.1\r\nX-Original-URI: \t" + URI.encode() + b" \t \r\n\r\n"
    assert only_request(RequestReader().feed(raw)).headers["X-Original-URI"] == URI


def test_bytes_that_are_not_utf8_arrive_escaped_never_replaced() -> None:
    raw = b"GET /verify HTTP/1.1\r\nX-Original-URI: /books/\xff.png\r\n\r\n"
    uri = only_request(RequestReader().feed(raw)).headers["X-Original-URI"]
    assert uri == "/books/\udcff.png" and uri.encode("utf-8", "surrogateescape")[7] == 0xFF


def test_pipelined_requests_come_back_in_order_and_split_ones_when_complete() -> None:
    reader = RequestReader()
    first, second = verify_request("/books/1.png"), verify_request("/books/2.png")
    both = reader.feed(first + second[:20])
    assert [r.headers["X-Original-URI"] for r in both if isinstance(r, Request)] == ["/books/1.png"]
    assert reader.partial and reader.began
    rest = reader.feed(second[20:])
    assert only_request(rest).headers["X-Original-URI"] == "/books/2.png"
    assert not reader.partial and not reader.began


def test_http10_without_keep_alive_is_not_kept_alive() -> None:
    raw = b"GET /healthz HTTP/1.0\r\n\r\n"
    assert only_request(RequestReader().feed(raw)).keep_alive is False


@pytest.mark.parametrize(
    ("raw", "refusal"),
    [
        (b"GARBAGE\r\n\r\n", Refusal.MALFORMED),
        (verify_request(URI, extra=(b"Content-Length: 3",)) + b"abc", Refusal.MALFORMED),
        (verify_request(URI, extra=(b"Transfer-Encoding: chunked",)), Refusal.MALFORMED),
        (verify_request(URI, extra=(b"Connection: Upgrade", b"Upgrade: websocket")),
         Refusal.MALFORMED),
        (verify_request(URI, extra=tuple(b"X-%d: v" % i for i in range(MAX_HEADERS))),
         Refusal.MALFORMED),
        (verify_request(URI, extra=(b"host: other.example",)), Refusal.MALFORMED),
        (verify_request("/" + "a" * MAX_FIELD_SIZE), Refusal.OVERSIZED),
        (b"GET /verify?" + b"a" * MAX_FIELD_SIZE + b" HTTP/1.1\r\n\r\n", Refusal.OVERSIZED),
        (verify_request(URI, extra=(b"X-" + b"n" * MAX_FIELD_SIZE + b": v",)), Refusal.OVERSIZED),
    ],
    ids=["garbage", "body", "chunked", "upgrade", "too-many-headers", "second-host",
         "long-uri-header",
         "long-request-line", "long-header-name"],
)  # fmt: skip
def test_refusals_end_the_connections_requests(raw: bytes, refusal: Refusal) -> None:
    reader = RequestReader()
    assert reader.feed(raw + verify_request(URI)) == [refusal]
    assert reader.feed(verify_request(URI)) == []  # nothing more is read after a refusal


def test_content_length_zero_is_no_body() -> None:
    raw = verify_request(URI, extra=(b"Content-Length: 0",))
    assert only_request(RequestReader().feed(raw)).headers["Content-Length"] == "0"


def test_many_pipelined_requests_in_one_read_are_no_oversized_request() -> None:
    many = verify_request(URI) * 1000  # about 300 KB, as one large read may bring
    requests = RequestReader().feed(many + verify_request(URI)[:40])
    assert len(requests) == 1000 and all(isinstance(r, Request) for r in requests)


def test_a_trickling_request_is_bounded_in_bytes() -> None:
    reader = RequestReader()
    start = b"GET /verify HTTP/1.1\r\nX-Filler: "
    assert reader.feed(start) == []
    chunk, buffered = b"a" * 4096, len(start)
    while buffered + len(chunk) <= MAX_REQUEST_BYTES:
        assert reader.feed(chunk) == []
        buffered += len(chunk)
    assert reader.feed(chunk) == [Refusal.OVERSIZED]
