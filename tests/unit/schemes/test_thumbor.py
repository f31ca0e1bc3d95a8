"""Scheme ``thumbor``: the shared contract, libthumbor's URLs and vectors, the refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from libthumbor import CryptoURL  # type: ignore[import-untyped]  # no stubs, no py.typed
from libthumbor.url_signers.base64_hmac_sha1 import (  # type: ignore[import-untyped]
    UrlSigner,
)

from sidecar import schemes
from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.signing import sign_request
from sidecar.schemes import thumbor
from sidecar.schemes.base import Grant, KeyMaterial, SourceScheme
from tests.support.scheme_contract import (
    CLIENT_IP,
    NOW,
    Carrier,
    SchemeContract,
    build_source,
    request_uri,
    sign,
)
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "thumbor.json").read_text("utf-8"))
PREFIX = "/thumbs/"
KEY = "thumbor-security-key-2026"
_fresh = itertools.count()


def verifier_for(*keys: str, prefix: str = PREFIX) -> SourceScheme:
    material = [KeyMaterial(f"k{i}", secret=key.encode()) for i, key in enumerate(keys)]
    return build_source("thumbor", material, prefix=prefix)


def verify(verifier: SourceScheme, uri: str, now: float = NOW) -> Reason:
    return verify_verdict(verifier, uri, now).reason


def library_url(key: str | bytes, **options: Any) -> str:
    """libthumbor's ``/<signature>/<rest>``; a text key is given as UTF-8 bytes, the way
    thumbor's server encodes it (libthumbor alone would use Latin-1: see below)."""
    url: str = CryptoURL(key=key.encode() if isinstance(key, str) else key).generate(**options)
    return url


def rest_of(url: str) -> str:
    """``/<signature>/<rest>`` → ``<rest>`` (what a signer is given, after the prefix)."""
    return url.split("/", 2)[2]


