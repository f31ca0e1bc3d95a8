"""Scheme ``cloudfront``: a policy is held to its source, in the query as in cookies.

One key pair shared by sources under key ids of their own (``Key-Pair-Id`` is not signed,
so a URL made for one names the other's id as easily): a custom policy whose
``Resource`` can match URLs beyond the source's ``path_prefix`` (``https://cdn/*``, no
``Resource`` at all, ``http*://`` whose star can swallow a whole other path) opens none
of that source's files, whichever source it was signed for. Policies come from botocore's
real ``CloudFrontSigner``; the decision is the loaded config's.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider
from tests.support.cloudfront import (
    KEY_IDS,
    ORIGIN,
    botocore_signer,
    custom,
    decide,
    pair,
    with_param,
)
from tests.support.configs import cloudfront_source, sidecar_config
from tests.support.scheme_contract import NOW

KEY_ID = KEY_IDS["rsa"]
SHARED = sidecar_config(
    cloudfront_source("books", "/books/", {KEY_ID: "shared.pub.pem"}, public_origin=ORIGIN),
    cloudfront_source("reports", "/reports/", {"KREPORTS": "shared.pub.pem"}, public_origin=ORIGIN),
    cloudfront_source("site", "/", {"KSITE": "shared.pub.pem"}, public_origin=ORIGIN),
    server={"clock_skew": 0},
)


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    folder: Path = tmp_path_factory.mktemp("cloudfront-scope")
    (folder / "shared.pub.pem").write_bytes(pair("rsa", "botocore")[1])
    (folder / "sidecar.toml").write_text(SHARED, encoding="utf-8")
    return Decider(config.load(folder / "sidecar.toml", environ={}))


def named(url: str) -> str:
    """``url`` (signed under the books source's id) naming the id of the source it asks."""
    path = url.removeprefix(ORIGIN)
    key_id = "KREPORTS" if path.startswith("/reports/") else KEY_ID
    if not path.startswith(("/reports/", "/books/")):
        key_id = "KSITE"
    return with_param(url, "Key-Pair-Id", key_id)


def without_resource(path: str) -> str:
    """A custom policy with no ``Resource``: CloudFront reads it as every URL."""
    signer, _ = botocore_signer("rsa-sha1")
    statement = {"Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 600}}}
    document = json.dumps({"Statement": [statement]}, separators=(",", ":"))
    url: str = signer.generate_presigned_url(ORIGIN + path, policy=document)
    return named(url)


@pytest.mark.parametrize(
    "resource",
    [f"{ORIGIN}/*", f"{ORIGIN}/re*", f"{ORIGIN}/?eports/*", "http*://cdn.example.com/*", "*"],
    ids=["whole-site", "partial-folder", "wildcard-folder", "any-scheme-whole-site", "star"],
)
def test_a_resource_reaching_beyond_the_source_opens_none_of_its_files(
    decider: Decider, resource: str
) -> None:
    # Before: each of these opened /reports/r.png under the key the reports source holds.
    url = named(custom("rsa-sha1", "/reports/r.png", resource=resource))
    assert decide(decider, url) == (403, Reason.INVALID)


def test_a_policy_without_a_resource_opens_none_of_a_folder_source(decider: Decider) -> None:
    assert decide(decider, without_resource("/reports/r.png")) == (403, Reason.INVALID)


def test_a_star_in_the_scheme_stands_for_the_scheme_only(decider: Decider) -> None:
    # "http*://cdn/books/*" matched https://cdn/reports/r.png?x=://cdn/books/y: the first
    # star swallowed "s://cdn/reports/r.png?x=".
    url = named(custom("rsa-sha1", "/reports/r.png?x=://cdn.example.com/books/y",
                       resource="http*://cdn.example.com/books/*"))  # fmt: skip
    assert decide(decider, url) == (403, Reason.INVALID)
    url = custom("rsa-sha1", "/books/a.png", resource="http*://cdn.example.com/books/*")
    assert decide(decider, url) == (200, Reason.OK)


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/reports/r.png", f"{ORIGIN}/reports/*"),
        ("/reports/2026/r.png", f"{ORIGIN}/reports/2026/*.png"),
        ("/reports/r.png", f"{ORIGIN}/reports/r.png"),
        ("/reports/r.png", f"{ORIGIN}/reports/?.png"),
        ("/books/a.png?w=1", "http*://cdn.example.com/books/*"),
        # The source at "/" holds every path no other source holds: nothing to leak to.
        ("/other/o.png", f"{ORIGIN}/*"),
        ("/other/o.png", "*"),
    ],
)
def test_a_resource_within_the_source_still_verifies(
    decider: Decider, path: str, resource: str
) -> None:
    url = named(custom("rsa-sha1", path, resource=resource))
    assert decide(decider, url) == (200, Reason.OK)


def test_the_root_source_takes_a_policy_without_a_resource(decider: Decider) -> None:
    assert decide(decider, without_resource("/other/o.png")) == (200, Reason.OK)


def test_the_policy_document_is_botocores(decider: Decider) -> None:
    # The refusals above are about the Resource, not a document we wrote ourselves.
    url = custom("rsa-sha1", "/reports/r.png", resource=f"{ORIGIN}/*")
    document = base64.b64decode(
        url.partition("Policy=")[2].partition("&")[0].translate(str.maketrans("-_~", "+=/"))
    )
    assert json.loads(document)["Statement"][0]["Resource"] == f"{ORIGIN}/*"
