"""Logged-out sessions, as files in a folder every worker shares: a revocation made by
one process is seen by another, expired ones are swept, an unreadable folder refuses
(fail closed), and only the folder a process made is removed by it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sidecar.runtime.console.revoked import REVOKED_DIR_ENV, RevokedSessions
from sidecar.runtime.console.session import Sessions, session_id

NOW = 1_800_000_000.0
KEY = bytes(32)


def a_session(now: float = NOW) -> str:
    session = session_id(Sessions(bytes(range(32))).issue(0, KEY, now))
    assert session is not None
    return session


def test_a_revocation_in_one_process_is_seen_by_another(tmp_path: Path) -> None:
    one = RevokedSessions.from_environment({REVOKED_DIR_ENV: str(tmp_path)})
    other = RevokedSessions.from_environment({REVOKED_DIR_ENV: str(tmp_path)})
    session, kept = a_session(), a_session()
    one.revoke(session, NOW)
    one.revoke(session, NOW)  # twice (two clicks) is once
    assert other.is_revoked(session) and not other.is_revoked(kept)


def test_sessions_that_expired_by_themselves_are_swept(tmp_path: Path) -> None:
    revoked = RevokedSessions(str(tmp_path), owned=False)
    old, recent = a_session(NOW - 3600), a_session()
    revoked.revoke(old, NOW - 3000)
    revoked.revoke(recent, NOW)  # sweeps the one whose expiry has passed
    assert sorted(os.listdir(tmp_path)) == [recent]


def test_a_folder_that_cannot_be_read_refuses_every_session(tmp_path: Path) -> None:
    revoked = RevokedSessions(str(tmp_path / "file"), owned=False)
    (tmp_path / "file").write_text("not a folder")
    assert revoked.is_revoked(a_session())  # NotADirectoryError: fail closed
    with pytest.raises(OSError):
        revoked.revoke(a_session(), NOW)


def test_a_process_removes_its_own_folder_and_never_a_shared_one(tmp_path: Path) -> None:
    shared = RevokedSessions.from_environment({REVOKED_DIR_ENV: str(tmp_path)})
    shared.close()
    assert tmp_path.is_dir()
    own = RevokedSessions.from_environment({})
    assert Path(own.folder).is_dir() and os.stat(own.folder).st_mode & 0o077 == 0
    own.close()
    assert not Path(own.folder).exists()


def test_a_session_id_is_the_expiry_and_nonce_of_a_session_cookie_only() -> None:
    cookie = Sessions(bytes(range(32))).issue(0, KEY, NOW)
    expires, _, nonce, _ = cookie.split(".")
    assert session_id(cookie) == f"{expires}.{nonce}"
    for bad in ("", "../../etc/passwd", cookie + "/x", "1.0.a.b"):
        assert session_id(bad) is None
