"""Property-based fuzzing of the whole decision (``Decider.decide``) with several sources:
signed, mutated and random requests, from any host, method and client address. Nothing is
allowed that was not signed for exactly that request; nothing signed is denied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.settings import Mode
from sidecar.schemes.cloudfront import SIGNING_PARAMS
from tests.support.configs import cloudfront_source, md5_source, sidecar_config
from tests.support.properties import (
    CLIENT_IP,
    NOW,
    ORIGIN,
    Tally,
    as_header,
    byte_mutation,
    describe,
    fuzz,
    key_pair,
    mutate_bytes,
    own_query,
    path_under,
    with_query,
)
from tests.support.scheme_contract import request_uri, sign

TALLY = Tally()
count, report = TALLY.count, TALLY.report


# --- 3. Policy.decide with several sources -----------------------------------------------

DECIDE_CONFIG = sidecar_config(
    md5_source("books", "/books/", {"k2026": "books-token-2026", "k2025": "books-token-2025"}),
    md5_source(
        "books-img",
        "/books/",
        {"img": "img-host-token"},
        hosts=["img.example.com"],
        deny_status=403,
    ),
    cloudfront_source(
        "acme",
        "/acme/",
        {"KRSA": ("rsa.pub.pem", "rsa.pem"), "KEC": "ec.pub.pem"},
        public_origin=ORIGIN,
    ),
    cloudfront_source(
        "acme-private",
        "/acme/private/",
        {"KEC2": ("ec2.pub.pem", "ec2.pem")},
        public_origin=ORIGIN,
        deny_status=401,
    ),
    md5_source("reports", "/reports/", {"r": "report-token"}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    md5_source("cdn", "/cdn/", {"c": "cdn-token"}, hosts=["cdn.example.com"]),
    server={"clock_skew": 30, "deny_status": 403},
)


HOSTS: list[str | None] = [None, "cdn.example.com", "other.example.com", "", "IMG.example.com"]

# Enforced sources: their path prefix, and the hosts a request may name to reach them. A
# host the config does not name never reaches the host-less "books" under /books/, which
# "books-img" holds for its host (docs/security.md, "Hosts").
ENFORCED: dict[str, tuple[str, list[str | None]]] = {
    "books": ("/books/", ["cdn.example.com"]),
    "books-img": ("/books/", ["img.example.com"]),
    "acme": ("/acme/", HOSTS),
    "acme-private": ("/acme/private/", HOSTS),
}


METHODS = ["GET", "GET", "HEAD", "POST", "PUT", "get", "", None, "GET\x00"]


IPS = [CLIENT_IP, "198.51.100.9", "::ffff:203.0.113.5", "2001:db8::1", "bogus", "", None]


@dataclass(frozen=True)
class DecideCase:
    facts: RequestFacts
    signed: str | None = None  # the URI as signed, before any mutation
    source: str | None = None  # the source that signed it
    network: str | None = None  # the client network a custom policy binds it to

    def may_allow(self) -> bool:
        """True when the request is exactly a signed URI, asked for as it may be."""
        facts = self.facts
        ip_ok = self.network is None or facts.client_ip in (CLIENT_IP, "::ffff:203.0.113.5")
        return facts.uri == self.signed and facts.method in ("GET", "HEAD") and ip_ok


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    folder: Path = tmp_path_factory.mktemp("fuzz-decide")
    for name, (kind, label) in {
        "rsa": ("rsa", "d-rsa"),
        "ec": ("ecdsa", "d-ec"),
        "ec2": ("ecdsa", "d-ec2"),
    }.items():
        private, public = key_pair(kind, label)
        (folder / f"{name}.pem").write_bytes(private)
        (folder / f"{name}.pub.pem").write_bytes(public)
    (folder / "sidecar.toml").write_text(DECIDE_CONFIG)
    return Decider(config.load(folder / "sidecar.toml"))


def sign_for(policy: Decider, source: str, uri: str, ip_bound: bool) -> str:
    settings_ = policy.settings.source(source)
    assert settings_ is not None and settings_.signatures is not None
    origin = ORIGIN if settings_.scheme == "cloudfront" else ""
    options: dict[str, Any] = {"expires": NOW + 600}
    if ip_bound:
        options["client_ip"] = "203.0.113.0/24"
    return request_uri(sign(settings_.signatures, origin + uri, **options))


@st.composite
def decide_inputs(draw: st.DrawFn, policy: Decider) -> DecideCase:
    method, ip = draw(st.sampled_from(METHODS)), draw(st.sampled_from(IPS))
    kind = draw(st.sampled_from(["signed", "mutated", "mutated", "random"]))
    if kind == "random":
        prefix = draw(st.sampled_from(["/books/", "/acme/", "/acme/private/", "/reports/", "/"]))
        uri = draw(st.one_of(st.text(max_size=150), st.binary(max_size=150).map(as_header)))
        return DecideCase(RequestFacts(prefix + uri, method, draw(st.sampled_from(HOSTS)), ip))
    source = draw(st.sampled_from(sorted(ENFORCED)))
    prefix, source_hosts = ENFORCED[source]
    reserved = frozenset(SIGNING_PARAMS) | {"s", "expires"}
    unsigned = with_query(draw(path_under(prefix)), draw(own_query(reserved)))
    ip_bound = source.startswith("acme") and draw(st.booleans())
    signed = sign_for(policy, source, unsigned, ip_bound)
    uri = signed
    if kind == "mutated":
        for change in draw(st.lists(byte_mutation, min_size=1, max_size=2)):
            uri = as_header(mutate_bytes(uri.encode("utf-8", "surrogateescape"), *change))
    host = draw(st.sampled_from(source_hosts))
    network = "203.0.113.0/24" if ip_bound else None
    return DecideCase(RequestFacts(uri, method, host, ip), signed, source, network)


def test_decide_with_several_sources(policy: Decider) -> None:
    test = "Policy.decide: several sources"
    wrong: list[str] = []
    false_denials: list[str] = []

    @fuzz(500)
    @given(decide_inputs(policy))
    def run(case: DecideCase) -> None:
        count(test)
        facts = case.facts
        decision = policy.decide(facts, NOW)
        assert decision.status in (200, 401, 403)
        assert isinstance(decision.reason, Reason)
        source = decision.source
        if decision.status != 200:
            assert decision.status == (source or policy.settings.server).deny_status
            if case.may_allow():
                false_denials.append(f"{decision.reason}: {facts!r}")
            return
        assert source is not None
        if source.mode is not Mode.ENFORCE:
            return
        if not (case.may_allow() and case.source == source.name):
            signed = (case.signed or "").encode("utf-8", "surrogateescape")
            asked = (facts.uri or "").encode("utf-8", "surrogateescape")
            wrong.append(describe(signed, asked) if case.signed else repr(facts))
        assert decision.reason is Reason.OK
        assert 0 <= decision.cache_ttl <= 600  # never past the URL's own expiry
        if case.network is not None:
            assert decision.cache_ttl == 0  # an IP-bound allow is never cached

    run()
    report(test, wrong)
    assert wrong == [], "\n".join(wrong[:8])
    assert false_denials == [], false_denials[:5]


# --- summary --------------------------------------------------------------------------------


def test_summary_inputs_fuzzed_and_wrong_allows() -> None:
    TALLY.print_summary()
    assert TALLY.fuzzed, "the summary runs last: no property ran before it"
    assert TALLY.wrong_allows == []
