"""Scheme ``s3-sigv4`` against the real signers: botocore's and minio's presigned GET URLs
(path-style and virtual-hosted) verify, and ``sign_url`` and ``sidecar sign`` write
botocore's URL byte for byte for the same key, URL and signing time (botocore's clock
fixed at it)."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from sidecar import config
from sidecar.cli import main
from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason
from sidecar.policy.signing import sign_url
from sidecar.schemes import sigv4
from sidecar.schemes.base import SourceScheme
from tests.support.configs import sidecar_config, source_toml
from tests.support.s3_signers import (
    KEY_ID,
    OBJECT,
    SECRET,
    botocore_signed,
    botocore_url,
    fix_botocore_clock,
    verifier_for,
)
from tests.support.scheme_contract import NOW, sign
from tests.support.scheme_contract import verify as verify_verdict


def signed_at(url: str) -> int:
    stamp = sigv4.parse_amz_date(url.partition("X-Amz-Date=")[2][:16])
    assert stamp is not None
    return stamp


def verdict_of(url: str, verifier: SourceScheme | None = None) -> Reason:
    verifier = verifier or verifier_for(url)
    return verify_verdict(verifier, parse_url(url).uri, signed_at(url) + 1).reason


@pytest.mark.parametrize(
    ("endpoint", "style", "starts"),
    [
        ("http://127.0.0.1:8080", "path", "http://127.0.0.1:8080/books/covers/"),
        ("https://s3.example.com", "virtual", "https://books.s3.example.com/covers/"),
        (None, "virtual", "https://books.s3.eu-west-1.amazonaws.com/covers/"),
        ("http://[::1]:9000", "path", "http://[::1]:9000/books/covers/"),
    ],
)
def test_botocore_urls_verify(endpoint: str | None, style: str, starts: str) -> None:
    url = botocore_url(endpoint, style)
    assert url.startswith(starts)
    assert verdict_of(url) is Reason.OK


def test_botocore_urls_with_response_overrides_verify() -> None:
    url = botocore_url("https://s3.example.com", "path", ResponseContentType="image/jpeg",
                       ResponseContentDisposition='attachment; filename="a b.jpg"')  # fmt: skip
    assert "response-content-disposition=" in url
    assert verdict_of(url) is Reason.OK


def test_botocore_urls_for_another_region_are_invalid() -> None:
    url = botocore_url("https://s3.example.com", "path", region="us-west-2")
    assert verdict_of(url, verifier_for(url)) is Reason.INVALID
    assert verdict_of(url, verifier_for(url, region="us-west-2")) is Reason.OK


@pytest.mark.parametrize(
    ("endpoint", "secure", "region"),
    [("127.0.0.1:9000", False, "us-east-1"), ("s3.example.com", True, "eu-west-1"),
     ("s3.amazonaws.com", True, "eu-west-1")],
)  # fmt: skip
def test_minio_urls_verify(endpoint: str, secure: bool, region: str) -> None:
    client = Minio(endpoint, access_key=KEY_ID, secret_key=SECRET, secure=secure, region=region)
    url = client.presigned_get_object(
        "books", OBJECT, expires=datetime.timedelta(hours=2),
        response_headers={"response-content-type": "image/jpeg"},
    )  # fmt: skip
    assert verdict_of(url, verifier_for(url, region=region)) is Reason.OK


def test_minio_virtual_hosted_urls_verify() -> None:
    client = Minio("s3.amazonaws.com", access_key=KEY_ID, secret_key=SECRET, region="eu-west-1")
    url = client.presigned_get_object("books", "a.jpg")  # seven days, minio's default
    assert url.startswith("https://books.s3.eu-west-1.amazonaws.com/a.jpg?")
    assert "X-Amz-Expires=604800&" in url
    assert verdict_of(url) is Reason.OK


@pytest.mark.parametrize(
    ("endpoint", "style"),
    [("http://127.0.0.1:8080", "path"), ("https://s3.example.com", "virtual")],
)
def test_sign_writes_botocores_url_byte_for_byte(endpoint: str, style: str) -> None:
    url = botocore_url(endpoint, style, expires_in=900, ResponseContentType="image/webp")
    at = signed_at(url)
    unsigned = url.partition("&X-Amz-Algorithm=")[0]
    ours = sign(verifier_for(url), unsigned, expires=at + 900, not_before=at)
    assert ours == url


def test_a_botocore_url_expires_on_time() -> None:
    url = botocore_url("https://s3.example.com", "path", expires_in=60)
    at = signed_at(url)
    assert abs(at - time.time()) < 120  # botocore signed it now
    verifier = verifier_for(url)
    uri = parse_url(url).uri
    assert verify_verdict(verifier, uri, at + 59).reason is Reason.OK
    assert verify_verdict(verifier, uri, at + 60).reason is Reason.EXPIRED


def s3_config(tmp_path: Path, origin: str, prefix: str, **fields: Any) -> Path:
    keys = {KEY_ID: {"secret": SECRET}}
    source = source_toml("books", "s3-sigv4", prefix, keys, region="eu-west-1",
                         public_origin=origin, **fields)  # fmt: skip
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(source))
    return path


@pytest.mark.parametrize(
    ("endpoint", "style"),
    [("http://127.0.0.1:8080", "path"), ("https://s3.example.com", "virtual")],
)
def test_sign_url_writes_botocores_url_signed_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str, style: str
) -> None:
    fix_botocore_clock(monkeypatch, NOW)
    url = botocore_url(endpoint, style, expires_in=900, ResponseContentType="image/webp")
    origin = parse_url(url).origin
    # Virtual-hosted: the bucket is the host (books.s3.example.com), the path the key.
    where = ("/books/", {}) if style == "path" else ("/covers/", {"hosts": [parse_url(url).host]})
    settings = config.load(s3_config(tmp_path, origin, where[0], **where[1]))
    unsigned = url.partition("&X-Amz-Algorithm=")[0]
    # No not_before: X-Amz-Date is the time of signing (a fraction of a second dropped).
    assert sign_url(settings, "books", unsigned, now=NOW + 0.75, expires_in=900) == url
    assert verdict_of(url) is Reason.OK


def test_sidecar_sign_writes_botocores_url_without_not_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = s3_config(tmp_path, "https://s3.example.com", "/books/")
    unsigned = "https://s3.example.com/books/covers/a.jpg?response-content-type=image%2Fjpeg"
    assert main(["sign", "-c", str(path), "--source", "books", "--expires-in", "600",
                 unsigned]) == 0  # fmt: skip
    ours = capsys.readouterr().out.strip()
    at = signed_at(ours)
    assert abs(at - time.time()) < 120  # signed now
    fix_botocore_clock(monkeypatch, at)
    assert ours == botocore_url("https://s3.example.com", "path", expires_in=600,
                                key="covers/a.jpg", ResponseContentType="image/jpeg")  # fmt: skip
    assert main(["verify", "-c", str(path), ours]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == "ok"


def test_query_names_sort_by_name_before_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # "w" sorts before "w2" and "a" before "a-b", though "w2=" sorts before "w=" as text.
    fix_botocore_clock(monkeypatch, NOW)
    unsigned = "https://s3.example.com/books/a.jpg?w=400&w2=1&a-b=2&a=1&a.c=3&a0=4"
    url = botocore_signed(unsigned)
    assert verdict_of(url) is Reason.OK
    assert sign(verifier_for(url), unsigned, expires=NOW + 600, not_before=NOW) == url
