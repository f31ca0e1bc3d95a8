"""Scheme ``akamai``: known answers made by the reference signer ``akamai-edgeauth``
(ACL and URL tokens, each algorithm, salt, escape_early, the ip/st/id/data fields),
regenerated here by the library, verified and re-signed by the scheme.

``akamai.edgeauth`` sets ``os.environ["TZ"] = "GMT"`` when imported: it is only ever
imported in a child process (``library_tokens``, tests/support/reference_signers.py), so
it cannot change this one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.reference_signers import library_tokens
from tests.support.scheme_contract import build_source, parse, sign, verify

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "akamai.json").read_text("utf-8")
)
SETTINGS = ("algorithm", "salt", "escape_early", "field_delimiter", "acl_delimiter", "token_name")


def source_for(vector: dict[str, Any], key: str | None = None) -> SourceScheme:
    settings = {name: vector[name] for name in SETTINGS if name in vector}
    material = KeyMaterial("edge-key", secret=(key or vector["key"]).encode())
    return build_source("akamai", [material], settings=settings)


def presented(vector: dict[str, Any]) -> str:
    name = vector.get("token_name", "__token__")
    return f"{vector['uri']}{'&' if '?' in vector['uri'] else '?'}{name}={vector['token']}"


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


def test_vectors_cover_every_option() -> None:
    vectors = VECTORS["vectors"]
    assert VECTORS["scheme"] == "akamai"
    assert len(vectors) >= 16
    assert sum("acl" in v for v in vectors) >= 8 and sum("url" in v for v in vectors) >= 6
    assert {v.get("algorithm", "sha256") for v in vectors} == {"sha256", "sha1", "md5"}
    for option in ("salt", "escape_early", "ip", "start_time", "session_id", "payload",
                   "field_delimiter", "acl_delimiter", "token_name"):  # fmt: skip
        assert any(option in v for v in vectors), option
    assert any(len(v.get("acl", [])) > 1 for v in vectors)
    assert any(not v.get("url", "").isascii() for v in vectors)


def test_the_library_regenerates_every_token() -> None:
    vectors = VECTORS["vectors"]
    specs = [{k: v for k, v in vector.items() if k not in ("token", "uri", "description")}
             for vector in vectors]  # fmt: skip
    assert library_tokens(specs) == [vector["token"] for vector in vectors]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_ids)
def test_vector_verifies(vector: dict[str, Any]) -> None:
    verifier = source_for(vector)
    uri = presented(vector)
    client = vector.get("ip", "198.51.100.7")
    before = vector["expires"] - 1
    verdict = verify(verifier, uri, before, ip=client)
    assert (verdict.reason, verdict.key_id) == (Reason.OK, "edge-key")
    assert verdict.expires_at == vector["expires"]
    assert verdict.shareable is ("ip" not in vector)
    assert verify(verifier, uri, vector["expires"], ip=client).reason is Reason.EXPIRED
    other = source_for(vector, key="ab" * 32)
    assert verify(other, uri, before, ip=client).reason is Reason.INVALID
    if "start_time" in vector:
        early = vector["start_time"] - 1
        assert verify(verifier, uri, early, ip=client).reason is Reason.NOT_YET_VALID
    if "ip" in vector:
        assert verify(verifier, uri, before, ip="192.0.2.99").reason is Reason.IP_MISMATCH


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_ids)
def test_vector_elsewhere_is_refused(vector: dict[str, Any]) -> None:
    # An ACL token outside its globs, a URL token on another path: both invalid ("/*"
    # is the one ACL that covers every path).
    uri = "/elsewhere/x.png?" + presented(vector).partition("?")[2]
    client = vector.get("ip", "198.51.100.7")
    verdict = verify(source_for(vector), uri, vector["expires"] - 1, ip=client)
    assert verdict.reason is (Reason.OK if vector.get("acl") == ["/*"] else Reason.INVALID)


SIGNABLE = [v for v in VECTORS["vectors"] if "session_id" not in v and "payload" not in v
            and len(v.get("acl", [""])) == 1]  # fmt: skip


@pytest.mark.parametrize("vector", SIGNABLE, ids=_ids)
def test_our_signer_writes_the_librarys_token(vector: dict[str, Any]) -> None:
    grant: dict[str, Any] = {"expires": vector["expires"], "not_before": vector.get("start_time"),
                             "client_ip": vector.get("ip")}  # fmt: skip
    if "acl" in vector:
        grant["resource"] = vector["acl"][0]
    signed = sign(source_for(vector), vector["uri"], **grant)
    assert signed == presented(vector)
    name = vector.get("token_name", "__token__")
    param = parse(signed).get(name)
    assert param is not None and param.value == vector["token"]


def test_enough_vectors_are_signable() -> None:
    assert len(SIGNABLE) >= 10
