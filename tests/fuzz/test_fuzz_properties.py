"""Property-based fuzzing of the pure core: the canonical gate, every scheme, decide.

Random and mutated request URIs must never raise, never be allowed without a valid
signature, and everything that is signed must verify. Every run is reproducible: the
examples are derandomized and no example database is read or written. The figures
(inputs fuzzed, wrong allows) are printed per test (``pytest -s``) and summed by the last
test of the module. ECDSA signatures are randomised by the signer, so their bytes differ
from run to run; what a correct verifier decides about them does not.
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sidecar import config
from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.settings import Mode
from sidecar.schemes import cloudfront_keys as keys
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes.base import KeyMaterial, SourceScheme, VerifyRequest
from sidecar.schemes.cloudfront import SIGNING_PARAMS, b64encode
from tests.support.figures import record
from tests.support.scheme_contract import build_source, request_uri, sign

NOW = 1_900_000_000
ORIGIN = "https://cdn.example.com"
CLIENT_IP = "203.0.113.5"
# Reproducible in CI: a fixed seed, no example database, no per-example deadline.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


FUZZED: Counter[str] = Counter()
WRONG_ALLOWS: list[tuple[str, str]] = []


def count(test: str, inputs: int = 1) -> None:
    FUZZED[test] += inputs


def report(test: str, wrong: list[str]) -> None:
    """Print and remember a test's figures; ``wrong`` are URIs allowed without a signature."""
    WRONG_ALLOWS.extend((test, uri) for uri in wrong)
    record("inputs fuzzed (properties)", FUZZED[test])
    record("wrong allows", len(wrong))
    print(f"[fuzz] {test}: {FUZZED[test]} inputs fuzzed, {len(wrong)} wrong allows")


# --- strategies: canonical URIs built from a safe alphabet -------------------------------

PATH_CHARS = string.ascii_letters + string.digits + "-_~.!$&'()*+,=:@"
QUERY_CHARS = string.ascii_letters + string.digits + "-_~.!$'()*+,:@/?"
ENCODED_ASCII = ["%20", "%25", "%2B", "%3F", "%23", "%26", "%3D", "%3B", "%40", "%7E", "%41"]
non_ascii = st.characters(min_codepoint=0xA0, exclude_categories=["Cs"])
percent_utf8 = st.builds(
    lambda char, case: case(quote(char)), non_ascii, st.sampled_from([str.upper, str.lower])
)


def _token(chars: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(chars), st.sampled_from(ENCODED_ASCII), percent_utf8, non_ascii
    )


segment = (
    st.lists(_token(PATH_CHARS), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda s: s not in (".", ".."))
)
query_word = st.lists(_token(QUERY_CHARS), max_size=5).map("".join)
query_pair = st.one_of(
    st.builds(
        lambda n, v: f"{n}={v}",
        query_word,
        st.lists(query_word, min_size=1, max_size=3).map("=".join),
    ),
    query_word,
)


def path_under(prefix: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda parts, slash: prefix + "/".join(parts) + slash,
        st.lists(segment, min_size=1, max_size=4),
        st.sampled_from(["", "", "", "/"]),
    )


def own_query(reserved: frozenset[str]) -> st.SearchStrategy[str | None]:
    """A query of the URL's own parameters (None: no "?"), avoiding signing parameter names."""

    def rename(pair: str) -> str:
        return "x" + pair if unquote_plus(pair.partition("=")[0]) in reserved else pair

    return st.one_of(st.none(), st.lists(query_pair.map(rename), max_size=5).map("&".join))


def with_query(path: str, query: str | None) -> str:
    return path if query is None else f"{path}?{query}"


# --- mutations at the byte level (what a header can carry) -------------------------------

# fmt: off
INTERESTING = [
    *"/.%\\;#?&= +0Aa\u00e9\x00\x1f\x7f\x85\udcff",
    "%2e", "%2E", "%2f", "%2F", "%5c", "%00", "%c0%af", "%e9", "%C3", "%25", "%%", "%g0",
    "//", "/./", "/../", "..", "&s=", "&Expires=0",
]
# fmt: on


def as_header(data: bytes) -> str:
    """Bytes as aiohttp hands a header value over: UTF-8 with surrogateescape."""
    return data.decode("utf-8", "surrogateescape")


