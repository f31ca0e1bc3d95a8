"""CloudFront policy statements: built byte for byte like the AWS signers, parsed strictly.

Canned: ``{"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":N}}}]}``
Custom: the same shape with ``DateGreaterThan`` and ``IpAddress`` (``AWS:SourceIp``) and a
``Resource`` that may hold ``*``/``?`` wildcards or be absent.
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-creating-signed-url-custom-policy.html
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_POLICY_BYTES = 16384
MAX_EPOCH = 10**12
_CONDITIONS = frozenset({"DateLessThan", "DateGreaterThan", "IpAddress"})


@dataclass(frozen=True, slots=True)
class PolicyStatement:
    date_less_than: int
    resource: str | None = None
    date_greater_than: int | None = None
    source_ip: IPNetwork | None = None


def build(policy: PolicyStatement, *, ascii_only: bool = True) -> bytes:
    """The statement as the AWS signers write it (compact JSON, their key order).

    botocore orders the conditions DateLessThan, IpAddress, DateGreaterThan; a canned
    policy is the case with only DateLessThan. ``ascii_only`` mirrors Python's
    ``json.dumps`` (``\\u00e9``); JavaScript's ``JSON.stringify`` writes raw UTF-8.
    """
    condition: dict[str, Any] = {"DateLessThan": {"AWS:EpochTime": policy.date_less_than}}
    if policy.source_ip is not None:
        condition["IpAddress"] = {"AWS:SourceIp": str(policy.source_ip)}
    if policy.date_greater_than is not None:
        condition["DateGreaterThan"] = {"AWS:EpochTime": policy.date_greater_than}
    statement: dict[str, Any] = {}
    if policy.resource is not None:
        statement["Resource"] = policy.resource
    statement["Condition"] = condition
    document = {"Statement": [statement]}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def canned(resource: str, expires: int, *, ascii_only: bool = True) -> bytes:
    """``build(PolicyStatement(expires, resource))``, byte for byte, without the generic encoder:
    this runs for every canned URL verified."""
    quote = encode_basestring_ascii if ascii_only else encode_basestring
    return (
        _CANNED_HEAD
        + quote(resource).encode()
        + _CANNED_MIDDLE
        + str(expires).encode()
        + _CANNED_TAIL
    )


_CANNED_HEAD = b'{"Statement":[{"Resource":'
_CANNED_MIDDLE = b',"Condition":{"DateLessThan":{"AWS:EpochTime":'
_CANNED_TAIL = b"}}}]}"


def parse(document: bytes) -> PolicyStatement | None:
    """A custom policy, or None unless it is exactly one well-formed statement."""
    if len(document) > MAX_POLICY_BYTES:
        return None
    try:
        tree = json.loads(
            document, object_pairs_hook=_unique_keys, parse_float=_refuse, parse_constant=_refuse
        )
    except (ValueError, RecursionError):
        return None
    return _policy(tree)


def fixed_scheme(pattern: str, origin: str) -> str:
    """``pattern`` with a leading ``http*://`` read as ``origin``'s own scheme. The URLs a
    source verifies all begin with its ``public_origin``, so that star can only ever mean
    the scheme's letters; matched as a plain star, it would also swallow a whole other
    path (``http*://cdn/books/*`` matching ``https://cdn/reports/r.png?x=://cdn/books/y``)."""
    if pattern.startswith("http*://"):
        return origin.partition("://")[0] + pattern[len("http") + 1 :]
    return pattern


def within(pattern: str | None, scope: str) -> bool:
    """Whether every URL ``pattern`` matches begins with ``scope`` (an origin and a path
    prefix ending in ``/``): its text before the first wildcard does. No pattern (a policy
    without ``Resource``) matches every URL."""
    if pattern is None:
        return False
    cut = min((at for at in (pattern.find("*"), pattern.find("?")) if at >= 0), default=None)
    return pattern[:cut].startswith(scope)


def matches(pattern: str, text: str) -> bool:
    """CloudFront Resource wildcards: ``*`` any run of characters, ``?`` exactly one.

    Linear in the text, whatever the pattern: the pieces between stars are matched once
    each, the first anchored at the start, the last at the end, the others at their
    leftmost place (leftmost is always safe for a glob: a later place leaves less room).
    A backtracking matcher costs O(text * pattern): a URL padded with ``.j`` repeated
    thousands of times against ``…/*.jpg`` took milliseconds per request."""
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return len(text) == len(pattern) and _piece_at(pattern, text, 0)
    first, *middle, last = pieces
    end = len(text) - len(last)
    if end < len(first) or not _piece_at(first, text, 0) or not _piece_at(last, text, end):
        return False
    position = len(first)
    for piece in middle:
        found = _find_piece(piece, text, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _piece_at(piece: str, text: str, start: int) -> bool:
    """``piece`` (which may hold ``?``) matches ``text`` at ``start``."""
    if "?" not in piece:
        return text.startswith(piece, start)
    return _piece_pattern(piece).match(text, start) is not None


def _find_piece(piece: str, text: str, start: int, end: int) -> int:
    """The leftmost place of ``piece`` within ``text[start:end]``, or -1."""
    if "?" not in piece:
        return text.find(piece, start, end)
    found = _piece_pattern(piece).search(text, start, end)
    return found.start() if found else -1


@functools.lru_cache(maxsize=256)
def _piece_pattern(piece: str) -> re.Pattern[str]:
    # A fixed-length pattern (``?`` is one character, no quantifier): searched in C, never
    # backtracking. Policies repeat across requests, so compiled pieces are kept.
    return re.compile("".join("." if char == "?" else re.escape(char) for char in piece), re.S)


def _policy(tree: Any) -> PolicyStatement | None:
    statements = (
        _exact(tree, {"Statement"}, set()).get("Statement") if isinstance(tree, dict) else None
    )
    if not isinstance(statements, list) or len(statements) != 1:
        return None
    statement = _exact(statements[0], {"Condition"}, {"Resource"})
    condition = _exact(statement.get("Condition"), {"DateLessThan"}, _CONDITIONS)
    resource = statement.get("Resource")
    # Absent means "every URL of the source"; present, it must be a string: a null (or a
    # list, a number) would otherwise read as absent and widen the grant.
    if not condition or ("Resource" in statement and not isinstance(resource, str)):
        return None
    date_less_than = _epoch(condition["DateLessThan"])
    date_greater_than = _epoch(condition.get("DateGreaterThan", {"AWS:EpochTime": 0}))
    source_ip = _network(condition.get("IpAddress"))
    if date_less_than is None or date_greater_than is None:
        return None
    if "IpAddress" in condition and source_ip is None:
        return None
    not_before = date_greater_than if "DateGreaterThan" in condition else None
    return PolicyStatement(date_less_than, resource, not_before, source_ip)


def _exact(node: Any, required: set[str], optional: set[str] | frozenset[str]) -> dict[str, Any]:
    """The object if it has all ``required`` keys and nothing beyond ``optional``; else {}."""
    if not isinstance(node, dict) or not required <= node.keys() <= required | optional:
        return {}
    return node


def _epoch(node: Any) -> int | None:
    value = _exact(node, {"AWS:EpochTime"}, set()).get("AWS:EpochTime")
    if type(value) is not int or not 0 <= value < MAX_EPOCH:
        return None
    return value


def _network(node: Any) -> IPNetwork | None:
    value = _exact(node, {"AWS:SourceIp"}, set()).get("AWS:SourceIp")
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in policy")
    return dict(pairs)


def _refuse(text: str) -> Any:
    raise ValueError(f"not an integer: {text}")
