"""The observability run's config and traffic: the requests it sends through nginx,
straight to ``/verify`` over fresh connections (so both workers serve some) and to the
signing API, and what each must be counted as."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import TypeAlias

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config, team_toml
from tests.support.requests import request, verify
from tests.support.tokens import md5_signed

VERIFICATIONS = "signed_url_verifications_total"

NEW_TOKEN = "books-new-t0ken-5b7e1c0d"
OLD_TOKEN = "books-old-t0ken-93d0aa71"
SECRET_TOKEN = "secret-src-t0ken-c4f2e9"
REPORT_TOKEN = "report-src-t0ken-e81b37"
API_KEY = "sk-obs-" + "7f3a" * 8
WRONG_API_KEY = "sk-obs-wrong-" + "0c1d" * 6
TEAM = "books-app"

CONFIG = sidecar_config(
    # The first key signs (signing API); both verify: a rotation in progress.
    md5_source("books", "/books/", {"2026-11": NEW_TOKEN, "2025-05": OLD_TOKEN}, mode="enforce"),
    md5_source("secret", "/secret/", {"s1": SECRET_TOKEN}, mode="enforce", deny_status=403),
    md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    server={"workers": 2},
    signing={},
    teams=[team_toml(TEAM, "books", API_KEY)],
)


def broken(config_text: str) -> str:
    """Two problems, one in a key's secret fields: the refusal names fields, never values."""
    return config_text.replace(
        f'secret = "{NEW_TOKEN}"\n', f'secret = "{NEW_TOKEN}"\n  secret_env = "OBS_TOKEN"\n'
    ).replace("workers = 2\n", "workers = 2\nbogus = 1\n")


Series: TypeAlias = tuple[str, str, str, str]  # source, scheme, result, decision


@dataclass
class Traffic:
    verifications: Counter[Series] = field(default_factory=Counter)
    key_matches: Counter[tuple[str, ...]] = field(default_factory=Counter)  # source, key
    signing: Counter[tuple[str, str]] = field(default_factory=Counter)
    signatures: set[str] = field(default_factory=set)
    through_nginx: int = 0
    direct: int = 0

    def record(self, uri: str, series: Series, key: str | None) -> None:
        self.verifications[series] += 1
        if key is not None:
            self.key_matches[series[0], key] += 1
        self.signatures.update(re.findall(r"[?&]s=([0-9A-Za-z]{16,})", uri))


@dataclass(frozen=True)
class Ask:
    """One verify request: what is sent, and what must come back and be counted."""

    uri: str
    status: int
    series: Series
    key: str | None = None  # the key that must match
    method: str = "GET"


def md5(source: str, result: str, decision: str = "deny") -> Series:
    return (source, "md5-token", result, decision)


UNROUTED_NO_SOURCE: Series = ("-", "-", "no_source", "deny")


UNROUTED_NON_CANONICAL: Series = ("-", "-", "non_canonical", "deny")


BOOKS_OK = md5("books", "ok", "allow")


