"""Rules beyond the signature (sidecar/policy/rules.py, docs/configuration.md "Rules"):
referrer spellings, networks and countries, one row per case; then the decision a loaded
config makes with them (the order, report and optional modes, the auth cache)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.errors import ConfigError
from sidecar.policy import rules as rules_module
from sidecar.policy.decide import Decider, Outcome, RequestFacts
from sidecar.policy.rules import Rules, network, origin_pattern
from tests.support.configs import md5_source, sidecar_config

SHOP = Rules(
    referrers=(origin_pattern("https://shop.example.com"), origin_pattern("https://*.cdn.example")),  # type: ignore[arg-type]
    allow_no_referrer=False,
)

# (Referer, allowed by https://shop.example.com and https://*.cdn.example, no bare Referer)
REFERRERS = [
    ("https://shop.example.com/product/1", True),
    ("https://shop.example.com", True),
    ("https://SHOP.Example.COM./page", True),  # one spelling of a host
    ("https://shop.example.com:443/page", True),  # the default port written out
    ("https://shop.example.com:8443/page", False),  # another port, another origin
    ("http://shop.example.com/page", False),  # another scheme
    ("https://shop.example.com.evil.example/page", False),
    ("https://evilshop.example.com/page", False),
    ("https://evil.example/?https://shop.example.com/", False),  # an origin in a query
    ("https://evil.example/https://shop.example.com", False),
    ("https://user@shop.example.com/page", False),  # userinfo: refused, never read
    ("https://shop.example.com@evil.example/page", False),
    ("https://a.cdn.example/x", True),  # *. matches one label ...
    ("https://a.b.cdn.example/x", True),  # ... or more
    ("https://cdn.example/x", False),  # never the bare domain
    ("https://xcdn.example/x", False),
    ("https://xn--bcher-kva.cdn.example/", True),  # an IDN as browsers send it: punycode
    ("https://bücher.cdn.example/", False),  # raw Unicode: not a host name
    ("https://shop.example.com/#frag", False),  # browsers never send a fragment
    ("null", False),
    ("android-app://com.example", False),
    ("/relative/page", False),
    ("https://", False),
    (" https://shop.example.com/", False),
    ("", False),  # no referrer, and allow_no_referrer is false
    (None, False),
]


@pytest.mark.parametrize(("referrer", "allowed"), REFERRERS)
def test_referrer_spellings(referrer: str | None, allowed: bool) -> None:
    refusal = SHOP.refusal(referrer, None, None)
    assert refusal is (None if allowed else Reason.REFERRER)


def test_no_referrer_follows_allow_no_referrer() -> None:
    welcoming = Rules(referrers=SHOP.referrers, allow_no_referrer=True)
    assert welcoming.refusal(None, None, None) is None
    assert welcoming.refusal("", None, None) is None
    assert welcoming.refusal("garbage", None, None) is Reason.REFERRER  # not "no referrer"


@pytest.mark.parametrize(
    "text",
    ["https://shop.example.com", "http://a.example:8080", "https://*.example.com",
     "https://[2001:db8::1]", "https://203.0.113.5:8443"],
)  # fmt: skip
def test_origins_a_config_may_name(text: str) -> None:
    assert origin_pattern(text) is not None


@pytest.mark.parametrize(
    "text",
    ["shop.example.com", "https://shop.example.com/", "https://shop.example.com/page",
     "https://shop.example.com?x", "https://user@shop.example.com", "ftp://shop.example.com",
     "https://*example.com", "https://a.*.example.com", "https://*", "https://*.",
     "HTTPS://shop.example.com", "https://shop.example.com:0", "https://bücher.example",
     "*.example.com", "https://*.[2001:db8::1]"],
)  # fmt: skip
def test_what_is_not_an_origin(text: str) -> None:
    assert origin_pattern(text) is None


NETWORKS = Rules(networks=(network("203.0.113.0/24"), network("2001:db8::/32")))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client", "allowed"),
    [("203.0.113.7", True), ("::ffff:203.0.113.7", True), ("2001:db8::5", True),
     ("203.0.114.1", False), ("2001:db9::1", False), ("", False), (None, False),
     ("not an address", False), ("203.0.113.7, 10.0.0.1", False)],
)  # fmt: skip
def test_networks(client: str | None, allowed: bool) -> None:
    assert NETWORKS.refusal(None, client, None) is (None if allowed else Reason.NETWORK)


def test_a_remembered_client_gets_the_same_answer_and_the_memory_stays_bounded() -> None:
    rules = Rules(networks=NETWORKS.networks)
    clients = [f"203.0.{third}.{fourth}" for third in (112, 113) for fourth in range(256)]
    first = [rules.refusal(None, client, None) for client in clients]
    assert first == [rules.refusal(None, client, None) for client in clients]  # remembered
    assert first == [
        None if client.startswith("203.0.113.") else Reason.NETWORK for client in clients
    ]
    for number in range(rules_module._MAX_CLIENTS + 10):  # many more clients than kept
        rules.refusal(None, f"10.{number // 65536}.{number // 256 % 256}.{number % 256}", None)
    assert len(rules._clients) <= rules_module._MAX_CLIENTS
    assert rules.refusal(None, "203.0.113.9", None) is None
    assert rules.refusal(None, "10.0.0.1", None) is Reason.NETWORK
    assert rules == Rules(networks=NETWORKS.networks)  # what it remembers is no part of it


@pytest.mark.parametrize(
    ("code", "licensed", "blocked"),
    [("JP", True, False), ("US", True, False), ("FR", False, False), ("RU", False, True),
     (None, False, True), ("", False, True), ("jp", False, True), ("JPN", False, True),
     ("XX", False, True)],
)  # fmt: skip
def test_countries(code: str | None, licensed: bool, blocked: bool) -> None:
    # A missing or unreadable code is XX (unknown): an allow list refuses it.
    allow_list = Rules(countries=frozenset({"JP", "US"}))
    block_list = Rules(countries_blocked=frozenset({"RU", "XX"}))
    assert allow_list.refusal(None, None, code) is (None if licensed else Reason.COUNTRY)
    assert block_list.refusal(None, None, code) is (Reason.COUNTRY if blocked else None)


# --- the decision, from a loaded config ----------------------------------------------------

TOKEN = "rules-token-0123456789"
NOW = 1_900_000_000
CONFIG = sidecar_config(
    md5_source(
        "shop",
        "/shop/",
        {"k": TOKEN},
        referrers=["https://shop.example.com"],
        allow_no_referrer=False,
    ),
    md5_source("office", "/office/", {"k": TOKEN}, networks=["203.0.113.0/24"]),
    md5_source("licensed", "/licensed/", {"k": TOKEN}, countries=["JP"]),
    md5_source("audit", "/audit/", {"k": TOKEN}, mode="report", countries_blocked=["RU"]),
    md5_source("migrating", "/migrating/", {"k": TOKEN}, mode="optional"),
    md5_source("open", "/open/", {"k": TOKEN}, mode="optional", referrers=["https://a.example"]),
    md5_source("plain", "/plain/", {"k": TOKEN}),
    server={"cache_ttl": 60},
)


def signed(path: str) -> str:
    return path + "?s=" + hashlib.md5((path + TOKEN).encode()).hexdigest()


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path: Path = tmp_path_factory.mktemp("rules") / "sidecar.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return Decider(config.load(path, environ={}))


def decide(
    decider: Decider,
    uri: str,
    *,
    referrer: str | None = None,
    ip: str = "198.51.100.7",
    country: str | None = None,
) -> tuple[int, Reason, Outcome, int]:
    facts = RequestFacts(uri, "GET", None, ip, None, True, referrer, country)
    decision = decider.decide(facts, NOW)
    return decision.status, decision.reason, decision.outcome, decision.cache_ttl


def test_the_signature_is_checked_first(decider: Decider) -> None:
    # A bad signature is invalid whatever the Referer: a rule never allows.
    bad = signed("/shop/a.jpg")[:-1] + "0"
    assert decide(decider, bad, referrer="https://shop.example.com/")[:2] == (401, Reason.INVALID)
    assert decide(decider, "/shop/a.jpg", referrer="https://shop.example.com/")[:2] == (
        401,
        Reason.MISSING,
    )


def test_each_rule_denies_with_its_reason(decider: Decider) -> None:
    shop, office, licensed = (
        signed("/shop/a.jpg"),
        signed("/office/a.jpg"),
        signed("/licensed/a.jpg"),
    )
    assert decide(decider, shop, referrer="https://other.example/")[:2] == (401, Reason.REFERRER)
    assert decide(decider, shop)[:2] == (401, Reason.REFERRER)  # no referrer: not allowed here
    assert decide(decider, office, ip="198.51.100.7")[:2] == (401, Reason.NETWORK)
    assert decide(decider, licensed, country="FR")[:2] == (401, Reason.COUNTRY)
    assert decide(decider, licensed)[:2] == (401, Reason.COUNTRY)  # unknown country


def test_an_allow_under_rules_is_never_shared_through_the_cache(decider: Decider) -> None:
    assert decide(decider, signed("/shop/a.jpg"), referrer="https://shop.example.com/p") == (
        200,
        Reason.OK,
        Outcome.ALLOW,
        0,
    )
    assert decide(decider, signed("/office/a.jpg"), ip="203.0.113.9")[:2] == (200, Reason.OK)
    assert decide(decider, signed("/licensed/a.jpg"), country="JP")[3] == 0
    # A source without rules is cached as before.
    assert decide(decider, signed("/plain/a.jpg")) == (200, Reason.OK, Outcome.ALLOW, 60)


def test_report_mode_counts_what_a_rule_would_deny(decider: Decider) -> None:
    assert decide(decider, signed("/audit/a.jpg"), country="RU")[:3] == (
        200,
        Reason.COUNTRY,
        Outcome.WOULD_DENY,
    )
    assert decide(decider, signed("/audit/a.jpg"), country="JP")[:3] == (
        200,
        Reason.OK,
        Outcome.ALLOW,
    )


def test_optional_mode_serves_unsigned_and_checks_what_is_signed(decider: Decider) -> None:
    assert decide(decider, "/migrating/a.jpg") == (200, Reason.UNSIGNED_ALLOWED, Outcome.ALLOW, 0)
    assert decide(decider, signed("/migrating/a.jpg"))[:2] == (200, Reason.OK)
    bad = signed("/migrating/a.jpg")[:-1] + "0"
    assert decide(decider, bad)[:2] == (401, Reason.INVALID)
    assert decide(decider, "/migrating/a.jpg?s=zz")[:2] == (401, Reason.MALFORMED)
    # The rules hold for unsigned requests too.
    assert decide(decider, "/open/a.jpg", referrer="https://b.example/")[:2] == (
        401,
        Reason.REFERRER,
    )
    assert decide(decider, "/open/a.jpg", referrer="https://a.example/")[:2] == (
        200,
        Reason.UNSIGNED_ALLOWED,
    )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ('networks = ["203.0.113.0/33"]', "networks: each entry must be an IPv4 or IPv6"),
        ('networks = ["203.0.113.5/24"]', "networks: each entry must be"),  # host bits set
        ("networks = []", "networks: must not be empty"),
        ('countries = ["JPN"]', "countries: each entry must be two capital letters"),
        ('countries = ["jp"]', "countries: each entry must be two capital letters"),
        (
            'referrers = ["https://shop.example.com/page"]',
            "referrers: each entry must be an origin",
        ),
        ('referrers = ["shop.example.com"]', "referrers: each entry must be an origin"),
        ("allow_no_referrer = false", "allow_no_referrer: applies only with referrers"),
        ('countries = ["JP"]\ncountries_blocked = ["RU"]', "give countries or countries_blocked"),
        ('mode = "off"\nnetworks = ["203.0.113.0/24"]', "a rule needs a source that verifies"),
        ('referrers = "https://a.example"', "referrers: must be a list"),
    ],
)
def test_check_config_names_each_bad_rule(tmp_path: Path, fields: str, problem: str) -> None:
    text = f'[[sources]]\nname = "s"\nscheme = "md5-token"\npath_prefix = "/s/"\n{fields}\n'
    text += f'  [[sources.keys]]\n  id = "k"\n  secret = "{TOKEN}"\n'
    (tmp_path / "sidecar.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        config.load(tmp_path / "sidecar.toml", environ={})
    assert any(problem in line for line in refused.value.problems), refused.value.problems