class TestThumbor(SchemeContract):
    scheme_name = "thumbor"
    path_prefix = PREFIX
    carrier = Carrier.PATH_SEGMENT
    signature_param = "signature"  # unused by a path-segment carrier; a label
    # One segment after the prefix: with nothing after the signature's place, the URL has
    # no signature (``missing``). With two or more, the first IS the signature (thumbor's
    # server reads it so too), and an unsigned options URL is ``malformed``: see below.
    unsigned_url = "/thumbs/database-internals.jpg?w=400&h=600&fit=crop"
    bad_signature_values = (
        "x",
        "300x200",
        "smart",
        "A" * 27,  # unpadded
        "A" * 28,  # no padding: 21 bytes
        "A" * 26 + "==",  # 19 bytes
        "A" * 29,
        "A" * 27 + "B",  # 28 characters without "=": 21 bytes
        "A" * 26 + "B=",  # unused bits set: a second spelling
        "A" * 27 + "%3D",  # "=" percent-encoded (thumbor's server takes it; we do not)
        "+" * 27 + "=",  # the standard alphabet
        "AAAAAAAAAAAAAAAAAAAAAAAAA+A=",
        "%41" + "A" * 26 + "=",
        "=" * 28,
        "unsafe=",
        "A" * 27 + "=" + "A" * 28,
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"thumbor-key-{next(_fresh)}".encode())

    def grant(self, expires: int) -> dict[str, Any]:
        # thumbor URLs carry no expiry: the contract's expiry is not asked for.
        return {}

    # --- the contract's expiry tests, for a format without expiry ---------------------
    # A thumbor URL has no expiry field, so "valid until" cannot be tested; what holds
    # instead is: an allow carries no expiry (so the auth cache keeps it for its own
    # ceiling), the clock and the skew never change an answer, and a grant that asks
    # for an expiry is refused rather than silently signed forever.

    def test_round_trip(self) -> None:
        verifier = self.single("k1")
        verdict = self.verify(verifier, self.sign(verifier))
        assert (verdict.reason, verdict.key_id) == (Reason.OK, "k1")
        assert verdict.expires_at is None

    def test_expiry_edges(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        for now in (0, NOW - 86400, NOW, NOW + 86400 * 365 * 50):
            assert self.verify(verifier, signed, now).reason is Reason.OK
        with pytest.raises(SchemeError, match="do not expire"):
            verifier.sign(sign_request(self.unsigned_url, Grant(expires=NOW + 10)))

    def test_expiry_with_clock_skew(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        for skew in (0, 30, 3600):
            assert self.verify(verifier, signed, NOW, skew=skew).reason is Reason.OK
        tampered = self.with_uri(signed, signed.uri.replace("w=400", "w=401"))
        assert self.verify(verifier, tampered, NOW, skew=3600).reason is Reason.INVALID

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        # No answer can be "expired": a tampered URL is invalid at any time.
        verifier = self.single()
        tampered = self.sign(verifier).uri.replace("fit=crop", "fit=fill")
        for now in (0, NOW, NOW + 10**9):
            assert verify(verifier, tampered, now) is Reason.INVALID


# --- known answers, made by libthumbor ------------------------------------------------------


def _vector_id(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


def test_vectors_file_covers_every_libthumbor_option() -> None:
    assert VECTORS["scheme"] == "thumbor"
    used = {name for vector in VECTORS["vectors"] for name in vector["options"]}
    assert used >= {"image_url", "width", "height", "smart", "fit_in", "full_fit_in",
                    "adaptive_fit_in", "adaptive_full_fit_in", "flip", "flop", "filters",
                    "crop", "halign", "valign", "trim", "meta"}  # fmt: skip
    assert len(VECTORS["vectors"]) >= 25


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_id)
def test_vector_agrees_with_libthumbor(vector: dict[str, Any]) -> None:
    # Guards the vectors file: libthumbor, run now, makes the same URL.
    assert library_url(vector["key"], **vector["options"]) == vector["expected"]


@pytest.mark.parametrize("prefix", [PREFIX, "/", "/img/thumbs"])
@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_id)
def test_vector_verifies_and_signs(vector: dict[str, Any], prefix: str) -> None:
    base = prefix.rstrip("/") + "/"
    served = base + vector["expected"][1:]
    verifier = verifier_for(KEY, "an-older-security-key", "clé-sécurité-€", prefix=prefix)
    verdict = verify_verdict(verifier, served)
    assert verdict.reason is Reason.OK
    assert verdict.key_id == {KEY: "k0", "an-older-security-key": "k1"}.get(vector["key"], "k2")
    assert (verdict.expires_at, verdict.shareable) == (None, True)
    # Our signer, given the rest under the prefix, makes libthumbor's URL byte for byte.
    signer = verifier_for(vector["key"], prefix=prefix)
    assert sign(signer, base + rest_of(vector["expected"])) == served
    assert verify(verifier_for(vector["key"] + "x", prefix=prefix), served) is Reason.INVALID


Options = tuple[dict[str, Any], ...]


def test_every_libthumbor_option_combination_verifies() -> None:
    verifier = verifier_for(KEY)
    sizes: Options = ({}, {"width": 300}, {"width": 300, "height": 200})
    fits: Options = ({}, {"fit_in": True}, {"full_fit_in": True}, {"adaptive_fit_in": True})
    flips: Options = ({}, {"flip": True}, {"flop": True}, {"flip": True, "flop": True})
    aligns: Options = ({}, {"halign": "left", "valign": "top"}, {"halign": "right"})
    extras: Options = (
        {},
        {"smart": True, "meta": True},
        {"trim": True, "crop": ((1, 2), (3, 4))},
        {"filters": ["quality(80)", "blur(7)"], "trim": ("bottom-right", 3)},
    )
    images = ("books/a.jpg", "books/caf%C3%A9%20menu.png", "books/a.jpg?v=2")
    checked = 0
    for size, fit, flip, align, extra, image in itertools.product(
        sizes, fits, flips, aligns, extras, images
    ):
        if fit and not size:
            continue  # libthumbor refuses fit-in without a size
        options = {"image_url": image, **size, **fit, **flip, **align, **extra}
        url = library_url(KEY, **options)
        served = "/thumbs" + url
        assert canonical.parse(served) is not None, served
        verdict = verify_verdict(verifier, served)
        assert (verdict.reason, verdict.key_id) == (Reason.OK, "k0"), served
        assert sign(verifier, PREFIX + rest_of(url)) == served
        checked += 1
    assert checked == 3 * 4 * 4 * 3 * 4 * 3 - 3 * 4 * 3 * 4 * 3 == 1296


# --- the key: libthumbor and the server disagree on non-ASCII text keys -----------------------


def test_a_non_ascii_key_is_utf8_as_the_server_reads_it() -> None:
    key = "clé-sécurité"
    rest = "300x200/books/a.jpg"
    server = UrlSigner(key).signature(rest).decode()  # thumbor's own signer: key.encode("utf-8")
    assert sign(verifier_for(key), PREFIX + rest) == f"{PREFIX}{server}/{rest}"
    # libthumbor's CryptoURL given the text key encodes it as Latin-1 (six.b): a URL the
    # server refuses, and so do we; given the UTF-8 bytes, it agrees with the server.
    latin1 = CryptoURL(key=key).generate(image_url="books/a.jpg", width=300, height=200)
    assert latin1 != f"/{server}/{rest}"
    assert verify(verifier_for(key), "/thumbs" + latin1) is Reason.INVALID
    assert library_url(key, image_url="books/a.jpg", width=300, height=200) == f"/{server}/{rest}"
    # A character beyond Latin-1 makes libthumbor's text-key path fail outright.
    with pytest.raises(UnicodeEncodeError):
        CryptoURL(key="key-€")


def test_the_signature_is_hmac_sha1_base64url_padded() -> None:
    rest = "300x200/smart/books/a.jpg"
    digest = hmac.new(KEY.encode(), rest.encode(), hashlib.sha1).digest()
    expected = base64.urlsafe_b64encode(digest).decode()
    assert len(expected) == 28 and expected.endswith("=")
    assert sign(verifier_for(KEY), PREFIX + rest) == f"{PREFIX}{expected}/{rest}"


# --- what is refused, and why ----------------------------------------------------------------

SIGNED = library_url(KEY, image_url="books/a.jpg", width=300, height=200, smart=True)
SIG = SIGNED.split("/")[1]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("/thumbs" + SIGNED, Reason.OK),
        ("/thumbs/unsafe/300x200/smart/books/a.jpg", Reason.MISSING),
        ("/thumbs/unsafe/books/a.jpg", Reason.MISSING),
        ("/thumbs/a.jpg", Reason.MISSING),
        ("/thumbs/" + SIG, Reason.MISSING),
        ("/thumbs", Reason.MISSING),
        ("/thumbs/?u=/a/b", Reason.MISSING),
        ("/thumbs/300x200/smart/books/a.jpg", Reason.MALFORMED),  # unsigned options URL
        ("/thumbs/" + SIG.rstrip("=") + "/300x200/smart/books/a.jpg", Reason.MALFORMED),
        ("/thumbs/" + SIG.replace("=", "%3D") + "/300x200/smart/books/a.jpg", Reason.MALFORMED),
        ("/thumbs/300x200/" + SIG + "/smart/books/a.jpg", Reason.MALFORMED),  # wrong segment
        ("/thumbs/" + SIG + "/", Reason.MALFORMED),  # nothing signed after it
        ("/thumbs" + SIGNED + "?", Reason.OK),  # thumbor's server signs the path alone
        ("/thumbs" + SIGNED + "?w=1", Reason.OK),  # so a query added after signing is free
        ("/thumbs" + SIGNED.replace("smart/", ""), Reason.INVALID),
        ("/thumbs" + SIGNED.replace("a.jpg", "b.jpg"), Reason.INVALID),
        ("/th%75mbs" + SIGNED, Reason.MALFORMED),  # a second spelling of the prefix
        ("/Thumbs" + SIGNED, Reason.MALFORMED),
    ],
)
def test_shapes_and_their_reasons(uri: str, reason: Reason) -> None:
    assert verify(verifier_for(KEY), uri) is reason


