"""``check-config`` warns when two sources hold one key (the same secret bytes, or the
same public key, whatever their schemes): a URL signed for one verifies at the other
where their URL shapes coincide. The warning names sources and key ids, never the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli import main
from sidecar.config import load
from tests.support.cloudfront import pair
from tests.support.config_files import write
from tests.support.configs import cloudfront_source, md5_source, sidecar_config, source_toml

SHARED = "one-secret-for-two-0123456789"


def shared_warnings(config: Path) -> list[str]:
    return [w for w in load(config).warnings if "verifies at the others" in w]


def test_two_sources_with_one_secret_are_named_with_their_key_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, sidecar_config(
        md5_source("books", "/books/", {"b1": SHARED}),
        source_toml("shots", "hmac-sha256", "/shots/", {"s1": {"secret": SHARED}}),
        md5_source("other", "/other/", {"o1": "another-secret-0123456789"}),
    ))  # fmt: skip
    (warning,) = shared_warnings(config)
    assert "'books' (key 'b1')" in warning and "'shots' (key 's1')" in warning
    assert "'other'" not in warning
    assert main(["check-config", "-c", str(config)]) == 0  # a warning, not a problem
    out = capsys.readouterr().out
    assert "warning:" in out and "'shots' (key 's1')" in out
    assert SHARED not in out


def test_secrets_read_from_different_places_are_compared_by_their_bytes(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SHARED + "\n")
    config = write(tmp_path, sidecar_config(
        md5_source("inline", "/inline/", {"k": SHARED}),
        source_toml("mounted", "md5-token", "/mounted/", {"k": {"secret_file": "token"}}),
    ))  # fmt: skip
    assert len(shared_warnings(config)) == 1


def test_two_cloudfront_sources_with_one_public_key(tmp_path: Path) -> None:
    (tmp_path / "key.pub.pem").write_bytes(pair("ecdsa", "shared")[1])
    origin = "https://cdn.example.com"
    config = write(tmp_path, sidecar_config(
        cloudfront_source("a", "/a/", {"KA1": "key.pub.pem"}, public_origin=origin),
        cloudfront_source("b", "/b/", {"KB1": "key.pub.pem"}, public_origin=origin),
    ))  # fmt: skip
    (warning,) = shared_warnings(config)
    assert "public key" in warning and "'a' (key 'KA1')" in warning


def test_one_secret_under_two_ids_of_one_source_is_no_warning(tmp_path: Path) -> None:
    config = write(tmp_path, sidecar_config(md5_source("a", "/a/", {"k1": SHARED, "k2": SHARED})))
    assert shared_warnings(config) == []
