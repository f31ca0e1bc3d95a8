"""The Node.js example ``examples/node/gcdn.mjs`` (via ``cli.mjs gcdn``): the same URLs as
the known answers and as the sidecar's own signer, accepted by the real nginx and sidecar."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes.base import KeyMaterial
from tests.support.configs import sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.requests import fetch, fetch_with_reason
from tests.support.scheme_contract import build_source, sign
from tests.support.stacks import StackFactory, image_bytes

CLI = REPO / "examples" / "node" / "cli.mjs"
VECTORS: list[dict[str, Any]] = json.loads(
    (REPO / "tests" / "unit" / "schemes" / "vectors" / "gcdn.json").read_text("utf-8")
)["vectors"]
ORIGIN = "https://image.example.com"
KEY_NAME, KEY = "node-gcdn", "Gx3s0fN_7Kq2-Wm8ZpYc4A=="


def node(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    return subprocess.run(
        [binary, str(CLI), "gcdn", *args], capture_output=True, text=True, timeout=30, check=False
    )


def node_signed(*args: str) -> str:
    result = node(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {KEY_NAME: {"secret": KEY}}
    config = sidecar_config(
        source_toml("gbooks", "gcdn", "/books/", keys, public_origin=ORIGIN),
        server={"clock_skew": 0},
    )
    return shared_stacks(config)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: str(v["description"]).replace(" ", "-"))
def test_node_gives_every_known_answer(vector: dict[str, Any]) -> None:
    args = [vector["url_unsigned"], vector["key_name"], vector["key"], str(vector["expires"])]
    prefix = vector.get("url_prefix")
    if prefix is not None:
        args.append(vector["public_origin"] + prefix if prefix.startswith("/") else prefix)
    assert node_signed(*args) == vector["expected_signed_url"]


@pytest.mark.parametrize(
    ("uri", "file", "prefix"),
    [
        ("/books/x.png", "/books/x.png", None),
        ("/books/database-internals.jpg?w=400&h=600&fit=crop", "/books/database-internals.jpg",
         None),
        ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png", None),
        ("/books/x.png?w=1", "/books/x.png", "/books/"),
        ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png", "/books/caf%C3%A9"),
    ],
)  # fmt: skip
def test_node_urls_equal_ours_and_serve_the_image(
    stack: LocalStack, uri: str, file: str, prefix: str | None
) -> None:
    expires = int(time.time()) + 120
    args = [ORIGIN + uri, KEY_NAME, KEY, str(expires)]
    if prefix is not None:
        args.append(ORIGIN + prefix)
    signed = node_signed(*args)
    ours = build_source("gcdn", [KeyMaterial(KEY_NAME, secret=KEY.encode())], prefix="/books/",
                        settings={"public_origin": ORIGIN})  # fmt: skip
    assert signed == sign(ours, ORIGIN + uri, expires=expires, prefix=prefix)
    status, body = fetch(stack, signed.removeprefix(ORIGIN))
    assert (status, body) == (200, image_bytes(stack, file))
    tampered = signed.removeprefix(ORIGIN).replace(f"Expires={expires}", f"Expires={expires + 1}")
    status, body, reason = fetch_with_reason(stack, tampered)
    assert (status, reason) == (403, "invalid")


def test_node_expired_url_is_403_expired(stack: LocalStack) -> None:
    signed = node_signed(ORIGIN + "/books/x.png", KEY_NAME, KEY, str(int(time.time()) - 1))
    status, _, reason = fetch_with_reason(stack, signed.removeprefix(ORIGIN))
    assert (status, reason) == (403, "expired")


@pytest.mark.parametrize(
    "args",
    [
        ["https://image.example.com/books/x.png", KEY_NAME, KEY.rstrip("="), "1900000000"],
        ["https://image.example.com/books/x.png", KEY_NAME, "AAECAwQFBgcICQoLDA0ODxA=", "1"],
        ["/books/x.png", KEY_NAME, KEY, "1900000000"],  # not absolute
        ["https://image.example.com/books/x.png", KEY_NAME, KEY, "1", ORIGIN + "/secret/"],
    ],
)
def test_node_refuses_what_would_never_verify(args: list[str]) -> None:
    result = node(*args)
    assert result.returncode != 0
    assert result.stdout == ""
