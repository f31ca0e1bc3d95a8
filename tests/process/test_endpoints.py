"""``/healthz``, ``/readyz`` and ``/metrics`` answer alike on every listener that serves
them: the verify listener, the metrics listener when ``metrics_listen`` differs from
``listen``, the verify listener that also serves the metrics when they are the same, and
(``/healthz`` only) the signing API. Real ``sidecar serve`` processes, asked over loopback."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.requests import Reply, request, verify
from tests.support.stacks import StackFactory, write_test_images
from tests.support.tokens import BOOKS_TOKEN, md5_signed

SOURCES = md5_source("books", "/books/", {"k1": BOOKS_TOKEN})
PLAIN = ("text/plain", "no-store")
HEALTH = {"/healthz": b"ok\n", "/readyz": b"ready\n"}


@pytest.fixture(scope="module")
def apart(module_stacks: StackFactory) -> LocalStack:
    """``metrics_listen`` apart from ``listen`` (as every test stack), and the signing API."""
    return module_stacks(sidecar_config(SOURCES, signing={}), nginx=False)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """``metrics_listen`` equal to ``listen``: the verify listener serves the metrics too."""
    folder = tmp_path_factory.mktemp("shared")
    write_test_images(folder / "images")
    stack = LocalStack(folder / "stack", "", folder / "images")
    stack.folder.mkdir()
    address = f"127.0.0.1:{stack.sidecar_port}"
    server = {"listen": address, "metrics_listen": address}
    stack.config_path.write_text(sidecar_config(SOURCES, server=server))
    try:
        stack.start_sidecar()
        yield stack
    finally:
        stack.stop()


def ask(port: int, path: str, *, method: str = "GET", gzipped: bool = False) -> Reply:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    return request(port, path, method=method, host="127.0.0.1", headers=headers)


def headers_of(reply: Reply) -> tuple[str | None, ...]:
    """What a client or cache acts on: type, caching, and the encoding and its Vary."""
    return tuple(reply.headers.get(name) for name in
                 ("content-type", "cache-control", "vary", "content-encoding"))  # fmt: skip


def families(body: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(body.decode())}


def health_ports(apart: LocalStack, shared: LocalStack) -> dict[str, int]:
    return {
        "verify": apart.sidecar_port,
        "metrics": apart.metrics_port,
        "verify and metrics": shared.sidecar_port,
    }


@pytest.mark.parametrize("path", sorted(HEALTH))
def test_health_answers_are_the_same_on_every_listener(
    apart: LocalStack, shared: LocalStack, path: str
) -> None:
    ports = health_ports(apart, shared)
    if path == "/healthz":
        ports["signing"] = apart.signing_port
    for name, port in ports.items():
        reply = ask(port, path)
        assert (reply.status, headers_of(reply), reply.body) == (
            200, (*PLAIN, None, None), HEALTH[path]), name  # fmt: skip
        head = ask(port, path, method="HEAD")
        assert (head.status, headers_of(head), head.body) == (200, (*PLAIN, None, None), b""), name
        # A probe configured with a query string reaches the same endpoint.
        assert ask(port, path + "?from=probe").body == HEALTH[path], name


@pytest.mark.parametrize("gzipped", [False, True], ids=["identity", "gzip"])
def test_metrics_answers_are_the_same_on_every_listener_that_serves_them(
    apart: LocalStack, shared: LocalStack, gzipped: bool
) -> None:
    for stack in (apart, shared):
        assert verify(stack, md5_signed("/books/x.png")).status == 200
    expected = (CONTENT_TYPE_LATEST, "no-store", "Accept-Encoding", "gzip" if gzipped else None)
    seen = {}
    for name, port in {"metrics": apart.metrics_port, "verify": shared.sidecar_port}.items():
        reply = ask(port, "/metrics", gzipped=gzipped)
        assert (reply.status, headers_of(reply)) == (200, expected), name
        body = gzip.decompress(reply.body) if gzipped else reply.body
        assert b'signed_url_verifications_total{decision="allow",result="ok"' in body, name
        seen[name] = families(body)
        head = ask(port, "/metrics", method="HEAD", gzipped=gzipped)
        assert (head.status, headers_of(head), head.body) == (200, expected, b""), name
    assert seen["metrics"] == seen["verify"]
    assert {"signed_url_verifications", "signed_url_build_info"} <= seen["metrics"]


def test_each_listener_serves_only_its_own_routes(apart: LocalStack) -> None:
    counted = ask(apart.metrics_port, "/metrics").body
    # The verify listener has no /metrics when they are apart; the metrics listener never
    # decides (nor counts) a /verify, nor hands out a probe record.
    assert ask(apart.sidecar_port, "/metrics").status == 404
    uri = md5_signed("/books/x.png")
    headers = {"X-Original-URI": uri, "X-Original-Method": "GET", "X-Original-Host": "a"}
    other = request(apart.metrics_port, "/verify", host="127.0.0.1", headers=headers)
    assert (other.status, other.body, other.headers.get("x-signature-result")) == (404, b"", None)
    assert ask(apart.metrics_port, "/probe/" + "0" * 32).status == 404
    assert ask(apart.metrics_port, "/").status == 404
    after = ask(apart.metrics_port, "/metrics").body
    assert counts_of(after) == counts_of(counted)


def counts_of(body: bytes) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        if family.name == "signed_url_verifications"
        for sample in family.samples
    }


def test_an_oversized_request_to_the_metrics_listener_is_refused_not_counted(
    apart: LocalStack,
) -> None:
    before = counts_of(ask(apart.metrics_port, "/metrics").body)
    reply = ask(apart.metrics_port, "/healthz?pad=" + "a" * 20_000)
    assert (reply.status, reply.headers.get("connection")) == (400, "close")
    assert counts_of(ask(apart.metrics_port, "/metrics").body) == before
