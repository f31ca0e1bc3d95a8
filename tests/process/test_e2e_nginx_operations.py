"""End to end through nginx, each test on a stack of its own: the sidecar stopped, keys
rotated and a bad config reloaded, and what the logs and metrics hold."""

from __future__ import annotations

import json
import time
from collections import Counter

from tests.support.configs import md5_source, sidecar_config
from tests.support.md5_sources import (
    ALL_TOKENS,
    MAIN_CONFIG,
    NEW_TOKEN,
    OLD_TOKEN,
    REFERENCE_SIGNATURE,
    REFERENCE_URL,
    rotation_config,
)
from tests.support.metrics import metrics_text, sample, samples
from tests.support.requests import fetch, fetch_with_reason
from tests.support.stacks import (
    StackFactory,
    assert_denied,
    image_bytes,
    reload_and_wait,
    start_sidecar,
)
from tests.support.tokens import BOOKS_TOKEN, REPORT_TOKEN, SECRET_TOKEN, md5_signed, signature_of

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


def test_with_the_sidecar_down_nginx_logs_no_signed_url(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(MAIN_CONFIG)
    stack.stop_sidecar()
    uri = md5_signed("/books/x.png?w=1")
    assert fetch(stack, uri)[0] == 500  # fails closed
    signature = uri.rpartition("s=")[2]
    time.sleep(0.2)  # nginx writes its log lines after it answers
    for name in ("error.log", "access.log"):
        assert signature not in (stack.folder / "nginx" / name).read_text(), name


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


# --- what the logs and metrics hold ------------------------------------------------------


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


METRICS_CONFIG = sidecar_config(
    md5_source("books", "/books/", {"2026-11": BOOKS_TOKEN, "2026-05": OLD_TOKEN}, mode="enforce"),
    md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
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
