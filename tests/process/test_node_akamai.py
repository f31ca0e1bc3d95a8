"""The Node.js example ``examples/node/akamai.mjs`` (via ``cli.mjs akamai``): the same tokens
as ``akamai-edgeauth`` and as the sidecar's own signer, accepted by the real nginx and
sidecar."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes.base import KeyMaterial
from tests.support.configs import sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.reference_signers import library_tokens
from tests.support.requests import fetch, fetch_with_reason
from tests.support.scheme_contract import build_source, parse, sign
from tests.support.stacks import StackFactory, image_bytes

CLI = REPO / "examples" / "node" / "cli.mjs"
ORIGIN = "https://image.example.com"
KEY = "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9"


def node(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    return subprocess.run(
        [binary, str(CLI), "akamai", *args], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


def node_signed(*args: str) -> str:
    result = node(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    config = sidecar_config(
        source_toml("edge", "akamai", "/books/", {"node-key": {"secret": KEY}}),
        server={"clock_skew": 0},
    )
    return shared_stacks(config)


@pytest.mark.parametrize(
    ("uri", "file", "acl"),
    [
        ("/books/x.png", "/books/x.png", None),
        ("/books/database-internals.jpg?w=400&h=600", "/books/database-internals.jpg", None),
        ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png", None),
        ("/books/x.png?w=1", "/books/x.png", "/books/*"),
        ("/books/database-internals.jpg", "/books/database-internals.jpg", "/books/*.jpg"),
    ],
)
def test_node_tokens_equal_the_librarys_and_ours_and_serve_the_image(
    stack: LocalStack, uri: str, file: str, acl: str | None
) -> None:
    expires = int(time.time()) + 120
    args = [ORIGIN + uri, KEY, str(expires)] + ([acl] if acl is not None else [])
    signed = node_signed(*args)
    # A URL token signs the path as the URL carries it, escapes and all (as the edge does).
    spec = {"acl": [acl]} if acl is not None else {"url": uri.partition("?")[0]}
    library = library_tokens([{"key": KEY, "expires": expires, **spec}])[0]
    token = parse(signed.removeprefix(ORIGIN)).get("__token__")
    assert token is not None and token.value == library
    verifier = build_source("akamai", [KeyMaterial("node-key", secret=KEY.encode())])
    assert signed == sign(verifier, ORIGIN + uri, expires=expires, resource=acl)
    status, body = fetch(stack, signed.removeprefix(ORIGIN))
    assert (status, body) == (200, image_bytes(stack, file))
    tampered = signed.removeprefix(ORIGIN).replace(f"exp={expires}", f"exp={expires + 1}")
    assert fetch_with_reason(stack, tampered)[::2] == (403, "invalid")


def test_node_expired_token_is_403_expired(stack: LocalStack) -> None:
    signed = node_signed(ORIGIN + "/books/x.png", KEY, str(int(time.time()) - 1))
    assert fetch_with_reason(stack, signed.removeprefix(ORIGIN))[::2] == (403, "expired")


@pytest.mark.parametrize(
    "args",
    [
        [ORIGIN + "/books/x.png", KEY[:-1], "1900000000"],  # odd hex
        [ORIGIN + "/books/x.png", "ab" * 8, "1900000000"],  # too short
        [ORIGIN + "/books/x.png", KEY, "soon"],
        [ORIGIN + "/books/x.png", KEY, "1900000000", "/books/~*"],
    ],
)
def test_node_refuses_what_would_never_verify(args: list[str]) -> None:
    result = node(*args)
    assert result.returncode != 0
    assert result.stdout == ""
