"""The Node.js ``imgix`` and ``hmac-sha256`` signers: the same URLs as ours, and served.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/cli.mjs``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from imgix import UrlBuilder  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import Grant, SourceScheme
from tests.support.configs import sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.requests import HOST, fetch, fetch_with_reason
from tests.support.stacks import image_bytes, running_stack

CLI = REPO / "examples" / "node" / "cli.mjs"
ORIGIN = f"https://{HOST}"
TOKEN = "node-imgix-token-3e9a"
KID = "node-2026"
SECRET = "node-hmac-sha256-secret-71c4e0"
URIS = (
    "/books/x.png",
    "/books/x.png?",
    "/books/x.png?w=400&h=600&fit=crop",
    "/books/caf%C3%A9%20menu.png?txt=a%2Bb%20c&empty=",
)
HMAC_URIS = (
    "/secret/x.png",
    "/secret/x.png?",
    "/secret/x.png?w=400&h=600&fit=crop",
    "/secret/x.png?txt=a%2Bb%20c&empty=",
)


def node(*args: str) -> str:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    result = subprocess.run(
        [binary, str(CLI), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    text = sidecar_config(
        source_toml("books", "imgix", "/books/", {"k": {"secret": TOKEN}}),
        source_toml("acme", "hmac-sha256", "/secret/", {KID: {"secret": SECRET}}),
        server={"clock_skew": 0},
    )
    with running_stack(tmp_path_factory.mktemp("node-imgix-hmac"), text) as running:
        yield running


def verifier(stack: LocalStack, source_name: str) -> SourceScheme:
    source = config.load(stack.config_path).source(source_name)
    assert source is not None and source.signatures is not None
    return source.signatures


def ours(stack: LocalStack, source_name: str, url: str, expires: int | None) -> str:
    request = sign_request(url, Grant(expires=expires))
    return verifier(stack, source_name).sign(request).url


def served_path(uri: str) -> str:
    """The decoded file path a request URI names (what nginx serves)."""
    return uri.partition("?")[0].replace("%C3%A9", "é").replace("%20", " ")


@pytest.mark.parametrize("uri", URIS)
@pytest.mark.parametrize("with_expiry", [False, True])
def test_node_imgix_equals_ours_and_is_served(
    stack: LocalStack, uri: str, with_expiry: bool
) -> None:
    expires = int(time.time()) + 120 if with_expiry else None
    extra = (str(expires),) if expires is not None else ()
    signed = node("imgix", ORIGIN + uri, TOKEN, *extra)
    assert signed == ours(stack, "books", ORIGIN + uri, expires)
    status, body, reason = fetch_with_reason(stack, signed.removeprefix(ORIGIN))
    assert (status, reason) == (200, "ok"), signed
    assert body == image_bytes(stack, served_path(uri))


def test_node_imgix_equals_the_imgix_library() -> None:
    builder = UrlBuilder(HOST, sign_key=TOKEN, use_https=True, include_library_param=False)
    for params in ({}, {"w": 400, "txt64": "Hello, Wörld!"}, {"expires": 2_000_000_000, "w": 1}):
        expected: str = builder.create_url("/books/café menu.png", params)
        unsigned, mark, _ = expected.rpartition("&s=")
        unsigned = unsigned if mark else expected.rpartition("?s=")[0]
        assert node("imgix", unsigned, TOKEN) == expected


def test_node_imgix_expired_is_403(stack: LocalStack) -> None:
    signed = node("imgix", "/books/x.png", TOKEN, str(int(time.time()) - 5))
    status, _, reason = fetch_with_reason(stack, signed)
    assert (status, reason) == (403, "expired")


@pytest.mark.parametrize("uri", HMAC_URIS)
def test_node_hmac_sha256_equals_ours_and_is_served(stack: LocalStack, uri: str) -> None:
    expires = int(time.time()) + 120
    signed = node("hmac-sha256", ORIGIN + uri, KID, SECRET, str(expires))
    assert signed == ours(stack, "acme", ORIGIN + uri, expires)
    assert fetch(stack, signed.removeprefix(ORIGIN)) == (200, image_bytes(stack, "/secret/x.png"))
    tampered = signed.removeprefix(ORIGIN).replace("/secret/x.png", "/secret/y.png")
    status, _, reason = fetch_with_reason(stack, tampered)
    assert (status, reason) == (403, "invalid")


def test_node_hmac_sha256_expired_and_wrong_secret_are_403(stack: LocalStack) -> None:
    expired = node("hmac-sha256", "/secret/x.png", KID, SECRET, str(int(time.time()) - 5))
    status, _, reason = fetch_with_reason(stack, expired)
    assert (status, reason) == (403, "expired")
    forged = node("hmac-sha256", "/secret/x.png", KID, "not-the-secret", str(int(time.time()) + 60))
    status, _, reason = fetch_with_reason(stack, forged)
    assert (status, reason) == (403, "invalid")
