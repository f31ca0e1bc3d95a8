"""Config files for the loader tests: a good config with a key from each secret source
(inline, a mounted file, the environment), a writer for one-off configs, and the md5-token
signature the loaded keys must verify."""

from __future__ import annotations

import hashlib
from pathlib import Path

SECRET = "wakanda123@"
FILE_SECRET = "from-a-mounted-file"
ENV_SECRET = "from-the-environment"

GOOD = """
[server]
listen = "127.0.0.1:8080"
metrics_listen = "[::1]:9108"
workers = 2
clock_skew = 15
cache_ttl = 120
deny_status = 401

[signing]
listen = "127.0.0.1:8081"

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
hosts = ["Image.Example.com"]
mode = "enforce"
deny_status = 403
  [[sources.keys]]
  id = "inline"
  secret = "wakanda123@"
  [[sources.keys]]
  id = "file"
  secret_file = "secrets/books-token"
  [[sources.keys]]
  id = "env"
  secret_env = "BOOKS_TOKEN"

[[sources]]
name = "public"
scheme = "md5-token"
path_prefix = "/public/"
mode = "off"
"""


def write(folder: Path, text: str, name: str = "sidecar.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def md5_sig(uri: str, token: str) -> str:
    return hashlib.md5((uri + token).encode()).hexdigest()
