"""The scheme registry: every signing scheme the sidecar knows, by its config name.

A scheme turns a source's key material into a ``SourceVerifier`` with two verbs:
``verify`` (a canonical URI → a ``Verdict``) and ``sign`` (a URL → the signed URL).
Schemes are pure: the clock, the client address and the keys are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from sidecar.canonical import CanonicalURI
from sidecar.verdict import Verdict


class SchemeError(ValueError):
    """A problem with a source's keys or options, or with a URL asked to be signed."""


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """One configured key, its bytes already read by the config loader."""

    id: str
    secret: bytes | None = field(default=None, repr=False)
    public_key_pem: bytes | None = field(default=None, repr=False)
    private_key_pem: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SchemeOptions:
    """Per-source settings a scheme may need beyond its keys."""

    public_origin: str | None = None


class VerifyContext(NamedTuple):
    now: float
    clock_skew: int = 0
    client_ip: str | None = None


class SourceVerifier(Protocol):
    @property
    def key_ids(self) -> tuple[str, ...]: ...

    def verify(self, uri: CanonicalURI, context: VerifyContext) -> Verdict: ...

    def sign(
        self,
        url: str,
        *,
        expires: int | None = None,
        not_before: int | None = None,
        client_ip: str | None = None,
        resource: str | None = None,
    ) -> str:
        """The signed URL; options a scheme cannot express raise ``SchemeError``."""
        ...


class Scheme(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def default_deny_status(self) -> int: ...

    @property
    def key_fields(self) -> frozenset[str]:
        """Which key fields this scheme reads: ``secret``, ``public_key``."""
        ...

    def build(self, keys: Sequence[KeyMaterial], options: SchemeOptions) -> SourceVerifier:
        """Raise ``SchemeError`` listing every problem with the keys or options."""
        ...


_REGISTRY: dict[str, Scheme] = {}


def register(scheme: Scheme) -> Scheme:
    _REGISTRY[scheme.name] = scheme
    return scheme


def get(name: str) -> Scheme | None:
    return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def split_url(url: str) -> tuple[str, str]:
    """Split a URL to sign into its origin (``https://host``, possibly empty) and request URI."""
    if url.startswith("/"):
        return "", url
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise SchemeError("URL must be absolute (http/https) or start with '/'")
    authority, slash, path = rest.partition("/")
    if not authority or not slash:
        raise SchemeError("URL has no host or no path")
    return f"{scheme}://{authority}", "/" + path


def _load_builtin_schemes() -> None:
    from sidecar.schemes import cloudfront, md5_token  # noqa: F401, PLC0415  (register themselves)


_load_builtin_schemes()
