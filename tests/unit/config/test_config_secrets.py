"""Keys, and a scheme's secret settings (Akamai's salt), from each secret source (inline,
a mounted file, the environment), read right and never shown: not in a repr, not in a
problem message."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import ConfigError, load
from sidecar.core import canonical
from sidecar.schemes.akamai import AkamaiSource
from sidecar.schemes.base import VerifyRequest
from tests.support.config_files import ENV_SECRET, FILE_SECRET, SECRET, md5_sig, write
from tests.support.configs import source_toml

# One source whose only key is read from the file "token" beside the config.
TOKEN_FILE_SOURCE = source_toml("a", "md5-token", "/a/", {"k": {"secret_file": "token"}})


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
    assert books.signatures is not None
    uri = canonical.parse(f"/books/a.jpg?s={md5_sig('/books/a.jpg', secret)}")
    assert uri is not None
    verdict = books.signatures.verify(VerifyRequest(uri, now=0))
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


def test_repr_never_shows_a_secret(good_config: Path) -> None:
    settings = load(good_config, environ={"BOOKS_TOKEN": ENV_SECRET})
    text = repr(settings) + str(settings)
    for secret in (SECRET, FILE_SECRET, ENV_SECRET):
        assert secret not in text
    assert "books" in text  # the repr is still useful, just without secrets


def test_problem_messages_never_show_a_secret(tmp_path: Path) -> None:
    key = {"k": {"secret": SECRET, "secret_env": "X"}}
    config = write(tmp_path, source_toml("a", "md5-token", "/a/", key))
    with pytest.raises(ConfigError) as caught:
        load(config, environ={"X": ENV_SECRET})
    assert caught.value.problems
    assert SECRET not in str(caught.value)
    assert ENV_SECRET not in str(caught.value)


def test_empty_secret_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n", encoding="utf-8")
    config = write(tmp_path, TOKEN_FILE_SOURCE)
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any("secret_file" in p and "empty" in p for p in caught.value.problems)


def test_unreadable_secret_file_is_a_problem(tmp_path: Path) -> None:
    # A directory where the token file should be: exists, but cannot be read as one.
    (tmp_path / "token").mkdir()
    config = write(tmp_path, TOKEN_FILE_SOURCE)
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    assert any(
        "'a'" in p and "secret_file" in p and "cannot read" in p for p in caught.value.problems
    ), caught.value.problems


# --- a scheme's secret setting (Akamai's salt), read like a key ------------------------------


def akamai_source(salt_line: str) -> str:
    return (
        '[[sources]]\nname = "edge"\nscheme = "akamai"\npath_prefix = "/books/"\n'
        f"{salt_line}\n"
        '[[sources.keys]]\nid = "k"\nsecret = "00112233445566778899aabbccddeeff"\n'
    )


@pytest.mark.parametrize(
    ("salt_line", "environ"),
    [
        ('salt = "s4lt-value"', {}),
        ('salt_file = "salt.txt"', {}),
        ('salt_env = "EDGE_SALT"', {"EDGE_SALT": "s4lt-value"}),
    ],
)
def test_secret_setting_from_a_file_the_environment_or_inline(
    tmp_path: Path, salt_line: str, environ: dict[str, str]
) -> None:
    (tmp_path / "salt.txt").write_text("s4lt-value\n")  # a mounted file's newline is dropped
    settings = load(write(tmp_path, akamai_source(salt_line)), environ=environ)
    edge = settings.source("edge")
    assert edge is not None and isinstance(edge.signatures, AkamaiSource)
    assert edge.signatures.settings.salt == "s4lt-value"
    assert "s4lt-value" not in repr(settings)
    if "salt_file" in salt_line:  # watched like a key file: a new salt reloads
        assert str(tmp_path / "salt.txt") in settings.files


@pytest.mark.parametrize(
    ("salt_line", "problem"),
    [
        ('salt = "a"\nsalt_env = "X"', ".salt: give one of salt_file, salt_env, salt"),
        ('salt_file = "missing.txt"', ".salt_file: cannot read"),
        ('salt_env = "UNSET_SALT"', ".salt_env: environment variable 'UNSET_SALT' is not set"),
        ('salt = ""', ".salt: is empty"),
    ],
)
def test_secret_setting_problems_name_the_field_never_the_value(
    tmp_path: Path, salt_line: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, akamai_source(salt_line)), environ={})
    assert any(problem in found for found in caught.value.problems), caught.value.problems


def test_secret_setting_of_another_scheme_is_unknown(tmp_path: Path) -> None:
    key = {"k": {"secret": "books-token-0123"}}
    books = source_toml("books", "md5-token", "/books/", key, salt_file="salt.txt")
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, books), environ={})
    assert any("unknown field 'salt_file'" in problem for problem in caught.value.problems)
