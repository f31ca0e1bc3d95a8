"""``sidecar doctor`` through the real nginx and the real sidecar: it names the proxy
profile, the headers that arrived and the ones missing, and a probe never changes an
answer."""

from __future__ import annotations

import subprocess
import sys

import orjson

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.metrics import sample
from tests.support.requests import HOST, nginx_headers, request
from tests.support.stacks import PNG_MAGIC, StackFactory
from tests.support.tokens import BOOKS_TOKEN, md5_signed

BOOKS = md5_source("books", "/books/", {"k": BOOKS_TOKEN})
PROBE_ID = "0123456789abcdef" * 2


def doctor(stack: LocalStack, uri: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sidecar", "doctor", "--url", stack.nginx_url + uri,
               "--host", HOST, "--sidecar", stack.sidecar_url]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_doctor_names_the_missing_headers_of_a_wrong_profile(fresh_stack: StackFactory) -> None:
    # nginx sends the nginx profile's headers; the sidecar was left on traefik's.
    stack = fresh_stack(sidecar_config(BOOKS, server={"proxy": "traefik"}))
    signed = md5_signed("/books/x.png")
    result = doctor(stack, signed)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "Configured proxy profile: traefik" in out
    missing = next(line for line in out.splitlines() if line.strip().startswith("missing:"))
    for name in ("X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-For"):
        assert name in missing
    received = next(line for line in out.splitlines() if "headers received:" in line)
    assert "X-Original-URI" in received and "X-Original-Method" in received
    assert "headers of the 'nginx' profile" in out
    assert 'proxy = "nginx"' in out
    assert "answer: 403" in out  # what nginx answered the probe
    assert "403 non_canonical (deny)" in out  # what the sidecar decided, and why
    # The signature (the query) is never printed.
    assert signed.partition("?")[2] not in out
    assert sample(stack, "signed_url_proxy_headers_missing_total") == 1


def test_doctor_passes_a_well_configured_stack(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(sidecar_config(BOOKS))
    result = doctor(stack, md5_signed("/books/x.png"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configured proxy profile: nginx" in result.stdout
    assert "missing:           none" in result.stdout
    assert "path /books/x.png, host image.example.com, method GET" in result.stdout
    assert "source:            books" in result.stdout
    assert "200 ok (allow)" in result.stdout


def test_doctor_says_when_the_sidecar_never_saw_the_probe(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(sidecar_config(BOOKS))
    signed = md5_signed("/books/database-internals.jpg")
    assert request(stack.nginx_port, signed).status == 200  # now in nginx's auth cache
    result = doctor(stack, signed)
    assert result.returncode == 1
    assert "answer: 200" in result.stdout
    assert "never saw this probe" in result.stdout
    assert "auth cache" in result.stdout


def test_a_probe_never_changes_an_answer(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(sidecar_config(BOOKS))
    probe = {"Cookie": f"signed-url-probe={PROBE_ID}"}
    tampered = md5_signed("/books/x.png").replace("x.png", "database-internals.jpg")
    for uri, status in ((tampered, 401), ("/books/x.png", 401), (md5_signed("/books/x.png"), 200)):
        plain = request(stack.nginx_port, uri)
        probed = request(stack.nginx_port, uri, headers=probe)
        assert plain.status == probed.status == status
        assert (PNG_MAGIC in probed.body) is (status == 200)


def test_the_record_holds_names_never_values_and_is_read_once(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(sidecar_config(BOOKS), nginx=False)
    signed = md5_signed("/books/x.png?w=400")
    headers = {
        **nginx_headers(signed, client_ip="198.51.100.23"),
        "Cookie": f"a=1; signed-url-probe={PROBE_ID}",
    }
    reply = request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=headers)
    assert reply.status == 200
    found = request(stack.sidecar_port, f"/probe/{PROBE_ID}", host="127.0.0.1")
    assert found.status == 200
    record = orjson.loads(found.body)
    assert record["path"] == "/books/x.png"
    assert record["missing"] == []
    assert record["matching_profiles"] == ["nginx", "haproxy"]  # HAProxy's Lua: nginx's names
    assert (record["source"], record["result"], record["status"]) == ("books", "ok", 200)
    for secret in (signed.partition("?")[2], "198.51.100.23", "a=1"):
        assert secret.encode() not in found.body
    assert request(stack.sidecar_port, f"/probe/{PROBE_ID}", host="127.0.0.1").status == 404
    assert request(stack.sidecar_port, "/probe/../metrics", host="127.0.0.1").status == 404
