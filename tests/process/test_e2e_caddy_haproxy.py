"""End to end through Caddy and HAProxy, each from its shipped files (caddy/Caddyfile,
haproxy/haproxy.cfg and its Lua) in front of the real sidecar: the table nginx passes
(tests/support/e2e_table.py), the host each routes on, spoofed forwarded headers and
client addresses, and a sidecar that does not answer.

The client sees no X-Signature-* header (both files keep the sidecar's headers from it),
so the reason is read from the sidecar's own counters, one request at a time.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.runtime.probes import PROBE_COOKIE, PROBE_PATH
from tests.support.configs import md5_source, sidecar_config
from tests.support.e2e_table import NON_CANONICAL, SERVED, SPOOFED, TAMPERED
from tests.support.front_proxies import (
    CADDYFILE,
    HOST,
    Front,
    ask,
    assert_denied,
    decided,
    running_front,
)
from tests.support.md5_sources import MAIN_SOURCES, REFERENCE_UNSIGNED, REFERENCE_URL
from tests.support.requests import raw_exchange, request
from tests.support.stacks import StackFactory, any_image_in, image_bytes, write_test_images
from tests.support.tokens import BOOKS_TOKEN, SECRET_TOKEN, md5_signed

HOSTED_TOKEN = "hosted-t0ken-5e1f"
# Bound to the host both files route on, and to a network no test client is in: unsigned,
# it is "missing" only if the host reached the sidecar (else the catch-all at "/" serves
# it); signed, "network" only if no client-sent address was believed.
HOSTED = md5_source(
    "hosted", "/other/", {"h1": HOSTED_TOKEN}, hosts=[HOST], networks=["203.0.113.0/24"]
)
PROXIES = ("caddy", "haproxy")


def config(proxy: str) -> str:
    return sidecar_config(*MAIN_SOURCES, HOSTED, server={"clock_skew": 0, "proxy": proxy})


@pytest.fixture(scope="module", params=PROXIES)
def front(
    request: pytest.FixtureRequest,
    shared_stacks: StackFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Front]:
    name: str = request.param
    stack = shared_stacks(config(name), nginx=False)
    with running_front(name, tmp_path_factory.mktemp(name), stack) as started:
        yield started


def test_the_caddyfile_is_as_caddy_fmt_writes_it() -> None:
    # Caddy warns at every start about a Caddyfile it would format otherwise.
    formatted = subprocess.run(["caddy", "fmt", str(CADDYFILE)], capture_output=True, check=True)
    assert formatted.stdout.decode() == CADDYFILE.read_text()


# --- the table nginx passes --------------------------------------------------------------------


def test_reference_url_is_served(front: Front) -> None:
    reply, reason = ask(front, REFERENCE_URL)
    assert (reply.status, reason) == (200, "ok")
    assert reply.body == image_bytes(front.stack, "/books/database-internals.jpg")


@pytest.mark.parametrize(("unsigned", "file"), SERVED.values(), ids=SERVED.keys())
def test_signed_url_serves_the_exact_file(front: Front, unsigned: str, file: str) -> None:
    reply, reason = ask(front, md5_signed(unsigned))
    assert (reply.status, reason) == (200, "ok")
    assert reply.body == image_bytes(front.stack, file)


@pytest.mark.parametrize(("uri", "reason"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_reference_url_is_denied(front: Front, uri: str, reason: str) -> None:
    reply, decided = ask(front, uri)
    assert_denied(front, reply, 401)
    assert decided == reason


def test_the_sources_own_deny_status_reaches_the_client(front: Front) -> None:
    reply, reason = ask(front, md5_signed("/secret/x.png", BOOKS_TOKEN))
    assert_denied(front, reply, 403)
    assert reason == "invalid"
    reply, reason = ask(front, md5_signed("/secret/x.png", SECRET_TOKEN))
    assert (reply.status, reason, reply.body) == (
        200,
        "ok",
        image_bytes(front.stack, "/secret/x.png"),
    )


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-raw"])
@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_uri_is_denied(front: Front, path: str, signed: bool) -> None:
    token = SECRET_TOKEN if path.startswith("/secret") else BOOKS_TOKEN
    reply, reason = ask(front, md5_signed(path, token) if signed else path)
    assert_denied(front, reply, 403)
    assert reason == "non_canonical"


@pytest.mark.parametrize(
    "names", [[name] for name in SPOOFED] + [list(SPOOFED)], ids=[*SPOOFED, "all"]
)
def test_client_sent_headers_change_nothing(front: Front, names: list[str]) -> None:
    headers = {name: SPOOFED[name] for name in names}
    reply, reason = ask(front, REFERENCE_UNSIGNED, headers=headers)
    assert_denied(front, reply, 401)
    assert reason == "missing"


def test_head_and_other_methods(front: Front) -> None:
    reply, reason = ask(front, md5_signed("/books/x.png?head=1"), method="HEAD")
    assert (reply.status, reason, reply.body) == (200, "ok", b"")
    for method in ("POST", "DELETE"):
        reply, reason = ask(front, md5_signed("/books/x.png?m=1"), method=method)
        assert_denied(front, reply, 401)
        assert reason == "method"


# Caddy's log has no field for the sidecar's reason: HAProxy's alone.
@pytest.mark.parametrize("front", ["haproxy"], indirect=True)
def test_haproxy_logs_the_sidecars_reason(front: Front) -> None:
    uri = REFERENCE_URL.replace("w=400", "w=402")
    reply, reason = ask(front, uri)
    assert (reply.status, reason) == (401, "invalid")
    line = f'GET "{uri}" 401 result=invalid'
    deadline = time.monotonic() + 5  # HAProxy writes the line after it answered
    while line not in (front.folder / "proxy.log").read_text():
        assert time.monotonic() < deadline, "HAProxy logged no line with the reason"
        time.sleep(0.02)


# What the shipped Lua sends, and nothing else (HAProxy's client adds its own three).
LUA_HEADERS = {"x-original-uri", "x-original-method", "x-original-host", "x-real-ip",
               "x-request-id", "x-original-referer", "cookie",
               "host", "accept", "user-agent"}  # fmt: skip


def test_what_reaches_the_sidecar(front: Front) -> None:
    """Seen through the sidecar's probe record (``sidecar doctor``'s): the profile's
    headers all arrive, with the client's cookies; through HAProxy, nothing else."""
    probe = secrets.token_hex(16)
    sent = {
        **SPOOFED,
        "Referer": "https://pages.example/",
        "Cookie": f"a=1; {PROBE_COOKIE}={probe}",
    }
    reply, reason = ask(front, md5_signed("/books/x.png?probe=1"), headers=sent)
    assert (reply.status, reason) == (200, "ok")
    answer = request(front.stack.sidecar_port, f"{PROBE_PATH}{probe}", host="127.0.0.1")
    record = json.loads(answer.body)
    assert (record["proxy"], record["missing"]) == (front.name, [])
    assert (record["path"], record["host"], record["method"]) == ("/books/x.png", HOST, "GET")
    received = {name.lower() for name in record["received"]}
    if front.name == "haproxy":
        assert received == LUA_HEADERS
    else:  # Caddy passes the client's headers on: the profile ignores the foreign ones
        assert {"x-original-uri", "x-real-ip", "cookie", "referer"} <= received


