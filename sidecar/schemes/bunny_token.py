"""Bunny CDN token authentication: reading and writing the query form, in one spelling.

A Bunny URL is ``<path>?token=T&<signed parameters>&expires=E``: the token first, the
signed parameters sorted by name, ``expires`` last, each value percent-encoded as
Python's ``quote(value, safe='')`` (PHP's ``rawurlencode``) writes it. The path form,
``/bcdn_token=T&<signed parameters>&expires=E<path>``, reaches the verifier as the same
query with ``bcdn_token`` first (nginx/signed-url-bunny-path.conf rewrites it). The signed data is
those parameters as ``name=value`` pairs, values decoded, joined by ``&``. The scheme,
its messages and its answers: ``sidecar.schemes.bunny`` and docs/schemes/bunny.md.
Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from sidecar.core.addresses import client_address
from sidecar.core.canonical import CanonicalURI, QueryParam
from sidecar.core.encodings import URLSAFE_NOPAD, parse_epoch
from sidecar.core.verdict import Reason
from sidecar.policy.rules import country

TOKEN, EXPIRES = "token", "expires"
# The path form's token parameter: its token segment, moved into the query by nginx.
PATH_TOKEN = "bcdn_token"  # noqa: S105 (a parameter's name, not a secret)
TOKEN_PATH, COUNTRIES, BLOCKED = "token_path", "token_countries", "token_countries_blocked"
IGNORE_PARAMS = "token_ignore_params"
# The ``token_`` parameters this verifier enforces (token_ignore_params only says which
# parameters are signed). Any other one is a condition it cannot keep: refused.
KNOWN_CONDITIONS: Final = frozenset({TOKEN_PATH, COUNTRIES, BLOCKED, IGNORE_PARAMS})
HS256_PREFIX, IP_FLAG = "HS256-", "1-"
# A parameter name as the signers write it: never percent-encoded.
_NAME: Final = re.compile(r"[A-Za-z0-9_.~-]{1,64}")


class Token(NamedTuple):
    """The token parameter read: its digest, whether it is the ``HS256-`` HMAC spelling,
    and whether that spelling says it is bound to an address (``1-``)."""

    digest: bytes
    keyed: bool
    ip_bound: bool


class Query(NamedTuple):
    """A Bunny query read in its one spelling: the token's text, the expiry, and the
    signed parameters in order, values decoded."""

    token: str
    expires: int
    params: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)

    def signing_data(self) -> str:
        return "&".join(f"{name}={value}" for name, value in self.params)


def encode_value(value: str) -> str:
    """A value in the URL as the signers write it (RFC 3986 unreserved kept)."""
    return quote(value, safe="")


def url_data(params: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"&{name}={encode_value(value)}" for name, value in params)


def plain_name(name: str) -> bool:
    """Whether ``name`` is a parameter name the signers write as it is."""
    return _NAME.fullmatch(name) is not None


def _decoded(param: QueryParam, raw: str) -> tuple[str, str] | Reason:
    """One signed parameter, its value decoded, or why it is not in its one spelling."""
    if param.name in (TOKEN, PATH_TOKEN, EXPIRES):
        return Reason.NON_CANONICAL  # a second token or expiry
    if param.raw_name != param.name or not plain_name(param.name):
        return Reason.MALFORMED
    if raw[param.start + len(param.raw_name) : param.start + len(param.raw_name) + 1] != "=":
        return Reason.MALFORMED  # "&name&" would sign as "name=": one spelling, with "="
    if param.name.startswith("token_") and param.name not in KNOWN_CONDITIONS:
        return Reason.MALFORMED
    try:
        value = unquote(param.value, errors="strict")
    except UnicodeDecodeError:
        return Reason.MALFORMED
    return (param.name, value) if encode_value(value) == param.value else Reason.MALFORMED


def read_query(uri: CanonicalURI, *, path_form: bool = False) -> Query | Reason:
    """The query in its one layout (``token`` first, sorted parameters, ``expires`` last);
    with ``path_form``, the token may also be the path form's ``bcdn_token``."""
    params = uri.params
    # Counted only where the path form is read: the query form pays nothing for it.
    tokens = uri.count(TOKEN) + (uri.count(PATH_TOKEN) if path_form else 0)
    if tokens == 0:
        return Reason.MISSING
    if tokens > 1 or uri.count(EXPIRES) > 1:
        return Reason.NON_CANONICAL
    first, last = params[0], params[-1]
    named = first.raw_name == TOKEN or (path_form and first.raw_name == PATH_TOKEN)
    if len(params) < 2 or not named or last.raw_name != EXPIRES:
        return Reason.MALFORMED
    expires = parse_epoch(last.value)
    if expires is None:
        return Reason.MALFORMED
    signed: list[tuple[str, str]] = []
    for param in params[1:-1]:
        pair = _decoded(param, uri.raw)
        if isinstance(pair, Reason):
            return pair
        if signed and pair[0] <= signed[-1][0]:
            return Reason.NON_CANONICAL if pair[0] == signed[-1][0] else Reason.MALFORMED
        signed.append(pair)
    return Query(first.value, expires, tuple(signed))


def read_token(text: str, size: int, *, keyed: bool) -> Token | None:
    """The token's digest of ``size`` bytes (base64url, unpadded), or None. The ``HS256-``
    (keyed HMAC) spelling is read only where ``keyed`` allows it."""
    is_hmac = keyed and text.startswith(HS256_PREFIX)
    body = text.removeprefix(HS256_PREFIX) if is_hmac else text
    bound = is_hmac and body.startswith(IP_FLAG) and len(body) > _encoded_size(size)
    digest = URLSAFE_NOPAD.decode(body.removeprefix(IP_FLAG) if bound else body)
    if digest is None or len(digest) != size:
        return None
    return Token(digest, is_hmac, bound)


def _encoded_size(size: int) -> int:
    return (size * 4 + 2) // 3


def countries(text: str | None) -> frozenset[str] | None:
    """A comma-separated list of country codes in its one spelling (``CA,US``), an
    empty frozenset when it is not one, or None when there is no list."""
    if text is None:
        return None
    codes = text.split(",")
    if not all(country(code) for code in codes) or len(set(codes)) != len(codes):
        return frozenset()
    return frozenset(codes)


def packed_address(text: str | None) -> bytes | None:
    """The address the ``HS256-`` message binds: IPv4's 4 bytes, or IPv6's 16 with its
    last 8 zeroed (the /64 the signers bind). None for no or an unreadable address."""
    address = client_address(text) if text else None
    if address is None:
        return None
    packed = address.packed
    return packed if len(packed) == 4 else packed[:8] + bytes(8)


def address_text(text: str | None) -> str | None:
    """The address as the classic and basic messages carry it: its usual text
    (IPv4 dotted, IPv6 compressed), or None."""
    address = client_address(text) if text else None
    return None if address is None else str(address)
