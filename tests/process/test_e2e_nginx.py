"""End to end: a real nginx (the shipped configs) in front of the real sidecar process.

Every verdict is checked where a client sees it: the status nginx answers, the bytes it
serves (byte for byte, or none at all), and the reason nginx logged from the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import signal
import time
from collections import Counter

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.conftest import (
    BOOKS_TOKEN,
    HOST,
    REPORT_TOKEN,
    SECRET_TOKEN,
    StackFactory,
    any_image_in,
    fetch,
    fetch_with_reason,
    image_bytes,
    md5_signed,
    metrics_text,
    raw_exchange,
    request,
    sample,
    samples,
    signature_of,
    start_sidecar,
    verifications_total,
)

pytestmark = pytest.mark.e2e

OLD_TOKEN = "old-rotated-t0ken-7c1e"
NEW_TOKEN = "new-current-t0ken-d2b8"
ALL_TOKENS = (BOOKS_TOKEN, SECRET_TOKEN, REPORT_TOKEN, OLD_TOKEN, NEW_TOKEN)

# The documented reference value:
# md5("/books/database-internals.jpg?w=400&h=600&fit=crop" + "wakanda123@").
REFERENCE_UNSIGNED = "/books/database-internals.jpg?w=400&h=600&fit=crop"
REFERENCE_SIGNATURE = "7d0d58f62c945d0ca08269205228bbe7"
REFERENCE_URL = f"{REFERENCE_UNSIGNED}&s={REFERENCE_SIGNATURE}"


def source(
    name: str,
    prefix: str,
    *,
    mode: str = "enforce",
    keys: dict[str, str] | None = None,
    extra: str = "",
) -> str:
    text = (
        f'[[sources]]\nname = "{name}"\nscheme = "md5-token"\n'
        f'path_prefix = "{prefix}"\nmode = "{mode}"\n{extra}'
    )
    for key_id, token in (keys or {}).items():
        text += f'  [[sources.keys]]\n  id = "{key_id}"\n  secret = "{token}"\n'
    return text + "\n"


# clock_skew = 0: the expiry test needs the URL to die exactly at its `expires`.
MAIN_CONFIG = (
    "[server]\nclock_skew = 0\n\n"
    + source("books", "/books/", keys={"2026-11": BOOKS_TOKEN})
    + source("secret", "/secret/", keys={"s1": SECRET_TOKEN}, extra="deny_status = 403\n")
    + source("reports", "/reports/", mode="report", keys={"r1": REPORT_TOKEN})
    + source("public", "/public/", mode="off")
    # An unsigned catch-all: any re-spelling that escaped its real source would land here.
    + source("everything-else", "/", mode="off")
)


@pytest.fixture(scope="module")
def stack(module_stacks: StackFactory) -> LocalStack:
    return module_stacks(MAIN_CONFIG)


def assert_denied(status: int, body: bytes, stack: LocalStack, expected_status: int) -> None:
    assert status == expected_status
    assert not any_image_in(body, stack)


# --- the documented reference value ------------------------------------------------------------


def test_reference_signature_is_md5_of_uri_and_token() -> None:
    digest = hashlib.md5((REFERENCE_UNSIGNED + BOOKS_TOKEN).encode()).hexdigest()
    assert digest == REFERENCE_SIGNATURE
    assert md5_signed(REFERENCE_UNSIGNED) == REFERENCE_URL


def test_reference_url_is_served_through_nginx(stack: LocalStack) -> None:
    status, body, reason = fetch_with_reason(stack, REFERENCE_URL)
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/books/database-internals.jpg")


TAMPERED = {
    "changed parameter": (REFERENCE_URL.replace("w=400", "w=401"), "invalid"),
    "added parameter": (REFERENCE_URL.replace("&s=", "&dpr=2&s="), "invalid"),
    "removed parameter": (REFERENCE_URL.replace("&fit=crop", ""), "invalid"),
    "reordered parameters": (REFERENCE_URL.replace("w=400&h=600", "h=600&w=400"), "invalid"),
    "other file": (REFERENCE_URL.replace("database-internals.jpg", "x.png"), "invalid"),
    "path case": (REFERENCE_URL.replace("/books/d", "/books/D"), "invalid"),
    "wrong signature": (REFERENCE_URL[:-1] + "0", "invalid"),
    "signature of another token": (md5_signed(REFERENCE_UNSIGNED, SECRET_TOKEN), "invalid"),
    "truncated signature": (REFERENCE_URL[:-1], "malformed"),
    "signature too long": (REFERENCE_URL + "0", "malformed"),
    "signature not hex": (REFERENCE_URL[:-1] + "g", "malformed"),
    "empty signature": (REFERENCE_UNSIGNED + "&s=", "malformed"),
    "signature not last": (
        f"/books/database-internals.jpg?s={REFERENCE_SIGNATURE}&w=400&h=600&fit=crop",
        "malformed",
    ),
    "parameter after signature": (REFERENCE_URL + "&w=800", "malformed"),
    "unsigned": (REFERENCE_UNSIGNED, "missing"),
    "unsigned, no query": ("/books/database-internals.jpg", "missing"),
}


@pytest.mark.parametrize(("uri", "reason"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_reference_url_is_denied(stack: LocalStack, uri: str, reason: str) -> None:
    status, body, logged = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, 401)  # md5-token's default deny status
    assert logged == reason


# --- signed URLs serve the exact file -----------------------------------------------------

SIGNED = {
    "no query": ("/books/x.png", "/books/x.png"),
    "query": ("/books/x.png?w=100&fmt=webp", "/books/x.png"),
    "encoded name": ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png"),
    "future expiry": ("/books/x.png?expires=4102444800", "/books/x.png"),
}


@pytest.mark.parametrize(("unsigned", "file"), SIGNED.values(), ids=SIGNED.keys())
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


# --- canonical URIs only ------------------------------------------------------------------

# Each of these makes nginx serve a file other than the raw path names (it decodes and
# normalises), so the sidecar must refuse them even when the signature over the raw bytes
# is right: a signing API fed such a path must not become a way around a source.
NON_CANONICAL = [
    "/books/%2E%2E/secret/x.png",
    "/books/%2e%2e/secret/x.png",
    "/books/../secret/x.png",
    "/books/%2e/x.png",
    "/books/./x.png",
    "/books//x.png",
    "/books/x.png;v=1",
    "/books;/x.png",
    "/books%2Fx.png",
    "/books/x%2epng",
    "/books/%5C..%5Csecret/x.png",
    "/public/%2E%2E/secret/x.png",
    "/public/../secret/x.png",
    "/public%2F..%2Fsecret/x.png",
    "/public/..%2Fsecret/x.png",
    "/public/%2e%2e%2fsecret/x.png",
    "/other/%2E%2E/secret/x.png",
    "/%2Fsecret/x.png",
    "/secret%2Fx.png",
]


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-raw"])
@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_uri_is_denied(stack: LocalStack, path: str, signed: bool) -> None:
    token = SECRET_TOKEN if path.startswith("/secret") else BOOKS_TOKEN
    status, body, reason = fetch_with_reason(stack, md5_signed(path, token) if signed else path)
    # No source is chosen for a URI with no canonical form: the server's deny_status (403).
    assert_denied(status, body, stack, 403)
    assert reason == "non_canonical"


@pytest.mark.parametrize("path", ["/../secret/x.png", "/books/x.png%00"])
def test_nginx_refuses_some_uris_itself(stack: LocalStack, path: str) -> None:
    asked = verifications_total(stack)
    status, body = fetch(stack, md5_signed(path))
    assert_denied(status, body, stack, 400)
    assert verifications_total(stack) == asked  # the sidecar was never asked


ENCODED_LETTERS = {
    # nginx serves /books/... for /b%6Foks/...: it must be judged as /books/, not fall
    # through to the unsigned catch-all at "/".
    "unsigned": ("/b%6Foks/database-internals.jpg", 401, "missing"),
    "signature of the plain spelling": (
        REFERENCE_URL.replace("/books/", "/b%6Foks/"),
        401,
        "invalid",
    ),
    "secret source": ("/s%65cret/x.png", 403, "missing"),
}


@pytest.mark.parametrize(
    ("uri", "code", "reason"), ENCODED_LETTERS.values(), ids=ENCODED_LETTERS.keys()
)
def test_encoded_letters_route_to_their_source(
    stack: LocalStack, uri: str, code: int, reason: str
) -> None:
    status, body, logged = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, code)
    assert logged == reason


# --- methods, hosts, sizes, spoofing -----------------------------------------------------


def test_head_is_allowed_without_a_body(stack: LocalStack) -> None:
    reply = request(stack.nginx_port, md5_signed("/books/x.png?head=1"), method="HEAD")
    assert reply.status == 200
    assert reply.body == b""
    assert int(reply.headers["content-length"]) == len(image_bytes(stack, "/books/x.png"))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
@pytest.mark.parametrize("uri", [md5_signed("/books/x.png?m=1"), "/public/x.png"])
def test_other_methods_are_denied(stack: LocalStack, uri: str, method: str) -> None:
    status, body, reason = fetch_with_reason(stack, uri, method=method)
    assert status in {401, 403}
    assert not any_image_in(body, stack)
    assert reason == "method"


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1", "image.example.com.evil"])
@pytest.mark.parametrize("uri", [REFERENCE_URL, "/public/x.png"])
def test_unknown_host_gets_no_image(stack: LocalStack, uri: str, host: str) -> None:
    asked = verifications_total(stack)
    status, body = fetch(stack, uri, host=host)
    assert status != 200
    assert not any_image_in(body, stack)
    # Refused by the default server, before any verification.
    assert verifications_total(stack) == asked


def long_uri(signed: bool) -> str:
    # nginx's large_client_header_buffers (4 8k) bound the request line at 8 KB: stay
    # just under it ("GET " + URI + " HTTP/1.1\r\n").
    room = 8192 - len("GET  HTTP/1.1\r\n") - len("&s=") - 32 - 8
    unsigned = "/books/x.png?pad=" + "a" * (room - len("/books/x.png?pad="))
    return md5_signed(unsigned) if signed else unsigned


def test_uri_just_under_nginx_limit_gets_a_clean_denial(stack: LocalStack) -> None:
    uri = long_uri(signed=False)
    assert len(uri) > 8000
    status, body, reason = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, 401)
    assert reason == "missing"


def test_uri_just_under_nginx_limit_is_served_when_signed(stack: LocalStack) -> None:
    status, body, reason = fetch_with_reason(stack, long_uri(signed=True))
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/books/x.png")


SPOOFED = {
    "X-Original-URI": REFERENCE_URL,
    "X-Original-URL": f"http://{HOST}{REFERENCE_URL}",
    "X-Forwarded-Uri": REFERENCE_URL,
    "X-Forwarded-Host": HOST,
    "X-Forwarded-Method": "GET",
    "X-Original-Method": "GET",
    "X-Real-IP": "127.0.0.1",
    "X-Request-ID": "spoofed",
}


@pytest.mark.parametrize(
    "names", [[name] for name in SPOOFED] + [list(SPOOFED)], ids=[*SPOOFED, "all"]
)
@pytest.mark.parametrize("spoof_target", [REFERENCE_URL, "/public/x.png"])
def test_client_sent_headers_change_nothing(
    stack: LocalStack, names: list[str], spoof_target: str
) -> None:
    headers = {name: SPOOFED[name].replace(REFERENCE_URL, spoof_target) for name in names}
    status, body, reason = fetch_with_reason(stack, REFERENCE_UNSIGNED, headers=headers)
    assert_denied(status, body, stack, 401)
    assert reason == "missing"


# --- the auth cache --------------------------------------------------------------------------


def ok_count(stack: LocalStack, source_name: str = "books") -> float:
    return sample(
        stack,
        "signed_url_verifications_total",
        source=source_name,
        scheme="md5-token",
        result="ok",
        decision="allow",
    )


def test_cached_allow_is_served_twice(stack: LocalStack) -> None:
    uri = md5_signed("/books/x.png?cache=twice")
    before = ok_count(stack)
    for _ in range(2):
        assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    # The second answer came from nginx's auth cache: the sidecar decided once.
    assert ok_count(stack) - before == 1


def test_cached_allow_ends_with_the_url_expiry(stack: LocalStack) -> None:
    expires = math.ceil(time.time()) + 2  # 2 to 3 s ahead: a cache lifetime of at least 1 s
    uri = md5_signed(f"/books/x.png?expires={expires}")
    before = ok_count(stack)
    assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    assert ok_count(stack) - before == 1  # the allow was cached
    time.sleep(max(0.0, expires + 1 - time.time()))
    status, body, reason = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, 401)
    assert reason == "expired"


# --- stacks of their own: stop, reload, count ---------------------------------------------


def test_sidecar_down_fails_closed(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(MAIN_CONFIG)
    uri = md5_signed("/books/x.png?down=1")
    stack.stop_sidecar()
    for target in (uri, "/public/x.png"):
        status, body = fetch(stack, target)
        assert_denied(status, body, stack, 500)
    start_sidecar(stack)
    assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    assert fetch(stack, "/public/x.png") == (200, image_bytes(stack, "/public/x.png"))


@pytest.mark.parametrize("path", [b"/books/\xff.png", b"/books/caf\xe9.png"])
def test_raw_non_utf8_path_is_denied_cleanly(fresh_stack: StackFactory, path: bytes) -> None:
    # nginx passes raw bytes >= 0x80 on in $request_uri; invalid UTF-8 is non-canonical:
    # an answer, not an internal error. A fresh sidecar: its denial log
    # budget is unspent, so the denial is really logged.
    stack = fresh_stack(MAIN_CONFIG)
    answer = raw_exchange(
        stack.nginx_port,
        b"GET " + path + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert not any_image_in(answer, stack)
    request_id = re.search(rb"\r\nX-Request-ID: ([0-9a-f]{32})\r\n", answer)
    assert request_id is not None
    assert stack.result_for(request_id.group(1).decode()) == "non_canonical"
    for line in (stack.folder / "sidecar.log").read_text().splitlines():
        json.loads(line)  # JSON lines only: no traceback


def test_logs_and_metrics_hold_no_token_or_signature(fresh_stack: StackFactory) -> None:
    # A fresh sidecar: its denial log budget (20 a second) is unspent, so every denial
    # below is really written, and the absence of secrets means something.
    stack = fresh_stack(MAIN_CONFIG)
    denied = [
        REFERENCE_URL[:-1] + "0",
        f"/books/x.png?s={REFERENCE_SIGNATURE}&w=1",
        md5_signed("/books/%2E%2E/secret/x.png"),
        md5_signed("/secret/x.png", BOOKS_TOKEN),
        md5_signed("/reports/r.png?w=9", SECRET_TOKEN),  # report mode: logged, then served
    ]
    assert fetch(stack, REFERENCE_URL)[0] == 200
    for uri in denied:
        fetch(stack, uri)
    signatures = {signature_of(uri) for uri in denied} | {REFERENCE_SIGNATURE}
    sidecar_log = (stack.folder / "sidecar.log").read_text()
    records = [json.loads(line) for line in sidecar_log.splitlines()]  # JSON lines only
    denials = [record for record in records if record["event"] == "deny"]
    assert [record["path"] for record in denials] == [uri.partition("?")[0] for uri in denied]
    access_log = (stack.folder / "nginx" / "access.log").read_text()
    for text in (sidecar_log, access_log, metrics_text(stack)):
        for secret in (*ALL_TOKENS, *signatures):
            assert secret not in text


def rotation_config(keys: dict[str, str]) -> str:
    return "[server]\nclock_skew = 0\n\n" + source("books", "/books/", keys=keys)


def reload_and_wait(stack: LocalStack, config_text: str, result: str) -> None:
    """Rewrite the config, SIGHUP the sidecar, wait until the reload was counted."""
    before = sample(stack, "signed_url_config_reloads_total", result=result)
    stack.write_config(config_text)
    assert stack.sidecar is not None
    stack.sidecar.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while sample(stack, "signed_url_config_reloads_total", result=result) == before:
        assert time.monotonic() < deadline, f"no {result} reload counted"
        time.sleep(0.02)


def test_key_rotation(fresh_stack: StackFactory) -> None:
    # Newest key first: it signs; the old one still verifies until it is removed.
    stack = fresh_stack(rotation_config({"2026-11": NEW_TOKEN, "2026-05": OLD_TOKEN}))
    picture = image_bytes(stack, "/books/x.png")
    assert fetch(stack, md5_signed("/books/x.png?v=1", OLD_TOKEN)) == (200, picture)
    assert fetch(stack, md5_signed("/books/x.png?v=1", NEW_TOKEN)) == (200, picture)
    assert fetch(stack, md5_signed("/books/x.png?v=2", NEW_TOKEN)) == (200, picture)
    matches = samples(stack, "signed_url_key_matches_total")
    assert matches == {
        frozenset({("source", "books"), ("key", "2026-05")}): 1.0,
        frozenset({("source", "books"), ("key", "2026-11")}): 2.0,
    }

    reload_and_wait(stack, rotation_config({"2026-11": NEW_TOKEN}), "success")
    # Fresh URLs: an allow cached before the reload may live out its cache lifetime.
    status, body, reason = fetch_with_reason(stack, md5_signed("/books/x.png?v=3", OLD_TOKEN))
    assert_denied(status, body, stack, 401)
    assert reason == "invalid"
    assert fetch(stack, md5_signed("/books/x.png?v=3", NEW_TOKEN)) == (200, picture)


def test_bad_reload_keeps_the_old_config(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(rotation_config({"2026-11": NEW_TOKEN}))
    # A source with no key is refused: the running config must stay in force.
    reload_and_wait(stack, rotation_config({}), "failure")
    picture = image_bytes(stack, "/books/x.png")
    assert fetch(stack, md5_signed("/books/x.png?after=bad", NEW_TOKEN)) == (200, picture)
    status, body = fetch(stack, "/books/x.png?after=bad")
    assert_denied(status, body, stack, 401)
    assert stack.sidecar is not None and stack.sidecar.poll() is None


METRICS_CONFIG = (
    source("books", "/books/", keys={"2026-11": BOOKS_TOKEN, "2026-05": OLD_TOKEN})
    + source("reports", "/reports/", mode="report", keys={"r1": REPORT_TOKEN})
    + source("public", "/public/", mode="off")
)


def test_metrics_count_what_was_sent(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(METRICS_CONFIG)
    traffic = [  # (uri, method, expected labels); every allowed URI is distinct (auth cache)
        (md5_signed("/books/x.png?n=1"), "GET", ("books", "ok", "allow")),
        (md5_signed("/books/x.png?n=2"), "GET", ("books", "ok", "allow")),
        (md5_signed("/books/x.png?n=3", OLD_TOKEN), "GET", ("books", "ok", "allow")),
        (md5_signed("/books/x.png?n=4"), "HEAD", ("books", "ok", "allow")),
        (md5_signed("/books/x.png?n=1")[:-1] + "0", "GET", ("books", "invalid", "deny")),
        ("/books/x.png", "GET", ("books", "missing", "deny")),
        ("/books/x.png", "GET", ("books", "missing", "deny")),
        ("/books/x.png?s=5f3e9a0c1b7d", "GET", ("books", "malformed", "deny")),
        (md5_signed("/books/x.png?n=5"), "POST", ("books", "method", "deny")),
        ("/books/../x.png", "GET", ("-", "non_canonical", "deny")),
        ("/private/x.png", "GET", ("-", "no_source", "deny")),
        ("/public/x.png", "GET", ("public", "unsigned_allowed", "allow")),
        ("/reports/r.png", "GET", ("reports", "missing", "would_deny")),
    ]
    for uri, method, _ in traffic:
        fetch(stack, uri, method=method)
    schemes = {"books": "md5-token", "reports": "md5-token", "public": "md5-token", "-": "-"}
    expected = Counter(
        frozenset({("source", s), ("scheme", schemes[s]), ("result", r), ("decision", d)})
        for _, _, (s, r, d) in traffic
    )
    counted = samples(stack, "signed_url_verifications_total")
    assert {labels: value for labels, value in counted.items() if value} == expected
    # Series are initialised at start, so dashboards show 0 rather than no data.
    never = frozenset(
        {("source", "books"), ("scheme", "md5-token"), ("result", "expired"), ("decision", "deny")}
    )
    assert counted[never] == 0
    assert sample(stack, "signed_url_key_matches_total", source="books", key="2026-11") == 3
    assert sample(stack, "signed_url_key_matches_total", source="books", key="2026-05") == 1
    text = metrics_text(stack)
    for uri, _, _ in traffic:
        if "s=" in uri:
            assert signature_of(uri) not in text
    for secret in ALL_TOKENS:
        assert secret not in text
