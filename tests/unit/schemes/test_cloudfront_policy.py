"""Scheme ``cloudfront``: custom policies, their wildcard resources, and their strict
parsing, which happens only after the signature holds."""

from __future__ import annotations

import json
import sys
from types import FrameType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes.cloudfront import b64encode
from tests.support.cloudfront import (
    KEY_IDS,
    ORIGIN,
    custom,
    decide,
    pair,
    param,
    with_param,
)
from tests.support.scheme_contract import NOW


@pytest.mark.parametrize(
    ("resource", "path", "allowed"),
    [
        (f"{ORIGIN}/acme/*", "/acme/any/deep/file.jpg?w=1", True),
        (f"{ORIGIN}/acme/*.jpg", "/acme/x.jpg", True),
        (f"{ORIGIN}/acme/*.jpg", "/acme/x.png", False),
        (f"{ORIGIN}/acme/?.jpg", "/acme/x.jpg", True),
        (f"{ORIGIN}/acme/?.jpg", "/acme/xy.jpg", False),
        (f"{ORIGIN}/acme/a.jpg", "/acme/a.jpg?w=1", False),
        ("http*://cdn.example.com/acme/*", "/acme/a.jpg", True),
        ("https://other.example.com/acme/*", "/acme/a.jpg", False),
    ],
)
def test_wildcard_resources(policy: Decider, resource: str, path: str, allowed: bool) -> None:
    url = custom("rsa-sha1", path, resource=resource)
    assert decide(policy, url) == ((200, Reason.OK) if allowed else (403, Reason.INVALID))


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("", "", True),
        ("", "a", False),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("**", "anything", True),
        ("*a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", False),
    ],
)
def test_wildcard_matcher(pattern: str, text: str, expected: bool) -> None:
    assert policies.matches(pattern, text) is expected


# --- custom policies are parsed strictly, and only after their signature holds ----------


def _signed_document(document: bytes, path: str = "/acme/a.jpg") -> str:
    private = load_pem_private_key(pair("rsa", "botocore")[0], password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(document, padding.PKCS1v15(), hashes.SHA1())
    return (f"{ORIGIN}{path}?Policy={b64encode(document)}&Signature={b64encode(signature)}"
            f"&Key-Pair-Id={KEY_IDS['rsa']}")  # fmt: skip


GOOD: dict[str, Any] = {
    "Resource": f"{ORIGIN}/acme/a.jpg",
    "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 60}},
}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (json.dumps({"Statement": [GOOD]}).encode(), Reason.OK),
        (json.dumps({"Statement": [GOOD, GOOD]}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": []}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": GOOD}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": [GOOD], "Extra": 1}).encode(), Reason.MALFORMED),
        (
            b'{"Statement":[{"Resource":"x","Resource":"' + ORIGIN.encode() + b'/acme/a.jpg",'
            b'"Condition":{"DateLessThan":{"AWS:EpochTime":' + str(NOW + 60).encode() + b"}}}]}",
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {**GOOD, "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 60.5}}}
                    ]
                }
            ).encode(),
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {**GOOD, "Condition": {"DateLessThan": {"AWS:EpochTime": str(NOW + 60)}}}
                    ]
                }
            ).encode(),
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {"Statement": [{**GOOD, "Condition": {"DateLessThan": {"AWS:EpochTime": True}}}]}
            ).encode(),
            Reason.MALFORMED,
        ),
        (json.dumps({"Statement": [{**GOOD, "Condition": {}}]}).encode(), Reason.MALFORMED),
        (json.dumps({"Statement": [{"Resource": GOOD["Resource"]}]}).encode(), Reason.MALFORMED),
        (
            json.dumps(
                {"Statement": [{**GOOD, "Condition": {**GOOD["Condition"], "StringLike": {}}}]}
            ).encode(),
            Reason.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {
                            **GOOD,
                            "Condition": {
                                **GOOD["Condition"],
                                "IpAddress": {"AWS:SourceIp": "nope"},
                            },
                        }
                    ]
                }
            ).encode(),
            Reason.MALFORMED,
        ),
        # Parsed (no Resource is every URL), but beyond a source at /acme/: held to it.
        (json.dumps({"Statement": [{"Condition": GOOD["Condition"]}]}).encode(), Reason.INVALID),
        (b"not json", Reason.MALFORMED),
        (b"[" * 5000, Reason.MALFORMED),
        (json.dumps({"Statement": [GOOD]}).encode() + b" x", Reason.MALFORMED),
    ],
)
def test_custom_policy_parsing_is_strict(policy: Decider, document: bytes, reason: Reason) -> None:
    status, got = decide(policy, _signed_document(document))
    assert got is reason
    assert status == (200 if reason is Reason.OK else 403)


