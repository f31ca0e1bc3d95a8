"""The Node.js ``bunny`` signer: BunnyWay's published vectors and ``sidecar sign``'s URLs,
byte for byte, accepted by the sidecar's verifier; and what it refuses.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/bunny.mjs``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme, VerifyRequest
from tests.support.node_signers import call_signer, signer_output
from tests.support.paths import REPO
from tests.support.scheme_contract import NOW, build_source, parse, sign

SIGNER = REPO / "examples" / "node" / "bunny.mjs"
VECTORS = json.loads((REPO / "tests" / "unit" / "schemes" / "vectors" / "bunny.json").read_text())
HOST = "https://token-tester.b-cdn.net"
SECRET = "node-bunny-zone-key-52"


def node_sign(url: str, **options: object) -> subprocess.CompletedProcess[str]:
    return call_signer(SIGNER, "signBunny", url, options)


def signed_by_node(url: str, **options: object) -> str:
    return signer_output(SIGNER, "signBunny", url, options)


def verifier(secret: str = SECRET) -> SourceScheme:
    return build_source("bunny", [KeyMaterial("k", secret=secret.encode())], prefix="/books/")


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["hs256"]["vectors"]
     if not v["ignoreParams"] and not v["isDirectory"]],
    ids=lambda v: v["name"],
)  # fmt: skip
def test_node_writes_bunnyways_vectors(vector: dict[str, Any]) -> None:
    query = f"?limit={vector['speedLimit']}" if vector["speedLimit"] else ""
    options = {
        "secret": VECTORS["key"],
        "expires": VECTORS["expires"],
        "userIp": vector["userIp"],
        "pathAllowed": vector["pathAllowed"],
        "countriesAllowed": vector["countriesAllowed"],
        "countriesBlocked": vector["countriesBlocked"],
    }
    assert signed_by_node(HOST + vector["path"] + query, **options) == vector["signedUrl"]


@pytest.mark.parametrize(
    ("url", "grant"),
    [
        ("/books/a.jpg", {}),
        ("/books/caf%C3%A9.jpg?w=400&h=600&q=a%20(b)", {}),
        ("/books/hls/a.ts?token_countries=CA%2CUS", {"prefix": "/books/hls/"}),
        ("/books/a.jpg", {"client_ip": "203.0.113.5"}),
        ("/books/a.jpg", {"client_ip": "2001:db8:1:2::9"}),
        ("/books/a.jpg", {"client_ip": "::ffff:203.0.113.5"}),
    ],
)
def test_node_writes_what_sidecar_sign_writes(url: str, grant: dict[str, Any]) -> None:
    source = verifier()
    ours = sign(source, url, expires=NOW + 600, **grant)
    options = {"userIp": grant.get("client_ip"), "pathAllowed": grant.get("prefix")}
    assert signed_by_node(url, secret=SECRET, expires=NOW + 600, **options) == ours
    request = VerifyRequest(parse(ours), NOW, 0, grant.get("client_ip"), country="CA")
    assert source.verify(request).reason is Reason.OK


@pytest.mark.parametrize(
    ("url", "options", "problem"),
    [
        ("/a.jpg", {"expires": -1}, "unix seconds"),
        ("/a.jpg", {"expires": 1.5}, "unix seconds"),
        ("/a.jpg?w=1&w=2", {"expires": 1}, "repeated"),
        ("/a.jpg?token=x", {"expires": 1}, "already carries 'token'"),
        ("/a.jpg", {"expires": 1, "userIp": "10.0.0.0/8"}, "IP address"),
        ("/a/b.jpg", {"expires": 1, "pathAllowed": "/c/"}, "pathAllowed"),
    ],
)
def test_node_refuses_what_could_never_verify(url: str, options: dict[str, object],
                                              problem: str) -> None:  # fmt: skip
    result = node_sign(url, secret=SECRET, **options)
    assert result.returncode != 0
    assert problem in result.stderr


@pytest.mark.parametrize("vector", [v for v in VECTORS["hs256"]["vectors"] if v["isDirectory"]],
                         ids=lambda v: v["name"])  # fmt: skip
def test_node_writes_bunnyways_path_form_vectors(vector: dict[str, Any]) -> None:
    query = f"?limit={vector['speedLimit']}" if vector["speedLimit"] else ""
    options = {
        "secret": VECTORS["key"],
        "expires": VECTORS["expires"],
        "isDirectory": True,
        "userIp": vector["userIp"],
        "countriesAllowed": vector["countriesAllowed"],
    }
    assert signed_by_node(HOST + vector["path"] + query, **options) == vector["signedUrl"]


@pytest.mark.parametrize(
    ("url", "grant"),
    [
        ("/books/hls/index.m3u8", {"prefix": "/books/hls/"}),
        ("/books/a.jpg?w=400", {"client_ip": "203.0.113.5"}),
    ],
)
def test_node_writes_the_path_form_sidecar_sign_writes(url: str, grant: dict[str, Any]) -> None:
    source = build_source("bunny", [KeyMaterial("k", secret=SECRET.encode())], prefix="/books/",
                          settings={"path_tokens": True})  # fmt: skip
    ours = sign(source, url, expires=NOW + 600, **grant)
    assert ours.startswith("/bcdn_token=HS256-")
    options = {"userIp": grant.get("client_ip"), "pathAllowed": grant.get("prefix")}
    node = signed_by_node(url, secret=SECRET, expires=NOW + 600, isDirectory=True, **options)
    assert node == ours
    assert node_sign("/books/a%20b.jpg", secret=SECRET, expires=1, isDirectory=True).returncode


def test_node_refuses_a_url_that_carries_a_path_token() -> None:
    result = node_sign("/a.jpg?bcdn_token=x", secret=SECRET, expires=1)
    assert result.returncode != 0 and "already carries 'bcdn_token'" in result.stderr