def mutate_bytes(data: bytes, op: str, position: int, byte: int) -> bytes:
    """One byte deleted, inserted or replaced; ``nudge`` and ``case`` replace it by a near one."""
    position %= len(data) + (op == "insert")
    if op == "delete":
        return data[:position] + data[position + 1 :]
    if op == "insert":
        return data[:position] + bytes([byte]) + data[position:]
    if op == "nudge":  # the neighbours: what slack bits in an encoding would accept
        byte = (data[position] + (1 if byte % 2 else -1)) % 256
    elif op == "case":
        byte = data[position : position + 1].swapcase()[0]
    return data[:position] + bytes([byte]) + data[position + 1 :]


byte_mutation = st.tuples(
    st.sampled_from(["delete", "insert", "replace", "nudge", "case"]),
    st.integers(0, 10_000),
    st.integers(0, 255),
)
text_mutation = st.tuples(
    st.sampled_from(["delete", "insert", "replace"]),
    st.integers(0, 10_000),
    st.sampled_from(INTERESTING),
)


def mutate_text(text: str, op: str, position: int, token: str) -> str:
    position %= len(text) + 1
    if op == "insert":
        return text[:position] + token + text[position:]
    if op == "replace":
        return text[:position] + token + text[position + 1 :]
    return text[:position] + text[position + 1 :]


# --- 1. canonical.parse --------------------------------------------------------------------

_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_ESCAPE_BYTES = re.compile(rb"%([0-9A-Fa-f]{2})")
_FORBIDDEN_RAW = set(range(0x21)) | set(range(0x7F, 0xA0)) | {ord("#"), ord("\\")}
_FORBIDDEN_DECODED = set(range(0x20)) | {0x7F, ord("/"), ord("\\"), ord(".")}


def check_accepted(raw: str, uri: canonical.CanonicalURI) -> None:
    """What every accepted URI must be, checked independently of the parser's own code."""
    assert uri.raw == raw and raw.startswith("/") and len(raw) <= canonical.MAX_URI_LENGTH
    raw.encode("utf-8")  # valid UTF-8: no lone surrogate from an undecodable byte
    assert not any(ord(c) in _FORBIDDEN_RAW for c in raw), raw
    assert "%" not in _ESCAPE.sub("", raw), f"stray %: {raw!r}"
    raw_path = raw.partition("?")[0]
    assert uri.raw_path == raw_path
    assert ";" not in raw_path and "//" not in raw_path
    assert all(seg not in (".", "..") for seg in raw_path.split("/")), raw
    escapes = [int(hexa, 16) for hexa in _ESCAPE.findall(raw_path)]
    assert not _FORBIDDEN_DECODED.intersection(escapes), raw
    decoded = _ESCAPE_BYTES.sub(lambda m: bytes([int(m.group(1), 16)]), raw_path.encode())
    path = uri.path
    assert decoded.decode("utf-8") == path  # the escapes decode to valid UTF-8: the path
    assert path.count("/") == raw_path.count("/")
    assert "//" not in path and all(seg not in (".", "..") for seg in path.split("/"))
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\\" for c in path), path
    assert canonical.parse(raw) == uri  # stable
    respelled = canonical.parse(quote(path, safe="/"))
    assert respelled is not None and respelled.path == path, raw
    query = raw.partition("?")[2] if "?" in raw else None
    assert uri.query == query
    for param in uri.params:
        assert raw[param.start - 1] in "?&" and raw.startswith(param.raw_name, param.start)


def check_parse(test: str, raw: str) -> None:
    count(test)
    uri = canonical.parse(raw)
    if uri is not None:
        check_accepted(raw, uri)


@fuzz(1500)
@given(st.one_of(st.text(max_size=200), st.text(max_size=200).map("/".__add__)))
def test_parse_random_text(raw: str) -> None:
    check_parse("parse: random text", raw)


@fuzz(1500)
@given(st.binary(max_size=200).map(lambda b: as_header(b"/" + b)))
def test_parse_random_header_bytes(raw: str) -> None:
    check_parse("parse: random bytes (surrogateescape)", raw)


