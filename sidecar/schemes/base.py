"""The scheme interface: what a scheme declares, what it is shown, what it answers.

A scheme is one pure module holding two classes (docs/architecture.md, "The scheme
interface"):

- a registry entry, a subclass of ``Scheme``: its declarations are class constants (only
  those that differ from the defaults below), its settings are one frozen dataclass whose
  fields each hold their one default (``setting(...)`` adds a check or marks a secret), and
  ``build`` turns one source's keys and settings (a ``SourceSpec``) into
- a built source (``SourceScheme``) with the two verbs:

  - ``verify(VerifyRequest) -> Verdict``: shown the canonical URI, the cookies the proxy
    passed, the client address, the routing host and the clock; a decode error is a
    ``Verdict``, never an exception.
  - ``sign(SignRequest) -> Signed``: one ``Grant`` (expiry, not-before, client address,
    resource or prefix scope) and the signing time → the signed URL and, for a cookie
    grant, its cookies.

The source's ``path_prefix`` is given at build time (``SourceSpec``): thumbor's signature,
for one, is the first path segment after it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from sidecar.core.canonical import CanonicalURI
from sidecar.core.urls import Url
from sidecar.core.verdict import Verdict
from sidecar.errors import SchemeError
from sidecar.schemes.settings import NoSettings, Setting, declared_settings

# Which fields of ``[[sources.keys]]`` a scheme reads. A scheme reading PUBLIC_KEY also
# accepts an optional ``private_key_file`` (only where this process signs).
SECRET = "secret"  # noqa: S105  (a field name, not a secret)
PUBLIC_KEY = "public_key"
# A second secret read beside SECRET, for formats whose keys come in pairs (imgproxy's salt).
SALT = "salt"
# Keys pinned to a JWS algorithm (``algorithm``), a secret or a public key each, and also
# read from a source's ``jwks_file`` (the ``jwt`` scheme).
JWK = "jwk"


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """One configured key, its bytes already read by the config loader."""

    id: str
    secret: bytes | None = field(default=None, repr=False)
    public_key_pem: bytes | None = field(default=None, repr=False)
    private_key_pem: bytes | None = field(default=None, repr=False)
    salt: bytes | None = field(default=None, repr=False)
    algorithm: str | None = None  # the one algorithm the key verifies (JWK keys)


S = TypeVar("S")


class SourceSpec(Generic[S]):
    """Everything a scheme is built from, for one source: its name, ``path_prefix``, keys
    and settings object. (A plain class: a generic dataclass does not compile with mypyc.)"""

    def __init__(
        self, name: str, path_prefix: str, keys: tuple[KeyMaterial, ...], settings: S
    ) -> None:
        self.name = name
        self.path_prefix = path_prefix
        self.keys = keys
        self.settings = settings

    def __repr__(self) -> str:
        return f"SourceSpec({self.name!r}, {self.path_prefix!r}, {self.keys!r}, {self.settings!r})"


# --- what a built source is shown and answers -------------------------------------------------


class VerifyRequest(NamedTuple):
    """What a scheme is shown of one request (built per request: keep it a tuple)."""

    uri: CanonicalURI
    now: float
    clock_skew: int = 0
    client_ip: str | None = None
    cookies: str | None = None  # the Cookie header the proxy passed, as sent
    host: str | None = None  # the host the proxy routed on, in its one spelling
    country: str | None = None  # X-Country-Code as the proxy set it (tokens naming countries)


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

    def refuse_unexpressible(self, scheme: str, supported: frozenset[str] = frozenset()) -> None:
        """Raise ``SchemeError`` naming every part of this grant (beyond its expiry) that
        ``scheme``'s signatures cannot carry."""
        asked = {
            "not_before": self.not_before is not None,
            "client_ip": self.client_ip is not None,
            "resource": self.resource is not None,
            "prefix": self.prefix is not None,
            "cookies": self.cookies,
        }
        refused = sorted(name for name, wanted in asked.items() if wanted and name not in supported)
        if refused:
            raise SchemeError(f"{scheme} signatures cannot carry {', '.join(refused)}")


