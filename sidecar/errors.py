"""One exception tree: everything the package raises on purpose derives from ``SidecarError``.

A message is safe to show to whoever asked (it names a field, a place or a rule, never a
secret or an expected signature); the detail an operator needs goes with it, as httpx's
``InvalidURL`` names the bad character and where it is.
"""

from __future__ import annotations


class SidecarError(Exception):
    """Base class of every deliberate refusal of the package."""


class UsageError(SidecarError):
    """A command line that cannot be carried out as given: an option out of range or
    without the option it needs, a name that names nothing, a file that must not be
    overwritten. The command line exits 2, as argparse does for what it refuses itself."""


class ConfigError(SidecarError):
    """A configuration that must not be served; ``problems`` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class UrlError(SidecarError, ValueError):
    """A URL the one parser refuses (no path, userinfo, a fragment, a bad host or port)."""


class SchemeError(SidecarError, ValueError):
    """A source's keys or settings a scheme cannot use, or a grant it cannot express."""


class SigningError(SidecarError, ValueError):
    """Why a URL cannot be signed for a source; safe to show to the caller."""


class SigningApiError(SidecarError):
    """The signing API refused a call: ``status`` is the HTTP status, the message its error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class StoreError(SidecarError):
    """The state store (``[state]``) did not answer, or answered with something that is not
    ours: the message names the store and the operation, never a grant or a password."""


class RevokeError(SidecarError, ValueError):
    """Why a revocation cannot be made as asked (no grant that verifies, a key or prefix
    the source does not hold); safe to show to the caller."""