def test_standard_alphabet_is_malformed() -> None:
    # Find a signature with "-" (a "_" would become "/" and split the segment).
    for width in range(1, 200):
        url = library_url(KEY, image_url="books/a.jpg", width=width)
        sig = url.split("/")[1]
        if "-" in sig:
            break
    else:
        raise AssertionError("no signature with '-' in 200 tries")
    assert verify(verifier_for(KEY), "/thumbs" + url) is Reason.OK
    standard = "/thumbs" + url.replace(sig, sig.replace("-", "+"))
    assert verify(verifier_for(KEY), standard) is Reason.MALFORMED


def test_a_rest_holding_its_own_signature_is_malformed() -> None:
    # thumbor's server cuts EVERY "/<signature>/" (and its %3D spelling) out of the path
    # before checking, so such a URL means another text there: refused, never signed.
    for rest in (f"300x200/{SIG}/a.jpg", f"{SIG}/a.jpg", f"a/{SIG.replace('=', '%3D')}/b.jpg"):
        digest = hmac.digest(KEY.encode(), rest.encode(), "sha1")
        uri = f"/thumbs/{base64.urlsafe_b64encode(digest).decode()}/{rest}"
        assert verify(verifier_for(KEY), uri) is Reason.OK  # its own signature: fine
        holding = f"/thumbs/{SIG}/{rest}"
        assert verify(verifier_for(KEY), holding) is Reason.MALFORMED


def test_a_rest_reentering_the_prefix_is_just_a_path_it_covers() -> None:
    # "/thumbs/<sig>/thumbs/x.png" names the file at exactly that path, and the signature
    # covers "thumbs/x.png" byte for byte: nothing else can be reached through it.
    verifier = verifier_for(KEY)
    signed = sign(verifier, "/thumbs/thumbs/300x200/x.png")
    assert signed.startswith("/thumbs/") and signed.endswith("/thumbs/300x200/x.png")
    assert verify(verifier, signed) is Reason.OK
    assert verify(verifier, signed.replace("/thumbs/300x200", "/thumbs/300x201")) is Reason.INVALID
    # A dot segment that would leave it is refused before any scheme runs (docs/security.md).
    assert canonical.parse(f"/thumbs/{SIG}/../secret/x.png") is None


