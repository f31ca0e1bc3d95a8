"""The real ``sidecar serve`` process, asked directly over loopback as nginx asks it.

The verify path answers exactly 200, 401 or 403 (anything else is a 500 in
nginx), names its reason from a bounded set, carries no body and no secret, and tells
nginx how long an allow may be cached, never past the URL's own expiry.
"""

from __future__ import annotations

import hashlib
import math
import time
import urllib.request
from pathlib import Path

import pytest

from sidecar.core.verdict import Reason
from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.metrics import metrics_text, sample, samples
from tests.support.requests import HOST, Reply, raw_exchange, request, verify
from tests.support.stacks import StackFactory, write_test_images
from tests.support.tokens import BOOKS_TOKEN, REPORT_TOKEN, SECRET_TOKEN, md5_signed

TOKENS = (BOOKS_TOKEN, SECRET_TOKEN, REPORT_TOKEN)
REASONS = {reason.value for reason in Reason}
CACHE_TTL = 60
CLOCK_SKEW = 30

CONFIG = sidecar_config(
    md5_source("books", "/books/", {"2026-11": BOOKS_TOKEN}, hosts=[HOST]),
    md5_source("secret", "/secret/", {"s1": SECRET_TOKEN}, deny_status=403),
    md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    server={"clock_skew": CLOCK_SKEW, "cache_ttl": CACHE_TTL},
)


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(CONFIG, nginx=False)


@pytest.fixture(scope="module")
def unlogged_stack(module_stacks: StackFactory) -> LocalStack:
    """A sidecar that has logged no denial yet: its log budget (20 a second) is unspent,
    so every denial below is really written to the log, as on a quiet production host."""
    return module_stacks(CONFIG, nginx=False)


def expected_signature(uri: str, token: str = BOOKS_TOKEN) -> str:
    """The signature the sidecar computes for ``uri`` (its query minus the last ``s``)."""
    unsigned = uri.rpartition("&s=")[0] if "&s=" in uri else uri.rpartition("?s=")[0]
    return hashlib.md5((unsigned + token).encode()).hexdigest()


def assert_well_formed(reply: Reply, *, secrets: tuple[str, ...] = TOKENS) -> None:
    """Bounded status and reason, no body, no secret or expected signature in a header."""
    assert reply.status in {200, 401, 403}
    assert reply.headers["x-signature-result"] in REASONS
    assert reply.body == b""
    for value in (*reply.headers.keys(), *reply.headers.values()):
        for secret in secrets:
            assert secret not in value
    if reply.status != 200:
        assert reply.headers["x-accel-expires"] == "0"
        assert "max-age" not in reply.headers.get("cache-control", "")


TAMPERED = md5_signed("/books/x.png?w=400")[:-1] + "0"
ANSWERS = {  # (uri, X-Original-Method, X-Original-Host) -> (status, reason)
    "signed": ((md5_signed("/books/x.png?w=400"), "GET", HOST), (200, "ok")),
    "signed, HEAD": ((md5_signed("/books/x.png"), "HEAD", HOST), (200, "ok")),
    "host with port": ((md5_signed("/books/x.png"), "GET", f"{HOST}:8080"), (200, "ok")),
    "host in capitals": ((md5_signed("/books/x.png"), "GET", HOST.upper()), (200, "ok")),
    "tampered": ((TAMPERED, "GET", HOST), (401, "invalid")),
    "unsigned": (("/books/x.png", "GET", HOST), (401, "missing")),
    "truncated": ((md5_signed("/books/x.png")[:-3], "GET", HOST), (401, "malformed")),
    "expired": ((md5_signed("/books/x.png?expires=1000000000"), "GET", HOST), (401, "expired")),
    "POST": ((md5_signed("/books/x.png"), "POST", HOST), (401, "method")),
    "lowercase get": ((md5_signed("/books/x.png"), "get", HOST), (401, "method")),
    "other host": ((md5_signed("/books/x.png"), "GET", "evil.example"), (403, "no_source")),
    "no source": (("/elsewhere/x.png", "GET", HOST), (403, "no_source")),
    "non-canonical": ((md5_signed("/books/%2E%2E/x.png"), "GET", HOST), (403, "non_canonical")),
    "empty URI": (("", "GET", HOST), (403, "non_canonical")),
    "absolute URI": ((f"http://{HOST}/books/x.png", "GET", HOST), (403, "non_canonical")),
    "source deny_status": ((md5_signed("/secret/x.png"), "GET", HOST), (403, "invalid")),
    "off": (("/public/x.png", "GET", HOST), (200, "unsigned_allowed")),
    "off, POST": (("/public/x.png", "POST", HOST), (401, "method")),
    "report, unsigned": (("/reports/r.png", "GET", HOST), (200, "missing")),
    "report, signed": ((md5_signed("/reports/r.png", REPORT_TOKEN), "GET", HOST), (200, "ok")),
}


