"""Hostile hosts (docs/security.md): the host a request is routed on has one spelling, and a host
that is not a valid ASCII host name is denied, never case-folded into another host.

Each row is decided by the real sidecar process, as each proxy profile hands it the host;
the rows marked for nginx also go through the real nginx with the shipped config.
"""

from __future__ import annotations

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.metrics import verifications_total
from tests.support.requests import HOST, raw_exchange, request
from tests.support.stacks import StackFactory, any_image_in, image_bytes
from tests.support.tokens import BOOKS_TOKEN, md5_signed

TENANT_TOKEN = "tenant-t0ken-7b1d"


def config(proxy: str) -> str:
    return sidecar_config(
        md5_source("tenant", "/books/", {"t": BOOKS_TOKEN}, hosts=[HOST]),
        md5_source("static", "/", hosts=["static.kodak.com"], mode="off"),
        md5_source("v6", "/books/", {"v": TENANT_TOKEN}, hosts=["[2001:db8::1]"]),
        server={"proxy": proxy},
    )


UNSIGNED = "/books/x.png"
KELVIN = "\u212a"  # KELVIN SIGN: str.lower() turns it into an ASCII "k"

# (host header value, status, reason): what /verify must answer for UNSIGNED.
HOSTS = [
    (HOST, 401, "missing"),  # the tenant's rules
    (HOST.upper(), 401, "missing"),
    (HOST + ".", 401, "missing"),  # one trailing dot is the same host
    (HOST + ":8080", 401, "missing"),
    (HOST + ".:443", 401, "missing"),
    ("static.kodak.com", 200, "unsigned_allowed"),  # the control: signing off there
    (f"static.{KELVIN}odak.com", 403, "non_canonical"),  # was folded into static.kodak.com
    (f"{HOST}..", 403, "non_canonical"),
    ("image..example.com", 403, "non_canonical"),
    ("image.example.com:80:80", 403, "non_canonical"),
    ("image.example.com:http", 403, "non_canonical"),
    ("image example.com", 403, "non_canonical"),
    ("user@static.kodak.com", 403, "non_canonical"),
    ("[::1", 403, "non_canonical"),
    ("ima\u0261e.example.com", 403, "non_canonical"),  # LATIN SMALL LETTER SCRIPT G
    ("[2001:db8::1]", 401, "missing"),  # an IPv6 literal routes, in its compressed form
    ("[2001:DB8:0::1]:8443", 401, "missing"),
    ("other.example.com", 403, "no_source"),
    ("", 403, "no_source"),  # no host: host-bound sources never match
]


@pytest.fixture(scope="module")
def stacks(shared_stacks: StackFactory) -> dict[str, LocalStack]:
    return {
        proxy: shared_stacks(config(proxy), nginx=proxy == "nginx")
        for proxy in ("nginx", "traefik", "envoy")
    }


def ask(stack: LocalStack, proxy: str, host: str) -> tuple[int, str]:
    """Ask /verify for UNSIGNED as ``proxy`` would, with ``host`` as its host header."""
    headers: dict[str, str | bytes]
    if proxy == "nginx":
        headers = {"X-Original-URI": UNSIGNED, "X-Original-Method": "GET"}
        headers["X-Original-Host"] = host.encode()  # raw UTF-8 bytes, as nginx passes them
        path, host_header = "/verify", "127.0.0.1"
    elif proxy == "traefik":
        headers = {"X-Forwarded-Uri": UNSIGNED, "X-Forwarded-Method": "GET"}
        headers["X-Forwarded-Host"] = host.encode()
        path, host_header = "/verify", "127.0.0.1"
    else:  # envoy: the original request is the check request itself
        headers, path, host_header = {}, "/verify" + UNSIGNED, host
    headers["Host"] = host_header.encode()
    reply = request(stack.sidecar_port, path, host=None, headers=headers)
    return reply.status, reply.headers.get("x-signature-result", "")


# Every profile that reads a host; an HTTP/1.1 check request (envoy) always has a Host.
CASES = [
    (proxy, *row)
    for proxy in ("nginx", "traefik", "envoy")
    for row in HOSTS
    if proxy != "envoy" or row[0]
]


@pytest.mark.parametrize(
    ("proxy", "host", "status", "reason"),
    CASES,
    ids=[f"{case[0]}-{case[1] or 'empty'}" for case in CASES],
)
def test_hostile_host(
    stacks: dict[str, LocalStack], proxy: str, host: str, status: int, reason: str
) -> None:
    assert ask(stacks[proxy], proxy, host) == (status, reason)


def test_the_tenant_rules_still_allow_its_signed_urls(stacks: dict[str, LocalStack]) -> None:
    stack = stacks["nginx"]
    signed = md5_signed(UNSIGNED)
    reply = request(stack.nginx_port, signed, host=HOST.upper() + ".")
    assert (reply.status, reply.body) == (200, image_bytes(stack, UNSIGNED))


# --- through nginx, with the shipped config ------------------------------------------------


@pytest.mark.parametrize(
    ("host_header", "status"),
    [
        ("evil.example", 401),
        ("static.kodak.com", 401),
        (f"static.{KELVIN}odak.com", 401),
        (HOST + ".evil", 401),
        ("", 400),  # nginx refuses an empty Host itself
    ],
)
def test_absolute_form_request_line_is_judged_on_the_host_nginx_routed_on(
    stacks: dict[str, LocalStack], host_header: str, status: int
) -> None:
    # nginx routes "GET http://image.example.com/..." on the request line's host whatever
    # the Host header says; the sidecar must judge it with that host's rules (the
    # tenant's), not the Host header's (signing off for static.kodak.com).
    stack = stacks["nginx"]
    head = f"GET http://{HOST}{UNSIGNED} HTTP/1.1\r\nHost: {host_header}\r\n"
    answer = raw_exchange(stack.nginx_port, head.encode() + b"Connection: close\r\n\r\n")
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
    assert not any_image_in(answer, stack)


@pytest.mark.parametrize("host_header", [HOST.upper(), HOST + ".", HOST + ":80", f"{HOST}.:80"])
def test_host_spellings_nginx_accepts_get_the_tenant_rules(
    stacks: dict[str, LocalStack], host_header: str
) -> None:
    stack = stacks["nginx"]
    reply = request(stack.nginx_port, UNSIGNED, host=host_header)
    assert reply.status == 401
    assert not any_image_in(reply.body, stack)


@pytest.mark.parametrize("host_header", [f"static.{KELVIN}odak.com", "static.kodak.com"])
def test_other_hosts_never_reach_the_sidecar_through_the_shipped_config(
    stacks: dict[str, LocalStack], host_header: str
) -> None:
    stack = stacks["nginx"]
    asked = verifications_total(stack)
    # The default server: 444, before any verification.
    reply = request(stack.nginx_port, UNSIGNED, host=None, headers={"Host": host_header.encode()})
    assert reply.status == 0 and not reply.body
    assert verifications_total(stack) == asked
