"""Loading ``sidecar.toml``: a good config, and the defaults of a minimal one."""

from __future__ import annotations

from pathlib import Path

from sidecar.config import load
from sidecar.policy.settings import Address, Mode
from tests.support.config_files import ENV_SECRET, write
from tests.support.configs import md5_source


def test_valid_config_loads(good_config: Path) -> None:
    settings = load(good_config, environ={"BOOKS_TOKEN": ENV_SECRET})
    server = settings.server
    assert server.listen == Address("127.0.0.1", 8080)
    assert server.metrics_listen == Address("::1", 9108)
    assert str(server.metrics_listen) == "[::1]:9108"
    assert (server.workers, server.clock_skew, server.cache_ttl, server.deny_status) == (
        2,
        15,
        120,
        401,
    )
    assert settings.signing_listen == Address("127.0.0.1", 8081)
    books = settings.source("books")
    assert books is not None
    assert (books.scheme, books.path_prefix, books.mode, books.deny_status) == (
        "md5-token",
        "/books/",
        Mode.ENFORCE,
        403,
    )
    assert books.hosts == frozenset({"image.example.com"})  # host names compare lowercased
    assert books.signatures is not None
    assert books.signatures.key_ids == ("inline", "file", "env")
    public = settings.source("public")
    assert public is not None
    assert (public.mode, public.signatures, public.deny_status) == (Mode.OFF, None, 401)
    assert settings.source("nope") is None


def test_defaults(tmp_path: Path) -> None:
    settings = load(write(tmp_path, md5_source("a", "/", {"k": "x"})), environ={})
    assert settings.server.listen == Address("127.0.0.1", 8080)
    assert settings.server.metrics_listen == settings.server.listen
    assert (settings.server.workers, settings.server.clock_skew) == (1, 30)
    assert settings.server.deny_status == 403
    source = settings.sources[0]
    assert (source.mode, source.deny_status, source.hosts) == (Mode.ENFORCE, 401, None)
    assert settings.signing_listen is None
