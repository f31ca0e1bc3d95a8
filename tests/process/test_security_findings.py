"""Regression tests for the external review's findings that need the real processes: the
sidecar, and the real nginx where nginx is part of the finding."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import cloudfront_source, md5_source, sidecar_config, team_toml
from tests.support.figures import record
from tests.support.metrics import verifications_total
from tests.support.requests import HOST, raw_exchange, request, verify
from tests.support.stacks import StackFactory, write_test_images
from tests.support.tokens import BOOKS_TOKEN, md5_signed

pytestmark = pytest.mark.e2e

API_KEY = "review-api-key-" + "7" * 24
ORIGIN = f"http://{HOST}"


def config_text(*, acme_key: str = "") -> str:
    """md5-token images and a team for them; with ``acme_key``, a cloudfront source whose
    key (a PEM file in the stack's folder, ``.pub.pem`` beside it) signs for team acme."""
    sources = [md5_source("books", "/books/", {"k": BOOKS_TOKEN})]
    teams = [team_toml("books", "books", API_KEY)]
    if acme_key:
        keys = {"KREVIEW4096": (f"{acme_key}.pub.pem", acme_key)}
        sources.append(
            cloudfront_source("acme", "/secret/", keys, public_origin=ORIGIN, default_ttl=600)
        )
        teams.append(team_toml("acme", "acme", API_KEY))
    return sidecar_config(*sources, server={"clock_skew": 0}, signing={}, teams=teams)


@contextmanager
def stack_with(folder: Path, text: str, *, http_extra: str = "") -> Iterator[LocalStack]:
    images = folder / "images"
    write_test_images(images)
    stack = LocalStack(folder, text, images, nginx_http_extra=http_extra)
    with stack:
        yield stack


# --- 2. signing never stalls verification ----------------------------------------------------

CALLERS = 10
BATCH = 100
IMAGE_REQUESTS = 300
TIME_LIMIT = 40.0


def write_rsa_4096(folder: Path) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    key = folder / "acme-4096.pem"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    Path(f"{key}.pub.pem").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key.name


def call_batches(stack: LocalStack, stop: threading.Event, statuses: list[int]) -> None:
    body = orjson.dumps([f"{ORIGIN}/secret/x.png?n={n}" for n in range(BATCH)])
    url = f"{stack.signing_url}/public/team/acme/signUrls"
    while not stop.is_set():
        call = urllib.request.Request(url, data=body, headers={"X-Api-Key": API_KEY})
        try:
            with urllib.request.urlopen(call, timeout=60) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)


def test_signing_batches_with_a_4096_bit_key_do_not_stall_image_requests(tmp_path: Path) -> None:
    folder = tmp_path / "stack"
    folder.mkdir()
    key_name = write_rsa_4096(folder)
    with stack_with(folder, config_text(acme_key=key_name)) as stack:
        stop, statuses = threading.Event(), list[int]()
        callers = [
            threading.Thread(target=call_batches, args=(stack, stop, statuses), daemon=True)
            for _ in range(CALLERS)
        ]
        for caller in callers:
            caller.start()
        time.sleep(1.0)  # the batches are running
        latencies, answers = [], []
        deadline = time.monotonic() + TIME_LIMIT
        for n in range(IMAGE_REQUESTS):  # distinct URLs: the auth cache never answers
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            reply = request(stack.nginx_port, md5_signed(f"/books/x.png?n={n}"))
            latencies.append(time.perf_counter() - started)
            answers.append(reply.status)
        stop.set()
        for caller in callers:
            caller.join(timeout=120)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    record("image requests during 4096-bit signing batches", len(answers))
    record("URLs signed by concurrent batch callers", statuses.count(200) * BATCH)
    record("p99 of those image requests, in microseconds", round(p99 * 1e6))
    assert len(answers) >= 100, "too few image requests in the time limit to judge"
    assert set(answers) == {200}, sorted(set(answers))
    assert statuses and set(statuses) <= {200, 503}
    assert statuses.count(200) >= CALLERS  # every caller got batches signed meanwhile
    assert p99 < 0.050, f"p99 {p99 * 1000:.1f} ms"


# --- 4. long URIs: a denial, never a 500 -------------------------------------------------------