def nginx_plan(now: int) -> list[Ask]:
    """Through nginx: every URI distinct, so the auth cache never absorbs a request."""
    signed, new = md5_signed, NEW_TOKEN
    asks = [Ask(signed(f"/books/x.png?w={i}", new), 200, BOOKS_OK, "2026-11") for i in range(12)]
    asks += [
        Ask(signed(f"/books/database-internals.jpg?h={i}", OLD_TOKEN), 200, BOOKS_OK, "2025-05")
        for i in range(6)
    ]
    asks += [
        Ask(signed(f"/books/x.png?hd={i}", new), 200, BOOKS_OK, "2026-11", "HEAD") for i in range(2)
    ]
    asks += [Ask(f"/books/x.png?u={i}", 401, md5("books", "missing")) for i in range(8)]
    asks += [
        Ask(
            signed(f"/books/x.png?t={i}", new).replace(f"t={i}&", f"t={i}0&"),
            401,
            md5("books", "invalid"),
        )
        for i in range(6)
    ]
    asks += [
        Ask(signed(f"/books/x.png?m={i}", new)[:-1] + "g", 401, md5("books", "malformed"))
        for i in range(3)
    ]
    asks += [
        Ask(signed(f"/books/x.png?expires={now - 3600 - i}", new), 401, md5("books", "expired"))
        for i in range(2)
    ]
    asks += [
        Ask(
            signed(f"/books/x.png?d={i}", new) + "&s=" + "ab12" * 8,
            401,
            md5("books", "non_canonical"),
        )
        for i in range(2)
    ]
    asks += [
        Ask(signed(f"/books/x.png?p={i}", new), 401, md5("books", "method"), method="POST")
        for i in range(2)
    ]
    asks += [
        Ask(signed(f"/secret/x.png?v={i}", SECRET_TOKEN), 200, md5("secret", "ok", "allow"), "s1")
        for i in range(4)
    ]
    asks += [
        Ask(signed(f"/secret/x.png?b={i}", new), 403, md5("secret", "invalid")) for i in range(3)
    ]
    asks += [
        Ask(signed(f"/reports/r.png?v={i}", REPORT_TOKEN), 200, md5("reports", "ok", "allow"), "r1")
        for i in range(3)
    ]
    asks += [
        Ask(f"/reports/r.png?u={i}", 200, md5("reports", "missing", "would_deny")) for i in range(5)
    ]
    asks += [
        Ask(
            signed(f"/reports/r.png?t={i}", REPORT_TOKEN).replace("?t=", "?t=9"),
            200,
            md5("reports", "invalid", "would_deny"),
        )
        for i in range(2)
    ]
    asks += [
        Ask(f"/public/x.png?v={i}", 200, md5("public", "unsigned_allowed", "allow"))
        for i in range(4)
    ]
    asks += [Ask(f"/other/o.png?v={i}", 403, UNROUTED_NO_SOURCE) for i in range(3)]
    odd = [
        "/books//x.png?v=0",
        "/books/%2Fx.png?v=1",
        "/books/./x.png?v=2",
        signed("/books//x.png?v=3", new),
    ]
    return asks + [Ask(uri, 403, UNROUTED_NON_CANONICAL) for uri in odd]


def direct_plan() -> list[Ask]:
    """Straight to /verify, a fresh connection each: SO_REUSEPORT spreads them over workers."""
    asks = [
        Ask(md5_signed(f"/books/x.png?direct={i}", NEW_TOKEN), 200, BOOKS_OK, "2026-11")
        for i in range(40)
    ]
    asks += [Ask(f"/secret/x.png?direct={i}", 403, md5("secret", "missing")) for i in range(20)]
    return asks + [Ask(f"/nowhere/{i}.png", 403, UNROUTED_NO_SOURCE) for i in range(20)]


def via_nginx(stack: LocalStack, traffic: Traffic, ask: Ask) -> None:
    reply = request(stack.nginx_port, ask.uri, method=ask.method)
    assert reply.status == ask.status, (ask, reply.status)
    traffic.record(ask.uri, ask.series, ask.key)
    traffic.through_nginx += 1


def direct(stack: LocalStack, traffic: Traffic, ask: Ask) -> None:
    reply = verify(stack, ask.uri, method=ask.method)
    assert (reply.status, reply.headers["x-signature-result"]) == (ask.status, ask.series[2]), ask
    traffic.record(ask.uri, ask.series, ask.key)
    traffic.direct += 1


def sign_api(
    stack: LocalStack,
    traffic: Traffic,
    url: str,
    *,
    team: str = TEAM,
    key: str | None = API_KEY,
    status: int = 200,
    result: str = "ok",
) -> str:
    path = f"/public/team/{team}/signUrl?url={urllib.parse.quote(url, safe='')}"
    headers = {"X-Api-Key": key} if key else {}
    reply = request(stack.signing_port, path, host="127.0.0.1", headers=headers)
    assert reply.status == status, (team, url, reply.body)
    traffic.signing[team if team == TEAM else "-", result] += 1
    return str(json.loads(reply.body).get("signedUrl", ""))


def send_traffic(stack: LocalStack) -> Traffic:
    traffic = Traffic()
    for ask in nginx_plan(int(time.time())):
        via_nginx(stack, traffic, ask)
    book = "https://image.example.com/books/x.png"
    for i in range(4):  # signed by the API (with the first key), then fetched through nginx
        parts = urllib.parse.urlsplit(sign_api(stack, traffic, f"{book}?api={i}"))
        via_nginx(stack, traffic, Ask(f"{parts.path}?{parts.query}", 200, BOOKS_OK, "2026-11"))
    for key in (WRONG_API_KEY, WRONG_API_KEY, None):
        sign_api(stack, traffic, book, key=key, status=401, result="unauthorized")
    for _ in range(2):
        outside = "https://image.example.com/secret/x.png"
        sign_api(stack, traffic, outside, status=400, result="bad_request")
    sign_api(stack, traffic, book, team="nobody", status=404, result="unknown_team")
    for ask in direct_plan():
        direct(stack, traffic, ask)
    return traffic
