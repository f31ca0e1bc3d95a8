"""A broken ``sidecar.toml``: every problem reported at once, each naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import ConfigError, load
from tests.support.config_files import write
from tests.support.configs import md5_source

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
    ("'moody'", "mode", "enforce, optional, report or off"),
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
    config = write(tmp_path, f"[server]\n{server}\n" + md5_source("a", "/", {"k": "x"}))
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
    source = md5_source("a", "/a/", {"k": "x"}, public_origin="https://cdn.example.com")
    config = write(tmp_path, source)
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any("unknown field 'public_origin'" in p for p in caught.value.problems)


def test_overlapping_routes_are_a_problem(tmp_path: Path) -> None:
    # "/books" and "/books/" route the same requests: which source wins would be a guess.
    config = write(
        tmp_path, md5_source("a", "/books/", {"k": "x"}) + md5_source("b", "/books", {"k": "x"})
    )
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any("share host and path_prefix" in p for p in caught.value.problems)


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
