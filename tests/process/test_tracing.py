"""``[tracing]`` end to end: a client's ``traceparent`` through the shipped nginx files
into the sidecar's verify span, spans for sign and reload, received by a local OTLP/HTTP
receiver; nothing secret exported; and a collector that hangs or is absent never slows
``/verify``."""

from __future__ import annotations

import http.client
import json
import secrets
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import free_port
from tests.support.configs import md5_source, sidecar_config, team_toml
from tests.support.front_proxies import running_front
from tests.support.otlp_receiver import Receiver, otlp_receiver
from tests.support.requests import HOST, fetch, nginx_headers, request
from tests.support.stacks import StackFactory, reload_and_wait
from tests.support.tokens import BOOKS_TOKEN, md5_signed, signature_of

API_KEY = "k-" + "t" * 40
SOURCES = (md5_source("books", "/books/", {"2026-11": BOOKS_TOKEN}, mode="enforce"),)


def traced_config(endpoint: str) -> str:
    config = sidecar_config(*SOURCES, signing={}, teams=[team_toml("acme", "books", API_KEY)])
    return config + f'\n[tracing]\notlp_endpoint = "{endpoint}"\nservice_name = "images"\n'


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as found:
        yield found


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def test_the_clients_trace_continues_into_the_verify_span(
    fresh_stack: StackFactory, receiver: Receiver
) -> None:
    stack = fresh_stack(traced_config(receiver.endpoint))
    signed = md5_signed("/books/x.png?w=1")
    tampered = md5_signed("/books/x.png?w=2").replace("w=2", "w=3")
    asked = {}
    for uri in (signed, tampered):
        header, trace_id, span_id = traceparent()
        status, _ = fetch(stack, uri, headers={"traceparent": header})
        asked[trace_id] = (status, span_id, uri)
    assert [status for status, _, _ in asked.values()] == [200, 401]
    spans = {span.trace_id: span for span in receiver.wait_for("verify", 2)}
    assert set(spans) == set(asked)  # the client's trace ids, through nginx
    allowed, denied = (spans[trace_id] for trace_id in asked)
    for span, (_, span_id, _) in zip((allowed, denied), asked.values(), strict=True):
        assert span.parent_span_id == span_id
        assert span.resource["service.name"] == "images"
    common = {"sidecar.source": "books", "sidecar.scheme": "md5-token"}
    assert allowed.attributes == common | {
        "sidecar.result": "ok",
        "sidecar.decision": "allow",
        "sidecar.key_id": "2026-11",
        "http.response.status_code": 200,
    }
    assert denied.attributes == common | {
        "sidecar.result": "invalid",
        "sidecar.decision": "deny",
        "http.response.status_code": 401,
    }
    exported = b"".join(receiver.bodies)
    for _, _, uri in asked.values():  # neither the query nor the signature, in any form
        for secret in (uri.partition("?")[2], signature_of(uri), bytes.fromhex(signature_of(uri))):
            assert (secret if isinstance(secret, bytes) else secret.encode()) not in exported
    assert b"x.png" not in exported


def test_no_traceparent_starts_a_trace_and_an_unsampled_one_makes_no_span(
    fresh_stack: StackFactory, receiver: Receiver
) -> None:
    stack = fresh_stack(traced_config(receiver.endpoint))
    unsampled, dropped_trace, _ = traceparent()
    unsampled = unsampled[:-2] + "00"  # the client's flags: not sampled
    assert (
        fetch(stack, md5_signed("/books/x.png?n=1"), headers={"traceparent": unsampled})[0] == 200
    )
    assert fetch(stack, md5_signed("/books/x.png?own=1"))[0] == 200
    (span,) = receiver.wait_for("verify")  # the second request's: the first made none
    assert span.parent_span_id == "" and len(span.trace_id) == 32
    assert span.trace_id != dropped_trace


