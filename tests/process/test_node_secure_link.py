"""The Node.js example for ``nginx-secure-link`` signs what the sidecar (and nginx) accept.

Runs the machine's ``node`` on ``examples/node/cli.mjs secure-link``; the URLs go through
the shipped nginx to the real sidecar (the client is 127.0.0.1, which nginx passes as
``$remote_addr``), and equal what ``sidecar sign``'s scheme makes for the same grant.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes.base import KeyMaterial
from tests.support.configs import sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.requests import fetch_with_reason
from tests.support.scheme_contract import build_source, sign
from tests.support.stacks import image_bytes, running_stack

CLI = REPO / "examples" / "node" / "cli.mjs"
SECRET = "node-secure-link-secret-0123456789"


def node(*args: str) -> str:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    result = subprocess.run([binary, str(CLI), *args], capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    source = source_toml("secret", "nginx-secure-link", "/secret/", {"k": {"secret": SECRET}})
    config = sidecar_config(source, server={"clock_skew": 0})
    with running_stack(tmp_path_factory.mktemp("node-secure-link"), config) as running:
        yield running


def test_node_url_is_served_and_equals_the_sidecar_signer(stack: LocalStack) -> None:
    expires = int(time.time()) + 300
    url = node("secure-link", "https://image.example.com/secret/x.png?w=1", SECRET, str(expires))
    ours = build_source("nginx-secure-link", [KeyMaterial("k", secret=SECRET.encode())])
    same = sign(ours, "https://image.example.com/secret/x.png?w=1", expires=expires,
                client_ip="127.0.0.1")  # fmt: skip
    assert url == same
    status, body, reason = fetch_with_reason(stack, url.removeprefix("https://image.example.com"))
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/secret/x.png")


def test_node_url_for_another_address_or_expired_is_refused(stack: LocalStack) -> None:
    now = int(time.time())
    elsewhere = node("secure-link", "/secret/x.png", SECRET, str(now + 300), "203.0.113.9")
    assert fetch_with_reason(stack, elsewhere)[::2] == (403, "invalid")
    expired = node("secure-link", "/secret/x.png", SECRET, str(now - 60))
    assert fetch_with_reason(stack, expired)[::2] == (403, "expired")


def test_node_encoded_path_signs_the_decoded_uri(stack: LocalStack) -> None:
    # nginx's $uri is decoded: the demo's "/books/café menu.png" lives under /books/, so
    # the same shape is checked in-process against the scheme.
    expires = int(time.time()) + 300
    url = node("secure-link", "/secret/caf%C3%A9%20x.png", SECRET, str(expires))
    ours = build_source("nginx-secure-link", [KeyMaterial("k", secret=SECRET.encode())])
    assert url == sign(ours, "/secret/caf%C3%A9%20x.png", expires=expires, client_ip="127.0.0.1")
