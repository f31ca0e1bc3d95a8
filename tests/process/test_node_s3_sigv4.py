"""The Node.js ``s3-sigv4`` signer: botocore's presigned GET URLs for the same key, URL
and signing time (botocore's clock fixed at it), byte for byte, and accepted by the
sidecar's verifier, which signs the same URL.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/s3_sigv4.mjs``.
"""

from __future__ import annotations

import subprocess

import pytest

from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason
from tests.support.node_signers import call_signer, signer_output
from tests.support.paths import REPO
from tests.support.s3_signers import (
    KEY_ID,
    REGION,
    SECRET,
    botocore_signed,
    botocore_url,
    fix_botocore_clock,
    verifier_for,
)
from tests.support.scheme_contract import NOW, sign, verify

SIGNER = REPO / "examples" / "node" / "s3_sigv4.mjs"


def node_sign(url: str, **options: object) -> subprocess.CompletedProcess[str]:
    return call_signer(
        SIGNER,
        "presignS3Get",
        url,
        {"accessKeyId": KEY_ID, "secretAccessKey": SECRET, "region": REGION, **options},
    )


def signed_by_node(url: str, **options: object) -> str:
    return signer_output(
        SIGNER,
        "presignS3Get",
        url,
        {"accessKeyId": KEY_ID, "secretAccessKey": SECRET, "region": REGION, **options},
    )


@pytest.fixture
def botocore_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs at NOW."""
    fix_botocore_clock(monkeypatch, NOW)


def unsigned(url: str) -> str:
    """A presigned URL before its X-Amz-* parameters (botocore writes them last)."""
    return url.partition("X-Amz-Algorithm=")[0][:-1]


def check_against_the_sidecar(url: str, expires_in: int) -> None:
    """The sidecar's verifier accepts ``url`` and its signer writes the same URL."""
    verifier = verifier_for(url)
    assert verify(verifier, parse_url(url).uri, NOW + 1).reason is Reason.OK
    assert sign(verifier, unsigned(url), expires=NOW + expires_in, not_before=NOW) == url


@pytest.mark.usefixtures("botocore_at_now")
@pytest.mark.parametrize(
    ("endpoint", "style", "params"),
    [("http://127.0.0.1:8080", "path", {}),
     ("https://s3.example.com", "virtual", {"ResponseContentType": "image/webp"}),
     ("http://[::1]:9000", "path", {}),
     ("https://s3.example.com:443", "path", {}),
     ("https://s3.example.com:8443", "path",
      {"ResponseContentDisposition": 'attachment; filename="a b.jpg"'})],
)  # fmt: skip
def test_node_writes_botocores_url(endpoint: str, style: str, params: dict[str, str]) -> None:
    url = botocore_url(endpoint, style, expires_in=900, **params)
    assert signed_by_node(unsigned(url), time=NOW, expiresIn=900) == url
    check_against_the_sidecar(url, 900)


@pytest.mark.usefixtures("botocore_at_now")
def test_node_sorts_query_names_as_botocore_does() -> None:
    # "w" before "w2" and "a" before "a-b", though "w2=" sorts before "w=" as text.
    # (botocore keeps one value of a repeated name: none is repeated here.)
    query_url = "https://s3.example.com/books/a.jpg?w=400&w2=1&a-b=2&a=%C3%A9&a.c="
    url = botocore_signed(query_url, expires_in=604800)
    assert signed_by_node(query_url, time=NOW, expiresIn=604800) == url
    check_against_the_sidecar(url, 604800)


@pytest.mark.parametrize(
    ("url", "options", "problem"),
    [("https://s3.example.com/a.jpg", {"time": -1, "expiresIn": 60}, "unix seconds"),
     ("https://s3.example.com/a.jpg", {"time": 1.5, "expiresIn": 60}, "unix seconds"),
     ("https://s3.example.com/a.jpg", {"time": NOW, "expiresIn": 604801}, "604800"),
     ("https://s3.example.com/a.jpg", {"time": NOW, "expiresIn": 0}, "604800"),
     ("https://s3.example.com/a.jpg", {"time": NOW, "expiresIn": 60, "region": "EU"}, "region"),
     ("/books/a.jpg", {"time": NOW, "expiresIn": 60}, "absolute"),
     ("https://s3.example.com/a.jpg?w=a+b", {"time": NOW, "expiresIn": 60}, "encoding"),
     ("https://s3.example.com/a.jpg?w=%7e", {"time": NOW, "expiresIn": 60}, "encoding"),
     ("https://s3.example.com/a.jpg?w=%7E", {"time": NOW, "expiresIn": 60}, "encoding"),
     ("https://s3.example.com/a.jpg?w=%FF", {"time": NOW, "expiresIn": 60}, "encoding"),
     ("https://s3.example.com/a.jpg?w", {"time": NOW, "expiresIn": 60}, "encoding"),
     ("https://s3.example.com/a.jpg?w=1&&h=1", {"time": NOW, "expiresIn": 60}, "encoding"),
     ("https://s3.example.com/a.jpg?x-amz-date=1", {"time": NOW, "expiresIn": 60}, "X-Amz")],
)  # fmt: skip
def test_node_refuses_what_could_never_verify(
    url: str, options: dict[str, object], problem: str
) -> None:
    result = node_sign(url, **options)
    assert result.returncode != 0
    assert problem in result.stderr