@fuzz(700)
@given(
    path_under("/").flatmap(lambda p: own_query(frozenset()).map(lambda q: with_query(p, q))),
    st.lists(text_mutation, max_size=4),
)
def test_parse_mutated_valid_uris(valid: str, changes: list[tuple[str, int, str]]) -> None:
    test = "parse: mutated valid URIs"
    count(test)
    accepted = canonical.parse(valid)
    assert accepted is not None, f"a canonical URI was refused: {valid!r}"
    check_accepted(valid, accepted)
    mutated = valid
    for change in changes:
        mutated = mutate_text(mutated, *change)
    check_parse(test, mutated)


def test_parse_refuses_every_forbidden_spelling() -> None:
    """A deterministic sweep: each forbidden form spliced into each segment is refused."""
    test = "parse: forbidden spellings"
    base = "/books/a/b.jpg?w=1"
    # fmt: off
    forbidden = [
        *";\\# %\x00\x1f\x7f\x85\udcff",
        "/./", "/../", "//", "%2F", "%2f", "%5C", "%2E", "%00", "%1F", "%7F", "%4g", "%zz",
        "%C3", "%C0%AF", "%ED%A0%80", "%C2%85",
    ]
    # fmt: on
    accepted = []
    for token in forbidden:
        for position in range(1, base.index("?") + 1):
            raw = base[:position] + token + base[position:]
            count(test)
            if canonical.parse(raw) is not None:
                accepted.append(raw)
    report(test, [])
    assert accepted == [], accepted[:10]


# --- 2. every scheme ----------------------------------------------------------------------


@functools.cache
def key_pair(kind: str, label: str) -> tuple[bytes, bytes]:
    return keys.new_key_pair(kind)


def cloudfront_key(key_id: str, kind: str) -> KeyMaterial:
    private, public = key_pair(kind, key_id)
    return KeyMaterial(key_id, public_key_pem=public, private_key_pem=private)


@dataclass(frozen=True)
class SchemeUnderTest:
    name: str
    verifier: SourceScheme
    prefix: str
    reserved: frozenset[str]
    sign_options: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    signature_bytes: tuple[int, ...] = ()  # lengths of a well-formed signature

    def sign(self, uri: str, expires: int = NOW + 3600) -> str:
        signed = sign(self.verifier, self.origin + uri, expires=expires, **self.sign_options)
        return request_uri(signed)

    def verify(self, uri: str) -> Reason | None:
        """The verdict's reason, or None when the canonical gate already refused the URI."""
        parsed = canonical.parse(uri)
        if parsed is None:
            return None
        verdict = self.verifier.verify(VerifyRequest(parsed, NOW, 0, CLIENT_IP))
        assert isinstance(verdict.reason, Reason)
        return verdict.reason


@functools.cache
def scheme_under_test(name: str) -> SchemeUnderTest:
    if name == "md5-token":
        materials = [
            KeyMaterial("k2026", secret=b"fuzz-token-2026"),
            KeyMaterial("k2025", secret=b"fuzz-token-2025"),
        ]
        verifier = build_source("md5-token", materials, prefix="/books/")
        return SchemeUnderTest(name, verifier, "/books/", frozenset({"s", "expires"}))
    kind, policy = name.split("-")[1:]
    other = "ecdsa" if kind == "rsa" else "rsa"
    verifier = build_source(
        "cloudfront",
        [cloudfront_key(f"K{kind.upper()}", kind), cloudfront_key(f"K{other.upper()}", other)],
        prefix="/acme/",
        settings={"public_origin": ORIGIN},
    )
    options = {"not_before": NOW - 3600} if policy == "custom" else {}
    if policy == "custom" and kind == "rsa":
        options["client_ip"] = "203.0.113.0/24"
    lengths = (256,) if kind == "rsa" else (70, 71, 72)
    return SchemeUnderTest(
        name, verifier, "/acme/", frozenset(SIGNING_PARAMS), options, ORIGIN, lengths
    )


SCHEMES = [
    "md5-token",
    "cloudfront-rsa-canned",
    "cloudfront-ecdsa-canned",
    "cloudfront-rsa-custom",
    "cloudfront-ecdsa-custom",
]


def signed_uris(name: str) -> st.SearchStrategy[str]:
    """Random canonical URIs under the scheme's prefix, signed by the scheme."""
    scheme = scheme_under_test(name)
    return st.builds(
        lambda path, query, lifetime: scheme.sign(with_query(path, query), NOW + lifetime),
        path_under(scheme.prefix),
        own_query(scheme.reserved),
        st.integers(1, 10**7),
    )


