"""``cloudfront`` signed cookies end to end (docs/cookies.md): cookies built with botocore's
``CloudFrontSigner`` as AWS documents them, and by the Node example, through the shipped
nginx (which passes the client's ``Cookie`` to the sidecar) and the real sidecar."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes import cloudfront_keys as keys
from tests.support.configs import cloudfront_source, sidecar_config
from tests.support.metrics import verifications_total
from tests.support.paths import REPO
from tests.support.requests import fetch, fetch_with_reason
from tests.support.stacks import image_bytes, running_stack

ORIGIN = "https://image.example.com"
KEY_ID, OTHER_KEY_ID = "KBOOKSCOOKIE", "KSECRETCOOKIE"
UNDER_PREFIX = ["/books/x.png", "/books/database-internals.jpg", "/books/caf%C3%A9%20menu.png"]
CLI = REPO / "examples" / "node" / "cli.mjs"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("cloudfront-cookies-e2e")
    for name in ("books", "secret"):
        private, public = keys.new_key_pair("rsa")
        (folder / f"{name}.pem").write_bytes(private)
        (folder / f"{name}.pub.pem").write_bytes(public)
    books = cloudfront_source("books", "/books/", {KEY_ID: str(folder / "books.pub.pem")},
                              public_origin=ORIGIN, accept_cookies=True)  # fmt: skip
    secret = cloudfront_source("secret", "/secret/", {OTHER_KEY_ID: str(folder / "secret.pub.pem")},
                               public_origin=ORIGIN, accept_cookies=True)  # fmt: skip
    # The auth cache is on: an allow won by a cookie must never reach it.
    config = sidecar_config(books, secret, server={"clock_skew": 0, "cache_ttl": 60})
    with running_stack(folder, config) as running:
        yield running


def signer(stack: LocalStack) -> CloudFrontSigner:
    private = load_pem_private_key((stack.folder / "books.pem").read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return CloudFrontSigner(
        KEY_ID, lambda message: private.sign(message, padding.PKCS1v15(), hashes.SHA1())
    )


def botocore_cookies(
    stack: LocalStack, resource: str = ORIGIN + "/books/*", lifetime: int = 300
) -> dict[str, str]:
    """The three cookies AWS documents, from botocore's policy and signer."""
    cf = signer(stack)
    policy = cf.build_policy(resource, _when(lifetime)).encode()
    return {
        "CloudFront-Policy": cf._url_b64encode(policy).decode(),
        "CloudFront-Signature": cf._url_b64encode(cf.rsa_signer(policy)).decode(),
        "CloudFront-Key-Pair-Id": KEY_ID,
    }


