"""Scheme ``nginx-secure-link``: templates whose variables run together.

With nothing between ``$uri`` and ``$remote_addr`` (nginx's own example, the default
``secure_link_md5``), ``/a.jpg`` + ``11.2.3.4`` and ``/a.jpg1`` + ``1.2.3.4`` hash the same
text: one link opens another file for another client. nginx says "1" to both (the oracle
test in tests/process/test_e2e_nginx_secure_link.py asks it), so the sidecar keeps that
answer, and ``check-config`` warns about the template instead.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from sidecar import schemes
from sidecar.cli import main
from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme, VerifyRequest
from tests.support.config_files import write
from tests.support.configs import source_toml
from tests.support.scheme_contract import build_source, parse, sign

NOW = 1_900_000_000
SECRET = "s3cret-link-key"
DEFAULT = "$secure_link_expires$uri$remote_addr $secret"
SAFE = "$secure_link_expires$uri $remote_addr $secret"


def source(template: str) -> SourceScheme:
    keys = [KeyMaterial("k", secret=SECRET.encode())]
    return build_source("nginx-secure-link", keys, settings={"secure_link_md5": template})


def opens(verifier: SourceScheme, uri: str, client_ip: str) -> Reason:
    return verifier.verify(VerifyRequest(parse(uri), NOW, 0, client_ip)).reason


def test_the_ambiguity_is_real_under_the_default_template() -> None:
    verifier = source(DEFAULT)
    signed = sign(verifier, "/a.jpg", expires=NOW + 60, client_ip="11.2.3.4")
    assert opens(verifier, signed, "11.2.3.4") is Reason.OK
    moved = signed.replace("/a.jpg?", "/a.jpg1?")
    assert opens(verifier, moved, "1.2.3.4") is Reason.OK  # another file, another client
    # The hash nginx's docs recipe computes for the other pair is the one the link carries.
    other = hashlib.md5(f"{NOW + 60}/a.jpg11.2.3.4 {SECRET}".encode()).digest()
    assert f"md5={base64.urlsafe_b64encode(other).decode().rstrip('=')}&" in moved


def test_a_separator_removes_it() -> None:
    verifier = source(SAFE)
    signed = sign(verifier, "/a.jpg", expires=NOW + 60, client_ip="11.2.3.4")
    assert opens(verifier, signed, "11.2.3.4") is Reason.OK
    moved = signed.replace("/a.jpg?", "/a.jpg1?")
    assert opens(verifier, moved, "1.2.3.4") is Reason.INVALID


def warnings_for(template: str) -> list[tuple[str, str]]:
    scheme = schemes.get("nginx-secure-link")
    assert scheme is not None
    built, problems = scheme.settings_from({"secure_link_md5": template})
    assert not problems, problems
    return scheme.settings_warnings(built)


@pytest.mark.parametrize(
    ("template", "pair"),
    [
        (DEFAULT, "$uri from $remote_addr"),
        ("$secure_link_expires$remote_addr$uri $secret", "$secure_link_expires from $remote_addr"),
        ("${secure_link_expires}${URI}${host} $secret", "$uri from $host"),
        ("${secure_link_expires}${host}$uri $secret", "$secure_link_expires from $host"),
        ("$secure_link_expires$uri$arg_w $secret", "$uri from $arg_w"),
        ("$secure_link_expires $arg_w$uri $secret", "$arg_w from $uri"),
        ("$secure_link_expires$arg_w$arg_h $uri $secret", "$secure_link_expires from $arg_w"),
    ],
)
def test_adjacent_variables_that_can_run_together_are_warned_about(
    template: str, pair: str
) -> None:
    found = warnings_for(template)
    assert found and {name for name, _ in found} == {"secure_link_md5"}
    assert any(f"nothing separates {pair}:" in message for _, message in found), found


@pytest.mark.parametrize(
    "template",
    [
        SAFE,
        "$secure_link_expires$uri $secret",
        "$secure_link_expires$uri$secret",  # the key's value never moves
        "$secure_link_expires $host$URI $secret",  # "/" begins $uri, never in the others
        "$remote_addr$uri-$secure_link_expires $secret",
        "$secure_link_expires|$uri|$arg_w|$arg_h $secret",
    ],
)
def test_separated_or_unambiguous_templates_are_not(template: str) -> None:
    assert warnings_for(template) == []


def test_check_config_prints_the_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link, safe = {"k": {"secret": "x" * 43}}, {"k": {"secret": "y" * 43}}
    path = write(
        tmp_path,
        source_toml("link", "nginx-secure-link", "/link/", link)  # the default template
        + source_toml("safe", "nginx-secure-link", "/safe/", safe, secure_link_md5=SAFE),
    )
    assert main(["check-config", "-c", str(path)]) == 0  # a warning, not an error
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "warning:" in line]
    ambiguous = [line for line in warnings if "secure_link_md5" in line]
    assert len(ambiguous) == 1, warnings
    assert (
        "sources[0] 'link': secure_link_md5: nothing separates $uri from $remote_addr"
        in (ambiguous[0])
    )
    assert "x" * 43 not in out and "y" * 43 not in out
