"""Loading ``sidecar.toml``: every problem reported at once, secrets never shown."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sidecar.config import ConfigError, load
from sidecar.core import canonical
from sidecar.policy.settings import Address, Mode
from sidecar.schemes.base import VerifyRequest

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


@pytest.fixture
def good_config(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "books-token").write_text(FILE_SECRET + "\n", encoding="utf-8")
    return write(tmp_path, GOOD)


def md5_sig(uri: str, token: str) -> str:
    return hashlib.md5((uri + token).encode()).hexdigest()


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
    assert books.verifier is not None
    assert books.verifier.key_ids == ("inline", "file", "env")
    public = settings.source("public")
    assert public is not None
    assert (public.mode, public.verifier, public.deny_status) == (Mode.OFF, None, 401)
    assert settings.source("nope") is None


@pytest.mark.parametrize(
    ("secret", "key_id"),
    [(SECRET, "inline"), (FILE_SECRET, "file"), (ENV_SECRET, "env")],
    ids=["secret", "secret_file", "secret_env"],
)
def test_each_secret_source_is_the_key_used(good_config: Path, secret: str, key_id: str) -> None:
    # Verifying a URL signed with each expected token proves the bytes were read right:
    # for secret_file that means the trailing newline was stripped.
    settings = load(good_config, environ={"BOOKS_TOKEN": ENV_SECRET})
    books = settings.source("books")
    assert books is not None
    assert books.verifier is not None
    uri = canonical.parse(f"/books/a.jpg?s={md5_sig('/books/a.jpg', secret)}")
    assert uri is not None
    verdict = books.verifier.verify(VerifyRequest(uri, now=0))
    assert (verdict.valid, verdict.key_id) == (True, key_id)


def test_secret_file_resolves_against_config_folder(
    good_config: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from elsewhere: "secrets/books-token" must still mean the one beside the config.
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    settings = load(good_config, environ={"BOOKS_TOKEN": ENV_SECRET})
    assert settings.source("books") is not None


def test_secret_env_reads_only_the_given_environ(
    good_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `environ=` replaces the process environment: what os.environ holds is not consulted.
    monkeypatch.setenv("BOOKS_TOKEN", ENV_SECRET)
    with pytest.raises(ConfigError) as caught:
        load(good_config, environ={})
    assert len(caught.value.problems) == 1
    assert "BOOKS_TOKEN" in caught.value.problems[0]
    assert "secret_env" in caught.value.problems[0]


def test_defaults(tmp_path: Path) -> None:
    settings = load(
        write(
            tmp_path,
            '[[sources]]\nname = "a"\nscheme = "md5-token"\npath_prefix = "/"\n'
            '[[sources.keys]]\nid = "k"\nsecret = "x"\n',
        ),
        environ={},
    )
    assert settings.server.listen == Address("127.0.0.1", 8080)
    assert settings.server.metrics_listen == settings.server.listen
    assert (settings.server.workers, settings.server.clock_skew) == (1, 30)
    assert settings.server.deny_status == 403
    source = settings.sources[0]
    assert (source.mode, source.deny_status, source.hosts) == (Mode.ENFORCE, 401, None)
    assert settings.signing_listen is None


def test_repr_never_shows_a_secret(good_config: Path) -> None:
    settings = load(good_config, environ={"BOOKS_TOKEN": ENV_SECRET})
    text = repr(settings) + str(settings)
    for secret in (SECRET, FILE_SECRET, ENV_SECRET):
        assert secret not in text
    assert "books" in text  # the repr is still useful, just without secrets


def test_problem_messages_never_show_a_secret(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[[sources]]\nname = "a"\nscheme = "md5-token"\npath_prefix = "/a/"\n'
        f'[[sources.keys]]\nid = "k"\nsecret = "{SECRET}"\nsecret_env = "X"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={"X": ENV_SECRET})
    assert caught.value.problems
    assert SECRET not in str(caught.value)
    assert ENV_SECRET not in str(caught.value)


BROKEN = """
colour = "blue"

[server]
listen = "nowhere"
workers = "2"
deny_status = 500

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
flavour = "vanilla"
  [[sources.keys]]
  id = "k1"
  secret = "x"

[[sources]]
name = "weird"
scheme = "rot13"
path_prefix = "/weird/"

[[sources]]
name = "moody"
scheme = "md5-token"
path_prefix = "/moody/"
mode = "sometimes"
  [[sources.keys]]
  id = "k1"
  secret = "x"

[[sources]]
name = "dotty"
scheme = "md5-token"
path_prefix = "/a/../b/"
  [[sources.keys]]
  id = "k1"
  secret = "x"

[[sources]]
name = "keyless"
scheme = "md5-token"
path_prefix = "/keyless/"
mode = "enforce"

[[sources]]
name = "lost"
scheme = "md5-token"
path_prefix = "/lost/"
  [[sources.keys]]
  id = "k1"
  secret_file = "no-such-token-file"

[[sources]]
name = "greedy"
scheme = "md5-token"
path_prefix = "/greedy/"
  [[sources.keys]]
  id = "k1"
  secret = "x"
  secret_env = "GREEDY"

[[sources]]
name = "twins"
scheme = "md5-token"
path_prefix = "/twins/"
  [[sources.keys]]
  id = "same"
  secret = "x"
  [[sources.keys]]
  id = "same"
  secret = "y"

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books-again/"
  [[sources.keys]]
  id = "k1"
  secret = "x"
