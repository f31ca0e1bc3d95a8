"""The scheme interface: what a scheme is shown, what it answers, what it declares.

A scheme is one pure module. It declares its settings (keys of the ``[[sources]]`` table),
the key fields it reads and the key types it can generate; ``build`` turns one source's
keys and settings into a ``SourceScheme`` with the two verbs:

- ``verify(VerifyRequest) -> Verdict``: shown the canonical URI, the cookies the proxy
  passed, the client address, the routing host and the clock; a decode error is a
  ``Verdict``, never an exception.
- ``sign(SignRequest) -> Signed``: one ``Grant`` (expiry, not-before, client address,
  resource or prefix scope) → the signed URL and, for a cookie grant, its cookies.

The source's ``path_prefix`` is given at build time (``SourceSpec``): thumbor's signature,
for one, is the first path segment after it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from sidecar.core import canonical
from sidecar.core.canonical import CanonicalURI
from sidecar.core.urls import Url, parse_url
from sidecar.core.verdict import Verdict
from sidecar.errors import SchemeError, UrlError

# Which fields of ``[[sources.keys]]`` a scheme reads. A scheme reading PUBLIC_KEY also
# accepts an optional ``private_key_file`` (only where this process signs).
SECRET = "secret"  # noqa: S105  (a field name, not a secret)
PUBLIC_KEY = "public_key"


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """One configured key, its bytes already read by the config loader."""

    id: str
    secret: bytes | None = field(default=None, repr=False)
    public_key_pem: bytes | None = field(default=None, repr=False)
    private_key_pem: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Setting:
    """A scheme-specific key of the ``[[sources]]`` table.

    ``check`` returns what is wrong with a value of the right type (None when it is
    fine); the config loader reports it with the file, source and field. A ``secret``
    setting (a string) may also be given as ``<name>_file`` (a mounted file, read first
    in the docs) or ``<name>_env``, like a key's secret, and is never shown.
    """

    name: str
    kind: type[str] | type[int] | type[bool]
    default: Any = None
    check: Callable[[Any], str | None] | None = None
    secret: bool = False


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Everything a scheme is built from, for one source."""

    name: str
    path_prefix: str
    keys: tuple[KeyMaterial, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)


class VerifyRequest(NamedTuple):
    """What a scheme is shown of one request (built per request: keep it a tuple)."""

    uri: CanonicalURI
    now: float
    clock_skew: int = 0
    client_ip: str | None = None
    cookies: str | None = None  # the Cookie header the proxy passed, as sent
    host: str | None = None  # the host the proxy routed on, in its one spelling


@dataclass(frozen=True, slots=True)
class Grant:
    """What one signature grants. ``resource`` is a pattern the grant covers instead of
    the URL itself (CloudFront ``Resource`` wildcards); ``prefix`` scopes a grant to a
    path prefix (a cookie grant, or Google's ``URLPrefix`` URLs);
    ``cookies`` asks for the grant as cookies rather than in the URL."""

    expires: int | None = None
    not_before: int | None = None
    client_ip: str | None = None
    resource: str | None = None
    prefix: str | None = None
    cookies: bool = False


class SignRequest(NamedTuple):
    """A URL to sign, already parsed once (``url``) and checked canonical (``uri``)."""

    url: Url
    uri: CanonicalURI
    grant: Grant


class Signed(NamedTuple):
    """The signed URL, and the ``Set-Cookie`` values of a cookie grant."""

    url: str
    cookies: tuple[str, ...] = ()


class NewKey(NamedTuple):
    """A generated key: a shared secret (text), or a PEM key pair."""

    secret: str | None = None
    private_pem: bytes | None = None
    public_pem: bytes | None = None


class SourceScheme(Protocol):
    """A scheme built for one source: its keys, newest first, and the two verbs."""

    @property
    def key_ids(self) -> tuple[str, ...]: ...

    @property
    def expiry_required(self) -> bool:
        """Whether every URL (or cookie) it allows carries an expiry: ``check-config``
        warns about a source that would allow one that never expires."""
        ...

    def verify(self, request: VerifyRequest) -> Verdict: ...

    def sign(self, request: SignRequest) -> Signed:
        """The signed URL; a grant the scheme cannot express raises ``SchemeError``."""
        ...

    def shared_secrets(self) -> tuple[tuple[str, bytes], ...]:
        """``(key id, secret)`` for "Show Token"; empty for public-key schemes."""
        ...

    def public_keys(self) -> tuple[tuple[str, bytes], ...]:
        """``(key id, public key as DER SubjectPublicKeyInfo)`` for "Show public key";
        empty for shared-secret schemes."""
        ...


class Scheme(Protocol):
    """A registry entry: the declarations, and ``build``."""

    @property
    def name(self) -> str: ...

    @property
    def default_deny_status(self) -> int: ...

    @property
    def key_fields(self) -> frozenset[str]: ...

    @property
    def settings(self) -> tuple[Setting, ...]: ...

    @property
    def key_types(self) -> tuple[str, ...]:
        """What ``new_key`` can make, the default first."""
        ...

    @property
    def key_ids_in_url(self) -> bool:
        """True when the URL names its key (a Key-Pair-Id): such an id must name one key
        of one source across the whole config."""
        ...

    @property
    def expiring(self) -> bool:
        """False when the format has no expiry (thumbor): a source of it may not set
        ``default_ttl`` or ``max_ttl``, which would refuse every URL it signs or serves."""
        ...

    def build(self, spec: SourceSpec) -> SourceScheme:
        """Raise ``SchemeError`` listing every problem with the keys or settings."""
        ...

    def new_key(self, key_type: str) -> NewKey: ...


def sign_request(url: str, grant: Grant) -> SignRequest:
    """Parse a URL to sign once, for any scheme; ``SchemeError`` when it cannot be signed."""
    try:
        parsed = parse_url(url)
    except UrlError as error:
        raise SchemeError(str(error)) from None
    uri = canonical.parse(parsed.uri)
    if uri is None:
        raise SchemeError("URL is not canonical")
    return SignRequest(parsed, uri, grant)


def new_token() -> NewKey:
    """A strong random shared secret (256 bits, URL-safe text)."""
    return NewKey(secret=secrets.token_urlsafe(32))


def refuse_unexpressible(scheme: str, grant: Grant, *, supported: frozenset[str]) -> None:
    """Raise ``SchemeError`` naming every part of ``grant`` a scheme cannot carry."""
    asked = {
        "not_before": grant.not_before is not None,
        "client_ip": grant.client_ip is not None,
        "resource": grant.resource is not None,
        "prefix": grant.prefix is not None,
        "cookies": grant.cookies,
    }
    refused = sorted(name for name, wanted in asked.items() if wanted and name not in supported)
    if refused:
        raise SchemeError(f"{scheme} signatures cannot carry {', '.join(refused)}")
