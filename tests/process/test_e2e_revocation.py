"""Taking grants back (docs/revocation.md) with ``[state] path``: two sidecar processes
sharing one real SQLite file, the first behind the shipped nginx. A revocation made with
the CLI is denied by both within a second, in every spelling of the grant; a key, a
prefix and a cookie grant are revoked by name; ``max_uses`` counts exactly across both."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes.cloudfront import b64decode, b64encode
from sidecar.schemes.grant_ids import _ORDERS
from tests.support.requests import HOST, fetch_with_reason, verify
from tests.support.revocation_fleet import (
    MAX_USES,
    ORIGIN,
    reason,
    running_fleet,
    sidecar_cli,
    signed,
    until_reason,
)
from tests.support.stacks import image_bytes
from tests.support.tokens import md5_signed

Fleet = tuple[LocalStack, LocalStack]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder: Path = tmp_path_factory.mktemp("revocation")
    with running_fleet(folder, f'\n[state]\npath = "{folder / "state.db"}"\n') as both:
        yield both


def revoke(stack: LocalStack, *args: str) -> dict[str, object]:
    done = sidecar_cli(stack, "revoke", *args)
    assert done.returncode == 0, done.stderr
    record = orjson.loads(done.stdout)
    assert isinstance(record, dict)
    return record


def test_a_revocation_on_one_host_is_denied_by_both_sidecars_within_a_second(fleet: Fleet) -> None:
    first, second = fleet
    uri = md5_signed("/books/database-internals.jpg?w=1")
    assert reason(first, uri) == reason(second, uri) == "ok"
    record = revoke(first, "--host", HOST, uri)
    assert (record["source"], record["kind"], record["until"]) == ("books", "grant", None)
    assert until_reason(second, uri, "revoked", timeout=1.0) < 1.0
    assert until_reason(first, uri, "revoked", timeout=1.0) < 1.0
    # The upper-case hex spelling md5-token also accepts is the same grant.
    upper = uri[:-32] + uri[-32:].upper()
    assert reason(first, upper) == reason(second, upper) == "revoked"
    assert reason(first, md5_signed("/books/database-internals.jpg?w=2")) == "ok"
    listed = sidecar_cli(second, "revocations").stdout.splitlines()
    assert record["id"] in [orjson.loads(line)["id"] for line in listed]
    assert uri[-32:] not in "".join(listed)  # named by a digest, never by the signature


def test_through_nginx_a_revoked_grant_is_refused_once_the_auth_cache_lets_go(fleet: Fleet) -> None:
    first, _ = fleet
    uri = md5_signed("/books/x.png?w=3")
    status, body, _ = fetch_with_reason(first, uri)
    assert (status, body) == (200, image_bytes(first, "/books/x.png"))
    revoke(first, "--host", HOST, uri)
    started = time.monotonic()  # cache_ttl = 2: the cached allow lives at most that long
    while (result := fetch_with_reason(first, uri))[0] == 200:
        assert time.monotonic() - started < 2 + 1.5, "served past cache_ttl + the sync"
        time.sleep(0.05)
    assert result[0] == 403 and result[2] == "revoked"


def test_an_ecdsa_url_and_its_twin_are_one_grant(fleet: Fleet) -> None:
    first, second = fleet
    url = signed(first, "acme", f"{ORIGIN}/acme/a.jpg").url
    uri = url.removeprefix(ORIGIN)
    value = uri.partition("Signature=")[2].partition("&")[0]
    r, s = decode_dss_signature(b64decode(value) or b"")
    twin = uri.replace(value, b64encode(encode_dss_signature(r, _ORDERS["secp256r1"][0] - s)))
    assert reason(second, twin) == "ok"
    record = revoke(first, url)
    assert record["until"] is not None  # the URL's own expiry
    until_reason(second, twin, "revoked", timeout=1.0)
    assert reason(second, uri) == "revoked"


def test_a_cookie_grant_is_revoked_with_a_url_it_opens(fleet: Fleet) -> None:
    first, second = fleet
    grant = signed(first, "acme", f"{ORIGIN}/acme/", prefix="/acme/", cookies=True)
    cookies = "; ".join(cookie.partition(";")[0] for cookie in grant.cookies)
    headers = {"Cookie": cookies}
    status, _, result = fetch_with_reason(first, "/acme/database-internals.jpg", headers=headers)
    assert (status, result) == (200, "ok")
    revoke(second, "--cookie", cookies, f"{ORIGIN}/acme/x.png")
    deadline = time.monotonic() + 1.0
    while fetch_with_reason(first, "/acme/a.jpg", headers=headers)[2] != "revoked":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    fresh = signed(first, "acme", f"{ORIGIN}/acme/a.jpg").url.removeprefix(ORIGIN)
    assert reason(first, fresh) == "ok"  # another grant of the same key


def test_a_key_and_a_prefix_are_revoked_by_name_until_unrevoked(fleet: Fleet) -> None:
    first, second = fleet
    inside, outside = md5_signed("/books/old/a.jpg"), md5_signed("/books/older.jpg")
    prefix = revoke(first, "--source", "books", "--prefix", "/books/old")
    until_reason(second, inside, "revoked", timeout=1.0)
    assert reason(second, outside) == "ok"  # a prefix holds on a segment boundary
    key = revoke(second, "--source", "books", "--key", "k1")
    until_reason(first, outside, "revoked", timeout=1.0)
    for record in (key, prefix):
        done = sidecar_cli(first, "unrevoke", str(record["id"]))
        assert done.returncode == 0, done.stderr
    until_reason(second, inside, "ok", timeout=1.0)
    assert sidecar_cli(first, "unrevoke", str(key["id"])).returncode == 1  # gone already


def test_the_cli_refuses_what_it_cannot_revoke(fleet: Fleet) -> None:
    first, _ = fleet
    for args, message in [
        (("--host", HOST, "/books/a.jpg?s=" + "0" * 32), "nothing to revoke"),
        (("--source", "books", "--key", "k9"), "holds no key"),
        (("--source", "books", "--prefix", "/acme/"), "path_prefix"),
        (("--source", "books"), "one of --key or --prefix"),
    ]:
        done = sidecar_cli(first, "revoke", *args)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)


def test_uses_are_counted_exactly_across_both_sidecars(fleet: Fleet) -> None:
    # 12 requests at once for a 3-use grant, 6 to each sidecar, each from its own
    # address (so none continues another's use): exactly 3 allowed.
    stacks = fleet
    uri = md5_signed("/once/a.jpg?n=exact")

    def ask(n: int) -> str:
        return reason(stacks[n % 2], uri, client_ip=f"198.51.100.{n + 1}")

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(ask, range(12)))
    assert answers.count("ok") == MAX_USES
    assert answers.count("used_up") == 12 - MAX_USES


def test_a_download_continued_from_one_address_is_one_use_and_never_cached(fleet: Fleet) -> None:
    first, second = fleet
    uri = md5_signed("/once/x.png?n=resume")
    for _ in range(5):  # the same address, within use_window: one use (a Range resume)
        status, body, result = fetch_with_reason(first, uri)
        assert (status, result) == (200, "ok") and body == image_bytes(first, "/once/x.png")
    assert reason(second, uri, client_ip="198.51.100.50") == "ok"  # the second use
    assert reason(second, uri, client_ip="198.51.100.51") == "ok"  # the third
    assert reason(second, uri, client_ip="198.51.100.52") == "used_up"
    reply = verify(first, uri, client_ip="127.0.0.1")  # nginx's own address: still its use
    assert reply.status == 200 and reply.headers["x-accel-expires"] == "0"