def random_uris(name: str) -> st.SearchStrategy[str]:
    prefix = scheme_under_test(name).prefix
    return st.one_of(
        st.text(max_size=120).map(prefix.__add__),
        st.binary(max_size=120).map(lambda b: as_header(prefix.encode() + b)),
        mutated_signed_uris(name),
    )


@st.composite
def mutated_signed_uris(draw: st.DrawFn, name: str) -> str:
    """A signed URI changed by one to three edits (never back into the signed one)."""
    signed = draw(signed_uris(name))
    mutated = signed
    for change in draw(st.lists(text_mutation, min_size=1, max_size=3)):
        mutated = mutate_text(mutated, *change)
    assume(mutated != signed)
    return mutated


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_never_raises_nor_allows_random_uris(name: str) -> None:
    test = f"{name}: random and mutated URIs"
    wrong: list[str] = []

    @fuzz(250)
    @given(random_uris(name))
    def run(uri: str) -> None:
        count(test)
        if scheme_under_test(name).verify(uri) is Reason.OK:
            wrong.append(uri)

    run()
    report(test, wrong)
    assert wrong == []


def forged_md5(scheme: SchemeUnderTest) -> st.SearchStrategy[str]:
    signature = st.one_of(
        st.binary(min_size=16, max_size=16).map(bytes.hex),
        st.text(string.hexdigits, min_size=30, max_size=34),
        st.text(max_size=40).map(lambda t: quote(t, safe="")),
    )
    expiry = st.one_of(
        st.none(), st.integers(0, 10**13).map(str), st.text("0123456789", max_size=14)
    )

    def build(path: str, query: str | None, s: str, expires: str | None, last: bool) -> str:
        params = [query] if query else []
        params += [f"expires={expires}"] if expires is not None else []
        params.insert(len(params) if last else 0, f"s={s}")
        return f"{path}?{'&'.join(params)}"

    return st.builds(
        build,
        path_under(scheme.prefix),
        own_query(scheme.reserved),
        signature,
        expiry,
        st.booleans(),
    )


