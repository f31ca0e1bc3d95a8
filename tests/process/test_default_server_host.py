"""The operator's one server block is nginx's default server (docs/security.md, "Hosts").

It then answers every Host, and the shipped snippet's ``X-Original-Host: $host`` is the
client's own name. A tenant's subtree signed on its host must not open unsigned through
a host-less source when the client names another host, an IP literal, or none at all:
these requests go through the real nginx with the shipped files, minus the shipped
catch-all server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.requests import HOST, raw_exchange, request
from tests.support.stacks import any_image_in, image_bytes, running_stack
from tests.support.tokens import BOOKS_TOKEN, md5_signed

CONFIG = sidecar_config(
    md5_source("tenant", "/books/", {"t": BOOKS_TOKEN}, hosts=[HOST]),
    md5_source("open", "/", mode="off"),  # everything else is public, on any host
)
TENANT_FILE = "/books/x.png"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder: Path = tmp_path_factory.mktemp("default-server")
    with running_stack(folder, CONFIG, catch_all=False) as running:
        yield running


def raw_get(stack: LocalStack, head: str) -> bytes:
    return raw_exchange(stack.nginx_port, head.encode() + b"Connection: close\r\n\r\n")


@pytest.mark.parametrize(
    "host",
    ["anything.else", "anything.else.", "127.0.0.1", "[::1]", f"{HOST}.evil", "IMAGE.example"],
)
def test_a_name_no_source_holds_gets_no_tenant_file(stack: LocalStack, host: str) -> None:
    reply = request(stack.nginx_port, TENANT_FILE, host=host)
    assert reply.status == 403, reply.headers
    assert not any_image_in(reply.body, stack)
    # ... signed or not: the host decides nothing it was not routed on.
    signed = request(stack.nginx_port, md5_signed(TENANT_FILE), host=host)
    assert signed.status == 403
    assert not any_image_in(signed.body, stack)


def test_an_absolute_request_line_naming_an_unknown_host(stack: LocalStack) -> None:
    answer = raw_get(stack, f"GET http://anything.else{TENANT_FILE} HTTP/1.1\r\nHost: {HOST}\r\n")
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert not any_image_in(answer, stack)


def test_http10_without_host_is_judged_on_the_server_name(stack: LocalStack) -> None:
    # nginx's $host is then the server's own name: the tenant's rules apply.
    answer = raw_get(stack, f"GET {TENANT_FILE} HTTP/1.0\r\n")
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:80]
    assert not any_image_in(answer, stack)
    signed = raw_get(stack, f"GET {md5_signed(TENANT_FILE)} HTTP/1.0\r\n")
    assert signed.startswith(b"HTTP/1.1 200 ")
    assert signed.endswith(image_bytes(stack, TENANT_FILE))


@pytest.mark.parametrize("host", [HOST, HOST.upper(), HOST + "."])
def test_the_tenant_host_keeps_its_rules(stack: LocalStack, host: str) -> None:
    unsigned = request(stack.nginx_port, TENANT_FILE, host=host)
    assert unsigned.status == 401
    assert not any_image_in(unsigned.body, stack)
    signed = request(stack.nginx_port, md5_signed(TENANT_FILE), host=host)
    assert (signed.status, signed.body) == (200, image_bytes(stack, TENANT_FILE))


@pytest.mark.parametrize("host", ["anything.else", "127.0.0.1", HOST])
def test_files_no_host_bound_source_holds_stay_public(stack: LocalStack, host: str) -> None:
    reply = request(stack.nginx_port, "/public/x.png", host=host)
    assert (reply.status, reply.body) == (200, image_bytes(stack, "/public/x.png"))
