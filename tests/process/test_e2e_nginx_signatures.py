"""End to end through nginx: the reference URL, tampering, the exact file served, modes.

A real nginx (the shipped configs) in front of the real sidecar process; every verdict is
checked where a client sees it: status, bytes served, and the reason nginx logged.
"""

from __future__ import annotations

import hashlib

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.e2e_table import SERVED, TAMPERED
from tests.support.md5_sources import (
    MAIN_CONFIG,
    REFERENCE_SIGNATURE,
    REFERENCE_UNSIGNED,
    REFERENCE_URL,
)
from tests.support.requests import fetch, fetch_with_reason
from tests.support.stacks import StackFactory, assert_denied, image_bytes
from tests.support.tokens import BOOKS_TOKEN, REPORT_TOKEN, SECRET_TOKEN, md5_signed


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(MAIN_CONFIG)


# --- the documented reference value ------------------------------------------------------------


def test_reference_signature_is_md5_of_uri_and_token() -> None:
    digest = hashlib.md5((REFERENCE_UNSIGNED + BOOKS_TOKEN).encode()).hexdigest()
    assert digest == REFERENCE_SIGNATURE
    assert md5_signed(REFERENCE_UNSIGNED) == REFERENCE_URL


def test_reference_url_is_served_through_nginx(stack: LocalStack) -> None:
    status, body, reason = fetch_with_reason(stack, REFERENCE_URL)
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/books/database-internals.jpg")


@pytest.mark.parametrize(("uri", "reason"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_reference_url_is_denied(stack: LocalStack, uri: str, reason: str) -> None:
    status, body, logged = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, 401)  # md5-token's default deny status
    assert logged == reason


# --- signed URLs serve the exact file -----------------------------------------------------


@pytest.mark.parametrize(("unsigned", "file"), SERVED.values(), ids=SERVED.keys())
def test_signed_url_serves_the_exact_file(stack: LocalStack, unsigned: str, file: str) -> None:
    status, body, reason = fetch_with_reason(stack, md5_signed(unsigned))
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, file)


def test_source_deny_status_is_used(stack: LocalStack) -> None:
    status, body, reason = fetch_with_reason(stack, md5_signed("/secret/x.png", BOOKS_TOKEN))
    assert_denied(status, body, stack, 403)
    assert reason == "invalid"
    status, body = fetch(stack, md5_signed("/secret/x.png", SECRET_TOKEN))
    assert (status, body) == (200, image_bytes(stack, "/secret/x.png"))


# --- modes ----------------------------------------------------------------------------------

REPORTED = {
    "signed": (md5_signed("/reports/r.png?w=1", REPORT_TOKEN), "ok"),
    "unsigned": ("/reports/r.png?w=2", "missing"),
    "wrong token": (md5_signed("/reports/r.png?w=3", BOOKS_TOKEN), "invalid"),
    "truncated signature": (md5_signed("/reports/r.png?w=4", REPORT_TOKEN)[:-2], "malformed"),
    "expired": (md5_signed("/reports/r.png?expires=1000000000", REPORT_TOKEN), "expired"),
}


@pytest.mark.parametrize(("uri", "reason"), REPORTED.values(), ids=REPORTED.keys())
def test_report_mode_serves_and_logs_the_would_be_reason(
    stack: LocalStack, uri: str, reason: str
) -> None:
    status, body, logged = fetch_with_reason(stack, uri)
    assert status == 200
    assert body == image_bytes(stack, "/reports/r.png")
    assert logged == reason


@pytest.mark.parametrize("uri", ["/public/x.png", "/public/x.png?w=10&s=junk"])
def test_off_mode_serves_unsigned(stack: LocalStack, uri: str) -> None:
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (200, "unsigned_allowed")
    assert body == image_bytes(stack, "/public/x.png")