@pytest.mark.parametrize(("facts", "answer"), ANSWERS.values(), ids=ANSWERS.keys())
def test_verify_answers(
    stack: LocalStack, facts: tuple[str, str, str], answer: tuple[int, str]
) -> None:
    uri, method, host = facts
    reply = verify(stack, uri, method=method, host=host)
    assert (reply.status, reply.headers["x-signature-result"]) == answer
    assert_well_formed(reply, secrets=(*TOKENS, expected_signature(uri)))


@pytest.mark.parametrize("verb", ["GET", "HEAD", "POST"])
def test_verify_answers_whatever_verb_nginx_uses(stack: LocalStack, verb: str) -> None:
    # nginx's auth subrequest inherits the client's method (HEAD, or POST with no body).
    headers = {
        "X-Original-URI": md5_signed("/books/x.png"),
        "X-Original-Method": "GET",
        "X-Original-Host": HOST,
    }
    reply = request(stack.sidecar_port, "/verify", method=verb, host="127.0.0.1", headers=headers)
    assert (reply.status, reply.headers["x-signature-result"]) == (200, "ok")


def test_missing_uri_header_is_denied(stack: LocalStack) -> None:
    reply = verify(stack, None)
    assert (reply.status, reply.headers["x-signature-result"]) == (403, "non_canonical")
    assert_well_formed(reply)


def test_no_header_at_all_is_denied(stack: LocalStack) -> None:
    reply = request(stack.sidecar_port, "/verify", host="127.0.0.1")
    assert reply.status == 403
    assert_well_formed(reply)


def test_expected_signature_never_leaves_on_the_wire(stack: LocalStack) -> None:
    answer = raw_exchange(
        stack.sidecar_port,
        b"GET /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + f"X-Original-URI: {TAMPERED}\r\nX-Original-Method: GET\r\n".encode()
        + f"X-Original-Host: {HOST}\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 401 ")
    for secret in (*TOKENS, expected_signature(TAMPERED)):
        assert secret.encode() not in answer


# --- cache lifetimes ------------------------------------------------------------------------


def cache_lifetime(reply: Reply) -> int:
    """The lifetime an allow grants, checked to agree between both headers."""
    seconds = int(reply.headers["x-accel-expires"])
    assert f"max-age={seconds}" in reply.headers["cache-control"]
    return seconds


def test_allow_without_expiry_is_cached_for_cache_ttl(stack: LocalStack) -> None:
    reply = verify(stack, md5_signed("/books/x.png?ttl=plain"))
    assert reply.status == 200
    assert cache_lifetime(reply) == CACHE_TTL


@pytest.mark.parametrize("ahead", [5, 100])
def test_allow_is_never_cached_past_the_url_expiry(stack: LocalStack, ahead: int) -> None:
    expires = math.floor(time.time()) + ahead
    reply = verify(stack, md5_signed(f"/books/x.png?expires={expires}"))
    assert (reply.status, reply.headers["x-signature-result"]) == (200, "ok")
    lifetime = cache_lifetime(reply)
    assert 0 < lifetime <= expires - math.floor(time.time())


def test_allow_within_clock_skew_is_not_cached(stack: LocalStack) -> None:
    # Expired 10 s ago, still inside the 30 s tolerance: allowed, but not for one more second.
    expires = int(time.time()) - 10
    reply = verify(stack, md5_signed(f"/books/x.png?expires={expires}"))
    assert (reply.status, reply.headers["x-signature-result"]) == (200, "ok")
    assert reply.headers["x-accel-expires"] == "0"
    assert "max-age" not in reply.headers.get("cache-control", "")


# --- hostile input --------------------------------------------------------------------------


