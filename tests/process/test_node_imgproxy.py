"""The Node.js ``imgproxy`` signer: the imgproxy package's URLs and ``sidecar sign``'s,
byte for byte, each truncated size included, and accepted by the sidecar's verifier.

Runs the machine's ``node`` (``scripts/setup`` installs it) on ``examples/node/imgproxy.mjs``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess

import pytest
from imgproxy import ImgProxy  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar.core.verdict import Reason
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.paths import REPO
from tests.support.scheme_contract import NOW, build_source, sign, verify

SIGNER = REPO / "examples" / "node" / "imgproxy.mjs"
KEY, SALT = secrets.token_hex(32), secrets.token_hex(32)


def node_sign(rest: str, **options: object) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    script = (
        f"import {{ signImgproxy }} from {json.dumps(SIGNER.as_uri())};"
        f"console.log(signImgproxy({json.dumps(rest)}, {json.dumps(options)}));"
    )
    return subprocess.run([binary, "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip


def signed_by_node(rest: str, **options: object) -> str:
    result = node_sign(rest, key=KEY, salt=SALT, **options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def verifier(size: int = 32) -> SourceScheme:
    key = KeyMaterial("k", secret=KEY.encode(), salt=SALT.encode())
    return build_source("imgproxy", [key], prefix="/img/", settings={"signature_size": size})


@pytest.mark.parametrize("options", [(), ("q:80", "bl:2")])
def test_node_writes_the_imgproxy_packages_url(options: tuple[str, ...]) -> None:
    library = ImgProxy("https://origin.example.com/a.jpg", key=KEY, salt=SALT, width=90)(*options)
    assert signed_by_node(library.split("/", 2)[2]) == library
    assert verify(verifier(), "/img" + library).reason is Reason.OK


@pytest.mark.parametrize("size", [1, 8, 31, 32])
def test_node_writes_what_sidecar_sign_writes(size: int) -> None:
    rest = "rs:fit:300:300/plain/books/caf%C3%A9.jpg@webp"
    ours = sign(verifier(size), "/img/" + rest, expires=NOW + 60)
    node = signed_by_node(rest, signatureSize=size, expires=NOW + 60)
    assert "/img" + node == ours
    assert verify(verifier(size), ours).reason is Reason.OK


@pytest.mark.parametrize(
    ("rest", "options", "problem"),
    [
        ("/a.jpg", {}, "no leading /"),
        ("a.jpg?v=1", {}, "no query"),
        ("a.jpg", {"signatureSize": 33}, "1 to 32"),
    ],
)
def test_node_refuses_what_could_never_verify(rest: str, options: dict[str, object],
                                              problem: str) -> None:  # fmt: skip
    result = node_sign(rest, key=KEY, salt=SALT, **options)
    assert result.returncode != 0
    assert problem in result.stderr
