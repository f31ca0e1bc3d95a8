"""The playground: sign a URL for a source, and ask this process's own verify listener,
over loopback, exactly what it answers for a URL, as the configured proxy would ask.

The request carries the headers of ``[server] proxy``'s profile (``policy.proxies``
reads them back) and is a real ``/verify`` request: it is decided, counted and logged
like any other, so what the page shows is what nginx would be told.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import time
from dataclasses import dataclass

from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason
from sidecar.errors import SigningError, UrlError
from sidecar.policy.decide import Decider
from sidecar.policy.proxies import VERIFY_PATH
from sidecar.policy.settings import Address
from sidecar.policy.signing import sign
from sidecar.runtime.state import State
from sidecar.schemes.base import Grant

TIMEOUT = 5.0
RESULT_HEADER = "x-signature-result"
# What a request target and header value may hold: printable ASCII (non-ASCII is sent
# percent-encoded, and control bytes would split the request).
_WIRE_TEXT = re.compile(r"[\x21-\x7e]{1,8192}")
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104

EXPLANATIONS = {
    Reason.OK: "The signature matches a key of the source, and the URL is within its "
    "validity: nginx serves the file.",
    Reason.MISSING: "A signing parameter the source's scheme requires is absent.",
    Reason.MALFORMED: "A signing parameter is present but badly spelled (encoding, "
    "length, case or position).",
    Reason.INVALID: "The signature does not match the URL under any key of the source: "
    "the URL was changed after signing, or signed with another key.",
    Reason.EXPIRED: "The signature was valid but its expiry has passed.",
    Reason.NOT_YET_VALID: "The signature is not valid yet (its start time is in the future).",
    Reason.IP_MISMATCH: "The signature is bound to another client address.",
    Reason.UNKNOWN_KEY: "The URL names a key id that this source does not have.",
    Reason.NO_SOURCE: "No source owns this path (and host): denied by default.",
    Reason.METHOD: "Only GET and HEAD are allowed.",
    Reason.NON_CANONICAL: "The URI is not in its one canonical spelling (an encoded "
    "slash, a dot segment, a repeated signing parameter, ...), or the proxy headers "
    "are missing.",
    Reason.UNSIGNED_ALLOWED: "The source is in mode = off, or in mode = optional and the "
    "URL carries no signature: none is required.",
    Reason.REFERRER: "The signature holds, but the page that asked (its Referer) is not one "
    "of the source's referrers.",
    Reason.NETWORK: "The signature holds, but the client address is in none of the source's "
    "networks.",
    Reason.COUNTRY: "The signature holds, but the client's country (X-Country-Code, set by "
    "the proxy) is not allowed for the source.",
    Reason.REVOKED: "The signature holds, but this grant (or its key, or a prefix it lies "
    "under) was revoked: sidecar revocations lists what is.",
    Reason.USED_UP: "The signature holds, but the grant has been used max_uses times.",
    Reason.UNAVAILABLE: "The source counts uses (max_uses) and the state store did not "
    "answer in time: denied rather than counted blind.",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``/verify`` answered, and the request it was asked."""

    status: int
    result: str
    explanation: str
    target: str
    headers: tuple[tuple[str, str], ...]


class PlaygroundError(ValueError):
    """Why the playground cannot sign or ask (shown on the page)."""


async def sign_for(state: State, source: str, url: str, expires_in: int | None) -> str:
    """The signed URL, computed off the verify loop (an RSA signature takes milliseconds)."""
    job = functools.partial(_sign, state.decider, source, url, expires_in)
    return await state.off_loop(job)


def _sign(decider: Decider, source: str, url: str, expires_in: int | None) -> str:
    try:
        signed = sign(decider.settings, source, url, Grant(), now=time.time(),
                      expires_in=expires_in, router=decider.router)  # fmt: skip
    except SigningError as error:
        raise PlaygroundError(str(error)) from None
    return signed.url


async def ask_verify(
    state: State, url: str, *, host: str | None, client_ip: str, method: str = "GET"
) -> Answer:
    """Send ``url`` to this process's verify listener as the configured proxy would."""
    try:
        parsed = parse_url(url)
    except UrlError as error:
        raise PlaygroundError(str(error)) from None
    host = host or parsed.host
    settings = state.decider.settings
    target, headers = verify_request(settings.server.proxy, parsed.uri, host, client_ip, method)
    if not all(_WIRE_TEXT.fullmatch(text) for text in [target, *(v for _, v in headers)]):
        raise PlaygroundError("the URL must be printable ASCII (percent-encode anything else)")
    status, result = await _exchange(settings.server.listen, target, headers)
    explanation = (
        EXPLANATIONS.get(Reason(result), "") if result in Reason.__members__.values() else ""
    )
    return Answer(status, result, explanation, target, tuple(headers))


def verify_request(
    proxy: str, uri: str, host: str | None, client_ip: str, method: str
) -> tuple[str, list[tuple[str, str]]]:
    """The request target and headers ``proxy``'s profile sends for one request (the
    inverse of ``policy.proxies.EXTRACTORS``)."""
    request_id = [("X-Request-ID", "console-" + secrets.token_hex(12))]
    if proxy == "ingress-nginx":
        full = f"http://{_authority(host or 'localhost')}{uri}"
        return VERIFY_PATH, [("X-Original-URL", full), ("X-Original-Method", method),
                             ("X-Real-IP", client_ip), *request_id]  # fmt: skip
    if proxy in ("traefik", "caddy"):  # Caddy's forward_auth sends Traefik's headers
        named = [("X-Forwarded-Host", host)] if host else []
        return VERIFY_PATH, [("X-Forwarded-Uri", uri), ("X-Forwarded-Method", method), *named,
                             ("X-Forwarded-For", client_ip), *request_id]  # fmt: skip
    if proxy == "envoy":
        # ext_authz sends the original request itself, under the verify path.
        return VERIFY_PATH + uri, [("Host", _authority(host or "localhost")),
                                   ("X-Forwarded-For", client_ip), *request_id]  # fmt: skip
    named = [("X-Original-Host", host)] if host else []
    return VERIFY_PATH, [("X-Original-URI", uri), ("X-Original-Method", method), *named,
                         ("X-Real-IP", client_ip), *request_id]  # fmt: skip


def _authority(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _exchange(
    listen: Address, target: str, headers: list[tuple[str, str]]
) -> tuple[int, str]:
    """One HTTP/1.1 request sent byte for byte (no client normalises the target), and
    the status and ``X-Signature-Result`` of the answer (which has no body)."""
    host = _WILDCARD.get(listen.host, listen.host)
    if not any(name == "Host" for name, _ in headers):
        headers = [("Host", _authority(host)), *headers]
    lines = [f"GET {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers), "Connection: close"]
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(host, listen.port)
            try:
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
                head = await reader.readuntil(b"\r\n\r\n")
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise PlaygroundError("the verify listener did not answer") from None
    return _status_and_result(head.decode("latin-1"))


def _status_and_result(head: str) -> tuple[int, str]:
    status_line, *header_lines = head.split("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    result = ""
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == RESULT_HEADER:
            result = value.strip()
    return status, result