def test_a_uri_longer_than_the_parser_reads_is_denied_not_400(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(config_text(), nginx=False)
    reply = verify(stack, "/books/x.png?pad=" + "a" * 16_900)
    assert (reply.status, reply.headers["x-signature-result"]) == (403, "non_canonical")


def test_a_long_uri_through_nginx_with_large_header_buffers_is_denied(tmp_path: Path) -> None:
    # Operators raise large_client_header_buffers for long CloudFront URLs; nginx then
    # passes URIs the sidecar's parser refuses, and turned its 400 into a 500.
    with stack_with(
        tmp_path, config_text(), http_extra="    large_client_header_buffers 4 32k;\n"
    ) as stack:
        uri = md5_signed("/books/x.png?pad=" + "a" * 16_500)
        reply = request(stack.nginx_port, uri)
        assert reply.status == 403
        assert stack.result_for(reply.headers["x-request-id"]) == "non_canonical"


def test_an_8_kb_uri_is_cached_like_any_other(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(config_text())
    room = 8000 - len("GET  HTTP/1.1\r\n") - 40
    uri = md5_signed("/books/x.png?pad=" + "a" * (room - len("/books/x.png?pad=")))
    assert request(stack.nginx_port, uri).status == 200
    asked = verifications_total(stack)
    assert request(stack.nginx_port, uri).status == 200
    assert verifications_total(stack) == asked  # the second answer came from the auth cache
    errors = (stack.folder / "nginx" / "error.log").read_text()
    assert "not enough for cache key" not in errors


# --- 5. the signing API's expiresIn: ASCII digits only -----------------------------------------


@pytest.mark.parametrize("value", ["\u00b2", "\u2460", "\u0661\u0662", "\uff11", "1.5", "-1", ""])
def test_expires_in_that_is_not_ascii_digits_is_a_json_400(
    module_stacks: StackFactory, value: str
) -> None:
    # str.isdigit() took "²" for a digit and int() then failed: a plain-text 500.
    stack = module_stacks(config_text(), nginx=False)
    query = urllib.parse.urlencode({"url": f"{ORIGIN}/books/x.png", "expiresIn": value})
    call = urllib.request.Request(
        f"{stack.signing_url}/public/team/books/signUrl?{query}",
        headers={"X-Api-Key": API_KEY},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(call, timeout=5)
    assert caught.value.code == 400
    assert caught.value.headers["Content-Type"].startswith("application/json")
    assert "expiresIn" in orjson.loads(caught.value.read())["error"]


# --- 9. nothing secret or multi-line in the logs -----------------------------------------------


def test_with_the_sidecar_down_nginx_logs_no_signed_url(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(config_text())
    stack.stop_sidecar()
    uri = md5_signed("/books/x.png?w=1")
    assert request(stack.nginx_port, uri).status == 500  # fails closed
    signature = uri.rpartition("s=")[2]
    time.sleep(0.2)  # nginx writes its log lines after it answers
    for name in ("error.log", "access.log"):
        assert signature not in (stack.folder / "nginx" / name).read_text(), name


MALFORMED = [
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
    stack = fresh_stack(config_text(), nginx=False)
    sent = 0
    for _ in range(20):
        for port in (stack.signing_port, stack.metrics_port):
            for data in MALFORMED:
                raw_exchange(port, data)
                sent += 1
    time.sleep(0.2)
    lines = (stack.folder / "sidecar.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert not any("Traceback" in line for line in lines)
    library = [r for r in records if r["event"] == "library_error"]
    record("malformed requests sent to the signing and metrics listeners", sent)
    assert len(library) < sent  # throttled: a flood of bad requests is not a flood of lines


def test_metrics_on_the_verify_listener_are_rendered_off_the_loop(tmp_path: Path) -> None:
    # metrics_listen may equal listen: the scrape is then answered by the verify protocol,
    # rendered in the offload pool, and its connection closed (nothing pipelined behind a
    # scrape waits for it).
    images = tmp_path / "images"
    write_test_images(images)
    stack = LocalStack(tmp_path / "stack", config_text(), images)
    stack.folder.mkdir()
    address = f"127.0.0.1:{stack.sidecar_port}"
    stack.config_path.write_text(
        sidecar_config(
            md5_source("books", "/books/", {"k": BOOKS_TOKEN}),
            server={"listen": address, "metrics_listen": address},
        )
    )
    try:
        stack.start_sidecar()
        assert verify(stack, md5_signed("/books/x.png")).status == 200
        answer = raw_exchange(
            stack.sidecar_port,
            b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head
        assert b'signed_url_verifications_total{decision="allow"' in body
        assert answer.count(b"HTTP/1.1 ") == 1  # the pipelined /healthz was not answered
        head_only = raw_exchange(stack.sidecar_port, b"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 200 ") and head_only.endswith(b"\r\n\r\n")
        assert verify(stack, md5_signed("/books/x.png")).status == 200
    finally:
        stack.stop()
