"""URLs whose host is an IPv6 literal (``http://[::1]:8080/…``): the one URL parser gives
signing (CLI and API) and verification the same host, so they sign and route alike."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from sidecar.cli import main
from tests.support.configs import md5_source, sidecar_config, team_toml
from tests.support.requests import verify
from tests.support.stacks import StackFactory

API_KEY = "v6-api-key-" + "3" * 30
CONFIG = sidecar_config(
    md5_source("v6", "/books/", {"v6": "v6-token-0123456789"}, hosts=["[::1]"]),
    md5_source(
        "named", "/books/", {"named": "named-token-0123456789"}, hosts=["image.example.com"]
    ),
    signing={},
    teams=[team_toml("v6", "v6", API_KEY)],
)
URL = "http://[::1]:8080/books/x.png?w=1"


def cli(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    assert main(list(args)) == code  # verify: 0 allowed, 1 denied
    return capsys.readouterr().out


def test_cli_signs_and_verifies_an_ipv6_literal_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text(CONFIG)
    signed = cli(capsys, "sign", "-c", str(path), "--source", "v6", URL).strip()
    assert signed.startswith(URL + "&s=")
    line = json.loads(cli(capsys, "verify", "-c", str(path), "--at", "1900000000", signed))
    assert (line["source"], line["result"], line["status"]) == ("v6", "ok", 200)
    # The same path on the other host belongs to the other source.
    other = signed.replace("[::1]:8080", "image.example.com")
    line = json.loads(cli(capsys, "verify", "-c", str(path), other, code=1))
    assert (line["source"], line["result"]) == ("named", "invalid")


def test_signing_api_signs_it_and_verify_routes_it(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(CONFIG, nginx=False)
    query = urllib.parse.urlencode({"url": URL})
    call = urllib.request.Request(
        f"{stack.signing_url}/public/team/v6/signUrl?{query}", headers={"X-Api-Key": API_KEY}
    )
    with urllib.request.urlopen(call, timeout=5) as answer:
        signed = json.loads(answer.read())["signedUrl"]
    assert signed.startswith(URL + "&expires=") and "&s=" in signed  # a week, by default
    uri = signed.removeprefix("http://[::1]:8080")
    reply = verify(stack, uri, host="[::1]:8080")
    assert (reply.status, reply.headers["x-signature-result"]) == (200, "ok")
    reply = verify(stack, uri, host="image.example.com")
    assert (reply.status, reply.headers["x-signature-result"]) == (401, "invalid")