def test_caddy_passes_the_clients_trace_on(
    fresh_stack: StackFactory, receiver: Receiver, tmp_path: Path
) -> None:
    config = traced_config(receiver.endpoint).replace(
        "[signing]", '[server]\nproxy = "caddy"\n\n[signing]'
    )
    stack = fresh_stack(config, nginx=False)
    header, trace_id, span_id = traceparent()
    with running_front("caddy", tmp_path / "caddy", stack) as front:
        reply = request(front.port, md5_signed("/books/x.png?c=1"), headers={"traceparent": header})
    assert reply.status == 200
    (span,) = receiver.wait_for("verify")
    assert (span.trace_id, span.parent_span_id) == (trace_id, span_id)
    assert span.attributes["sidecar.result"] == "ok"


def test_each_worker_exports_its_own_spans(fresh_stack: StackFactory, receiver: Receiver) -> None:
    config = traced_config(receiver.endpoint).replace(
        "[signing]", "[server]\nworkers = 2\n\n[signing]"
    )
    stack = fresh_stack(config, nginx=False)
    deadline = time.monotonic() + 20
    pids: set[int] = set()
    while len(pids) < 2:  # the kernel spreads new connections over the two listeners
        assert time.monotonic() < deadline, pids
        verify_latencies(stack.sidecar_port, 5)
        time.sleep(0.2)
        pids = {span.resource["process.pid"] for span in receiver.spans if span.name == "verify"}
    assert (
        stack.sidecar is not None and stack.sidecar.pid not in pids
    )  # workers, not the supervisor


def test_sign_and_reload_have_spans(fresh_stack: StackFactory, receiver: Receiver) -> None:
    config = traced_config(receiver.endpoint)
    stack = fresh_stack(config, nginx=False)
    header, trace_id, span_id = traceparent()
    url = "https://image.example.com/books/x.png?w=1"
    query = urllib.parse.urlencode({"url": url})
    request = urllib.request.Request(f"{stack.signing_url}/public/team/acme/signUrl?{query}")
    request.add_header("X-Api-Key", API_KEY)
    request.add_header("traceparent", header)
    with urllib.request.urlopen(request, timeout=10) as response:
        signed = json.loads(response.read())["signedUrl"]
    (span,) = receiver.wait_for("sign")
    assert (span.trace_id, span.parent_span_id) == (trace_id, span_id)
    assert span.attributes == {
        "sidecar.team": "acme",
        "sidecar.source": "books",
        "sidecar.scheme": "md5-token",
        "http.response.status_code": 200,
    }
    reload_and_wait(stack, config.replace('"images"', '"images2"'), "success")
    (span,) = receiver.wait_for("reload")
    assert span.attributes == {"sidecar.result": "success", "sidecar.source_count": 1}
    exported = b"".join(receiver.bodies)
    assert API_KEY.encode() not in exported and signature_of(signed).encode() not in exported


def verify_latencies(port: int, count: int) -> list[float]:
    """Seconds each of ``count`` /verify requests took, one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = nginx_headers(md5_signed("/books/x.png?slow=1"), host=HOST)
    headers["traceparent"] = traceparent()[0]
    took = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/verify", headers=headers)
        response = connection.getresponse()
        response.read()
        took.append(time.perf_counter() - started)
        assert response.status == 200
    connection.close()
    return took


@pytest.mark.parametrize("collector", ["hangs", "absent"])
def test_a_dead_collector_never_slows_verify(fresh_stack: StackFactory, collector: str) -> None:
    with otlp_receiver(silent=True) as silent:
        endpoint = silent.endpoint if collector == "hangs" else f"http://127.0.0.1:{free_port()}"
        stack = fresh_stack(traced_config(endpoint), nginx=False)
        # More spans than the queue holds, over more than two export rounds: exports
        # that held the loop would stall a request for their timeout (5 s).
        started = time.monotonic()
        took = verify_latencies(stack.sidecar_port, 6000)
        while time.monotonic() - started < 2.5:
            took += verify_latencies(stack.sidecar_port, 200)
        assert max(took) < 0.5, max(took)
        if collector == "hangs":
            assert silent.posts >= 1  # the exporter was waiting on it all along
        assert stack.sidecar is not None
        stopped = time.monotonic()
        stack.sidecar.send_signal(signal.SIGTERM)
        stack.sidecar.wait(timeout=10)
        assert time.monotonic() - stopped < 5  # the last export waits 2 s at most
