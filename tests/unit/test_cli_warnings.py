"""What the command line warns about, never silently accepts, and never prints the value
of: weak secrets and sources that allow URLs without an expiry (``check-config``), and a
signed URL that never expires (``sign``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli import main
from tests.support.config_files import write
from tests.support.configs import md5_source, source_toml

TOKEN = "books-token-0123"


def named(name: str, **fields: str | int | bool) -> str:
    """An md5-token source called ``name`` under ``/name/``, its token inline."""
    return md5_source(name, f"/{name}/", {"k": TOKEN}, **fields)


def test_check_config_warns_about_short_and_inline_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "strong-token").write_text("x" * 43 + "\n")
    path = write(
        tmp_path,
        source_toml("books", "md5-token", "/books/", {"k": {"secret": "a"}})
        + source_toml("strong", "md5-token", "/strong/", {"k": {"secret_file": "strong-token"}}),
    )
    assert main(["check-config", "-c", str(path)]) == 0  # warnings, not errors
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning:" in line]
    assert any("'books'.keys[0].secret: an inline secret" in line for line in warnings)
    assert any("'books'.keys[0].secret: shorter than 16 bytes" in line for line in warnings)
    assert not any("'strong'.keys" in line for line in warnings)  # a long mounted secret
    assert not any('"a"' in line for line in warnings)  # never the value


def test_check_config_warns_about_sources_that_allow_urls_without_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        named("open")
        + named("capped", max_ttl=86400)
        + named("required", require_expires=True)
        + named("unsigned", mode="off"),
    )
    assert main(["check-config", "-c", str(path)]) == 0  # a warning, not an error
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning:" in line]
    never = [line for line in warnings if "without an expiry" in line]
    assert len(never) == 1 and "'open'" in never[0] and "max_ttl" in never[0], warnings


def test_sign_says_when_the_url_it_made_never_expires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, named("books"))
    assert main(["sign", "-c", str(path), "--source", "books", "/books/a.jpg"]) == 0
    forever = capsys.readouterr()
    assert "expires=" not in forever.out and "never expires" in forever.err
    args = ["sign", "-c", str(path), "--source", "books", "--expires-in", "60", "/books/a.jpg"]
    assert main(args) == 0
    bounded = capsys.readouterr()
    assert "expires=" in bounded.out and bounded.err == ""


def test_check_config_says_when_a_host_less_source_shares_a_prefix_with_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        md5_source("books", "/books/", {"k": TOKEN}, max_ttl=3600)
        + md5_source(
            "books-img", "/books/", {"k": TOKEN + "x"}, hosts=["img.example.com"], max_ttl=3600
        )
        + md5_source("open", "/", mode="off")  # above the host-bound prefix: no note
        + md5_source("gallery", "/gallery/", {"k": TOKEN + "y"}, max_ttl=3600),
    )
    assert main(["check-config", "-c", str(path)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning:" in line]
    noted = [line for line in warnings if "a host no source names gets no_source" in line]
    assert len(noted) == 1 and "sources 'books'" in noted[0], warnings