# --- thumbor URL shapes the canonical gate refuses (non_canonical, before this scheme) ---


@pytest.mark.parametrize(
    "options",
    [
        {"image_url": "http://images.example.com/a.jpg"},  # "//": a full image URL
        {"image_url": "https://images.example.com/a.jpg", "width": 300},
        {"image_url": "http%3A%2F%2Fimages.example.com%2Fa.jpg"},  # encoded "/"
        {"image_url": "books/../secret/a.jpg"},  # dot segment
        {"image_url": "books/a.jpg;v=2"},  # ";" in the path
        {"image_url": "books/a b.jpg"},  # a raw space
        {"image_url": "books/a.jpg", "filters": ["fill(#fff)"]},  # "#"
        {"image_url": "books/a.jpg", "filters": ["watermark(http://x.example.com/w.png,0,0,0)"]},
        {"image_url": "books/a.jpg", "filters": ["watermark(x.example.com%2Fw.png,0,0,0)"]},
        {"image_url": "books%5Ca.jpg"},  # encoded backslash
        {"image_url": "books/a%2Ejpg"},  # encoded "."
    ],
)
def test_thumbor_shapes_the_canonical_gate_refuses(options: dict[str, Any]) -> None:
    assert canonical.parse("/thumbs" + library_url(KEY, **options)) is None


# --- signing --------------------------------------------------------------------------------


def test_sign_keeps_the_origin_and_drops_a_bare_question_mark() -> None:
    verifier = verifier_for(KEY)
    origin = "https://image.example.com"
    expected = "/thumbs" + library_url(KEY, image_url="books/a.jpg", width=300, height=200)
    assert sign(verifier, f"{origin}/thumbs/300x200/books/a.jpg") == origin + expected
    assert sign(verifier, "/thumbs/300x200/books/a.jpg?") == expected
    # The prefix is kept as the caller spelled it, and without its trailing "/" in config.
    assert sign(verifier_for(KEY, prefix="/thumbs"), "/thumbs/300x200/books/a.jpg") == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/thumbs/unsafe/300x200/books/a.jpg", "unsafe"),
        ("/thumbs" + SIGNED, "already signed"),
        ("/thumbs/", "nothing to sign"),
        ("/thumbs", "nothing to sign"),
        ("/thumbs/?v=1", "nothing to sign"),
        ("/th%75mbs/300x200/a.jpg", "not under"),
        ("/other/300x200/a.jpg", "not under"),
    ],
)
def test_sign_refuses_what_could_never_verify(url: str, problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        sign(verifier_for(KEY), url)


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ({"expires": NOW + 60}, "do not expire"),
        ({"not_before": NOW}, "not_before"),
        ({"client_ip": CLIENT_IP}, "client_ip"),
        ({"resource": "/thumbs/*"}, "resource"),
        ({"prefix": "/thumbs/"}, "prefix"),
        ({"cookies": True}, "cookies"),
    ],
)
def test_sign_refuses_grants_thumbor_cannot_carry(grant: dict[str, Any], problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        sign(verifier_for(KEY), "/thumbs/300x200/books/a.jpg", **grant)


def test_no_secret_in_any_refusal() -> None:
    verifier = verifier_for(KEY)
    for url in ("/thumbs/unsafe/a/b.jpg", "/thumbs/", "/x/a.jpg"):
        with pytest.raises(SchemeError) as raised:
            sign(verifier, url)
        assert KEY not in str(raised.value)
    assert KEY not in repr(verifier)


def test_declarations_and_new_key() -> None:
    scheme = schemes.get("thumbor")
    assert scheme is thumbor.SCHEME
    assert (scheme.default_deny_status, scheme.key_types, scheme.settings) == (403, ("token",), ())
    assert scheme.key_ids_in_url is False
    first, second = scheme.new_key("token").secret, scheme.new_key("token").secret
    assert first is not None and second is not None and first != second
    assert len(base64.urlsafe_b64decode(first + "=")) == 32
    with pytest.raises(SchemeError, match="needs a secret"):
        build_source("thumbor", [KeyMaterial("k1")], prefix=PREFIX)


def test_request_uri_of_an_absolute_libthumbor_url() -> None:
    # What nginx passes is the origin-form URI: the same verdict.
    absolute = "https://image.example.com/thumbs" + SIGNED
    assert verify(verifier_for(KEY), request_uri(absolute)) is Reason.OK
