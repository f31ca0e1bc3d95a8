"""The wrong-key throttle the console's login and the signing API share: a clock passed in,
a lockout after too many failures in a window, other addresses untouched, and a table
that stays bounded however many addresses try."""

from __future__ import annotations

import pytest

from sidecar.runtime.throttle import Throttle, ThrottlePolicy, client_key

POLICY = ThrottlePolicy(failures=3, window=60.0, lockout=120.0)


def fail(throttle: Throttle, address: str, times: int, now: float) -> None:
    for _ in range(times):
        throttle.failed(address, now)


def test_an_address_is_refused_for_the_lockout_after_its_failures() -> None:
    throttle = Throttle(POLICY)
    fail(throttle, "192.0.2.1", 2, now=1000.0)
    assert throttle.retry_after("192.0.2.1", 1000.0) == 0.0
    assert throttle.failed("192.0.2.1", 1001.0)  # the third: locked from now on
    assert throttle.retry_after("192.0.2.1", 1001.0) == 120.0
    assert throttle.retry_after("192.0.2.1", 1100.0) == 21.0  # counts down, not extended
    assert throttle.retry_after("192.0.2.1", 1121.0) == 0.0
    assert not throttle.failed("192.0.2.1", 1121.0)  # a fresh budget after the lockout


def test_only_the_failing_address_is_refused() -> None:
    throttle = Throttle(POLICY)
    fail(throttle, "192.0.2.1", 3, now=0.0)
    assert throttle.retry_after("192.0.2.1", 1.0) > 0
    assert throttle.retry_after("192.0.2.2", 1.0) == 0.0


def test_failures_further_apart_than_the_window_never_lock() -> None:
    throttle = Throttle(POLICY)
    for minute in range(20):
        assert not throttle.failed("192.0.2.1", minute * 61.0)
        assert throttle.retry_after("192.0.2.1", minute * 61.0) == 0.0


def test_the_table_stays_bounded_however_many_addresses_try() -> None:
    throttle = Throttle(POLICY, max_addresses=100)
    for n in range(10_000):
        throttle.failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", float(n))
        assert len(throttle) <= 100
    # The most recent failures are the ones kept.
    fail(throttle, "10.0.39.15", 2, now=10_000.0)  # address 9999, its third failure in all
    assert throttle.retry_after("10.0.39.15", 10_000.0) == 120.0


def test_an_address_whose_lockout_ended_leaves_the_table() -> None:
    throttle = Throttle(POLICY)
    fail(throttle, "192.0.2.1", 3, now=0.0)
    assert len(throttle) == 1
    assert throttle.retry_after("192.0.2.1", 500.0) == 0.0
    assert len(throttle) == 0


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client on a dual-stack socket
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # an IPv6 client by its /64
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, ""),  # no peer address (a Unix socket): one shared budget, never none
        ("not an address", ""),
    ],
)
def test_client_key_groups_an_ipv6_client_by_its_64(remote: str | None, key: str) -> None:
    assert client_key(remote) == key


@pytest.mark.parametrize(
    "policy",
    [
        {"failures": 0, "window": 1.0, "lockout": 1.0},
        {"failures": 1, "window": 0.0, "lockout": 1.0},
        {"failures": 1, "window": 1.0, "lockout": 0.0},
    ],
)
def test_a_policy_that_would_never_or_always_refuse_is_an_error(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(**policy)  # type: ignore[arg-type]
