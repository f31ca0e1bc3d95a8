"""The console's own host names: its listen address's literal, the loopback names for a
loopback or wildcard listen, the address a connection arrived at for a wildcard listen;
never another site's name (DNS rebinding)."""

from __future__ import annotations

import pytest

from sidecar.policy.settings import Address
from sidecar.runtime.console.hosts import ConsoleHosts

LOOPBACK = ConsoleHosts(Address("127.0.0.1", 9102))


@pytest.mark.parametrize(
    "host", ["127.0.0.1:9102", "localhost:9102", "LocalHost:9102", "[::1]:9102"]
)
def test_a_loopback_console_answers_its_loopback_names(host: str) -> None:
    assert LOOPBACK.accepts(host, "127.0.0.1")


@pytest.mark.parametrize(
    "host",
    [None, "", "attacker.example", "attacker.example:9102", "127.0.0.1.attacker.example:9102",
     "localhost.:9102", "127.0.0.1", "127.0.0.1:9103", "127.0.0.1:9102 ", "localhost:09102",
     "127.1:9102", "[::1]", "::1:9102"],
)  # fmt: skip
def test_a_loopback_console_refuses_every_other_name(host: str | None) -> None:
    assert not LOOPBACK.accepts(host, "127.0.0.1")


def test_an_ipv6_loopback_console_answers_its_literal_and_localhost() -> None:
    hosts = ConsoleHosts(Address("::1", 9102))
    assert hosts.accepts("[::1]:9102", "::1") and hosts.accepts("localhost:9102", "::1")
    assert not hosts.accepts("[::2]:9102", "::1")


def test_a_console_on_one_address_answers_that_literal_only() -> None:
    hosts = ConsoleHosts(Address("10.0.0.5", 9102))
    assert hosts.accepts("10.0.0.5:9102", "10.0.0.5")
    assert not hosts.accepts("localhost:9102", "10.0.0.5")
    assert not hosts.accepts("console.example.com:9102", "10.0.0.5")


def test_a_console_listening_by_name_answers_that_name() -> None:
    hosts = ConsoleHosts(Address("Console.Internal", 9102))
    assert hosts.accepts("console.internal:9102", "10.0.0.5")
    assert not hosts.accepts("10.0.0.5:9102", "10.0.0.5")


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_console_answers_the_address_a_connection_arrived_at(wildcard: str) -> None:
    hosts = ConsoleHosts(Address(wildcard, 9102))
    assert hosts.accepts("localhost:9102", "127.0.0.1")
    assert hosts.accepts("10.0.0.5:9102", "10.0.0.5")
    assert hosts.accepts("10.0.0.5:9102", "::ffff:10.0.0.5")  # IPv4 on a dual-stack socket
    assert hosts.accepts("[2001:db8::5]:9102", "2001:db8::5")
    assert not hosts.accepts("10.0.0.6:9102", "10.0.0.5")
    assert not hosts.accepts("10.0.0.5:9102", None)
    assert not hosts.accepts("attacker.example:9102", "10.0.0.5")


def test_at_port_80_the_bare_name_is_answered_too() -> None:
    hosts = ConsoleHosts(Address("127.0.0.1", 80))
    assert hosts.accepts("localhost", "127.0.0.1") and hosts.accepts("127.0.0.1:80", "127.0.0.1")
    assert not hosts.accepts("attacker.example", "127.0.0.1")


def test_configured_names_are_answered_at_any_port_in_one_spelling() -> None:
    hosts = ConsoleHosts(Address("127.0.0.1", 9102), frozenset({"console.example.com"}))
    for host in ("console.example.com", "Console.Example.COM:443", "console.example.com.:8443"):
        assert hosts.accepts(host, "127.0.0.1"), host
    for host in ("attacker.example", "console.example.com.attacker.example", "console.example"):
        assert not hosts.accepts(host, "127.0.0.1"), host
    assert hosts.accepts("localhost:9102", "127.0.0.1")  # its own names still


def test_no_configured_name_means_none_beyond_its_own() -> None:
    assert not LOOPBACK.accepts("console.example.com", "127.0.0.1")
