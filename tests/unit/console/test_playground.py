"""The playground asks /verify as the configured proxy would: for every profile, the
headers it builds read back (through ``policy.proxies``) as the request it meant."""

from __future__ import annotations

import pytest

from sidecar.core.verdict import Reason
from sidecar.policy.proxies import EXTRACTORS, PROFILES
from sidecar.runtime.console.playground import EXPLANATIONS, _status_and_result, verify_request

URI = "/books/a.jpg?w=400&s=7d0d58f62c945d0ca08269205228bbe7"


@pytest.mark.parametrize("proxy", PROFILES)
def test_each_profile_reads_back_the_request_meant(proxy: str) -> None:
    target, headers = verify_request(proxy, URI, "image.example.com", "203.0.113.7", "GET")
    facts = EXTRACTORS[proxy]("GET", target, dict(headers))
    assert facts.uri == URI
    assert facts.method == "GET"
    assert facts.client_ip == "203.0.113.7"
    # ingress-nginx passes the client's own Host: the sidecar never routes on it.
    assert facts.host == (None if proxy == "ingress-nginx" else "image.example.com")


@pytest.mark.parametrize("proxy", PROFILES)
def test_without_a_host_no_host_is_claimed(proxy: str) -> None:
    target, headers = verify_request(proxy, URI, None, "::1", "GET")
    facts = EXTRACTORS[proxy]("GET", target, dict(headers))
    assert facts.uri == URI
    if proxy in ("nginx", "traefik"):
        assert facts.host is None


def test_each_request_has_its_own_id_for_the_log() -> None:
    first = dict(verify_request("nginx", URI, None, "::1", "GET")[1])["X-Request-ID"]
    second = dict(verify_request("nginx", URI, None, "::1", "GET")[1])["X-Request-ID"]
    assert first.startswith("console-") and first != second


def test_the_answer_head_gives_status_and_result() -> None:
    head = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nx-signature-result: invalid\r\n\r\n"
    assert _status_and_result(head) == (403, "invalid")
    assert _status_and_result("HTTP/1.1 200 OK\r\n\r\n") == (200, "")


def test_every_reason_is_explained() -> None:
    assert set(EXPLANATIONS) == set(Reason)
    assert all(text.endswith(".") for text in EXPLANATIONS.values())
