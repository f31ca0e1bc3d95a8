"""A source's rules beyond the signature (docs/configuration.md, "Rules"): ``referrers``,
``allow_no_referrer``, ``networks``, ``countries``, ``countries_blocked``; every problem
named, the value never echoed beyond what the rule needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sidecar.config.fields import Table
from sidecar.core.addresses import IPNetwork
from sidecar.policy.rules import Rules, country, network, origin_pattern
from sidecar.policy.settings import Mode

RULE_FIELDS = {"referrers", "allow_no_referrer", "networks", "countries", "countries_blocked"}
T = TypeVar("T")


def parse_rules(table: Table, mode: Mode | None) -> Rules | None:
    """The source's rules, or None when it sets none (so it pays nothing for them)."""
    given = RULE_FIELDS & set(table.data)
    if not given:
        return None
    table.check(
        sorted(given)[0],
        mode is not Mode.OFF,
        'a rule needs a source that verifies (mode = "off" allows every request)',
    )
    referrers = _entries(table, "referrers", origin_pattern, "an origin: https://host[:port], "
                         "or https://*.host for its subdomains")  # fmt: skip
    allow_no_referrer = table.get("allow_no_referrer", bool, True)
    table.check("allow_no_referrer", "allow_no_referrer" not in given or referrers is not None,
                "applies only with referrers")  # fmt: skip
    networks: list[IPNetwork] | None = _entries(
        table, "networks", network, "an IPv4 or IPv6 address or CIDR"
    )
    countries = _entries(table, "countries", country, "two capital letters (ISO 3166-1)")
    blocked = _entries(table, "countries_blocked", country, "two capital letters (ISO 3166-1)")
    table.check("countries_blocked", countries is None or blocked is None,
                "give countries or countries_blocked, not both")  # fmt: skip
    return Rules(
        tuple(referrers) if referrers is not None else None,
        allow_no_referrer if allow_no_referrer is not None else True,
        tuple(networks) if networks is not None else None,
        frozenset(countries) if countries is not None else None,
        frozenset(blocked) if blocked is not None else None,
    )


def _entries(
    table: Table, name: str, parse: Callable[[str], T | None], rule: str
) -> list[T] | None:
    """A non-empty list whose every entry ``parse`` accepts (None when not given)."""
    values = table.get(name, list)
    if values is None:
        return None
    parsed = [parse(value) if isinstance(value, str) else None for value in values]
    bad = [str(value) for value, one in zip(values, parsed, strict=True) if one is None]
    table.check(name, bool(values), "must not be empty")
    table.check(name, not bad, f"each entry must be {rule}: not {', '.join(bad[:3])}")
    return [one for one in parsed if one is not None]
