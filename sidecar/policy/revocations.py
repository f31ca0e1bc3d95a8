"""Grants taken back (docs/revocation.md): the records, and the in-memory view the
decision reads.

A revocation names, within one source, a grant (its signature in its one spelling,
``Verdict.grant``, by digest: ``grant_digest``), a key (every grant it signed), or a path
prefix (every grant for a path under it, on a segment boundary). Each holds until
``until`` (unix seconds), or, without one, until it is removed. The view is built off the
verify loop from the store's records and swapped in whole; a lookup is a dict probe.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import orjson

from sidecar.core import canonical, digests
from sidecar.core.verdict import Verdict

_NEVER: Final = math.inf
_MAX_VALUE: Final = 1024  # characters: a prefix or key id; a grant's hex is far shorter


class Kind(StrEnum):
    GRANT = "grant"
    KEY = "key"
    PREFIX = "prefix"


@dataclass(frozen=True, slots=True)
class Revocation:
    id: str
    source: str
    kind: Kind
    value: str  # GRANT: grant_digest in lowercase hex; KEY: the key id; PREFIX: a path
    until: float | None  # unix seconds; None: until removed
    created: float

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"id": self.id, "source": self.source, "kind": self.kind.value,
             "value": self.value, "until": self.until, "created": self.created}
        )  # fmt: skip

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


def grant_digest(grant: bytes) -> bytes:
    """What a grant is kept and looked up under: 16 bytes whatever its signature's size (an
    RSA signature is 256), and no signature in a listing or a store."""
    return digests.sha256(grant)[:16]  # on every allow of a source with revocations


def revocation_id(source: str, kind: Kind, value: str) -> str:
    """One id per (source, kind, value): revoking the same thing twice is one revocation."""
    digest = hashlib.sha256(f"{kind.value}\0{source}\0{value}".encode()).hexdigest()
    return f"{kind.value[0]}-{digest[:20]}"


def new_revocation(
    source: str, kind: Kind, value: str, until: float | None, created: float
) -> Revocation:
    return Revocation(revocation_id(source, kind, value), source, kind, value, until, created)


def from_json(data: bytes | str) -> Revocation | None:
    """A stored record, or None for anything not exactly one (a record another version
    wrote, or a corrupted one, is skipped, never half-read)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or set(raw) != {"id", "source", "kind", "value", "until",
                                                 "created"}:  # fmt: skip
        return None
    kind, until, created = raw["kind"], raw["until"], raw["created"]
    if kind not in Kind.__members__.values() or not _number(created):
        return None
    if until is not None and not _number(until):
        return None
    if not all(isinstance(raw[name], str) for name in ("id", "source", "value")):
        return None
    record = new_revocation(raw["source"], Kind(kind), raw["value"], until, created)
    if record.id != raw["id"] or value_problem(record.kind, record.value):
        return None
    return record


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def value_problem(kind: Kind, value: str) -> str | None:
    """Why ``value`` cannot be what a revocation of ``kind`` names, or None."""
    if not value or len(value) > _MAX_VALUE:
        return "must be 1 to 1024 characters"
    if kind is Kind.GRANT:
        if len(value) != 32 or value.strip("0123456789abcdef"):
            return "must be a grant digest: 32 lowercase hex digits"
    elif kind is Kind.PREFIX and (
        not value.startswith("/") or not canonical.is_canonical_path(value)
    ):
        return "must be a canonical path starting with /"
    return None


def within(path: str, prefix: str) -> bool:
    """``path`` lies under ``prefix`` on a segment boundary: ``/a/b`` holds ``/a/b`` and
    ``/a/b/c``, never ``/a/bc``."""
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class _SourceRevocations:
    # Plain dicts (not Mapping): compiled, a lookup is then a C call, not a method lookup.
    grants: dict[bytes, float]  # grant -> until (inf: until removed)
    keys: dict[str, float]
    # By the prefix without its trailing slash ("/" stays): a path is looked up by each of
    # its ancestors, so the cost follows the path's depth, not how many are revoked.
    prefixes: dict[str, float]


class RevokedView:
    """Every revocation in force when it was built, by source: what ``/verify`` reads."""

    def __init__(self, revocations: Iterable[Revocation], now: float) -> None:
        grants: dict[str, dict[bytes, float]] = {}
        keys: dict[str, dict[str, float]] = {}
        prefixes: dict[str, dict[str, float]] = {}
        count = 0
        for record in revocations:
            if not record.active(now):
                continue
            until = _NEVER if record.until is None else record.until
            if record.kind is Kind.GRANT:
                grants.setdefault(record.source, {})[bytes.fromhex(record.value)] = until
            elif record.kind is Kind.KEY:
                keys.setdefault(record.source, {})[record.value] = until
            else:
                folder = record.value.rstrip("/") or "/"
                prefixes.setdefault(record.source, {})[folder] = until
            count += 1
        self.count = count
        self._by_source = {
            name: _SourceRevocations(
                grants.get(name, {}), keys.get(name, {}), prefixes.get(name, {})
            )
            for name in grants.keys() | keys.keys() | prefixes.keys()
        }

    def summary(self, source: str) -> tuple[int, int, tuple[str, ...]]:
        """What is revoked in ``source`` (for the console): how many grants, how many
        keys, and the prefixes."""
        held = self._by_source.get(source)
        if held is None:
            return 0, 0, ()
        return len(held.grants), len(held.keys), tuple(sorted(held.prefixes))

    def revoked(self, source: str, verdict: Verdict, path: str, now: float) -> bool:
        """Whether a valid ``verdict`` for ``path`` of ``source`` has been taken back."""
        held = self._by_source.get(source)
        if held is None:
            return False
        if held.grants:
            until = held.grants.get(grant_digest(verdict.grant))
            if until is not None and now < until:
                return True
        if verdict.key_id is not None:
            until = held.keys.get(verdict.key_id)
            if until is not None and now < until:
                return True
        return bool(held.prefixes) and _under(held.prefixes, path, now)


def _under(prefixes: dict[str, float], path: str, now: float) -> bool:
    """Whether ``path`` or a folder holding it (on a segment boundary) is revoked."""
    candidate = path
    while True:
        until = prefixes.get(candidate)
        if until is not None and now < until:
            return True
        cut = candidate.rfind("/")
        if cut <= 0:
            until = prefixes.get("/")
            return until is not None and now < until
        candidate = candidate[:cut]


EMPTY_VIEW: Final = RevokedView((), 0.0)