def forged_cloudfront(scheme: SchemeUnderTest) -> st.SearchStrategy[str]:
    """Well-formed CloudFront trios with a random signature (and a valid policy, often)."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        path = draw(path_under(scheme.prefix))
        query = draw(own_query(scheme.reserved))
        resource = ORIGIN + with_query(path, query or None)
        expires = draw(st.integers(NOW - 10, NOW + 10**6))
        params = [query] if query else []
        if draw(st.booleans()):
            params.append(f"Expires={expires}")
        else:
            document = draw(
                st.one_of(
                    st.just(policies.build(policies.PolicyStatement(expires, resource))),
                    st.just(policies.build(policies.PolicyStatement(expires, ORIGIN + "/*"))),
                    st.binary(max_size=200),
                )
            )
            params.append(f"Policy={b64encode(document)}")
        length = draw(st.sampled_from(scheme.signature_bytes) | st.integers(0, 300))
        params.append(f"Signature={b64encode(draw(st.binary(min_size=length, max_size=length)))}")
        key_id = draw(st.sampled_from([*scheme.verifier.key_ids, "KUNKNOWN", ""]))
        params.append(f"Key-Pair-Id={key_id}")
        if draw(st.booleans()):
            params.append(f"Hash-Algorithm={draw(st.sampled_from(['SHA1', 'SHA256', 'MD5']))}")
        order = draw(st.permutations(params)) if draw(st.booleans()) else params
        return f"{path}?{'&'.join(order)}"

    return build()


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_random_signatures_never_allow(name: str) -> None:
    test = f"{name}: random signatures"
    scheme = scheme_under_test(name)
    forged = forged_md5(scheme) if name == "md5-token" else forged_cloudfront(scheme)
    wrong: list[str] = []

    @fuzz(250)
    @given(forged)
    def run(uri: str) -> None:
        count(test)
        if scheme.verify(uri) is Reason.OK:
            wrong.append(uri)

    run()
    report(test, wrong)
    assert wrong == []


@pytest.mark.parametrize("name", SCHEMES)
def test_sign_then_verify_always_allows(name: str) -> None:
    test = f"{name}: sign -> verify"
    scheme = scheme_under_test(name)
    refused: list[tuple[str, Reason | None]] = []

    @fuzz(150)
    @given(signed_uris(name))
    def run(uri: str) -> None:
        count(test)
        reason = scheme.verify(uri)
        if reason is not Reason.OK:
            refused.append((uri, reason))

    run()
    report(test, [])
    assert refused == []


# Bytes tried at every position: separators, escapes, controls, UTF-8 lead bytes, and
# (added per position) the neighbours and other case of the byte already there.
PROBE_BYTES = b"\x00\t /.%&=?#;\\0129AFZafz_-~+\x7f\x80\xc3\xff"
FIXED_URIS = {  # by path prefix
    "/books/": ["/books/a.jpg", "/books/caf%C3%A9/x.png?w=400&h=600&fit=crop"],
    "/acme/": ["/acme/a.jpg?w=400", "/acme/caf%C3%A9.jpg"],
}


def describe(original: bytes, changed: bytes) -> str:
    """A one-line account of a single-byte change: where, what, and in which parameter."""
    start = next(
        (i for i, (a, b) in enumerate(zip(original, changed, strict=False)) if a != b), None
    )
    start = min(len(original), len(changed)) if start is None else start
    if len(changed) < len(original):
        what = f"delete {original[start : start + 1]!r}"
    elif len(changed) > len(original):
        what = f"insert {changed[start : start + 1]!r}"
    else:
        what = f"{original[start : start + 1]!r} -> {changed[start : start + 1]!r}"
    head = original[:start]
    where = (
        head.rpartition(b"&")[2].rpartition(b"?")[2].partition(b"=")[0] if b"?" in head else b"path"
    )
    uri = original.decode(errors="replace")[:60]
    return f"{what} at offset {start} (in {where.decode(errors='replace')}) of {uri}..."


def single_byte_changes(data: bytes, probes: bytes) -> Iterator[bytes]:
    """Every deletion, and every replacement and insertion by a probe byte, at every offset."""
    for position in range(len(data) + 1):
        here = data[position : position + 1]
        near = {(here[0] + d) % 256 for d in (-1, 1)} if here else set()
        swapped = set(here.swapcase()) if here else set()
        candidates = set(probes) | near | swapped
        if here:
            yield data[:position] + data[position + 1 :]
        for byte in sorted(candidates):
            yield data[:position] + bytes([byte]) + data[position:]
            if here and byte != here[0]:
                yield data[:position] + bytes([byte]) + data[position + 1 :]


@pytest.mark.parametrize("name", SCHEMES)
def test_every_single_byte_change_of_a_signed_uri_is_refused(name: str) -> None:
    test = f"{name}: every single-byte change"
    scheme = scheme_under_test(name)
    probes = bytes(range(256)) if name == "md5-token" else PROBE_BYTES
    allowed: list[str] = []
    for unsigned in FIXED_URIS[scheme.prefix]:
        signed = scheme.sign(unsigned)
        assert scheme.verify(signed) is Reason.OK
        original = signed.encode()
        for changed in single_byte_changes(original, probes):
            assert changed != original
            count(test)
            if scheme.verify(as_header(changed)) is Reason.OK:
                allowed.append(describe(original, changed))
    report(test, allowed)
    assert allowed == [], f"{len(allowed)} single-byte changes still verify:\n" + "\n".join(
        allowed[:8]
    )


@pytest.mark.parametrize("name", SCHEMES)
def test_random_single_byte_changes_of_random_signed_uris_are_refused(name: str) -> None:
    test = f"{name}: random single-byte changes"
    scheme = scheme_under_test(name)
    allowed: list[str] = []

    @fuzz(120)
    @given(signed_uris(name), st.lists(byte_mutation, min_size=1, max_size=25))
    def run(signed: str, changes: list[tuple[str, int, int]]) -> None:
        original = signed.encode()
        for change in changes:
            changed = mutate_bytes(original, *change)
            if changed == original:  # replacing a byte by itself is not a change
                continue
            count(test)
            if scheme.verify(as_header(changed)) is Reason.OK:
                allowed.append(describe(original, changed))

    run()
    report(test, allowed)
    assert allowed == [], f"{len(allowed)} single-byte changes still verify:\n" + "\n".join(
        allowed[:8]
    )


# --- 3. Policy.decide with several sources -----------------------------------------------

DECIDE_CONFIG = f"""\
[server]
clock_skew = 30
deny_status = 403

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
  [[sources.keys]]
  id = "k2026"
  secret = "books-token-2026"
  [[sources.keys]]
  id = "k2025"
  secret = "books-token-2025"

