"""``[[teams]]``: the signing API's callers, each signing for one source.

A team of the main file may sign for any source; a team of an included file only for a
source that same file defines, so a tenant's file cannot take another's signing
(docs/configuration.md, "What an included file may do").
"""

from __future__ import annotations

import re

from sidecar.config.fields import NAME, NAME_RULE, Problems, Table
from sidecar.config.includes import Part
from sidecar.policy.settings import TeamSettings

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_ANY_SOURCE = "no source named '{}'"
_OWN_SOURCE = "'{}' is not a source of this file: an included file's teams sign only for its own"


def parse_teams(parts: list[Part]) -> list[TeamSettings | None]:
    """Every file's teams, in file order; None for each team with a problem."""
    declared = _declared_names(parts)
    teams: list[TeamSettings | None] = []
    for part in parts:
        signable = (
            (_declared_names([part]), _OWN_SOURCE) if part.included else (declared, _ANY_SOURCE)
        )
        teams += [
            _team(raw, index, signable, part.root.problems)
            for index, raw in enumerate(part.list("teams"))
        ]
    return teams


def _declared_names(parts: list[Part]) -> set[str]:
    """Every source name the files declare, built or not: a team naming a broken source is
    one problem, not two."""
    return {
        raw["name"]
        for part in parts
        for raw in part.list("sources")
        if isinstance(raw, dict) and isinstance(raw.get("name"), str)
    }


def _team(
    raw: object, index: int, signable: tuple[set[str], str], problems: Problems
) -> TeamSettings | None:
    sources, rule = signable
    table = Table(raw if isinstance(raw, dict) else {}, f"teams[{index}]", problems)
    table.check_names({"id", "source", "api_key_sha256"})
    team_id = table.require("id", str)
    if team_id is not None:
        table.check("id", bool(NAME.fullmatch(team_id)), NAME_RULE)
    source = table.require("source", str)
    if source is not None:
        table.check("source", source in sources, rule.format(source))
    hashes = table.require("api_key_sha256", list) or []
    valid = [bytes.fromhex(h) for h in hashes if isinstance(h, str) and _SHA256_HEX.fullmatch(h)]
    table.check(
        "api_key_sha256",
        bool(hashes) and len(valid) == len(hashes),
        "must be a non-empty list of hex SHA-256 digests (sidecar token api-key)",
    )
    if not team_id or not source or source not in sources or len(valid) != len(hashes) or not valid:
        return None
    return TeamSettings(team_id, source, tuple(valid))