# --- hosts and client addresses ------------------------------------------------------------


@pytest.mark.parametrize("spelling", [HOST, HOST.upper(), f"{HOST}:80"])
def test_the_routed_host_reaches_a_host_bound_source(front: Front, spelling: str) -> None:
    reply, reason = ask(front, "/other/o.png", host=spelling)
    assert_denied(front, reply, 401)
    assert reason == "missing"  # the hosted source decided, not the unsigned catch-all


@pytest.mark.parametrize("host", ["evil.example.com", "image.example.com.evil", "127.0.0.1"])
def test_an_unknown_host_is_never_asked_and_gets_no_image(front: Front, host: str) -> None:
    reply, reason = ask(front, "/other/o.png", host=host)
    assert reason == "-"
    assert not any_image_in(reply.body, front.stack)
    # Caddy answers a host no site names with an empty 200; haproxy.cfg with a 404.
    assert reply.status == {"caddy": 200, "haproxy": 404}[front.name]


@pytest.mark.parametrize(
    "spoofed",
    [
        {},
        {"X-Forwarded-For": "203.0.113.9"},
        {"X-Real-IP": "203.0.113.9"},
        {
            "X-Forwarded-For": "203.0.113.9",
            "X-Real-IP": "203.0.113.9",
            "X-Forwarded-Host": HOST,
            "X-Original-Host": HOST,
        },
    ],
    ids=["none", "x-forwarded-for", "x-real-ip", "all"],
)
def test_the_client_address_is_the_peers(front: Front, spoofed: dict[str, str]) -> None:
    reply, reason = ask(front, md5_signed("/other/o.png", HOSTED_TOKEN), headers=spoofed)
    assert_denied(front, reply, 401)
    assert reason == "network"  # the peer (127.0.0.1) is outside 203.0.113.0/24


