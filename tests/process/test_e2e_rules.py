"""Rules beyond the signature through the real nginx with the shipped files, the auth
cache on (docs/configuration.md, "Rules"): a Referer, a client network and a country
(``X-Country-Code``, here mapped from the client's loopback address as the geoip2 module
would map it from a real one) each decide a signed URL, even right after the same URL was
allowed for another page, network or country. The access log names the source and key;
with signed-url-gone.conf an expired link answers 410.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.requests import HOST
from tests.support.stacks import any_image_in, image_bytes, running_stack
from tests.support.tokens import BOOKS_TOKEN, md5_signed

SHOP, ELSEWHERE = "https://shop.example.com/product/7", "https://hotlinker.example/page"
OFFICE, HOME, JAPAN = "127.0.0.2", "127.0.0.1", "127.0.0.3"  # loopback clients of their own
CONFIG = sidecar_config(
    md5_source(
        "shop",
        "/books/",
        {"k-shop": BOOKS_TOKEN},
        deny_status=403,
        referrers=["https://shop.example.com"],
    ),
    md5_source(
        "office", "/secret/", {"k-office": BOOKS_TOKEN}, deny_status=403, networks=[f"{OFFICE}/32"]
    ),
    md5_source("licensed", "/reports/", {"k-jp": BOOKS_TOKEN}, deny_status=403, countries=["JP"]),
    md5_source("plain", "/public/", {"k-plain": BOOKS_TOKEN}),
    server={"cache_ttl": 60, "clock_skew": 0},
)
# What geoip2 would set: one country per client address.
COUNTRIES = f"map $remote_addr $geoip2_data_country_code {{ {JAPAN} JP; default FR; }}\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder: Path = tmp_path_factory.mktemp("rules")
    with running_stack(folder, CONFIG, http_extra=COUNTRIES, country=True, gone=True) as running:
        yield running


def get(
    stack: LocalStack, uri: str, *, client: str = HOME, referrer: str | None = None
) -> tuple[int, bytes, str]:
    """Status, body and the reason nginx logged, for a request from ``client``."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", stack.nginx_port, timeout=10, source_address=(client, 0)
    )
    try:
        headers = {"Host": HOST} | ({"Referer": referrer} if referrer else {})
        connection.request("GET", uri, headers=headers)
        response = connection.getresponse()
        body, request_id = response.read(), response.getheader("X-Request-ID") or ""
    finally:
        connection.close()
    return response.status, body, stack.result_for(request_id)


def log_line(stack: LocalStack, reason: str, path: str) -> str:
    """The last access log line for ``path`` with ``reason`` (waited for: nginx writes it
    after it answers)."""
    deadline = time.monotonic() + 5
    while True:
        lines = (stack.folder / "nginx" / "access.log").read_text().splitlines()
        found = [line for line in lines if f' {path}" ' in line and f"sig={reason} " in line]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no log line for {path} ({reason})"
        time.sleep(0.01)


def test_a_page_that_may_embed_the_image_gets_it_and_another_does_not(stack: LocalStack) -> None:
    uri = md5_signed("/books/x.png")
    status, body, reason = get(stack, uri, referrer=SHOP)
    assert (status, body, reason) == (200, image_bytes(stack, "/books/x.png"), "ok")
    # Right after the allowed request: the allow was not cached for the next page.
    status, body, reason = get(stack, uri, referrer=ELSEWHERE)
    assert (status, reason) == (403, "referrer") and not any_image_in(body, stack)
    assert get(stack, uri, referrer=SHOP)[2] == "ok"


def test_no_referrer_follows_allow_no_referrer(stack: LocalStack) -> None:
    # allow_no_referrer defaults to true: a direct visit, a privacy-minded browser.
    status, body, reason = get(stack, md5_signed("/books/x.png"))
    assert (status, reason) == (200, "ok") and body == image_bytes(stack, "/books/x.png")


def test_the_signature_is_checked_before_the_referrer(stack: LocalStack) -> None:
    status, body, reason = get(stack, "/books/x.png", referrer=SHOP)
    assert (status, reason) == (403, "missing")
    assert not any_image_in(body, stack)


def test_a_network_decides_the_same_url(stack: LocalStack) -> None:
    uri = md5_signed("/secret/x.png")
    status, body, reason = get(stack, uri, client=OFFICE)
    assert (status, body, reason) == (200, image_bytes(stack, "/secret/x.png"), "ok")
    status, body, reason = get(stack, uri, client=HOME)
    assert (status, reason) == (403, "network") and not any_image_in(body, stack)


def test_a_country_decides_the_same_url(stack: LocalStack) -> None:
    uri = md5_signed("/reports/r.png")
    status, body, reason = get(stack, uri, client=JAPAN)
    assert (status, body, reason) == (200, image_bytes(stack, "/reports/r.png"), "ok")
    status, body, reason = get(stack, uri, client=HOME)  # FR
    assert (status, reason) == (403, "country") and not any_image_in(body, stack)


def test_a_source_without_rules_is_cached_and_served_to_any_page(stack: LocalStack) -> None:
    uri = md5_signed("/public/x.png")
    assert get(stack, uri, referrer=SHOP)[0] == 200
    assert get(stack, uri, referrer=ELSEWHERE)[0] == 200


def test_the_log_names_the_source_and_key(stack: LocalStack) -> None:
    get(stack, md5_signed("/secret/x.png"), client=OFFICE)
    allowed = log_line(stack, "ok", "/secret/x.png")
    assert " src=office key=k-office " in allowed
    get(stack, md5_signed("/secret/x.png"), client=HOME)
    denied = log_line(stack, "network", "/secret/x.png")
    assert " src=office key= " in denied  # a denial names no key


def test_an_expired_link_is_gone(stack: LocalStack) -> None:
    expired = md5_signed(f"/public/x.png?expires={int(time.time()) - 5}")
    status, body, reason = get(stack, expired)
    assert (status, reason) == (410, "expired") and not any_image_in(body, stack)
    # Other denials keep their status.
    status, _, reason = get(stack, "/public/x.png")
    assert (status, reason) == (401, "missing")
