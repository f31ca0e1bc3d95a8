"""What the ``test_e2e_nginx_*`` modules share: their config, tokens and the reference URL.

Every verdict is checked where a client sees it: the status nginx answers, the bytes it
serves (byte for byte, or none at all), and the reason nginx logged from the sidecar.
"""

from __future__ import annotations

import signal
import time

from sidecar.devtools.local_stack import LocalStack
from tests.conftest import (
    BOOKS_TOKEN,
    REPORT_TOKEN,
    SECRET_TOKEN,
    any_image_in,
    md5_source,
    sample,
    sidecar_config,
)

OLD_TOKEN = "old-rotated-t0ken-7c1e"
NEW_TOKEN = "new-current-t0ken-d2b8"
ALL_TOKENS = (BOOKS_TOKEN, SECRET_TOKEN, REPORT_TOKEN, OLD_TOKEN, NEW_TOKEN)

# The documented reference value:
# md5("/books/database-internals.jpg?w=400&h=600&fit=crop" + "wakanda123@").
REFERENCE_UNSIGNED = "/books/database-internals.jpg?w=400&h=600&fit=crop"
REFERENCE_SIGNATURE = "7d0d58f62c945d0ca08269205228bbe7"
REFERENCE_URL = f"{REFERENCE_UNSIGNED}&s={REFERENCE_SIGNATURE}"

# clock_skew = 0: the expiry test needs the URL to die exactly at its `expires`.
MAIN_CONFIG = sidecar_config(
    md5_source("books", "/books/", {"2026-11": BOOKS_TOKEN}, mode="enforce"),
    md5_source("secret", "/secret/", {"s1": SECRET_TOKEN}, mode="enforce", deny_status=403),
    md5_source("reports", "/reports/", {"r1": REPORT_TOKEN}, mode="report"),
    md5_source("public", "/public/", mode="off"),
    # An unsigned catch-all: any re-spelling that escaped its real source would land here.
    md5_source("everything-else", "/", mode="off"),
    server={"clock_skew": 0},
)


def assert_denied(status: int, body: bytes, stack: LocalStack, expected_status: int) -> None:
    assert status == expected_status
    assert not any_image_in(body, stack)


def rotation_config(keys: dict[str, str]) -> str:
    return sidecar_config(
        md5_source("books", "/books/", keys, mode="enforce"), server={"clock_skew": 0}
    )


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