class SignRequest(NamedTuple):
    """A URL to sign, already parsed once (``url``) and checked canonical (``uri``), and
    ``now``: the unix seconds its expiry was counted from (None when the caller passed no
    clock). Most schemes write only the expiry; a format that writes when it was signed
    (SigV4's ``X-Amz-Date``) reads ``now``."""

    url: Url
    uri: CanonicalURI
    grant: Grant
    now: int | None = None


class Signed(NamedTuple):
    """The signed URL, and the ``Set-Cookie`` values of a cookie grant."""

    url: str
    cookies: tuple[str, ...] = ()


class KeyKind(StrEnum):
    SHARED_SECRET = "shared secret"  # noqa: S105  (a kind of key, not a secret)
    PUBLIC_KEY = "public key"


class SourceKey(NamedTuple):
    """One key of a built source as an operator may be shown it ("Show Token"): a shared
    secret as configured, or a public key as DER SubjectPublicKeyInfo."""

    id: str
    kind: KeyKind
    material: bytes


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

    def key_material(self) -> tuple[SourceKey, ...]:
        """Every key, newest first, with the material an operator may be shown."""
        ...


# --- the registry entry ---------------------------------------------------------------------


class Scheme(Generic[S]):
    """A registry entry: declarations as class constants, then ``build``.

    A subclass sets ``name`` and ``settings_type`` (when it has settings), overrides the
    other constants only where they differ, and implements ``build`` (and ``new_key`` for
    keys other than a random token).
    """

    name: ClassVar[str]
    settings_type: ClassVar[type[Any]] = NoSettings
    default_deny_status: ClassVar[int] = 403
    # Which ``[[sources.keys]]`` fields the scheme reads (SECRET or PUBLIC_KEY).
    key_fields: ClassVar[frozenset[str]] = frozenset({SECRET})
    # What ``new_key`` can make, the default first.
    key_types: ClassVar[tuple[str, ...]] = ("token",)
    # True when the URL names its key (a Key-Pair-Id): such an id must name one key of one
    # source across the whole config.
    key_ids_in_url: ClassVar[bool] = False
    # False when the format has no expiry (thumbor): a source of it may not set
    # ``default_ttl`` or ``max_ttl``, which would refuse every URL it signs or serves.
    expiring: ClassVar[bool] = True

    @property
    def settings(self) -> tuple[Setting, ...]:
        return declared_settings(self.settings_type)

    def settings_from(self, values: Mapping[str, Any]) -> tuple[S, list[tuple[str, str]]]:
        """The settings object from the values a source gives, and every problem with them
        as ``(setting, what is wrong)``. A value left out, or one with a problem, takes
        its one default, so ``build`` still runs and reports its own problems too. A
        problem never echoes the value (some settings are secrets)."""
        problems, given = [], {}
        for declared in self.settings:
            value = values.get(declared.name)
            problem = None
            if value is None:
                if declared.required:
                    problem = f"required by scheme {self.name}"
            elif declared.check is not None:
                problem = declared.check(value)
            if problem is not None:
                problems.append((declared.name, problem))
            elif value is not None:
                given[declared.name] = value
        built: S = self.settings_type(**given)
        return built, problems

    def fetches_keys(self, settings: S) -> bool:
        """Whether a source of these settings gets keys while it runs (a JWKS URL), so it
        may start without any configured key."""
        return False

    def settings_warnings(self, settings: S) -> list[tuple[str, str]]:
        """Weak but working settings, as ``(setting, why it is weak)``: ``check-config``
        prints them and ``serve`` logs them at start. None unless a scheme says so."""
        return []

    def build(self, spec: SourceSpec[S]) -> SourceScheme:
        """Raise ``SchemeError`` listing every problem with the keys or settings."""
        raise NotImplementedError

    def new_key(self, key_type: str) -> NewKey:
        """A strong random shared secret (256 bits, URL-safe text)."""
        return NewKey(secret=secrets.token_urlsafe(32))
