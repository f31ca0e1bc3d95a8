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
    cloudfront,
    gcdn,
    hmac_sha256,
    imgix,
    md5_token,
    nginx_secure_link,
    thumbor,
)
from sidecar.schemes.base import Scheme

REGISTRY: Mapping[str, Scheme[Any]] = MappingProxyType(
    {
        md5_token.SCHEME.name: md5_token.SCHEME,
        cloudfront.SCHEME.name: cloudfront.SCHEME,
        imgix.SCHEME.name: imgix.SCHEME,
        hmac_sha256.SCHEME.name: hmac_sha256.SCHEME,
        gcdn.SCHEME.name: gcdn.SCHEME,
        nginx_secure_link.SCHEME.name: nginx_secure_link.SCHEME,
        thumbor.SCHEME.name: thumbor.SCHEME,
        akamai.SCHEME.name: akamai.SCHEME,
    }
)


def get(name: str) -> Scheme[Any] | None:
    return REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(sorted(REGISTRY))
