"""Scheme ``akamai``: a token in the query is held to its source, as a cookie is.

One EdgeAuth key shared by two sources (``/books/`` and ``/reports/``): a token whose ACL
reaches beyond the source's ``path_prefix`` (``/*``, ``/reports*``, or a list naming
another folder) opens none of the source's files, whichever source it was made for. Tokens
come from the reference signer ``akamai-edgeauth`` and from the scheme's own ``sign``;
the decision is the loaded config's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.schemes.base import KeyMaterial
from tests.support.configs import sidecar_config, source_toml
from tests.support.reference_signers import library_tokens
from tests.support.scheme_contract import build_source, sign, verify

KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
NOW = 1_900_000_000
EXPIRES = NOW + 600
SHARED = sidecar_config(
    source_toml("books", "akamai", "/books/", {"b1": {"secret": KEY}}),
    source_toml("reports", "akamai", "/reports/", {"r1": {"secret": KEY}}),
)


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path: Path = tmp_path_factory.mktemp("akamai-scope") / "sidecar.toml"
    path.write_text(SHARED, encoding="utf-8")
    return Decider(config.load(path, environ={}))


def decided(decider: Decider, path: str, token: str) -> tuple[str | None, Reason]:
    facts = RequestFacts(f"{path}?__token__={token}", "GET", None, "198.51.100.7")
    decision = decider.decide(facts, NOW)
    return (decision.source.name if decision.source else None), decision.reason


def acl_token(*globs: str) -> str:
    return library_tokens([{"key": KEY, "expires": EXPIRES, "acl": list(globs)}])[0]


@pytest.mark.parametrize(
    "globs",
    [("/*",), ("/reports*",), ("/re*",), ("/books/*", "/reports/*"), ("/?eports/*",)],
    ids=["whole-site", "no-folder-slash", "partial-folder", "two-folders", "wildcard-folder"],
)
def test_an_acl_reaching_beyond_the_source_opens_none_of_its_files(
    decider: Decider, globs: tuple[str, ...]
) -> None:
    # Before: each of these opened /reports/r.png, the ACL covering the path under a key
    # the reports source also holds.
    assert decided(decider, "/reports/r.png", acl_token(*globs)) == ("reports", Reason.INVALID)


def test_an_acl_within_the_source_still_opens_its_files(decider: Decider) -> None:
    for globs in (("/reports/*",), ("/reports/r.png",), ("/reports/?.png", "/reports/x/*")):
        token = acl_token(*globs)
        assert decided(decider, "/reports/r.png", token) == ("reports", Reason.OK), globs
        assert decided(decider, "/books/r.png", token) == ("books", Reason.INVALID), globs


def test_a_url_token_is_bound_to_its_path_within_the_source(decider: Decider) -> None:
    token = library_tokens([{"key": KEY, "expires": EXPIRES, "url": "/reports/r.png"}])[0]
    assert decided(decider, "/reports/r.png", token) == ("reports", Reason.OK)
    assert decided(decider, "/books/r.png", token) == ("books", Reason.INVALID)


def test_a_source_at_the_root_still_takes_a_whole_site_acl() -> None:
    root = build_source("akamai", [KeyMaterial("k", secret=KEY.encode())], prefix="/")
    assert sign(root, "/other/o.png", expires=EXPIRES, resource="/*")
    token = acl_token("/*")
    assert verify(root, f"/other/o.png?__token__={token}", NOW).reason is Reason.OK


@pytest.mark.parametrize("grant", [{"resource": "/*"}, {"resource": "/books*"},
                                   {"prefix": "/"}, {"resource": "/?ooks/*"}])  # fmt: skip
def test_sign_refuses_an_acl_beyond_the_source(grant: dict[str, str]) -> None:
    books = build_source("akamai", [KeyMaterial("k", secret=KEY.encode())], prefix="/books/")
    with pytest.raises(SchemeError, match="path_prefix /books/"):
        sign(books, "/books/x.png", expires=EXPIRES, **grant)


def test_what_sign_makes_within_the_source_verifies(decider: Decider) -> None:
    reports = build_source("akamai", [KeyMaterial("r1", secret=KEY.encode())], prefix="/reports/")
    for grant in ({}, {"prefix": "/reports/"}, {"resource": "/reports/*.png"}):
        signed = sign(reports, "/reports/r.png", expires=EXPIRES, **grant)
        token = signed.partition("__token__=")[2]
        assert decided(decider, "/reports/r.png", token) == ("reports", Reason.OK), grant
