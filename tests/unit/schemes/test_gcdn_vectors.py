"""Scheme ``gcdn``: known answers, Google's published ones among them, each recomputed
with openssl (an HMAC computed outside Python), signed and verified by the scheme."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.reference_signers import openssl_hmac_sha1
from tests.support.scheme_contract import build_source, request_uri, sign, verify

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "gcdn.json").read_text("utf-8")
)


def source_for(vector: dict[str, Any], key: str | None = None) -> SourceScheme:
    material = KeyMaterial(vector["key_name"], secret=(key or vector["key"]).encode())
    return build_source("gcdn", [material], prefix=vector["path_prefix"],
                        settings={"public_origin": vector["public_origin"]})  # fmt: skip


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


def test_vectors_file_covers_both_forms_and_googles_answers() -> None:
    vectors = VECTORS["vectors"]
    assert VECTORS["scheme"] == "gcdn"
    assert len(vectors) >= 15
    assert sum("url_prefix" in vector for vector in vectors) >= 4
    assert sum("published_in" in vector for vector in vectors) == 8
    assert any(not vector["url_unsigned"].isascii() for vector in vectors)
    assert any("%" in vector["url_unsigned"] for vector in vectors)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_ids)
def test_openssl_gives_every_vectors_signature(vector: dict[str, Any]) -> None:
    signed = vector["expected_signed_url"]
    head, _, signature = signed.rpartition("&Signature=")
    key = base64.urlsafe_b64decode(vector["key"])
    assert len(key) == 16
    digest = openssl_hmac_sha1(key, vector["string_to_sign"].encode())
    assert len(digest) == 20
    assert signature == base64.urlsafe_b64encode(digest).decode()  # padded base64url
    tail = f"Expires={vector['expires']}&KeyName={vector['key_name']}"
    if "url_prefix" in vector:
        prefix = vector["url_prefix"]
        full = vector["public_origin"] + prefix if prefix.startswith("/") else prefix
        encoded = base64.urlsafe_b64encode(full.encode()).decode()
        assert vector["string_to_sign"] == f"URLPrefix={encoded}&{tail}"
        assert head.endswith("URLPrefix=" + encoded + "&" + tail)
    else:
        assert vector["string_to_sign"] == head
        assert head.endswith(tail)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_ids)
def test_vector_sign(vector: dict[str, Any]) -> None:
    grant = {"expires": vector["expires"], "prefix": vector.get("url_prefix")}
    signed = sign(source_for(vector), vector["url_unsigned"], **grant)
    assert signed == vector["expected_signed_url"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_ids)
def test_vector_verify(vector: dict[str, Any]) -> None:
    uri = request_uri(vector["expected_signed_url"])
    before = vector["expires"] - 1
    verdict = verify(source_for(vector), uri, before)
    assert (verdict.reason, verdict.key_id) == (Reason.OK, vector["key_name"])
    assert verify(source_for(vector), uri, vector["expires"]).reason is Reason.EXPIRED
    other = source_for(vector, key="AAAAAAAAAAAAAAAAAAAAAA==")
    assert verify(other, uri, before).reason is Reason.INVALID


def test_googles_sample_key_decodes_to_its_published_bytes() -> None:
    # golang-samples cdn/signedurls/signurl_test.go: TestReadKeyFile.
    expected = bytes.fromhex("9d9b51a2174d17d9b770a336e0870ae3")
    assert base64.urlsafe_b64decode("nZtRohdNF9m3cKM24IcK4w==") == expected
    published = [v for v in VECTORS["vectors"] if "published_in" in v]
    assert {v["key"] for v in published} == {"nZtRohdNF9m3cKM24IcK4w=="}


def test_googles_url_prefix_example() -> None:
    # golang-samples cdn/signedurls: "Domain and Simple Prefix", byte for byte.
    vector = next(v for v in VECTORS["vectors"] if v["description"].endswith("prefix segments"))
    assert vector["expected_signed_url"] == (
        "https://media.example.com/segments/?URLPrefix="
        "aHR0cHM6Ly9tZWRpYS5leGFtcGxlLmNvbS9zZWdtZW50cy8=&Expires=1558131350&KeyName=my-key"
        "&Signature=HWE5tBTZgnYVoZzVLG7BtRnOsgk="
    )
    verifier = source_for(vector)
    uri = "/segments/seg-0001.ts?" + vector["expected_signed_url"].partition("?")[2]
    assert verify(verifier, uri, 1558131349).reason is Reason.OK
    assert verify(verifier, "/other/" + uri[len("/segments/") :], 1558131349).reason is (
        Reason.INVALID
    )