def test_unsigned_policy_is_never_parsed(policy: Decider) -> None:
    # A malformed policy with a bad signature is "invalid", not "malformed": parsing
    # happens only after the signature holds, so hostile JSON never reaches the parser.
    url = _signed_document(b"not json")
    forged = with_param(url, "Signature", param(_signed_document(b"{}"), "Signature"))
    assert decide(policy, forged) == (403, Reason.INVALID)


@pytest.mark.parametrize(
    "resource",
    [f"{ORIGIN}/acme/a.jpg", f'{ORIGIN}/acme/caf\u00e9 "q"\\x.jpg?a=1&b=%20', f"{ORIGIN}/\u65e5"],
)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_fast_canned_policy_equals_the_generic_builder(resource: str, ascii_only: bool) -> None:
    expected = policies.build(policies.PolicyStatement(NOW, resource), ascii_only=ascii_only)
    assert policies.canned(resource, NOW, ascii_only=ascii_only) == expected


# --- matching costs no Python work per URL byte; a Resource must be a string -----------------


class TestMatchingCostAndResourceType:
    @staticmethod
    def python_steps(pattern: str, text: str) -> int:
        """Lines of Python run to match: a per-character loop in Python shows here."""
        policies.matches(pattern, text)  # compiled pieces are cached: count the matching only
        steps = 0

        def count(frame: FrameType, event: str, arg: object) -> Any:
            nonlocal steps
            steps += event == "line"
            return count

        measuring = sys.gettrace()  # coverage's tracer, when it measures: put back after
        sys.settrace(count)
        try:
            policies.matches(pattern, text)
        finally:
            sys.settrace(measuring)
        return steps

    @pytest.mark.parametrize(
        "pattern",
        [
            "https://cdn.example.com/acme/*.jpg",
            "https://cdn.example.com/acme/*.j?g",
            "https://cdn.example.com/*/*j?j?q*",
            "*?.j*.jpg",
        ],
    )
    def test_wildcard_matching_work_does_not_grow_with_the_url(self, pattern: str) -> None:
        # A URL padded with ".j" thousands of times against "*.jpg" cost 4.2 ms a request
        # (a Python loop per character); the Python work must not depend on the URL's length
        # (the scanning happens inside str.find and compiled, fixed-length patterns).
        base = "https://cdn.example.com/acme/a.jpg?x="
        short, long = base + ".j" * 50, base + ".j" * 3700
        assert self.python_steps(pattern, long) == self.python_steps(pattern, short)

    @pytest.mark.parametrize(
        ("pattern", "text", "expected"),
        [
            ("https://c/acme/*.jpg", "https://c/acme/a.jpg", True),
            ("https://c/acme/*.jpg", "https://c/acme/a.jpg?x=.j.j", False),
            ("https://c/acme/*.jpg*", "https://c/acme/a.jpg?x=.j.j", True),
            ("https://c/acme/?.jpg", "https://c/acme/ab.jpg", False),
            ("https://c/*/*/b", "https://c/x/y/b", True),
            ("https://c/*/*/b", "https://c/x/b", False),
            ("*", "", True),
            ("", "", True),
            ("?", "", False),
            ("a*a", "a", False),
            ("*ab?d*", "xxabcabqd", True),
        ],
    )
    def test_wildcards_against_repeated_fragments(
        self, pattern: str, text: str, expected: bool
    ) -> None:
        assert policies.matches(pattern, text) is expected

    @pytest.mark.parametrize("resource", ["null", "[]", "1", "true", '{"a": 1}'])
    def test_resource_that_is_not_a_string_is_malformed(self, resource: str) -> None:
        document = (
            '{"Statement":[{"Resource":' + resource + ',"Condition":'
            '{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}'
        ).encode()
        assert policies.parse(document) is None
        # Absent is still "every URL of the source", as CloudFront has it.
        absent = b'{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}'
        assert policies.parse(absent) == policies.PolicyStatement(1_900_000_000)
