"""The config the nginx end-to-end modules decide on: md5-token sources in every mode
(enforce, a 403 one, report, off, an unsigned catch-all), the documented reference URL,
and the tokens of a key rotation."""

from __future__ import annotations

from tests.support.configs import md5_source, sidecar_config
from tests.support.tokens import BOOKS_TOKEN, REPORT_TOKEN, SECRET_TOKEN

OLD_TOKEN = "old-rotated-t0ken-7c1e"
NEW_TOKEN = "new-current-t0ken-d2b8"
ALL_TOKENS = (BOOKS_TOKEN, SECRET_TOKEN, REPORT_TOKEN, OLD_TOKEN, NEW_TOKEN)

# The documented reference value:
# md5("/books/database-internals.jpg?w=400&h=600&fit=crop" + "wakanda123@").
REFERENCE_UNSIGNED = "/books/database-internals.jpg?w=400&h=600&fit=crop"
REFERENCE_SIGNATURE = "7d0d58f62c945d0ca08269205228bbe7"
REFERENCE_URL = f"{REFERENCE_UNSIGNED}&s={REFERENCE_SIGNATURE}"

# Every mode: enforce, a 403 one, report, off, and an unsigned catch-all.
MAIN_SOURCES = (
    md5_source("books", "/books/", {"2026-11": BOOKS_TOKEN}, mode="enforce"),
    md5_source("secret", "/secret/", {"s1": SECRET_TOKEN}, mode="enforce", deny_status=403),
    md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    # An unsigned catch-all: any re-spelling that escaped its real source would land here.
    md5_source("everything-else", "/", mode="off"),
)
# clock_skew = 0: the expiry test needs the URL to die exactly at its `expires`.
MAIN_CONFIG = sidecar_config(*MAIN_SOURCES, server={"clock_skew": 0})


def rotation_config(keys: dict[str, str]) -> str:
    """One md5-token source holding ``keys`` (newest first: the first signs)."""
    return sidecar_config(
        md5_source("books", "/books/", keys, mode="enforce"), server={"clock_skew": 0}
    )