def test_caddy_trusted_proxies_hand_the_host_to_the_client(
    shared_stacks: StackFactory, tmp_path: Path
) -> None:
    """Why hosts need Caddy's default: with trusted_proxies covering the client, Caddy
    passes the client's X-Forwarded-Host on, and the sidecar routes on it; the
    client address stays the peer's (Caddy appends it: the rightmost entry)."""
    stack = shared_stacks(config("caddy"), nginx=False)
    trusted = {"\t\turi /verify\n": "\t\turi /verify\n\t\ttrusted_proxies 127.0.0.1/32\n"}
    with running_front("caddy", tmp_path, stack, trusted) as trusting:
        evil = {"X-Forwarded-Host": "evil.example.com", "X-Forwarded-For": "203.0.113.9"}
        reply, reason = ask(trusting, "/other/o.png", headers=evil)
        # The client's host reached the sidecar: routed on it, the hosted source is not
        # chosen (with the shipped file: "missing", above).
        assert (reply.status, reason) == (403, "no_source")
        reply, reason = ask(trusting, md5_signed("/other/o.png", HOSTED_TOKEN), headers={
            "X-Forwarded-For": "203.0.113.9"})  # fmt: skip
        assert (reply.status, reason) == (401, "network")


SIGNED_X = md5_signed("/books/x.png").encode()
ENCODED_NAME = md5_signed("/books/caf%C3%A9%20menu.png")
# Request lines and Host headers no client library sends, and what each proxy does with
# them: (status, reason decided) for caddy and haproxy; "-" is never asked.
RAW = {
    # Caddy passes the path as Go escapes it: raw UTF-8 arrives percent-encoded (the
    # spelling signed here); HAProxy refuses a raw byte above 0x7f itself.
    "raw utf-8": (
        ENCODED_NAME.replace("caf%C3%A9", "caf\u00e9").encode(),
        HOST,
        (200, "ok"),
        (400, "-"),
    ),
    "raw 0xff": (b"/books/\xff.png", HOST, (403, "non_canonical"), (400, "-")),
    # An absolute-form request line: Caddy routes on its authority (then the Host it
    # passes on), HAProxy refuses one that disagrees with the Host header.
    "authority other than host": (
        b"http://evil.example.com" + SIGNED_X,
        HOST,
        (200, "-"),
        (400, "-"),
    ),
    "authority the routed host": (
        f"http://{HOST}".encode() + SIGNED_X,
        "evil.example.com",
        (200, "ok"),
        (400, "-"),
    ),
    "no host": (SIGNED_X, None, (400, "-"), (404, "-")),
    "two hosts": (SIGNED_X, f"{HOST}\r\nHost: evil.example.com", (400, "-"), (400, "-")),
}


@pytest.mark.parametrize(("target", "host", "caddy", "haproxy"), RAW.values(), ids=RAW.keys())
def test_raw_request_lines_and_hosts(
    front: Front, target: bytes, host: str | None, caddy: tuple[int, str], haproxy: tuple[int, str]
) -> None:
    head = b"GET " + target + b" HTTP/1.1\r\n"
    head += b"" if host is None else f"Host: {host}\r\n".encode()
    answer, reason = decided(
        front, lambda: raw_exchange(front.port, head + b"Connection: close\r\n\r\n")
    )
    status = int(answer.split(b" ", 2)[1])
    expected = {"caddy": caddy, "haproxy": haproxy}[front.name]
    assert (status, reason) == expected
    assert any_image_in(answer, front.stack) == (status == 200 and reason == "ok")


@pytest.mark.parametrize(
    ("name", "listening", "status"),
    [("caddy", False, 502), ("caddy", True, 504), ("haproxy", False, 500)],
    ids=["caddy-down", "caddy-silent", "haproxy-down"],  # haproxy-silent: 4 s, left out
)
def test_a_sidecar_that_does_not_answer_fails_closed(
    name: str, listening: bool, status: int, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    write_test_images(images)
    absent = LocalStack(tmp_path / "sidecar", "", images)  # its port: nothing answers
    with socket.socket() as silent, running_front(name, tmp_path / name, absent) as started:
        if listening:  # accepts connections, never answers
            silent.bind(("127.0.0.1", absent.sidecar_port))
            silent.listen()
        reply = request(started.port, md5_signed("/books/x.png"))
    assert reply.status == status
    assert not any_image_in(reply.body, absent)
