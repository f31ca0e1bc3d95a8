"""The strict reader of a compact JWS (RFC 7515 §7.1): three base64url texts, a header and
claims that are JSON objects, in one spelling.

What a token is read as, before any key is looked at: base64url without padding and with
zero unused bits (``core.encodings.URLSAFE_NOPAD``), UTF-8 JSON objects in which no name
appears twice (which of two ``sub`` would a verifier believe?), no ``NaN`` or
``Infinity``, and a header that names its algorithm and, at most, its key. A header that
would have the token choose its own key (``jku``, ``jwk``, ``x5u``, ``x5c``) or extend the
format (``crit``: RFC 7797's unencoded payloads among them) is refused. Anything else is a
``Reason``, never an exception.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from typing import Any, Final, NamedTuple

from sidecar.core.encodings import URLSAFE_NOPAD
from sidecar.core.verdict import Reason

# Longer than any token the sidecar signs or a real signer writes for a URL (an RS512
# token with a few claims is under 1 KB); a bigger one is refused before it is decoded.
MAX_TOKEN_LENGTH: Final = 4096
# Header members that would let the token name its own key, or a format extension.
REFUSED_HEADERS: Final = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})


class Jws(NamedTuple):
    """A token read strictly; its signature not yet checked."""

    algorithm: str
    key_id: str | None
    claims: dict[str, Any]
    signing_input: bytes  # the ASCII of "header.payload", as signed
    signature: bytes


class _DuplicateMemberError(ValueError):
    """A JSON object naming a member twice."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _DuplicateMemberError(name)
        found[name] = value
    return found


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity, -Infinity: not JSON (RFC 8259)


# One decoder for every token: json.loads with these hooks would build a decoder (and its
# scanner) per call, twice a token, more than a third of an HS256 verification.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_refuse_constant
)


def json_object(data: bytes) -> dict[str, Any] | None:
    """A UTF-8 JSON object with unique member names, or None. (A byte-order mark is no
    JSON value here either: nothing skips it.)"""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
        return None
    return value if isinstance(value, dict) else None


def read(token: str) -> Jws | Reason:
    """The token's parts, or ``malformed`` for anything but the one spelling."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return Reason.MALFORMED
    header_text, payload_text, signature_text = token.split(".")
    header_bytes = URLSAFE_NOPAD.decode(header_text)
    payload_bytes = URLSAFE_NOPAD.decode(payload_text)
    signature = URLSAFE_NOPAD.decode(signature_text)
    if header_bytes is None or payload_bytes is None or signature is None:
        return Reason.MALFORMED
    header = json_object(header_bytes)
    claims = json_object(payload_bytes)
    if header is None or claims is None:
        return Reason.MALFORMED
    algorithm, key_id = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str) or not (key_id is None or isinstance(key_id, str)):
        return Reason.MALFORMED
    if REFUSED_HEADERS.intersection(header):
        return Reason.MALFORMED
    signing_input = f"{header_text}.{payload_text}".encode("ascii")
    return Jws(algorithm, key_id, claims, signing_input, signature)


def encode(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    """A compact JWS of ``header`` and ``claims`` (compact JSON), signed by ``sign``
    (signing input bytes → signature bytes)."""
    head = URLSAFE_NOPAD.encode(_compact(header))
    body = URLSAFE_NOPAD.encode(_compact(claims))
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{URLSAFE_NOPAD.encode(sign(signing_input))}"


def _compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
