"""Regression tests for the external review's findings that the pure layers decide
(the process-level ones are in ``tests/process/test_security_findings.py``)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from prometheus_client import CollectorRegistry

from sidecar import config
from sidecar.cli import main
from sidecar.core.verdict import Reason
from sidecar.errors import ConfigError, SigningError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.proxies import EXTRACTORS
from sidecar.policy.settings import Settings
from sidecar.policy.signing import sign_url
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.reload import Reloader
from sidecar.runtime.state import create_state
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes.akamai import AkamaiSource
from sidecar.schemes.cloudfront import b64decode, b64encode
from sidecar.schemes.cloudfront_keys import new_key_pair

NOW = 1_900_000_000
# The order n of the P-256 group (SEC 2, secp256r1).
SECP256R1_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def write(folder: Path, text: str) -> Path:
    path = folder / "sidecar.toml"
    path.write_text(text)
    return path


def md5_source(extra: str = "", *, name: str = "books", hosts: str = "") -> str:
    return (
        f'[[sources]]\nname = "{name}"\nscheme = "md5-token"\npath_prefix = "/{name}/"\n'
        f"{hosts}{extra}\n"
        f'[[sources.keys]]\nid = "k"\nsecret = "books-token-0123"\n'
    )


# --- 1. hosts only where the proxy routed on them ------------------------------------------


def test_ingress_nginx_profile_refuses_hosts(tmp_path: Path) -> None:
    # ingress-nginx builds X-Original-URL from the client's Host header.
    path = write(
        tmp_path,
        '[server]\nproxy = "ingress-nginx"\n' + md5_source(hosts='hosts = ["a.example"]\n'),
    )
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ={})
    assert any("'books'.hosts" in p and "$http_host" in p for p in caught.value.problems)


def test_ingress_nginx_profile_never_routes_on_the_url_host(tmp_path: Path) -> None:
    facts = EXTRACTORS["ingress-nginx"](
        "GET", "/verify", {"X-Original-URL": "http://tenant.example.com/books/a.jpg"}
    )
    assert (facts.uri, facts.host) == ("/books/a.jpg", None)


def test_traefik_hosts_name_the_setting_that_makes_them_safe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, '[server]\nproxy = "traefik"\n' + md5_source(hosts='hosts = ["a.example"]\n')
    )
    assert main(["check-config", "-c", str(path)]) == 0
    assert "trustForwardHeader is false" in capsys.readouterr().out


# --- 3. wildcards in linear time -------------------------------------------------------------


def python_steps(pattern: str, text: str) -> int:
    """Lines of Python run to match: what a per-character loop in Python costs shows here."""
    policies.matches(pattern, text)  # compiled pieces are cached: count the matching only
    steps = 0

    def count(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal steps
        steps += event == "line"
        return count

    sys.settrace(count)
    try:
        policies.matches(pattern, text)
    finally:
        sys.settrace(None)
    return steps


@pytest.mark.parametrize(
    "pattern",
    [
        "https://cdn.example.com/acme/*.jpg",  # the review's case
        "https://cdn.example.com/acme/*.j?g",
        "https://cdn.example.com/*/*j?j?q*",
        "*?.j*.jpg",
    ],
)
def test_wildcard_matching_work_does_not_grow_with_the_url(pattern: str) -> None:
    # A URL padded with ".j" thousands of times against "*.jpg" cost 4.2 ms a request
    # (a Python loop per character); the Python work must not depend on the URL's length
    # (the scanning happens inside str.find and compiled, fixed-length patterns).
    base = "https://cdn.example.com/acme/a.jpg?x="
    short, long = base + ".j" * 50, base + ".j" * 3700
    assert python_steps(pattern, long) == python_steps(pattern, short)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("https://c/acme/*.jpg", "https://c/acme/a.jpg", True),
        ("https://c/acme/*.jpg", "https://c/acme/a.jpg?x=.j.j", False),
        ("https://c/acme/*.jpg*", "https://c/acme/a.jpg?x=.j.j", True),
        ("https://c/acme/?.jpg", "https://c/acme/ab.jpg", False),
        ("https://c/*/*/b", "https://c/x/y/b", True),
        ("https://c/*/*/b", "https://c/x/b", False),
        ("*", "", True),
        ("", "", True),
        ("?", "", False),
        ("a*a", "a", False),
        ("*ab?d*", "xxabcabqd", True),
    ],
)
def test_wildcards(pattern: str, text: str, expected: bool) -> None:
    assert policies.matches(pattern, text) is expected


# --- 8. a policy Resource that is not a string ----------------------------------------------


@pytest.mark.parametrize("resource", ["null", "[]", "1", "true", '{"a": 1}'])
def test_resource_that_is_not_a_string_is_malformed(resource: str) -> None:
    document = (
        '{"Statement":[{"Resource":' + resource + ',"Condition":'
        '{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}'
    ).encode()
    assert policies.parse(document) is None
    # Absent is still "every URL of the source", as CloudFront has it.
    absent = b'{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}'
    assert policies.parse(absent) == policies.PolicyStatement(1_900_000_000)


# --- 10. max_ttl holds on verify; md5-token may require an expiry ---------------------------


def decider(tmp_path: Path, extra: str) -> Decider:
    return Decider(config.load(write(tmp_path, md5_source(extra)), environ={}))


def decide(policy: Decider, uri: str, now: float = NOW) -> Reason:
    return policy.decide(RequestFacts(uri, "GET", "image.example.com"), now).reason


def signed(uri: str) -> str:
    digest = hashlib.md5((uri + "books-token-0123").encode()).hexdigest()
    return f"{uri}{'&' if '?' in uri else '?'}s={digest}"


def test_max_ttl_is_enforced_on_verify(tmp_path: Path) -> None:
    policy = decider(tmp_path, "max_ttl = 3600")
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 3600}")) is Reason.OK
    # A leaked key would mint URLs valid for decades: refused.
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 3600 + 31}")) is Reason.INVALID
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 10**9}")) is Reason.INVALID
    assert decide(policy, signed("/books/a.jpg")) is Reason.MISSING  # never expires


def test_max_ttl_signing_never_makes_urls_without_expiry(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, md5_source("max_ttl = 3600")), environ={})
    url = sign_url(settings, "books", "/books/a.jpg", now=NOW)
    assert f"expires={NOW + 3600}" in url
    assert decide(Decider(settings), url) is Reason.OK


def test_md5_token_can_require_expires(tmp_path: Path) -> None:
    policy = decider(tmp_path, "require_expires = true")
    assert decide(policy, signed("/books/a.jpg")) is Reason.MISSING
    assert decide(policy, signed(f"/books/a.jpg?expires={NOW + 60}")) is Reason.OK
    with pytest.raises(SigningError, match="requires an expiry"):
        sign_url(policy.settings, "books", "/books/a.jpg", now=NOW)
    assert "expires=" in sign_url(policy.settings, "books", "/books/a.jpg", now=NOW, expires_in=60)


def test_require_expires_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, md5_source('require_expires = "yes"')), environ={})
    assert any(".require_expires" in problem for problem in caught.value.problems)


# --- 6. a key file changed while a reload reads it is reloaded again -----------------------


async def test_a_key_changed_during_a_reload_is_not_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "books-token"
    key.write_text("token-one-0123456789")
    path = write(
        tmp_path, md5_source().replace('secret = "books-token-0123"', 'secret_file = "books-token"')
    )
    state = create_state(config.load(path), registry=CollectorRegistry(), log=JsonLog(io.BytesIO()))
    real_load = config.load
    loads: list[str] = []

    def load_while_the_secret_rotates(file: str) -> Settings:
        settings = real_load(file)
        loads.append(file)
        if len(loads) == 1:  # the Secret is replaced just after this reload read it
            key.write_text("token-three-written-during-the-reload")
        return settings

    monkeypatch.setattr(config, "load", load_while_the_secret_rotates)
    # The change that starts the first reload (another size: coarse mtimes cannot hide it).
    key.write_text("token-two-a-little-longer")
    watcher = asyncio.create_task(Reloader(state, str(path)).watch(interval=0.01))
    try:
        for _ in range(500):
            if len(loads) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
    books = state.decider.settings.source("books")
    assert books is not None and books.verifier is not None
    # The token that replaced the one being read is what serves, not the replaced one.
    assert [key.material for key in books.verifier.key_material()] == [
        b"token-three-written-during-the-reload"
    ]


# --- 7. what "one spelling" holds exactly (the README lists the twins real signers need) ----


def test_the_spellings_a_signed_cloudfront_url_still_has(tmp_path: Path) -> None:
    private, public = new_key_pair("ecdsa")
    (tmp_path / "k.pem").write_bytes(private)
    (tmp_path / "k.pub.pem").write_bytes(public)
    path = write(
        tmp_path,
        '[[sources]]\nname = "acme"\nscheme = "cloudfront"\npath_prefix = "/acme/"\n'
        'public_origin = "https://cdn.example.com"\n[[sources.keys]]\nid = "KEC"\n'
        'public_key_file = "k.pub.pem"\nprivate_key_file = "k.pem"\n',
    )
    policy = Decider(config.load(path, environ={}))
    url = sign_url(policy.settings, "acme", "https://cdn.example.com/acme/a.jpg?w=1", now=NOW,
                   expires_in=600).removeprefix("https://cdn.example.com")  # fmt: skip
    assert decide(policy, url) is Reason.OK
    path_part, _, query = url.partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&"))
    # Parameters in another order (AWS SDKs differ): the same grant.
    signature, expires = params["Signature"], params["Expires"]
    reordered = f"{path_part}?Key-Pair-Id=KEC&w=1&Signature={signature}&Expires={expires}"
    assert decide(policy, reordered) is Reason.OK
    # ECDSA's (r, n - s) twin: malleable by design, so it verifies too.
    r, s = decode_dss_signature(b64decode(params["Signature"]) or b"")
    twin = b64encode(encode_dss_signature(r, SECP256R1_ORDER - s))
    assert decide(policy, url.replace(params["Signature"], twin)) is Reason.OK
    # And a spelling no signer makes: a repeated signing parameter.
    assert decide(policy, url + "&Expires=" + params["Expires"]) is Reason.NON_CANONICAL


# --- SPEC §9: a scheme's secret setting (Akamai's salt) from a file, the environment or inline


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
    settings = config.load(write(tmp_path, akamai_source(salt_line)), environ=environ)
    edge = settings.source("edge")
    assert edge is not None and isinstance(edge.verifier, AkamaiSource)
    assert edge.verifier.settings.salt == "s4lt-value"
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
        config.load(write(tmp_path, akamai_source(salt_line)), environ={})
    assert any(problem in found for found in caught.value.problems), caught.value.problems


def test_secret_setting_of_another_scheme_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, md5_source('salt_file = "salt.txt"')), environ={})
    assert any("unknown field 'salt_file'" in problem for problem in caught.value.problems)


# --- weak settings are warned about (check-config), never silently accepted ---------------


def test_check_config_warns_about_short_and_inline_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "strong-token").write_text("x" * 43 + "\n")
    path = write(
        tmp_path,
        md5_source().replace('secret = "books-token-0123"', 'secret = "a"')
        + md5_source(name="strong").replace(
            'secret = "books-token-0123"', 'secret_file = "strong-token"'
        ),
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
        md5_source(name="open")
        + md5_source("max_ttl = 86400\n", name="capped")
        + md5_source("require_expires = true\n", name="required")
        + md5_source('mode = "off"\n', name="unsigned"),
    )
    assert main(["check-config", "-c", str(path)]) == 0  # a warning, not an error
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning:" in line]
    never = [line for line in warnings if "without an expiry" in line]
    assert len(never) == 1 and "'open'" in never[0] and "max_ttl" in never[0], warnings


def test_sign_says_when_the_url_it_made_never_expires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, md5_source())
    assert main(["sign", "-c", str(path), "--source", "books", "/books/a.jpg"]) == 0
    forever = capsys.readouterr()
    assert "expires=" not in forever.out and "never expires" in forever.err
    args = ["sign", "-c", str(path), "--source", "books", "--expires-in", "60", "/books/a.jpg"]
    assert main(args) == 0
    bounded = capsys.readouterr()
    assert "expires=" in bounded.out and bounded.err == ""
