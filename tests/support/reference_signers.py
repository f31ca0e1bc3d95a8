"""Tokens and MACs made by implementations other than the sidecar's: the reference signer
``akamai-edgeauth`` (in a child process) and openssl's HMAC-SHA1. A scheme that agrees with
them agrees with what operators' signers write.

``akamai.edgeauth`` sets ``os.environ["TZ"] = "GMT"`` when imported: it is only ever
imported in a child process, so it cannot change the test process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

_LIBRARY_OPTIONS = ("algorithm", "salt", "ip", "payload", "session_id", "start_time",
                    "field_delimiter", "acl_delimiter", "escape_early", "token_name")  # fmt: skip

# Runs in a child process: reads a JSON list of token specs, prints the library's tokens.
_GENERATOR = f"""
import json, sys
from akamai.edgeauth import EdgeAuth
tokens = []
for spec in json.load(sys.stdin):
    options = {{name: spec[name] for name in {_LIBRARY_OPTIONS!r} if name in spec}}
    auth = EdgeAuth(key=spec["key"], end_time=spec["expires"], **options)
    if "acl" in spec:
        tokens.append(auth.generate_acl_token(spec["acl"]))
    else:
        tokens.append(auth.generate_url_token(spec["url"]))
json.dump(tokens, sys.stdout)
"""


def library_tokens(specs: list[dict[str, Any]]) -> list[str]:
    """The tokens ``akamai-edgeauth`` makes for ``specs`` (keys: ``key``, ``expires``,
    ``acl`` (a list) or ``url``, and EdgeAuth's own option names), in a child process."""
    result = subprocess.run(
        [sys.executable, "-c", _GENERATOR],
        input=json.dumps(specs),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tokens: list[str] = json.loads(result.stdout)
    assert len(tokens) == len(specs)
    return tokens


def openssl_hmac_sha1(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA1 of ``data`` under ``key``, computed by the openssl command."""
    binary = shutil.which("openssl")
    assert binary is not None, "openssl is required"
    result = subprocess.run(
        [binary, "dgst", "-sha1", "-mac", "HMAC", "-macopt", f"hexkey:{key.hex()}", "-binary"],
        input=data,
        capture_output=True,
        timeout=30,
        check=True,
    )
    return result.stdout
