"""Routing on a host only where the config names it (docs/security.md, "Hosts").

nginx's default server answers every name no other server claims, and its ``$host`` is
then the client's own Host. So a host no source names says nothing about whose files
nginx is serving: under a prefix some source holds for its hosts, such a request is denied
(``no_source``) rather than handed to a host-less source with weaker rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from tests.support.configs import md5_source, sidecar_config

NOW = 1_900_000_000
TENANT = "tenant.example.com"
OTHER_TENANT = "other.example.com"

# One operator, one nginx server block (its default server): a tenant's subtree is signed
# on its host, and everything else is public (a host-less source with signing off).
CONFIG = sidecar_config(
    md5_source("tenant", "/tenant/", {"t1": "tenant-token"}, hosts=[TENANT]),
    md5_source("other", "/other/", {"o1": "other-token"}, hosts=[OTHER_TENANT]),
    md5_source("root-tenant", "/", {"r1": "root-token"}, hosts=["root.example.com"]),
    md5_source("public", "/public/", mode="off"),
    md5_source("fallback", "/", mode="off"),
)


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path: Path = tmp_path_factory.mktemp("routing") / "sidecar.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return Decider(config.load(path, environ={}))


def routed(decider: Decider, host: str | None, uri: str) -> tuple[int, Reason, str | None]:
    decision = decider.decide(RequestFacts(uri, "GET", host, "198.51.100.7"), NOW)
    return decision.status, decision.reason, decision.source.name if decision.source else None


@pytest.mark.parametrize(
    "host",
    ["anything.else", "127.0.0.1", "[2001:db8::1]", "tenant.example.com.evil", None],
    ids=["unknown-name", "ipv4-literal", "ipv6-literal", "suffix", "no-host"],
)
def test_an_unnamed_host_never_walks_past_a_host_bound_prefix(
    decider: Decider, host: str | None
) -> None:
    # Before: the host-less "/" (signing off) allowed the tenant's file unsigned.
    assert routed(decider, host, "/tenant/a.jpg") == (403, Reason.NO_SOURCE, None)
    # "/" itself is held for root.example.com: so every path is, for unnamed hosts.
    assert routed(decider, host, "/elsewhere/a.jpg") == (403, Reason.NO_SOURCE, None)


def test_a_prefix_no_host_holds_still_routes_any_host(decider: Decider) -> None:
    # /public/ is longer than every host-bound prefix above it ("/"): whatever server
    # nginx chose, this path belongs to "public" for every named host too.
    assert routed(decider, "anything.else", "/public/a.jpg") == (
        200,
        Reason.UNSIGNED_ALLOWED,
        "public",
    )


def test_named_hosts_route_as_before(decider: Decider) -> None:
    assert routed(decider, TENANT, "/tenant/a.jpg") == (401, Reason.MISSING, "tenant")
    # A host the config names for another source: nginx chose that host's own server,
    # so the host-less source rules the path there.
    assert routed(decider, OTHER_TENANT, "/tenant/a.jpg") == (
        200,
        Reason.UNSIGNED_ALLOWED,
        "fallback",
    )
    assert routed(decider, "root.example.com", "/tenant/a.jpg") == (
        401,
        Reason.MISSING,
        "root-tenant",
    )


def test_a_config_naming_no_host_routes_every_host(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(md5_source("fallback", "/", mode="off")), encoding="utf-8")
    decider = Decider(config.load(path, environ={}))
    for host in ("anything.else", "127.0.0.1", None):
        assert routed(decider, host, "/tenant/a.jpg") == (
            200,
            Reason.UNSIGNED_ALLOWED,
            "fallback",
        )
