"""Signed image URL verification for nginx ``auth_request``: the public face.

sign_url(load_config("sidecar.toml"), "books", "/books/a.jpg", now=time.time())

What is re-exported here is what applications call; everything else is internal.
"""

__version__ = "0.1.0"  # the one version: the package metadata (pyproject.toml) reads it here

from sidecar.client import SigningClient as SigningClient
from sidecar.config import load as load_config
from sidecar.core.verdict import Reason as Reason
from sidecar.core.verdict import Verdict as Verdict
from sidecar.errors import ConfigError as ConfigError
from sidecar.errors import SchemeError as SchemeError
from sidecar.errors import SidecarError as SidecarError
from sidecar.errors import SigningApiError as SigningApiError
from sidecar.errors import SigningError as SigningError
from sidecar.errors import UrlError as UrlError
from sidecar.policy.settings import Settings as Settings
from sidecar.policy.signing import sign as sign
from sidecar.policy.signing import sign_url as sign_url
from sidecar.schemes.base import Grant as Grant
from sidecar.schemes.base import Signed as Signed

__all__ = [
    "ConfigError", "Grant", "Reason", "SchemeError", "Settings", "SidecarError", "Signed",
    "SigningApiError", "SigningClient", "SigningError", "UrlError", "Verdict", "load_config",
    "sign", "sign_url",
]  # fmt: skip
