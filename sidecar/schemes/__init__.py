"""The scheme registry: every signing scheme the sidecar knows, by its config name.

An explicit table: adding a scheme is one module (see ``sidecar.schemes.base`` for the
interface) and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sidecar.schemes import (
    akamai,
    bunny,
    cloudflare,
    cloudfront,
    gcdn,
    hmac_sha256,
    imgix,
    imgproxy,
    jwt,
    md5_token,
    nginx_secure_link,
    s3_sigv4,
    thumbor,
)
from sidecar.schemes.base import Scheme

_SCHEMES: tuple[Scheme[Any], ...] = (
    md5_token.SCHEME,
    cloudfront.SCHEME,
    imgix.SCHEME,
    hmac_sha256.SCHEME,
    gcdn.SCHEME,
    nginx_secure_link.SCHEME,
    thumbor.SCHEME,
    akamai.SCHEME,
    imgproxy.SCHEME,
    jwt.SCHEME,
    cloudflare.SCHEME,
    s3_sigv4.SCHEME,
    bunny.SCHEME,
)
REGISTRY: Mapping[str, Scheme[Any]] = MappingProxyType({s.name: s for s in _SCHEMES})


def get(name: str) -> Scheme[Any] | None:
    return REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(sorted(REGISTRY))
