"""Logged-out sessions, in a folder every console process shares: a logout ends the
session in every worker, not only in the cookie jar of the browser that clicked.

Sessions are signed, not stored (``session.py``), so a copied cookie stays valid until it
expires unless something remembers that it was logged out. With ``workers = N`` every
worker serves the console (the listener is shared with SO_REUSEPORT) and any of them may
receive the copy, so memory of one process is not enough: each logout is one empty file,
``<expires>.<nonce>``, in a folder the supervisor makes before it starts the workers and
names in their environment (a single process makes its own). Checking a session is one
``stat``; creating a file is atomic, so workers need no lock.

Bounded: a file is removed once its session would have expired anyway (every logout
sweeps the folder), so the folder holds at most the sessions logged out within one
session lifetime, each of which needed an admin key to log in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping

from aiohttp import web

REVOKED_DIR_ENV = "SIDECAR_CONSOLE_REVOKED_DIR"
_PREFIX = "signed-url-console-"


def new_folder() -> str:
    """A private folder (mode 0700) for the logged-out sessions of one run."""
    return tempfile.mkdtemp(prefix=_PREFIX)


class RevokedSessions:
    """The logged-out sessions of this run, by session id (``session.session_id``)."""

    def __init__(self, folder: str, *, owned: bool) -> None:
        self.folder = folder
        self._owned = owned  # made by this process, removed by it at the end

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> RevokedSessions:
        """The supervisor's folder, shared by every worker; else one of this process."""
        shared = environ.get(REVOKED_DIR_ENV, "")
        if shared and os.path.isdir(shared):
            return cls(shared, owned=False)
        return cls(new_folder(), owned=True)

    def revoke(self, session: str, now: float) -> None:
        """Remember ``session`` as logged out; OSError when it cannot be written."""
        os.makedirs(self.folder, mode=0o700, exist_ok=True)  # a temp cleaner may have struck
        descriptor = os.open(os.path.join(self.folder, session), os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(descriptor)
        self._sweep(now)

    def is_revoked(self, session: str) -> bool:
        """True when logged out, and when it cannot be told (fail closed)."""
        try:
            os.stat(os.path.join(self.folder, session))
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return True

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _sweep(self, now: float) -> None:
        """Forget the sessions that have expired by themselves."""
        with os.scandir(self.folder) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            expires = name.partition(".")[0]
            if expires.isdigit() and int(expires) <= now:
                with contextlib.suppress(FileNotFoundError):  # another worker swept it first
                    os.unlink(os.path.join(self.folder, name))


REVOKED = web.AppKey("console_revoked_sessions", RevokedSessions)
