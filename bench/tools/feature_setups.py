"""The sidecars behind ``bench/bench.py``'s rows for the features a source may turn on:
rules, 100,000 revocations and a JWT source, each in a process of its own, hit directly
on ``/verify`` beside the plain md5-token row (the same feature off) in the same run.

Every URL they are sent passes: the rules' referrer and network, a revocation list that
never names it, a token that opens it. A row of denials would measure nothing, so the
bench counts every answer other than 2xx.
"""

from __future__ import annotations

import secrets
import statistics
import time
import urllib.request
from pathlib import Path

from sidecar import config
from sidecar.policy.revocations import Revocation
from sidecar.policy.signing import sign_url

from .state_setups import unmatched_revocations, write_state

RULES = "sidecar direct, md5-token + rules"
REVOKED = "sidecar direct, md5-token, 100,000 revocations"
JWT = "sidecar direct, jwt HS256"
# What the rules row's requests carry as the page that asked (nginx's X-Original-Referer);
# the client address is the bench's X-Real-IP, 127.0.0.1.
REFERER = "https://shop.example.com/gallery/7"
REVOCATIONS = 100_000
KEYS = PREFIXES = 100  # revoked key ids and path prefixes among them, none the bench's own
STATE_FILE = "state.sqlite"
JWT_SECRET = secrets.token_hex(32)
JWT_ORIGIN = "https://image.example.com"


def rules_sources(token: str) -> str:
    """The bench's md5-token source "books" with a referrer allow-list (no Referer: denied,
    so the check is exercised on every request) and a client-address allow-list whose
    match is its last entry."""
    return (
        '[[sources]]\nname = "books"\nscheme = "md5-token"\npath_prefix = "/books/"\n'
        'referrers = ["https://www.example.org", "https://*.cdn.example.net", '
        '"https://shop.example.com"]\nallow_no_referrer = false\n'
        'networks = ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32", "127.0.0.0/8"]\n'
        f'  [[sources.keys]]\n  id = "k"\n  secret = "{token}"\n'
    )


def revoked_sources(sources: str) -> str:
    """``sources`` with ``[state]`` on a SQLite file (written by ``write_revocations``)."""
    return f'[state]\npath = "{STATE_FILE}"\n\n{sources}'


def revocations(now: float, count: int = REVOCATIONS) -> list[Revocation]:
    """``count`` revocations of "books" that none of the bench's URLs falls under."""
    return unmatched_revocations("books", count, now, keys=KEYS, prefixes=PREFIXES)


def write_revocations(folder: Path, count: int = REVOCATIONS) -> None:
    """The store's SQLite file in ``folder``, holding ``count`` revocations."""
    write_state(folder / STATE_FILE, revocations(time.time(), count))


def wait_for_revocations(metrics_url: str, count: int = REVOCATIONS, timeout: float = 60) -> None:
    """Until the sidecar has read the revocations (its ``signed_url_revocations_active``):
    before that, a row would measure a process without them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(metrics_url, timeout=5) as answer:  # noqa: S310 (loopback)
            for line in answer.read().decode().splitlines():
                if line.startswith("signed_url_revocations_active ") and float(
                    line.split()[1]
                ) == float(count):
                    return
        time.sleep(0.2)
    raise TimeoutError(f"the sidecar did not read {count:,} revocations in {timeout:.0f} s")


def jwt_sources() -> str:
    """A JWT source, HS256, on its own path prefix."""
    return (
        '[[sources]]\nname = "papers"\nscheme = "jwt"\npath_prefix = "/papers/"\n'
        f'  [[sources.keys]]\n  id = "kj"\n  algorithm = "HS256"\n  secret = "{JWT_SECRET}"\n'
    )


def jwt_uris(config_path: Path, count: int) -> list[str]:
    """``count`` distinct URIs, each with a token of its own from the project's signer
    (valid for a day)."""
    settings, now = config.load(config_path), time.time()
    return [
        sign_url(settings, "papers", f"{JWT_ORIGIN}/papers/photo.jpg?v={n}", now=now,
                 expires_in=86400).removeprefix(JWT_ORIGIN)
        for n in range(count)
    ]  # fmt: skip


def report(plain: str, cpu_us: dict[str, list[float]], rates: dict[str, float]) -> None:
    """Each feature's row against ``plain``, the same scheme with every feature off, from
    the same run: the verifier's CPU per request, each round's ratio (the two rows run back
    to back) with their median and range; and the ratio of the median rates."""
    if plain not in cpu_us:
        return
    print()
    for name in (RULES, REVOKED, JWT):
        if name in cpu_us:
            ratios = [row / base for row, base in zip(cpu_us[name], cpu_us[plain], strict=True)]
            print(f"{name}: {statistics.median(ratios):.2f} x md5-token direct (same run) in "
                  f"CPU µs ({min(ratios):.2f}-{max(ratios):.2f} by round), "
                  f"{rates[name] / rates[plain]:.2f} x its req/s")  # fmt: skip