"""

# (source or section, field, what the message says): every one must be reported.
BROKEN_PROBLEMS = [
    ("(top level)", "colour", "unknown field"),
    ("server", "listen", "nowhere"),
    ("server", "workers", "must be a int"),
    ("server", "deny_status", "401 or 403"),
    ("'books'", "flavour", "unknown field"),
    ("'weird'", "scheme", "rot13"),
    ("'moody'", "mode", "enforce, report or off"),
    ("'dotty'", "path_prefix", "canonical"),
    ("'keyless'", "keys", "at least one"),
    ("'lost'", "secret_file", "no-such-token-file"),
    ("'greedy'", "secret", "exactly one"),
    ("'twins'", "keys", "duplicate key id"),
    ("sources", "books", "duplicate source name"),
]


def test_broken_config_lists_every_problem(tmp_path: Path) -> None:
    config = write(tmp_path, BROKEN)
    with pytest.raises(ConfigError) as caught:
        load(config, environ={"GREEDY": "y"})
    problems = caught.value.problems
    missing = [
        expected
        for expected in BROKEN_PROBLEMS
        if not any(all(part in problem for part in expected) for problem in problems)
    ]
    assert missing == [], "\n".join(problems)
    for problem in problems:
        assert problem.startswith(f"{config}: "), problem
    assert str(caught.value) == "\n".join(problems)


@pytest.mark.parametrize(
    ("server", "field"),
    [
        ("workers = 0", "workers"),
        ("workers = 65", "workers"),
        ("workers = true", "workers"),
        ("clock_skew = -1", "clock_skew"),
        ("clock_skew = 3601", "clock_skew"),
        ("cache_ttl = -5", "cache_ttl"),
        ("cache_ttl = 1.5", "cache_ttl"),
        ("deny_status = 0", "deny_status"),
        ("deny_status = 200", "deny_status"),
        ('listen = "127.0.0.1"', "listen"),
        ('listen = "127.0.0.1:0"', "listen"),
        ('listen = "127.0.0.1:65536"', "listen"),
        ('listen = ":8080"', "listen"),
        ('metrics_listen = "localhost:http"', "metrics_listen"),
    ],
)
def test_out_of_range_server_values_are_problems(tmp_path: Path, server: str, field: str) -> None:
    config = write(
        tmp_path,
        f"[server]\n{server}\n"
        '[[sources]]\nname = "a"\nscheme = "md5-token"\npath_prefix = "/"\n'
        '[[sources.keys]]\nid = "k"\nsecret = "x"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any(f"server.{field}" in problem for problem in caught.value.problems)


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ('hosts = ["bad host"]', "hosts"),
        ("hosts = []", "hosts"),
        ('hosts = "image.example.com"', "hosts"),
        ("deny_status = 404", "deny_status"),
        ("deny_status = 0", "deny_status"),
        ('name = "has space"', "name"),
        ('path_prefix = "books/"', "path_prefix"),
        ('path_prefix = "/books%2F"', "path_prefix"),
        ('path_prefix = "/books;x/"', "path_prefix"),
    ],
)
def test_source_value_problems(tmp_path: Path, source: str, field: str) -> None:
    fields = {"name": '"a"', "scheme": '"md5-token"', "path_prefix": '"/a/"'}
    key, _, value = source.partition(" = ")
    fields[key] = value
    body = "".join(f"{name} = {text}\n" for name, text in fields.items())
    config = write(tmp_path, f'[[sources]]\n{body}[[sources.keys]]\nid = "k"\nsecret = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any(f".{field}" in problem for problem in caught.value.problems), caught.value.problems


def test_another_schemes_setting_is_an_unknown_field(tmp_path: Path) -> None:
    # public_origin is a cloudfront setting: an md5-token source has no such field.
    config = write(
        tmp_path,
        '[[sources]]\nname = "a"\nscheme = "md5-token"\npath_prefix = "/a/"\n'
        'public_origin = "https://cdn.example.com"\n[[sources.keys]]\nid = "k"\nsecret = "x"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any("unknown field 'public_origin'" in p for p in caught.value.problems)


def test_overlapping_routes_are_a_problem(tmp_path: Path) -> None:
    # "/books" and "/books/" route the same requests: which source wins would be a guess.
    source = 'scheme = "md5-token"\n[[sources.keys]]\nid = "k"\nsecret = "x"\n'
    config = write(
        tmp_path,
        f'[[sources]]\nname = "a"\npath_prefix = "/books/"\n{source}'
        f'[[sources]]\nname = "b"\npath_prefix = "/books"\n{source}',
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any("share host and path_prefix" in p for p in caught.value.problems)


def test_empty_secret_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n", encoding="utf-8")
    config = write(
        tmp_path,
        '[[sources]]\nname = "a"\nscheme = "md5-token"\npath_prefix = "/a/"\n'
        '[[sources.keys]]\nid = "k"\nsecret_file = "token"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any("secret_file" in p and "empty" in p for p in caught.value.problems)


def test_unreadable_secret_file_is_a_problem(tmp_path: Path) -> None:
    # A directory where the token file should be: exists, but cannot be read as one.
    (tmp_path / "token").mkdir()
    config = write(
        tmp_path,
        '[[sources]]\nname = "a"\nscheme = "md5-token"\npath_prefix = "/a/"\n'
        '[[sources.keys]]\nid = "k"\nsecret_file = "token"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any(
        "'a'" in p and "secret_file" in p and "cannot read" in p for p in caught.value.problems
    ), caught.value.problems


def test_no_sources_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, '[server]\nlisten = "127.0.0.1:8080"\n'), environ={})
    assert any("sources" in p for p in caught.value.problems)


def test_invalid_toml(tmp_path: Path) -> None:
    config = write(tmp_path, "[server\nlisten = \n")
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{config}: ")
    assert "TOML" in caught.value.problems[0]


def test_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert len(caught.value.problems) == 1
    assert str(config) in caught.value.problems[0]
    assert "cannot read" in caught.value.problems[0]