def test_oversized_uri_header_gets_an_answer(stack: LocalStack) -> None:
    uri = "/books/x.png?pad=" + "a" * 12 * 1024  # 12 KB: beyond any URI nginx accepts
    reply = verify(stack, uri)
    assert reply.status in {401, 403}
    assert_well_formed(reply)


def test_uri_of_nginx_maximum_length_still_verifies(stack: LocalStack) -> None:
    unsigned = "/books/x.png?pad=" + "a" * 8100
    reply = verify(stack, md5_signed(unsigned))
    assert (reply.status, reply.headers["x-signature-result"]) == (200, "ok")


GARBAGE = {  # raw header bytes nginx may pass on (it forwards bytes >= 0x80 unchanged)
    "URI not UTF-8": (b"/books/\xff\xfe.png", b"GET", HOST.encode(), 403),
    "URI truncated UTF-8": (b"/books/caf\xc3.png", b"GET", HOST.encode(), 403),
    "URI latin-1 name": (b"/books/caf\xe9.png?s=" + b"0" * 32, b"GET", HOST.encode(), 403),
    "signature not UTF-8": (b"/books/x.png?s=\xff\xfe", b"GET", HOST.encode(), 403),
    "method not UTF-8": (md5_signed("/books/x.png").encode(), b"G\xffT", HOST.encode(), 401),
    "host not UTF-8": (md5_signed("/books/x.png").encode(), b"GET", b"\xfe\xff.example", 403),
}


@pytest.mark.parametrize(("uri", "method", "host", "status"), GARBAGE.values(), ids=GARBAGE.keys())
def test_raw_garbage_header_values_are_denied(
    unlogged_stack: LocalStack, uri: bytes, method: bytes, host: bytes, status: int
) -> None:
    answer = raw_exchange(
        unlogged_stack.sidecar_port,
        b"GET /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"X-Original-URI: " + uri + b"\r\nX-Original-Method: " + method + b"\r\n"
        b"X-Original-Host: " + host + b"\r\nX-Real-IP: \x80\x81\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    result = next(line for line in head.split(b"\r\n") if line.startswith(b"X-Signature-Result"))
    assert result.partition(b": ")[2].decode() in REASONS
    assert body == b""


# --- health and metrics ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints(stack: LocalStack, path: str) -> None:
    reply = request(stack.sidecar_port, path, host="127.0.0.1")
    assert reply.status == 200


def test_metrics_served_on_metrics_listen(stack: LocalStack) -> None:
    with urllib.request.urlopen(stack.metrics_url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
    assert sum(samples(stack, "signed_url_build_info").values()) == 1
    before = sample(
        stack,
        "signed_url_verifications_total",
        source="public",
        scheme="md5-token",
        result="unsigned_allowed",
        decision="allow",
    )
    assert verify(stack, "/public/x.png?counted=1").status == 200
    after = sample(
        stack,
        "signed_url_verifications_total",
        source="public",
        scheme="md5-token",
        result="unsigned_allowed",
        decision="allow",
    )
    assert after - before == 1
    text = metrics_text(stack)
    for secret in TOKENS:
        assert secret not in text


def test_metrics_on_the_verify_listener_are_rendered_off_the_loop(tmp_path: Path) -> None:
    # metrics_listen may equal listen: the scrape is then answered by the verify protocol,
    # rendered in the offload pool, and its connection closed (nothing pipelined behind a
    # scrape waits for it).
    write_test_images(tmp_path / "images")
    one = LocalStack(tmp_path / "stack", "", tmp_path / "images")
    one.folder.mkdir()
    address = f"127.0.0.1:{one.sidecar_port}"
    one.config_path.write_text(
        sidecar_config(
            md5_source("books", "/books/", {"k": BOOKS_TOKEN}),
            server={"listen": address, "metrics_listen": address},
        )
    )
    try:
        one.start_sidecar()
        assert verify(one, md5_signed("/books/x.png")).status == 200
        answer = raw_exchange(
            one.sidecar_port,
            b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head
        assert b'signed_url_verifications_total{decision="allow"' in body
        assert answer.count(b"HTTP/1.1 ") == 1  # the pipelined /healthz was not answered
        head_only = raw_exchange(one.sidecar_port, b"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 200 ") and head_only.endswith(b"\r\n\r\n")
        assert verify(one, md5_signed("/books/x.png")).status == 200
    finally:
        one.stop()
