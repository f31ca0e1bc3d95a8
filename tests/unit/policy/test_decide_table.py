"""The whole decision for one request URI, one row per case.

Signatures are computed here with hashlib from the scheme's formula, not with the
project's signer, so a signer bug cannot hide a verifier bug.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, Decision, Outcome, RequestFacts
from tests.support.configs import md5_source, sidecar_config
from tests.support.scheme_contract import sign

NOW = 1_900_000_000
SKEW = 30
CACHE_TTL = 60

BOOKS_TOKEN = "wakanda123@"
BOOKS_OLD_TOKEN = "old-books-token-2026-05"
GALLERY_TOKEN = "gallery-token"
TENANT_TOKEN = "tenant-token"

HOST = "img.example.com"
TENANT_HOST = "tenant.example.com"
STATIC_HOST = "static.example.com"

# "/" in off mode, bound to one host: on that host every spelling of a /books/ path must
# still route to "books" (routing runs on the decoded canonical path), and on other hosts
# unknown paths still meet no source at all.
CONFIG = sidecar_config(
    md5_source(
        "books", "/books/", {"2026-11": BOOKS_TOKEN, "2026-05": BOOKS_OLD_TOKEN}, mode="enforce"
    ),
    md5_source("gallery", "/gallery/", {"g1": GALLERY_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    md5_source("tenant", "/tenant/", {"t1": TENANT_TOKEN}, hosts=[TENANT_HOST], deny_status=403),
    md5_source("static", "/", hosts=[STATIC_HOST], mode="off"),
    server={
        "listen": "127.0.0.1:18080",
        "clock_skew": SKEW,
        "cache_ttl": CACHE_TTL,
        "deny_status": 403,
    },
)


def md5_signed(uri: str, token: str = BOOKS_TOKEN, *, expires: int | None = None) -> str:
    """``uri`` signed by the formula: s = md5_hex(path + querystring + token), appended last."""
    if expires is not None:
        uri += ("&" if "?" in uri else "?") + f"expires={expires}"
    digest = hashlib.md5((uri + token).encode()).hexdigest()
    return uri + ("&" if "?" in uri else "?") + "s=" + digest


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


REFERENCE = "/books/database-internals.jpg?w=400&h=600&fit=crop"
SIGNED = md5_signed(REFERENCE)
SIG = SIGNED.rpartition("s=")[2]
EXPIRING = md5_signed("/books/a.jpg?w=1", expires=NOW + 100)


@dataclass(frozen=True)
class Row:
    uri: str | None
    status: int
    reason: Reason
    method: str | None = "GET"
    host: str | None = HOST
    now: float = NOW
    source: str | None = None  # the source the request must land on, when it matters


def row(case_id: str, *args: Any, **kwargs: Any) -> Any:
    return pytest.param(Row(*args, **kwargs), id=case_id)


ok, missing, malformed, invalid = Reason.OK, Reason.MISSING, Reason.MALFORMED, Reason.INVALID
expired, non_canonical, method = Reason.EXPIRED, Reason.NON_CANONICAL, Reason.METHOD
no_source, unsigned = Reason.NO_SOURCE, Reason.UNSIGNED_ALLOWED

TABLE = [
    # --- signed and correct ---
    row("spec-reference-value", f"{REFERENCE}&s=7d0d58f62c945d0ca08269205228bbe7", 200, ok),
    row("signed-no-query", md5_signed("/books/a.jpg"), 200, ok, source="books"),
    row("signed-encoded-space", md5_signed("/books/my%20book.jpg?w=1"), 200, ok),
    row("signed-encoded-utf8", md5_signed("/books/caf%C3%A9.jpg"), 200, ok),
    row("signed-raw-unicode", md5_signed("/books/café.jpg?w=1"), 200, ok),
    row("signed-plus", md5_signed("/books/a+b.jpg?q=a+b"), 200, ok),
    row("signed-encoded-percent", md5_signed("/books/100%25.jpg"), 200, ok),
    row("signed-empty-values", md5_signed("/books/a.jpg?a=&b="), 200, ok),
    row("signed-rotated-old-key", md5_signed(REFERENCE, BOOKS_OLD_TOKEN), 200, ok),
    row("signed-head", SIGNED, 200, ok, "HEAD"),
    # Lowercase hex only: one spelling per signed URL.
    row("signed-uppercase-hex", f"{REFERENCE}&s={SIG.upper()}", 200, ok),
    row("signed-mixed-case-hex", f"{REFERENCE}&s={SIG.upper()[:-2]}{SIG[-2:]}", 401, malformed),
    # --- tampered ---
    row("tampered-path", SIGNED.replace("internals", "internalz"), 401, invalid),
    row("changed-param", SIGNED.replace("w=400", "w=401"), 401, invalid),
    row("added-param", SIGNED.replace("&s=", "&dpr=2&s="), 401, invalid),
    row("removed-param", SIGNED.replace("&fit=crop", ""), 401, invalid),
    row("reordered-params", SIGNED.replace("w=400&h=600", "h=600&w=400"), 401, invalid),
    row("wrong-token", md5_signed(REFERENCE, "not-the-token"), 401, invalid),
    row("other-sources-token", md5_signed(REFERENCE, TENANT_TOKEN), 401, invalid),
    row("wrong-signature", f"{REFERENCE}&s={'0' * 32}", 401, invalid),
    row("truncated-signature", SIGNED[:-1], 401, malformed),
    row("overlong-signature", SIGNED + "0", 401, malformed),
    row("non-hex-signature", f"{REFERENCE}&s={'g' * 32}", 401, malformed),
    row("empty-signature", f"{REFERENCE}&s=", 401, malformed),
    row("signature-not-last", f"/books/a.jpg?s={SIG}&w=400", 401, malformed),
    row("param-after-signature", SIGNED + "&w=800", 401, malformed),
    row("duplicate-s", f"{SIGNED}&s={SIG}", 401, non_canonical),
    row("duplicate-s-encoded", f"{REFERENCE}&%73=x&s={SIG}", 401, non_canonical),
    row(
        "duplicate-expires",
        md5_signed("/books/a.jpg?expires=1&w=1", expires=NOW + 100),
        401,
        non_canonical,
    ),
    row("encoded-signature-name", f"{REFERENCE}&%73={SIG}", 401, malformed),
    # --- unsigned ---
    row("unsigned", REFERENCE, 401, missing),
    row("unsigned-no-query", "/books/a.jpg", 401, missing),
    row("unsigned-empty-query", "/books/a.jpg?", 401, missing),
    row("expires-without-signature", f"/books/a.jpg?expires={NOW + 100}", 401, missing),
    row("uppercase-S-is-not-s", f"{REFERENCE}&S={SIG}", 401, missing),
    # --- expiry, with clock_skew = 30 from the config ---
    row("expires-in-100s", EXPIRING, 200, ok),
    row("expires-minus-1", EXPIRING, 200, ok, now=NOW + 99),
    row("at-expires-within-skew", EXPIRING, 200, ok, now=NOW + 100),
    row("skew-minus-1", EXPIRING, 200, ok, now=NOW + 100 + SKEW - 1),
    row("expires-plus-skew", EXPIRING, 401, expired, now=NOW + 100 + SKEW),
    row("long-expired", EXPIRING, 401, expired, now=NOW + 86400),
    row(
        "expires-13-digits",
        md5_signed("/books/a.jpg", expires=10**12),
        401,
        malformed,
    ),
    row("expires-non-numeric", md5_signed("/books/a.jpg?expires=soon"), 401, malformed),
    row("expires-negative", md5_signed("/books/a.jpg?expires=-1"), 401, malformed),
    row("expires-encoded-name", md5_signed(f"/books/a.jpg?%65xpires={NOW + 9}"), 401, malformed),
    row(
        "expires-forged",
        md5_signed("/books/a.jpg?w=1", expires=NOW - 100).replace(
            f"expires={NOW - 100}", f"expires={NOW + 9999}"
        ),
        401,
        invalid,
    ),
    # --- non-canonical: refused before routing, with the server's deny_status ---
    row("dotdot-into-books", "/public/../books/a.jpg", 403, non_canonical),
    row("dotdot-out-of-books", md5_signed("/books/../public/a.jpg"), 403, non_canonical),
    row("dot-segment", md5_signed("/books/./a.jpg"), 403, non_canonical),
    row("trailing-dotdot", "/books/a.jpg/..", 403, non_canonical),
    row("double-slash", md5_signed("/books//a.jpg"), 403, non_canonical),
    row("encoded-slash", md5_signed("/books%2Fa.jpg"), 403, non_canonical),
    row("encoded-slash-lower", "/public%2f..%2fbooks/a.jpg", 403, non_canonical),
    row("encoded-dot", "/books/%2e%2e/public/a.jpg", 403, non_canonical),
    row("encoded-backslash", "/books/a%5Cb.jpg", 403, non_canonical),
    row("backslash", "/books\\a.jpg", 403, non_canonical),
    row("semicolon", md5_signed("/books/a.jpg;v=1"), 403, non_canonical),
    row("fragment", SIGNED + "#x", 403, non_canonical),
    row("raw-control", "/books/a\x01.jpg", 403, non_canonical),
    row("encoded-nul", "/books/a%00.jpg", 403, non_canonical),
    row("encoded-c1", "/books/a%C2%85.jpg", 403, non_canonical),
    row("bad-percent", "/books/a%G1.jpg", 403, non_canonical),
    row("invalid-utf8", "/books/a%FF.jpg", 403, non_canonical),
    row("absolute-form", "http://img.example.com/books/a.jpg", 403, non_canonical),
    row("empty-uri", "", 403, non_canonical),
    row("no-uri", None, 403, non_canonical),
    # --- routing ---
    row("no-source", "/videos/a.mp4", 403, no_source),
    row("prefix-is-segment-bound", "/booksx/a.jpg", 403, no_source),
    row("prefix-without-slash", "/books", 401, missing, source="books"),
    row("encoded-spelling-routes-decoded", "/b%6Foks/a.jpg", 401, missing, host=STATIC_HOST),
    row("signed-encoded-spelling", md5_signed("/b%6Foks/a.jpg"), 200, ok, host=STATIC_HOST),
    row("longest-prefix-wins", "/books/a.jpg", 401, missing, host=STATIC_HOST, source="books"),
    row("root-source-own-host", "/anything.jpg", 200, unsigned, host=STATIC_HOST),
    # --- methods: GET and HEAD only ---
    row("post", SIGNED, 401, method, "POST"),
    row("put", SIGNED, 401, method, "PUT"),
    row("delete", SIGNED, 401, method, "DELETE"),
    row("lowercase-get", SIGNED, 401, method, "get"),
    row("no-method", SIGNED, 401, method, None),
    row("post-to-off-source", "/public/a.jpg", 401, method, "POST"),
    # --- report mode: allowed, the header says what enforce would have done ---
    row("report-signed", md5_signed("/gallery/a.jpg", GALLERY_TOKEN), 200, ok),
    row("report-unsigned", "/gallery/a.jpg", 200, missing, source="gallery"),
    row("report-overlong-sig", md5_signed("/gallery/a.jpg", GALLERY_TOKEN) + "0", 200, malformed),
    row("report-wrong-token", md5_signed("/gallery/a.jpg"), 200, invalid),
    row(
        "report-expired",
        md5_signed("/gallery/a.jpg", GALLERY_TOKEN, expires=NOW - 3600),
        200,
        expired,
    ),
    row("report-non-canonical", "/gallery/../books/a.jpg", 403, non_canonical),
    # --- off mode ---
    row("off-unsigned", "/public/a.jpg", 200, unsigned, source="public"),
    row("off-garbage-signature", "/public/a.jpg?s=zzz&s=1", 200, unsigned),
    row("off-head", "/public/a.jpg", 200, unsigned, "HEAD"),
    # --- host-bound source ---
    row("host-bound-signed", md5_signed("/tenant/a.jpg", TENANT_TOKEN), 200, ok, host=TENANT_HOST),
    row("host-bound-unsigned", "/tenant/a.jpg", 403, missing, host=TENANT_HOST),
    row("host-bound-wrong-host", md5_signed("/tenant/a.jpg", TENANT_TOKEN), 403, no_source),
    row("host-bound-no-host", "/tenant/a.jpg", 403, no_source, host=None),
    row("host-bound-other-sources-host", "/tenant/a.jpg", 200, unsigned, host=STATIC_HOST),
]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path = tmp_path_factory.mktemp("decide") / "sidecar.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return Decider(config.load(path, environ={}))


def decide(policy: Decider, case: Row) -> Decision:
    facts = RequestFacts(case.uri, case.method, case.host, "198.51.100.7")
    return policy.decide(facts, case.now)


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 45


@pytest.mark.parametrize("case", TABLE)
def test_decision(policy: Decider, case: Row) -> None:
    decision = decide(policy, case)
    assert (decision.status, decision.reason) == (case.status, case.reason)
    if case.source is not None:
        assert decision.source is not None
        assert decision.source.name == case.source
    # Outcome must agree with status and reason: allow/deny/would_deny, nothing else.
    if case.status != 200:
        assert decision.outcome is Outcome.DENY
        assert decision.cache_ttl == 0
    elif case.reason in (Reason.OK, Reason.UNSIGNED_ALLOWED):
        assert decision.outcome is Outcome.ALLOW
    else:
        assert decision.outcome is Outcome.WOULD_DENY


def test_key_id_names_the_matching_key(policy: Decider) -> None:
    new = decide(policy, Row(SIGNED, 200, ok))
    old = decide(policy, Row(md5_signed(REFERENCE, BOOKS_OLD_TOKEN), 200, ok))
    assert (new.reason, new.key_id) == (Reason.OK, "2026-11")
    assert (old.reason, old.key_id) == (Reason.OK, "2026-05")


def test_signer_agrees_with_the_table(policy: Decider) -> None:
    # The project's own signer must produce exactly what the table computed by hand.
    books = policy.settings.source("books")
    assert books is not None
    assert books.signatures is not None
    assert sign(books.signatures, REFERENCE) == SIGNED
    assert sign(books.signatures, "/books/a.jpg?w=1", expires=NOW + 100) == EXPIRING


# --- cache lifetime (never outlives the URL, never for what is not an allow) ---


@pytest.mark.parametrize(
    ("case", "low", "high"),
    [
        pytest.param(Row(SIGNED, 200, ok), CACHE_TTL, CACHE_TTL, id="allow-no-expiry"),
        pytest.param(
            Row(md5_signed("/books/a.jpg", expires=NOW + 10), 200, ok), 1, 10, id="expires-in-10s"
        ),
        pytest.param(
            Row(md5_signed("/books/a.jpg", expires=NOW + 86400), 200, ok),
            CACHE_TTL,
            CACHE_TTL,
            id="expires-far-capped-by-server",
        ),
        # Allowed only thanks to clock_skew: already past its expiry, so never cached.
        pytest.param(Row(EXPIRING, 200, ok, now=NOW + 110), 0, 0, id="within-skew"),
        pytest.param(Row(REFERENCE, 401, missing), 0, 0, id="deny"),
        pytest.param(Row("/books/../a", 403, non_canonical), 0, 0, id="deny-non-canonical"),
        pytest.param(Row("/gallery/a.jpg", 200, missing), 0, 0, id="report-would-deny"),
        pytest.param(Row("/public/a.jpg", 200, unsigned), 0, 0, id="off-allow"),
    ],
)
def test_cache_ttl(policy: Decider, case: Row, low: int, high: int) -> None:
    decision = decide(policy, case)
    assert (decision.status, decision.reason) == (case.status, case.reason)
    assert low <= decision.cache_ttl <= high
