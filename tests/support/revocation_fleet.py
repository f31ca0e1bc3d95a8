"""A fleet for the revocation tests: two sidecar processes (the first behind the shipped
nginx) sharing one ``[state]`` store, the config they share, and the CLI that revokes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.settings import Settings
from sidecar.policy.signing import sign_request
from sidecar.schemes import cloudfront_keys
from sidecar.schemes.base import Grant, Signed
from tests.support.configs import cloudfront_source, md5_source, sidecar_config
from tests.support.requests import verify
from tests.support.stacks import running_stack
from tests.support.tokens import BOOKS_TOKEN

ORIGIN = "https://image.example.com"
MAX_USES = 3


def fleet_config(folder: Path, state: str) -> str:
    """md5-token ``books``, cloudfront ``acme`` (ECDSA, URLs and cookies, a private key
    here to sign with), and ``once``: md5-token with ``max_uses``. The auth cache is on."""
    private, public = cloudfront_keys.new_key_pair("ecdsa")
    (folder / "acme.pem").write_bytes(private)
    (folder / "acme.pub.pem").write_bytes(public)
    books = md5_source("books", "/books/", {"k1": BOOKS_TOKEN}, deny_status=403)
    keys = {"KACME": (str(folder / "acme.pub.pem"), str(folder / "acme.pem"))}
    acme = cloudfront_source("acme", "/acme/", keys, public_origin=ORIGIN, accept_cookies=True)
    once = md5_source("once", "/once/", {"k-once": BOOKS_TOKEN}, deny_status=403,
                      max_uses=MAX_USES, use_window=60)  # fmt: skip
    return sidecar_config(books, acme, once, server={"clock_skew": 0, "cache_ttl": 2}) + state


@contextlib.contextmanager
def running_fleet(folder: Path, state: str) -> Iterator[tuple[LocalStack, LocalStack]]:
    """Two stacks on one store: ``state`` is the ``[state]`` table (an absolute path or a
    URL, the same for both)."""
    text = fleet_config(folder, state)
    with (
        running_stack(folder / "a", text) as first,
        running_stack(folder / "b", text, nginx=False) as second,
    ):
        image = (first.images / "books" / "x.png").read_bytes()
        for name in ("acme", "once"):
            (first.images / name).mkdir(exist_ok=True)
            for file in ("x.png", "a.jpg", "database-internals.jpg"):
                (first.images / name / file).write_bytes(image)
        yield first, second


def settings_of(stack: LocalStack) -> Settings:
    return config.load(stack.config_path)


def signed(
    stack: LocalStack, source: str, url: str, lifetime: int = 600, **grant: object
) -> Signed:
    """``url`` signed by ``source``'s own key, as ``sidecar sign`` signs it."""
    found = settings_of(stack).source(source)
    assert found is not None and found.signatures is not None
    request = sign_request(url, Grant(expires=int(time.time()) + lifetime, **grant))  # type: ignore[arg-type]
    return found.signatures.sign(request)


def sidecar_cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """``sidecar ARGS -c <the stack's config>``, as an operator runs it (from the stack's
    folder: the installed build, as the stack's own process)."""
    command = [sys.executable, "-m", "sidecar", args[0], "-c", str(stack.config_path), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, cwd=stack.folder, timeout=30,
                          env=dict(os.environ), check=False)  # fmt: skip


def reason(stack: LocalStack, uri: str, *, client_ip: str = "203.0.113.7") -> str:
    """What the stack's sidecar answers for ``uri`` (``X-Signature-Result``)."""
    reply = verify(stack, uri, client_ip=client_ip)
    assert reply.status in (200, 401, 403), reply
    return reply.headers["x-signature-result"]


def until_reason(stack: LocalStack, uri: str, expected: str, timeout: float = 5.0) -> float:
    """Seconds until the stack's sidecar answers ``expected`` for ``uri`` (or fail)."""
    started = time.monotonic()
    while (got := reason(stack, uri)) != expected:
        assert time.monotonic() - started < timeout, f"still {got}, not {expected}"
        time.sleep(0.01)
    return time.monotonic() - started
