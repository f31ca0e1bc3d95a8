"""``bunny`` end to end: Bunny CDN token URLs through the real nginx and sidecar, the auth
cache on. Ours (``sign_url``) and hand-made ones (the ``HS256-``, classic and basic
formats with the standard library) are served; BunnyWay's published vectors hold their
signature through nginx (``expired``, not ``invalid``); an address-bound or
country-limited allow is never served to another client from the cache; every other
answer with its reason. Clients are loopback addresses of their own, and the country is
``X-Country-Code`` mapped from them as the geoip2 module would from real ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from tests.support.configs import sidecar_config, source_toml
from tests.support.requests import HOST
from tests.support.stacks import any_image_in, image_bytes, running_stack

VECTORS = json.loads(
    (Path(__file__).parents[1] / "unit" / "schemes" / "vectors" / "bunny.json").read_text()
)
ORIGIN = f"https://{HOST}"
SECRET, BASIC_SECRET = "e2e-bunny-zone-key-3f9a", "e2e-bunny-basic-key-81c2"
HOME, OFFICE, JAPAN = "127.0.0.1", "127.0.0.2", "127.0.0.3"
COUNTRIES = f"map $remote_addr $geoip2_data_country_code {{ {JAPAN} JP; default FR; }}\n"
CONFIG = sidecar_config(
    source_toml("zone", "bunny", "/books/", {"2026-11": {"secret": SECRET}}),
    source_toml("basic", "bunny", "/reports/", {"b1": {"secret": BASIC_SECRET}}, variant="basic"),
    # BunnyWay's vectors: their zone's key, their paths (no file there: they are expired).
    source_toml("vendor", "bunny", "/", {"v1": {"secret": VECTORS["key"]}}),
    server={"cache_ttl": 60, "clock_skew": 0},
)
IMAGE = "/books/x.png"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder: Path = tmp_path_factory.mktemp("bunny")
    with running_stack(folder, CONFIG, http_extra=COUNTRIES, country=True) as running:
        yield running


def get(stack: LocalStack, uri: str, client: str = HOME) -> tuple[int, bytes, str]:
    """Status, body and the reason nginx logged, for a request from ``client``."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", stack.nginx_port, timeout=10, source_address=(client, 0)
    )
    try:
        connection.request("GET", uri, headers={"Host": HOST})
        response = connection.getresponse()
        body, request_id = response.read(), response.getheader("X-Request-ID") or ""
    finally:
        connection.close()
    return response.status, body, stack.result_for(request_id)


def signed(stack: LocalStack, url: str, **grant: Any) -> str:
    settings = config.load(stack.config_path)
    text = sign_url(settings, "zone", ORIGIN + url, now=time.time(), expires_in=600, **grant)
    return text.removeprefix(ORIGIN)


def b64url(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_our_url_is_served_and_every_changed_part_refused(stack: LocalStack) -> None:
    uri = signed(stack, f"{IMAGE}?w=640&fit=crop")
    assert uri.startswith(f"{IMAGE}?token=HS256-") and "&fit=crop&w=640&expires=" in uri
    status, body, reason = get(stack, uri)
    assert (status, reason) == (200, "ok") and body == image_bytes(stack, IMAGE)
    token = uri.split("token=")[1].split("&")[0]
    changed = {
        uri.replace(token, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]): "invalid",
        uri.replace("w=640", "w=641"): "invalid",
        uri.replace("&fit=crop", ""): "invalid",
        uri.replace("fit=crop&w=640", "w=640&fit=crop"): "malformed",
        uri.replace(token, token[:-1]): "malformed",
        uri.replace("/x.png", "/database-internals.jpg"): "invalid",
        uri[: uri.index("&expires=")]: "malformed",
        uri.replace("?token=", "?tokens="): "missing",
    }
    for tampered, expected in changed.items():
        status, body, reason = get(stack, tampered)
        assert (status, reason) == (403, expected), tampered
        assert not any_image_in(body, stack)


def test_an_expired_url_is_refused(stack: LocalStack) -> None:
    expires = int(time.time()) - 5
    message = f"{IMAGE}{expires}".encode()
    token = "HS256-" + b64url(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    assert get(stack, f"{IMAGE}?token={token}&expires={expires}")[::2] == (403, "expired")


def test_hand_made_hs256_classic_and_basic_tokens_are_served(stack: LocalStack) -> None:
    expires = int(time.time()) + 300
    keyed = hmac.new(SECRET.encode(), f"{IMAGE}{expires}w=1".encode(), hashlib.sha256)
    classic = hashlib.sha256(f"{SECRET}{IMAGE}{expires}w=1".encode())
    for token in ("HS256-" + b64url(keyed.digest()), b64url(classic.digest())):
        uri = f"{IMAGE}?token={token}&w=1&expires={expires}"
        assert get(stack, uri) == (200, image_bytes(stack, IMAGE), "ok")
    report = "/reports/r.png"
    basic = hashlib.md5(f"{BASIC_SECRET}{report}{expires}".encode()).digest()
    uri = f"{report}?token={b64url(basic)}&expires={expires}"
    assert get(stack, uri) == (200, image_bytes(stack, report), "ok")
    assert get(stack, uri.replace("&expires", "&w=1&expires"))[::2] == (403, "invalid")


def test_an_address_bound_allow_is_not_served_to_another_client(stack: LocalStack) -> None:
    uri = signed(stack, IMAGE + "?v=ip", client_ip=HOME)
    assert uri.startswith(f"{IMAGE}?token=HS256-1-")
    assert get(stack, uri, HOME)[::2] == (200, "ok")
    assert get(stack, uri, OFFICE)[::2] == (403, "invalid")  # right after HOME's allow
    assert get(stack, uri, HOME)[::2] == (200, "ok")


def test_a_country_list_decides_the_same_url(stack: LocalStack) -> None:
    allowed = signed(stack, IMAGE + "?token_countries=JP")
    blocked = signed(stack, IMAGE + "?token_countries_blocked=JP")
    assert get(stack, allowed, JAPAN)[::2] == (200, "ok")
    assert get(stack, allowed, HOME)[::2] == (403, "country")  # right after JAPAN's allow
    assert get(stack, blocked, HOME)[::2] == (200, "ok")
    assert get(stack, blocked, JAPAN)[::2] == (403, "country")


def test_a_token_path_grants_the_folder_of_its_source(stack: LocalStack) -> None:
    uri = signed(stack, IMAGE, prefix="/books/")
    assert "&token_path=%2Fbooks%2F&expires=" in uri
    other = uri.replace(IMAGE, "/books/database-internals.jpg")
    expected = image_bytes(stack, "/books/database-internals.jpg")
    assert get(stack, other) == (200, expected, "ok")


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["hs256"]["vectors"] + VECTORS["classic"]["vectors"]
     if not v["userIp"] and "/bcdn_token=" not in v["signedUrl"]],
    ids=lambda v: v["name"],
)  # fmt: skip
def test_bunnyway_vectors_hold_their_signature_through_nginx(
    stack: LocalStack, vector: dict[str, Any]
) -> None:
    uri = vector["signedUrl"].removeprefix("https://token-tester.b-cdn.net")
    assert get(stack, uri)[::2] == (403, "expired")  # signed in 2020: genuine, and over
    forged = uri.replace("&expires=", "&expires=1")
    assert get(stack, forged)[::2] == (403, "invalid")
