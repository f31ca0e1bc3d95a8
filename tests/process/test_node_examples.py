"""The Node.js examples sign URLs the sidecar accepts, and call the signing API.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/cli.mjs``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes import cloudfront_keys as keys
from tests.support.configs import cloudfront_source, md5_source, sidecar_config, team_toml
from tests.support.paths import REPO
from tests.support.requests import fetch
from tests.support.stacks import image_bytes, running_stack

CLI = REPO / "examples" / "node" / "cli.mjs"
ORIGIN = "https://image.example.com"
TOKEN = "node-example-token-0123456789"
API_KEY = "node-example-api-key"


def node(*args: str, env: dict[str, str] | None = None) -> str:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    result = subprocess.run(
        [binary, str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("node")
    keys_folder = folder / "keys"
    keys_folder.mkdir()
    for kind in ("rsa", "ecdsa"):
        private, public = keys.new_key_pair(kind)
        (keys_folder / f"{kind}.pem").write_bytes(private)
        (keys_folder / f"{kind}.pub.pem").write_bytes(public)
    public_keys = {
        "KRSANODE": str(keys_folder / "rsa.pub.pem"),
        "KECNODE": str(keys_folder / "ecdsa.pub.pem"),
    }
    config = sidecar_config(
        md5_source("books", "/books/", {"k": TOKEN}),
        cloudfront_source("acme", "/secret/", public_keys, public_origin=ORIGIN),
        server={"clock_skew": 0},
        signing={},
        teams=[team_toml("acme", "books", API_KEY)],
    )
    with running_stack(folder, config) as running:
        yield running


@pytest.mark.parametrize(
    "uri",
    ["/books/x.png", "/books/x.png?w=400&h=600", "/books/x.png?t=a%26b%3Dc&empty="],
)
def test_node_md5_token_urls_serve_the_image(stack: LocalStack, uri: str) -> None:
    signed = node("md5", ORIGIN + uri, TOKEN)
    status, body = fetch(stack, signed.removeprefix(ORIGIN))
    assert status == 200
    assert body == image_bytes(stack, "/books/x.png")
    tampered = signed.removeprefix(ORIGIN).replace("x.png", "y.png")
    assert fetch(stack, tampered)[0] == 401


def test_node_md5_token_matches_the_reference_value() -> None:
    # The documented reference value: md5(path + query + "wakanda123@").
    signed = node("md5", "/books/database-internals.jpg?w=400&h=600&fit=crop", "wakanda123@")
    assert signed.endswith("&s=7d0d58f62c945d0ca08269205228bbe7")


def test_node_md5_token_with_expiry(stack: LocalStack) -> None:
    signed = node("md5", ORIGIN + "/books/x.png", TOKEN, str(int(time.time()) + 60))
    assert fetch(stack, signed.removeprefix(ORIGIN))[0] == 200
    expired = node("md5", ORIGIN + "/books/x.png", TOKEN, str(int(time.time()) - 1))
    assert fetch(stack, expired.removeprefix(ORIGIN))[0] == 401


@pytest.mark.parametrize(
    ("key_id", "key_file", "algorithm"),
    [
        ("KRSANODE", "rsa.pem", "SHA1"),
        ("KRSANODE", "rsa.pem", "SHA256"),
        ("KECNODE", "ecdsa.pem", "SHA1"),
        ("KECNODE", "ecdsa.pem", "SHA256"),
    ],
)
def test_node_cloudfront_urls_serve_the_image(
    stack: LocalStack, key_id: str, key_file: str, algorithm: str
) -> None:
    expires = str(int(time.time()) + 120)
    key_path = str(stack.folder / "keys" / key_file)
    signed = node("cloudfront", ORIGIN + "/secret/x.png?w=1", key_id, key_path, expires, algorithm)
    status, body = fetch(stack, signed.removeprefix(ORIGIN))
    assert status == 200
    assert body == image_bytes(stack, "/secret/x.png")
    assert fetch(stack, signed.removeprefix(ORIGIN).replace("w=1", "w=2"))[0] == 403


def test_node_calls_the_signing_api(stack: LocalStack) -> None:
    signed = node("api", stack.signing_url, "acme", ORIGIN + "/books/x.png?w=9",
                  env={"SIGNING_API_KEY": API_KEY})  # fmt: skip
    assert signed.startswith(ORIGIN + "/books/x.png?w=9&expires=")  # a week, by default
    assert fetch(stack, signed.removeprefix(ORIGIN))[0] == 200
