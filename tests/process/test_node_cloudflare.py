"""The Node.js ``cloudflare`` signer: Cloudflare's Worker example's URLs (the vectors)
and ``sidecar sign``'s, byte for byte, and accepted by the sidecar's verifier.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/cloudflare.mjs``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.node_signers import call_signer, signer_output
from tests.support.paths import REPO
from tests.support.scheme_contract import NOW, build_source, sign, verify

SIGNER = REPO / "examples" / "node" / "cloudflare.mjs"
VECTORS = REPO / "tests" / "unit" / "schemes" / "vectors" / "cloudflare.json"
SECRET = "node-cloudflare-secret-31"


def node_sign(url: str, **options: object) -> subprocess.CompletedProcess[str]:
    return call_signer(SIGNER, "signCloudflare", url, options)


def signed_by_node(url: str, **options: object) -> str:
    return signer_output(SIGNER, "signCloudflare", url, options)


def verifier(secret: str = SECRET, max_age: int = 600, **settings: Any) -> SourceScheme:
    key = KeyMaterial("k", secret=secret.encode())
    return build_source("cloudflare", [key], settings={"max_age": max_age, **settings})


@pytest.mark.parametrize(
    "vector", json.loads(Path(VECTORS).read_text("utf-8"))["vectors"],
    ids=lambda v: v["description"],
)  # fmt: skip
def test_node_writes_the_worker_examples_url(vector: dict[str, Any]) -> None:
    unsigned = "https://cdn.example.com" + vector["expected"].partition("?")[0]
    node = signed_by_node(unsigned, secret=vector["secret"], time=vector["time"])
    assert node == "https://cdn.example.com" + vector["expected"]


@pytest.mark.parametrize("url", ["/books/a.jpg", "/books/caf%C3%A9.jpg?w=400&h=600", "/b?"])
@pytest.mark.parametrize("param", ["verify", "cf"])
def test_node_writes_what_sidecar_sign_writes(url: str, param: str) -> None:
    source = verifier(param=param)
    ours = sign(source, url, expires=NOW + 600)
    assert signed_by_node(url, secret=SECRET, time=NOW, param=param) == ours
    assert verify(source, ours, NOW + 1).reason is Reason.OK


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"time": -1}, "unix seconds"), ({"time": 1.5}, "unix seconds"),
     ({"time": 1, "param": "a b"}, "plain name")],
)  # fmt: skip
def test_node_refuses_what_could_never_verify(options: dict[str, object], problem: str) -> None:
    result = node_sign("/a.jpg", secret=SECRET, **options)
    assert result.returncode != 0
    assert problem in result.stderr
