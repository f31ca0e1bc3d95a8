"""What a verified JWT grants: the paths its scope claim opens, its times, its audience and
the client address it may be bound to. Read only once the signature holds.

Pure: no I/O, no clock (the request's time is passed in).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Any, Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_DATE: Final = 10**12 - 1  # twelve digits of seconds, as every other expiry is read
MAX_STARS: Final = 16  # stars in one glob pattern


class ScopeMode(StrEnum):
    EXACT = "exact"  # the claim is the one path the token opens
    PREFIX = "prefix"  # the path and every path under it, on a segment boundary
    GLOB = "glob"  # a pattern: '*' stands for any run of characters within a segment


def numeric_date(value: object) -> int | None:
    """A NumericDate in whole seconds (RFC 7519 §2), or None: not a fraction, a bool, a
    string or a negative number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DATE:
        return None
    return value


def audience_holds(claim: object, audience: str) -> bool:
    """``aud`` names ``audience`` (a string, or a list of strings, RFC 7519 §4.1.3). With no
    ``audience`` configured, a token meant for some audience is not for this source."""
    if claim is None:
        return not audience
    if isinstance(claim, str):
        return bool(audience) and claim == audience
    if isinstance(claim, list) and all(isinstance(item, str) for item in claim):
        return bool(audience) and audience in claim
    return False


def network(claim: object) -> Network | None:
    """The ``ip`` claim (an address or a CIDR, host bits clear), or None."""
    if not isinstance(claim, str) or not claim.isascii():
        return None
    try:
        return ipaddress.ip_network(claim, strict=True)
    except ValueError:
        return None


# --- scope ----------------------------------------------------------------------------------


def scope_problem(claim: Any, mode: ScopeMode, source_scope: str) -> str | None:
    """What keeps ``claim`` from being a scope of a source whose paths lie under
    ``source_scope`` (its ``path_prefix`` ending in '/'); None: nothing."""
    if not isinstance(claim, str) or not claim.startswith("/"):
        return "the scope claim must be a path starting with '/'"
    stars = claim.count("*")
    if stars and mode is not ScopeMode.GLOB:
        return "'*' is a wildcard only where scope = \"glob\""
    if stars > MAX_STARS:
        return f"at most {MAX_STARS} '*' in a pattern"
    fixed = claim.partition("*")[0]
    # Held to its source: a key two sources share must not let one's token open the other.
    if not (fixed.startswith(source_scope) or claim == source_scope.rstrip("/")):
        return f"the scope must lie under the source's path_prefix {source_scope}"
    return None


def opens(claim: str, mode: ScopeMode, path: str) -> bool:
    """Whether a scope (already free of problems) opens ``path`` (the decoded path)."""
    if mode is ScopeMode.EXACT:
        return path == claim
    if mode is ScopeMode.PREFIX:
        folder = claim.rstrip("/")
        return path in (claim, folder) or path.startswith(folder + "/")
    pattern_segments, path_segments = claim.split("/"), path.split("/")
    if len(pattern_segments) != len(path_segments):
        return False
    return all(map(_segment_matches, pattern_segments, path_segments))


def _segment_matches(pattern: str, text: str) -> bool:
    """``pattern`` with '*' (any run of characters) matches all of ``text``: greedy with one
    remembered star, so the work is bounded by len(pattern) * len(text), with no regular
    expression to backtrack."""
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, resume, p = p, t, p + 1
        elif p < len(pattern) and pattern[p] == text[t]:
            p, t = p + 1, t + 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return all(character == "*" for character in pattern[p:])
