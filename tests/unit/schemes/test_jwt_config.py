"""Scheme ``jwt`` in a config: keys pinned to an algorithm, ``jwks_file`` keys, a source
with only ``jwks_url``, ``sidecar sign``, and ``max_ttl`` on verify."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sidecar import cli, config
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from tests.support.configs import TomlValue, sidecar_config, source_toml
from tests.support.jwt_keys import key_for, pyjwt_token
from tests.support.scheme_contract import NOW

HS, ES, ED = key_for("HS256"), key_for("ES256"), key_for("EdDSA")


def write(folder: Path, keys: Mapping[str, Mapping[str, TomlValue]], **fields: TomlValue) -> Path:
    path = folder / "sidecar.toml"
    path.write_text(sidecar_config(source_toml("video", "jwt", "/v/", keys, **fields),
                                   server={"clock_skew": 0}))  # fmt: skip
    return path


def decide(path: Path, uri: str, now: float = NOW) -> Reason:
    decider = Decider(config.load(path))
    return decider.decide(RequestFacts(uri, "GET", None, "203.0.113.5"), now).reason


def test_configured_keys_and_a_jwks_file(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [ED.public_jwk()]}))
    path = write(tmp_path, {HS.kid: HS.toml(tmp_path), ES.kid: ES.toml(tmp_path)},
                 jwks_file="jwks.json")  # fmt: skip
    settings = config.load(path)
    assert settings.sources[0].signatures is not None
    assert settings.sources[0].signatures.key_ids == (HS.kid, ES.kid, ED.kid)
    assert str(tmp_path / "jwks.json") in settings.files  # watched, as key files are
    for key in (HS, ES, ED):
        token = pyjwt_token(key, {"sub": "/v/a", "exp": NOW + 60})
        assert decide(path, f"/v/a/b.jpg?token={token}") is Reason.OK


def test_a_source_with_only_a_jwks_url_loads_without_keys(tmp_path: Path) -> None:
    path = write(tmp_path, {}, jwks_url="https://auth.example.com/.well-known/jwks.json")
    settings = config.load(path)  # nothing is fetched: check-config does not fetch
    token = pyjwt_token(ES, {"sub": "/v/a", "exp": NOW + 60})
    assert decide(path, f"/v/a?token={token}") is Reason.UNKNOWN_KEY
    assert settings.sources[0].signatures is not None


@pytest.mark.parametrize(
    ("keys", "fields", "problem"),
    [
        ({"k": {"secret": "s" * 40}}, {}, "algorithm"),
        ({"k": {"secret": "s" * 40, "algorithm": "none"}}, {}, "algorithm must be one of"),
        ({"k": {"secret": "s" * 20, "algorithm": "HS256"}}, {}, "32 bytes"),
        ({"k": {"secret": "s" * 40, "algorithm": "HS512"}}, {}, "64 bytes"),
        ({"k": {"secret": "s" * 40, "algorithm": "ES256"}}, {}, "public_key_file"),
        ({"k": {"secret": "s" * 40, "public_key_file": "x.pem", "algorithm": "HS256"}}, {},
         "not both"),
        ({}, {}, "at least one"),
        ({}, {"jwks_url": "http://auth.example.com/jwks"}, "https"),
        ({}, {"jwks_file": "missing.json"}, "cannot read"),
        ({}, {"jwks_file": "bad.json"}, "no usable key"),
        ({"k": {"secret": "s" * 40, "algorithm": "HS256"}}, {"scope": "regex"}, "exact"),
        ({"k": {"secret": "s" * 40, "algorithm": "HS256"}}, {"scope_claim": "exp"},
         "registered claim"),
        ({"k": {"secret": "s" * 40, "algorithm": "HS256"}}, {"jwks_cooldown": 0}, "1..3600"),
    ],
)  # fmt: skip
def test_config_problems(
    tmp_path: Path, keys: dict[str, dict[str, TomlValue]], fields: dict[str, Any], problem: str
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"keys": [{"kty": "oct", "k": "AA"}]}))
    with pytest.raises(config.ConfigError, match=problem):
        config.load(write(tmp_path, keys, **fields))


def test_algorithm_is_refused_by_other_schemes(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    keys = {"k": {"secret": "s" * 40, "algorithm": "HS256"}}
    path.write_text(sidecar_config(source_toml("b", "hmac-sha256", "/b/", keys)))
    with pytest.raises(config.ConfigError, match="algorithm: not used by this scheme"):
        config.load(path)


def test_one_jwks_file_for_two_sources(tmp_path: Path) -> None:
    # One identity provider for two sources: its kids may serve both (scope keeps them apart).
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [ES.public_jwk()]}))
    path = tmp_path / "sidecar.toml"
    path.write_text(
        sidecar_config(
            source_toml("a", "jwt", "/a/", jwks_file="jwks.json"),
            source_toml("b", "jwt", "/b/", jwks_file="jwks.json"),
        )
    )
    decider = Decider(config.load(path))
    token = pyjwt_token(ES, {"sub": "/a/", "exp": NOW + 60})
    reasons = [decider.decide(RequestFacts(f"{prefix}x.jpg?token={token}", "GET", None, None),
                              NOW).reason for prefix in ("/a/", "/b/")]  # fmt: skip
    assert reasons == [Reason.OK, Reason.INVALID]


def test_max_ttl_is_enforced_on_verify(tmp_path: Path) -> None:
    path = write(tmp_path, {HS.kid: HS.toml(tmp_path)}, max_ttl=600)
    within = pyjwt_token(HS, {"sub": "/v/", "exp": NOW + 600})
    beyond = pyjwt_token(HS, {"sub": "/v/", "exp": NOW + 601})
    assert decide(path, f"/v/a?token={within}") is Reason.OK
    assert decide(path, f"/v/a?token={beyond}") is Reason.INVALID


def test_cli_sign_puts_the_token_in_token_param(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {ES.kid: {**ES.toml(tmp_path), "private_key_file": str(tmp_path / "es.pem")}}
    (tmp_path / "es.pem").write_bytes(ES.private_pem or b"")
    path = write(tmp_path, keys, token_param="t")
    code = cli.main(["sign", "-c", str(path), "--source", "video", "--expires-in", "300",
                     "https://img.example.com/v/a/b.jpg?w=1"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("https://img.example.com/v/a/b.jpg?w=1&t=ey")
    import jwt as pyjwt

    claims = pyjwt.decode(printed.rpartition("t=")[2], ES.public_pem or b"", algorithms=["ES256"])
    assert claims["sub"] == "/v/a/b.jpg"
