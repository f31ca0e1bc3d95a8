"""The demo's revocation: a signed URL the sidecar allows, taken back as ``sidecar revoke``
takes it back (the record written to the demo's ``[state]`` file), then refused."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable

from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.revocations import Revocation
from sidecar.policy.revoking import revoke_url
from sidecar.policy.settings import Settings, StateSettings
from sidecar.policy.signing import sign_url
from sidecar.runtime.stores import open_store

LABEL = "a signed URL, then revoked (sidecar revoke)"
SYNC_TIMEOUT = 5.0


def show_revocation(
    stack: LocalStack,
    settings: Settings,
    now: float,
    report: Callable[[LocalStack, str, str], None],
) -> None:
    assert settings.state is not None
    url = sign_url(settings, "books", f"{stack.nginx_url}/books/database-internals.png?w=200",
                   now=now, expires_in=300)  # fmt: skip
    before = _asked(stack, url)
    record = revoke_url(settings, url, now=now)
    asyncio.run(_write(settings.state, record))
    deadline = time.monotonic() + SYNC_TIMEOUT
    while _asked(stack, url) != "revoked" and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"revoked: the sidecar said {before} for this URL; sidecar revoke wrote {record.id}\n")
    report(stack, LABEL, url)


def _asked(stack: LocalStack, url: str) -> str:
    """What the sidecar answers for ``url`` when asked directly (nginx's cache untouched)."""
    uri = url.removeprefix(stack.nginx_url)
    request = urllib.request.Request(f"{stack.sidecar_url}/verify", headers={  # noqa: S310
        "X-Original-URI": uri, "X-Original-Method": "GET", "X-Real-IP": "127.0.0.1"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (loopback)
            return str(answer.headers.get("X-Signature-Result", ""))
    except urllib.error.HTTPError as denied:
        return str(denied.headers.get("X-Signature-Result", ""))


async def _write(state: StateSettings, record: Revocation) -> None:
    store = open_store(state)
    try:
        await store.open()
        await store.revoke(record)
    finally:
        await store.close()
