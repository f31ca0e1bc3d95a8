"""Scheme ``gcdn`` through the config loader and the CLI: ``sidecar sign`` gives the URL
openssl computes, ``sidecar verify`` accepts it, ``token new`` makes keys Google accepts."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

from sidecar import config
from sidecar.cli import main
from sidecar.errors import ConfigError, SigningError
from sidecar.policy import signing
from sidecar.schemes.base import Grant
from tests.support.configs import sidecar_config, source_toml
from tests.support.reference_signers import openssl_hmac_sha1

ORIGIN = "https://image.example.com"
KEY_TEXT = "nZtRohdNF9m3cKM24IcK4w=="  # Google's sample key (published, not a secret)


def gcdn_config(tmp_path: Path, **fields: str) -> Path:
    keys = {"cdn-key-1": {"secret": KEY_TEXT}}
    settings = {"public_origin": ORIGIN, **fields}
    text = sidecar_config(source_toml("gbooks", "gcdn", "/books/", keys, **settings))
    path = tmp_path / "sidecar.toml"
    path.write_text(text)
    return path


def openssl_signed(url: str, expires: int, key_name: str = "cdn-key-1") -> str:
    head = f"{url}{'&' if '?' in url else '?'}Expires={expires}&KeyName={key_name}"
    digest = openssl_hmac_sha1(base64.urlsafe_b64decode(KEY_TEXT), head.encode())
    return f"{head}&Signature={base64.urlsafe_b64encode(digest).decode()}"


@pytest.mark.parametrize(
    "url",
    [
        "/books/caf%C3%A9%20menu.png?w=1",
        f"{ORIGIN}/books/x.png",
        f"{ORIGIN}/books/database-internals.jpg?w=400&h=600&fit=crop",
    ],
)
def test_sidecar_sign_gives_the_url_openssl_computes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    path = gcdn_config(tmp_path)
    before = int(time.time())
    code = main(["sign", "-c", str(path), "--source", "gbooks", "--expires-in", "600", url])
    after = int(time.time())
    out = capsys.readouterr().out.strip()
    assert code == 0
    found = re.search(r"[?&]Expires=([0-9]+)&", out)
    assert found is not None, out
    expires = int(found.group(1))
    assert before + 600 <= expires <= after + 600
    absolute = url if url.startswith("https://") else ORIGIN + url
    assert out == openssl_signed(absolute, expires)
    # And the same config's decision accepts it.
    assert main(["verify", "-c", str(path), "--at", str(expires - 1), out]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["source"], line["result"], line["key"]) == ("gbooks", "ok", "cdn-key-1")


def test_sidecar_sign_refuses_another_origin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = gcdn_config(tmp_path)
    url = "https://evil.example.com/books/x.png"
    code = main(["sign", "-c", str(path), "--source", "gbooks", "--expires-in", "60", url])
    assert code == 1
    assert "public_origin" in capsys.readouterr().err


def test_token_new_makes_a_key_the_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = gcdn_config(tmp_path)
    assert main(["token", "new", "-c", str(path), "--source", "gbooks"]) == 0
    made = capsys.readouterr().out.strip()
    assert main(["token", "new", "--key-type", "gcdn"]) == 0
    other = capsys.readouterr().out.strip()
    for key in (made, other):
        assert len(key) == 24 and len(base64.urlsafe_b64decode(key)) == 16
    assert made != other
    path.write_text(path.read_text().replace(KEY_TEXT, made))
    assert config.load(path).source("gbooks") is not None


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (f'public_origin = "{ORIGIN}"\n', "", "public_origin: required by scheme gcdn"),
        (ORIGIN, ORIGIN + "/books", "must be http(s)://host[:port]"),
        (KEY_TEXT, KEY_TEXT.rstrip("="), "16-byte key"),
        (KEY_TEXT, "c2l4dGVlbi1ieXRlcy1rZXk=", "16-byte key"),  # 17 bytes
        ('"cdn-key-1"', '"cdn key"', "KeyName"),
    ],
)
def test_config_problems_are_reported(tmp_path: Path, old: str, new: str, problem: str) -> None:
    path = gcdn_config(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as raised:
        config.load(path)
    assert any(problem in line for line in raised.value.problems), raised.value.problems
    assert KEY_TEXT.rstrip("=") not in str(raised.value)  # never the secret


def test_sidecar_sign_prefix_makes_the_url_prefix_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = gcdn_config(tmp_path)
    url = f"{ORIGIN}/books/x.png?w=1"
    args = ["sign", "-c", str(path), "--source", "gbooks", "--expires-in", "60"]
    assert main([*args, "--prefix", "/books/", url]) == 0
    signed = capsys.readouterr().out.strip()
    prefix = base64.urlsafe_b64encode(f"{ORIGIN}/books/".encode()).decode()
    assert signed.startswith(f"{url}&URLPrefix={prefix}&Expires=")
    verdicts = {}
    for uri in ("/books/y.png", "/secret/x.png", "/books-other/x.png"):
        code = main(["verify", "-c", str(path), signed.replace("/books/x.png", uri)])
        verdicts[uri] = json.loads(capsys.readouterr().out)["result"]
        assert code == (0 if verdicts[uri] == "ok" else 1)
    assert verdicts["/books/y.png"] == "ok"  # the whole prefix is granted
    assert verdicts["/secret/x.png"] != "ok" and verdicts["/books-other/x.png"] != "ok"


def test_policy_sign_makes_url_prefix_grants(tmp_path: Path) -> None:
    # Applications pass a Grant to sidecar.policy.signing (sidecar sign --prefix does too).
    settings = config.load(gcdn_config(tmp_path))
    url = f"{ORIGIN}/books/x.png?w=1"
    grant = Grant(prefix="/books/")
    signed = signing.sign(settings, "gbooks", url, grant, now=1_900_000_000, expires_in=60).url
    policy = (
        f"URLPrefix={base64.urlsafe_b64encode(f'{ORIGIN}/books/'.encode()).decode()}"
        "&Expires=1900000060&KeyName=cdn-key-1"
    )
    digest = openssl_hmac_sha1(base64.urlsafe_b64decode(KEY_TEXT), policy.encode())
    assert signed == f"{url}&{policy}&Signature={base64.urlsafe_b64encode(digest).decode()}"
    with pytest.raises(SigningError, match="path_prefix"):
        signing.sign(settings, "gbooks", url, Grant(prefix="/"), now=0, expires_in=60)