def _when(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(time.time() + seconds, tz=datetime.UTC)


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def test_the_shipped_snippet_passes_the_cookie() -> None:
    assert "proxy_set_header Cookie $http_cookie;" in (
        REPO / "nginx" / "signed-url-auth.conf"
    ).read_text("utf-8")


@pytest.mark.parametrize("uri", UNDER_PREFIX)
def test_botocore_cookies_serve_every_file_under_the_prefix(stack: LocalStack, uri: str) -> None:
    headers = cookie_header(botocore_cookies(stack))
    for query in ("", "?w=640", "?w=640&h=480"):
        status, body, reason = fetch_with_reason(stack, uri + query, headers=headers)
        assert (status, reason) == (200, "ok"), uri + query
        assert body == image_bytes(stack, unquote(uri))


def test_outside_the_prefix_is_403(stack: LocalStack) -> None:
    headers = cookie_header(botocore_cookies(stack))
    status, body = fetch(stack, "/secret/x.png", headers=headers)
    assert status == 403
    assert body != image_bytes(stack, "/secret/x.png")
    assert fetch(stack, "/public/x.png", headers=headers)[0] != 200


def test_expired_cookies_are_403(stack: LocalStack) -> None:
    headers = cookie_header(botocore_cookies(stack, lifetime=-5))
    status, body, reason = fetch_with_reason(stack, "/books/x.png", headers=headers)
    assert (status, reason) == (403, "expired")
    assert body != image_bytes(stack, "/books/x.png")


def test_tampered_cookies_are_403(stack: LocalStack) -> None:
    cookies = botocore_cookies(stack)
    wider = botocore_cookies(stack, resource=ORIGIN + "/*")
    signature = cookies["CloudFront-Signature"]
    tampered = [
        ({**cookies, "CloudFront-Signature": ("A" if signature[0] != "A" else "B") + signature[1:]},
         "invalid"),
        ({**cookies, "CloudFront-Policy": wider["CloudFront-Policy"]}, "invalid"),
        # Another source's key: a cookie for one source never opens another's prefix.
        ({**cookies, "CloudFront-Key-Pair-Id": OTHER_KEY_ID}, "unknown_key"),
    ]  # fmt: skip
    for changed, expected in tampered:
        status, body, reason = fetch_with_reason(
            stack, "/books/x.png", headers=cookie_header(changed)
        )
        assert (status, reason) == (403, expected), changed
        assert body != image_bytes(stack, "/books/x.png")


@pytest.mark.parametrize(
    "name", ["CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]
)
def test_one_cookie_missing_is_403(stack: LocalStack, name: str) -> None:
    cookies = botocore_cookies(stack)
    del cookies[name]
    status, _, reason = fetch_with_reason(stack, "/books/x.png", headers=cookie_header(cookies))
    assert (status, reason) == (403, "missing")


def test_a_cookie_allow_is_never_served_from_the_cache(stack: LocalStack) -> None:
    # The cache is on: a URL grant's allow is answered by nginx the second time.
    signed = signer(stack).generate_presigned_url(
        ORIGIN + "/books/x.png?cache-probe=url", date_less_than=_when(300)
    )
    assert fetch(stack, signed.removeprefix(ORIGIN))[0] == 200
    before = verifications_total(stack)
    assert fetch(stack, signed.removeprefix(ORIGIN))[0] == 200
    assert verifications_total(stack) == before
    # A cookie's allow is asked of the sidecar every time, and never reused without it.
    uri = "/books/x.png?cache-probe=cookie"
    headers = cookie_header(botocore_cookies(stack))
    for _ in range(3):
        assert fetch_with_reason(stack, uri, headers=headers)[::2] == (200, "ok")
    assert verifications_total(stack) == before + 3
    status, body, reason = fetch_with_reason(stack, uri)
    # "missing": the sidecar itself was asked again, and said no.
    assert (status, reason) == (403, "missing")
    assert body != image_bytes(stack, "/books/x.png")


# --- the Node example ---------------------------------------------------------------------


def node_cookies(stack: LocalStack, prefix: str = "/books/", lifetime: int = 300) -> list[str]:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    expires = str(int(time.time()) + lifetime)
    result = subprocess.run(
        [binary, str(CLI), "cloudfront-cookies", ORIGIN, prefix, KEY_ID,
         str(stack.folder / "books.pem"), expires],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_node_cookies_serve_the_prefix_and_nothing_else(stack: LocalStack) -> None:
    lines = node_cookies(stack)
    assert [line.partition("=")[0] for line in lines] == [
        "CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id",
    ]  # fmt: skip
    for line in lines:
        assert "; Path=/books/; Expires=" in line and line.endswith(
            "; Secure; HttpOnly; SameSite=Lax"
        )
    headers = {"Cookie": "; ".join(line.partition(";")[0] for line in lines)}
    for uri in UNDER_PREFIX:
        status, body = fetch(stack, uri, headers=headers)
        assert status == 200, uri
        assert body == image_bytes(stack, unquote(uri))
    assert fetch(stack, "/secret/x.png", headers=headers)[0] == 403


def test_node_refuses_a_prefix_off_a_segment_boundary(stack: LocalStack) -> None:
    binary = shutil.which("node")
    assert binary is not None
    result = subprocess.run(
        [binary, str(CLI), "cloudfront-cookies", ORIGIN, "/books", KEY_ID,
         str(stack.folder / "books.pem"), str(int(time.time()) + 60)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "segment boundary" in result.stderr