[[sources]]
name = "books-img"
scheme = "md5-token"
path_prefix = "/books/"
hosts = ["img.example.com"]
deny_status = 403
  [[sources.keys]]
  id = "img"
  secret = "img-host-token"

[[sources]]
name = "acme"
scheme = "cloudfront"
path_prefix = "/acme/"
public_origin = "{ORIGIN}"
  [[sources.keys]]
  id = "KRSA"
  public_key_file = "rsa.pub.pem"
  private_key_file = "rsa.pem"
  [[sources.keys]]
  id = "KEC"
  public_key_file = "ec.pub.pem"

[[sources]]
name = "acme-private"
scheme = "cloudfront"
path_prefix = "/acme/private/"
public_origin = "{ORIGIN}"
deny_status = 401
  [[sources.keys]]
  id = "KEC2"
  public_key_file = "ec2.pub.pem"
  private_key_file = "ec2.pem"

[[sources]]
name = "reports"
scheme = "md5-token"
path_prefix = "/reports/"
mode = "report"
  [[sources.keys]]
  id = "r"
  secret = "report-token"

[[sources]]
name = "public"
scheme = "md5-token"
path_prefix = "/public/"
mode = "off"
"""
# Enforced sources: their path prefix, and the host a request must name to reach them.
ENFORCED = {
    "books": ("/books/", None),
    "books-img": ("/books/", "img.example.com"),
    "acme": ("/acme/", None),
    "acme-private": ("/acme/private/", None),
}
HOSTS = [None, "cdn.example.com", "other.example.com", "", "IMG.example.com"]
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
    assert settings_ is not None and settings_.verifier is not None
    origin = ORIGIN if settings_.scheme == "cloudfront" else ""
    options: dict[str, Any] = {"expires": NOW + 600}
    if ip_bound:
        options["client_ip"] = "203.0.113.0/24"
    return request_uri(sign(settings_.verifier, origin + uri, **options))


@st.composite
def decide_inputs(draw: st.DrawFn, policy: Decider) -> DecideCase:
    method, ip = draw(st.sampled_from(METHODS)), draw(st.sampled_from(IPS))
    kind = draw(st.sampled_from(["signed", "mutated", "mutated", "random"]))
    if kind == "random":
        prefix = draw(st.sampled_from(["/books/", "/acme/", "/acme/private/", "/reports/", "/"]))
        uri = draw(st.one_of(st.text(max_size=150), st.binary(max_size=150).map(as_header)))
        return DecideCase(RequestFacts(prefix + uri, method, draw(st.sampled_from(HOSTS)), ip))
    source = draw(st.sampled_from(sorted(ENFORCED)))
    prefix, source_host = ENFORCED[source]
    reserved = frozenset(SIGNING_PARAMS) | {"s", "expires"}
    unsigned = with_query(draw(path_under(prefix)), draw(own_query(reserved)))
    ip_bound = source.startswith("acme") and draw(st.booleans())
    signed = sign_for(policy, source, unsigned, ip_bound)
    uri = signed
    if kind == "mutated":
        for change in draw(st.lists(byte_mutation, min_size=1, max_size=2)):
            uri = as_header(mutate_bytes(uri.encode("utf-8", "surrogateescape"), *change))
    host = source_host or draw(st.sampled_from(HOSTS))
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
    total = sum(FUZZED.values())
    print()
    for test, inputs in sorted(FUZZED.items()):
        print(f"[fuzz] {test}: {inputs} inputs")
    print(
        f"[fuzz] total: {total} inputs fuzzed across {len(FUZZED)} properties, "
        f"{len(WRONG_ALLOWS)} wrong allows"
    )
    for test, uri in WRONG_ALLOWS[:20]:
        print(f"[fuzz] wrong allow in {test}: {uri!r}")
    assert FUZZED, "the summary runs last: no property ran before it"
    assert WRONG_ALLOWS == []
