"""The Node.js ``thumbor`` signer: libthumbor's URLs, byte for byte, and served by nginx.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/cli.mjs``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from libthumbor import CryptoURL  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar.core import canonical
from sidecar.devtools.demo import png
from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import sidecar_config, source_toml
from tests.support.paths import REPO
from tests.support.requests import fetch_with_reason
from tests.support.stacks import running_stack

CLI = REPO / "examples" / "node" / "cli.mjs"
KEY = "node-thumbor-security-key-51d"
OPTIONS: tuple[dict[str, Any], ...] = (
    {"image_url": "books/a.jpg"},
    {"image_url": "books/a.jpg", "width": 300, "height": 200, "smart": True},
    {
        "image_url": "books/a.jpg",
        "width": 300,
        "height": 200,
        "fit_in": True,
        "flip": True,
        "filters": ["quality(80)", "round_corner(20|20,0,0,0)"],
        "crop": ((1, 2), (3, 4)),
        "halign": "left",
        "valign": "top",
        "trim": ("top-left", 5),
        "meta": True,
    },
    {"image_url": "books/caf%C3%A9%20menu.png", "width": 120},
    {"image_url": "books/a.jpg?v=2", "width": 64},
)


def node(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    result = subprocess.run(
        [binary, str(CLI), *args], capture_output=True, text=True, timeout=30, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def library(key: str, **options: Any) -> str:
    url: str = CryptoURL(key=key.encode()).generate(**options)
    return url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    source = source_toml("thumbs", "thumbor", "/thumbs/", {"t1": {"secret": KEY}})
    with running_stack(tmp_path_factory.mktemp("node-thumbor"), sidecar_config(source)) as up:
        yield up


def place(stack: LocalStack, uri: str) -> bytes:
    parsed = canonical.parse(uri)
    assert parsed is not None, uri
    data = png(5 + len(uri) % 40, 5, (20, len(uri) % 256, 200))
    target = stack.images / parsed.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


@pytest.mark.parametrize("options", OPTIONS)
def test_node_equals_libthumbor_and_is_served(stack: LocalStack, options: dict[str, Any]) -> None:
    expected = library(KEY, **options)
    rest = expected.split("/", 2)[2]
    signed = node("thumbor", KEY, rest).stdout.strip()
    assert signed == expected
    uri = "/thumbs" + signed
    data = place(stack, uri)
    assert fetch_with_reason(stack, uri) == (200, data, "ok")


@pytest.mark.parametrize("key", ["clé-sécurité-€", "k", "a" * 100])
def test_node_keys_are_utf8_like_thumbors_server(key: str) -> None:
    # libthumbor given the UTF-8 bytes is what thumbor's server computes for a text key.
    rest = "300x200/books/a.jpg"
    expected = library(key, image_url="books/a.jpg", width=300, height=200)
    assert node("thumbor", key, rest).stdout.strip() == expected


def test_node_with_another_key_is_403(stack: LocalStack) -> None:
    uri = "/thumbs" + node("thumbor", "not-the-key", "300x200/books/a.jpg").stdout.strip()
    data = place(stack, uri)
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (403, "invalid")
    assert body != data


@pytest.mark.parametrize("rest", ["unsafe/300x200/books/a.jpg", "/300x200/books/a.jpg", ""])
def test_node_refuses_what_would_never_verify(rest: str) -> None:
    result = node("thumbor", KEY, rest, check=False)
    assert result.returncode != 0 and not result.stdout
    assert KEY not in result.stderr
