"""Scheme ``cloudfront`` in ``sidecar.toml``: its key problems reported, each Key-Pair-Id
owned by one source, and RSA keys of at least 2048 bits."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sidecar import config
from tests.support.cloudfront import ORIGIN, pair
from tests.support.configs import cloudfront_source, sidecar_config


def _cloudfront_config(
    folder: Path, keys_toml: str, origin: str = f'public_origin = "{ORIGIN}"'
) -> Path:
    (folder / "sidecar.toml").write_text(f"""[[sources]]
name = "a"
scheme = "cloudfront"
path_prefix = "/a/"
{origin}
{keys_toml}
""")
    return folder / "sidecar.toml"


def test_config_problems_are_reported(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub.pem").write_bytes(pair("rsa", "cfg")[1])
    (tmp_path / "other.pem").write_bytes(pair("rsa", "cfg-other")[0])
    (tmp_path / "junk.pem").write_bytes(
        b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"
    )
    keys_toml = """  [[sources.keys]]
  id = "K1"
  public_key_file = "rsa.pub.pem"
  private_key_file = "other.pem"
  [[sources.keys]]
  id = "K2"
  public_key_file = "junk.pem"
  [[sources.keys]]
  id = "K3"
  secret = "not for cloudfront"
"""
    with pytest.raises(config.ConfigError) as error:
        config.load(_cloudfront_config(tmp_path, keys_toml, origin=""))
    text = "\n".join(error.value.problems)
    assert "public_origin" in text
    assert "does not match" in text
    assert "not a PEM public key" in text
    assert "K3" in text or "secret" in text


def test_a_key_pair_id_belongs_to_one_source(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub.pem").write_bytes(pair("rsa", "cfg")[1])
    same_key = {"KSAME": "rsa.pub.pem"}
    (tmp_path / "sidecar.toml").write_text(
        sidecar_config(
            cloudfront_source("a", "/a/", same_key, public_origin=ORIGIN),
            cloudfront_source("b", "/b/", same_key, public_origin=ORIGIN),
        )
    )
    with pytest.raises(config.ConfigError) as error:
        config.load(tmp_path / "sidecar.toml")
    assert any("KSAME" in problem for problem in error.value.problems)


def test_small_rsa_keys_are_refused(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "small.pub.pem").write_bytes(
        small.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    keys_toml = '  [[sources.keys]]\n  id = "K"\n  public_key_file = "small.pub.pem"\n'
    with pytest.raises(config.ConfigError) as error:
        config.load(_cloudfront_config(tmp_path, keys_toml))
    assert any("2048" in problem for problem in error.value.problems)
