"""``folder_grant`` (sidecar/config/folder_grants.py): accepted only where a cookie can be
signed and read back: a scheme with a cookie form, ``accept_cookies``, a key this process
signs with, no ``max_uses``."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config
from sidecar.errors import ConfigError
from sidecar.policy.settings import Settings
from sidecar.schemes import cloudfront_keys
from tests.support.configs import TomlValue, cloudfront_source, sidecar_config, source_toml

ORIGIN = "https://cdn.example.com"
GCDN_KEY = {"g1": {"secret": "N3yAAtXbJ8oKd1_qzR0v-w=="}}
HMAC_KEY = {"h1": {"secret": "a-long-enough-hmac-secret-for-tests-0123456789"}}


def load(tmp_path: Path, source: str, state: str = "") -> Settings:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(source) + state)
    return config.load(path)


def cloudfront(tmp_path: Path, *, signs: bool, **fields: TomlValue) -> str:
    private, public = cloudfront_keys.new_key_pair("rsa")
    (tmp_path / "k.pub.pem").write_bytes(public)
    (tmp_path / "k.pem").write_bytes(private)
    keys: dict[str, str | tuple[str, str]] = {
        "K1": ("k.pub.pem", "k.pem") if signs else "k.pub.pem"
    }
    return cloudfront_source("videos", "/videos/", keys, public_origin=ORIGIN, **fields)


def test_the_endings_are_kept(tmp_path: Path) -> None:
    source = source_toml("v", "gcdn", "/v/", GCDN_KEY, public_origin=ORIGIN,
                         accept_cookies=True, folder_grant=[".m3u8", "index.html"])  # fmt: skip
    assert load(tmp_path, source).sources[0].folder_grant == (".m3u8", "index.html")
    akamai = source_toml("v", "akamai", "/v/", {"a1": {"secret": "ab" * 32}},
                         accept_cookies=True, folder_grant=[".mpd"])  # fmt: skip
    assert load(tmp_path, akamai).sources[0].folder_grant == (".mpd",)
    signing = cloudfront(tmp_path, signs=True, accept_cookies=True, folder_grant=[".m3u8"])
    assert load(tmp_path, signing).sources[0].folder_grant == (".m3u8",)


def test_a_source_without_it_has_none(tmp_path: Path) -> None:
    source = source_toml("v", "gcdn", "/v/", GCDN_KEY, public_origin=ORIGIN, accept_cookies=True)
    assert load(tmp_path, source).sources[0].folder_grant == ()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"accept_cookies": True, "folder_grant": []}, "must be a list of file endings"),
        ({"accept_cookies": True, "folder_grant": ["a/b.m3u8"]}, "must be a list of file endings"),
        ({"accept_cookies": True, "folder_grant": ".m3u8"}, "must be a list of file endings"),
        ({"accept_cookies": True, "folder_grant": ["%2Em3u8"]}, "must be a list of file endings"),
        ({"folder_grant": [".m3u8"]}, "needs accept_cookies = true"),
        ({"accept_cookies": False, "folder_grant": [".m3u8"]}, "needs accept_cookies = true"),
    ],
)
def test_refused(tmp_path: Path, fields: dict[str, TomlValue], problem: str) -> None:
    source = source_toml("v", "gcdn", "/v/", GCDN_KEY, public_origin=ORIGIN, **fields)
    with pytest.raises(ConfigError, match=problem):
        load(tmp_path, source)


def test_a_scheme_without_a_cookie_form_is_refused(tmp_path: Path) -> None:
    source = source_toml("v", "hmac-sha256", "/v/", HMAC_KEY, folder_grant=[".m3u8"])
    with pytest.raises(ConfigError, match="needs a scheme with a cookie form"):
        load(tmp_path, source)


def test_a_cloudfront_source_that_only_verifies_is_refused(tmp_path: Path) -> None:
    source = cloudfront(tmp_path, signs=False, accept_cookies=True, folder_grant=[".m3u8"])
    with pytest.raises(ConfigError, match="needs a key this process signs with"):
        load(tmp_path, source)


def test_max_uses_is_refused_beside_it(tmp_path: Path) -> None:
    source = source_toml("v", "gcdn", "/v/", GCDN_KEY, public_origin=ORIGIN,
                         accept_cookies=True, folder_grant=[".m3u8"], max_uses=3)  # fmt: skip
    with pytest.raises(ConfigError, match="cannot be combined with max_uses"):
        load(tmp_path, source, '[state]\npath = "s.db"\n')
