"""Console sessions: signed, expiring, bound to the admin key that logged in; CSRF tokens
bound to the session; API keys matched against their configured SHA-256."""

from __future__ import annotations

import hashlib

from sidecar.runtime.console.session import (
    SESSION_SECRET_ENV,
    Sessions,
    key_label,
    match_api_key,
    session_secret,
)

SECRET = bytes(range(32))
NOW = 1_800_000_000.0
KEYS = (hashlib.sha256(b"first-admin-key").digest(), hashlib.sha256(b"second-admin-key").digest())


def test_a_session_names_the_admin_key_that_logged_in() -> None:
    sessions = Sessions(SECRET)
    assert sessions.check(sessions.issue(1, KEYS[1], NOW), KEYS, NOW + 1) == 1
    assert sessions.check(sessions.issue(0, KEYS[0], NOW), KEYS, NOW + 1) == 0


def test_a_session_expires_after_its_lifetime() -> None:
    sessions = Sessions(SECRET, lifetime=600)
    cookie = sessions.issue(0, KEYS[0], NOW)
    assert sessions.check(cookie, KEYS, NOW + 599) == 0
    assert sessions.check(cookie, KEYS, NOW + 600) is None


def test_any_worker_with_the_shared_secret_accepts_a_session_and_no_other_does() -> None:
    cookie = Sessions(SECRET).issue(0, KEYS[0], NOW)
    assert Sessions(SECRET).check(cookie, KEYS, NOW) == 0
    assert Sessions(bytes(32)).check(cookie, KEYS, NOW) is None


def test_removing_the_admin_key_from_the_config_ends_its_sessions() -> None:
    sessions = Sessions(SECRET)
    cookie = sessions.issue(1, KEYS[1], NOW)
    assert sessions.check(cookie, KEYS[:1], NOW) is None  # index gone
    replaced = (KEYS[0], hashlib.sha256(b"a-new-key").digest())
    assert sessions.check(cookie, replaced, NOW) is None  # same index, another key


def test_a_tampered_cookie_is_refused() -> None:
    sessions = Sessions(SECRET)
    cookie = sessions.issue(0, KEYS[0], NOW)
    expires, index, nonce, mac = cookie.split(".")
    later = f"{int(expires) + 60}.{index}.{nonce}.{mac}"
    other_key = f"{expires}.1.{nonce}.{mac}"
    flipped = f"{expires}.{index}.{nonce}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"
    for forged in (later, other_key, flipped, "", "garbage", cookie + ".x", cookie[:-1]):
        assert sessions.check(forged, KEYS, NOW) is None, forged


def test_an_expiry_beyond_the_lifetime_is_refused_even_when_signed() -> None:
    # A cookie signed by a process configured with a longer lifetime is not honoured.
    long_lived = Sessions(SECRET, lifetime=10**6).issue(0, KEYS[0], NOW)
    assert Sessions(SECRET, lifetime=600).check(long_lived, KEYS, NOW) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    sessions = Sessions(SECRET)
    one, two = sessions.issue(0, KEYS[0], NOW), sessions.issue(0, KEYS[0], NOW)
    assert one != two  # a nonce per login
    token = sessions.csrf_token(one)
    assert sessions.check_csrf(one, token)
    assert not sessions.check_csrf(two, token)
    assert not sessions.check_csrf(one, None)
    assert not sessions.check_csrf(one, "")
    assert not sessions.check_csrf(one, token[:-1])
    assert not Sessions(bytes(32)).check_csrf(one, token)


def test_api_keys_match_their_configured_hash_only() -> None:
    assert match_api_key("first-admin-key", KEYS) == 0
    assert match_api_key("second-admin-key", KEYS) == 1
    assert match_api_key("first-admin-key ", KEYS) is None
    assert match_api_key("", KEYS) is None
    assert match_api_key("first-admin-key", ()) is None
    assert match_api_key("\udcff", KEYS) is None  # undecodable form input does not raise


def test_the_session_secret_comes_from_the_supervisor_or_is_fresh() -> None:
    shared = "ab" * 32
    assert session_secret({SESSION_SECRET_ENV: shared}) == bytes.fromhex(shared)
    fresh = session_secret({})
    assert len(fresh) == 32 and fresh != session_secret({})
    # A malformed (short) value is never used as the key.
    assert session_secret({SESSION_SECRET_ENV: "ab"}) not in (b"\xab", bytes.fromhex("ab"))
    assert len(session_secret({SESSION_SECRET_ENV: "ab"})) == 32


def test_logs_name_an_admin_key_by_the_start_of_its_configured_hash() -> None:
    assert key_label(KEYS[0]) == KEYS[0].hex()[:12]
