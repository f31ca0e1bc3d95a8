"""The Node.js example ``examples/node/jwt/jwt.mjs``: tokens minted by the ``jose`` npm
package (installed by scripts/setup) for every algorithm, served by the real nginx and
sidecar; and a token for another path is refused."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import TomlValue, sidecar_config, source_toml
from tests.support.jwt_keys import ALGORITHMS, JwtTestKey, key_for
from tests.support.paths import REPO
from tests.support.requests import HOST, fetch_with_reason
from tests.support.stacks import StackFactory, any_image_in, image_bytes

EXAMPLE = REPO / "examples" / "node" / "jwt" / "jwt.mjs"
ORIGIN = f"https://{HOST}"
IMAGE = "/books/x.png"


@pytest.fixture(scope="module")
def keys_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node-jwt")


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory, keys_folder: Path) -> LocalStack:
    keys: dict[str, dict[str, TomlValue]] = {}
    for algorithm in ALGORITHMS:
        key = key_for(algorithm, f"node-{algorithm}")
        keys[key.kid] = dict(key.toml(keys_folder))
    source = source_toml("books", "jwt", "/books/", keys, max_ttl=3600)
    return shared_stacks(sidecar_config(source, server={"clock_skew": 0}))


def minted(key: JwtTestKey, folder: Path, scope: str, expires: int) -> str:
    """The signed URL the example prints, given the key as a file (PEM) or text (secret)."""
    node = shutil.which("node")
    assert node is not None, "node is required (scripts/setup installs it)"
    material = key.secret.decode() if key.secret is not None else str(folder / f"{key.kid}.pem")
    if key.private_pem is not None:
        (folder / f"{key.kid}.pem").write_bytes(key.private_pem)
    args = [node, str(EXAMPLE), ORIGIN + IMAGE + "?w=1", key.algorithm, key.kid, material,
            scope, str(expires)]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_jose_tokens_serve_the_image(stack: LocalStack, keys_folder: Path, algorithm: str) -> None:
    key = key_for(algorithm, f"node-{algorithm}")
    url = minted(key, keys_folder, "/books/", int(time.time()) + 300)
    token = url.partition("token=")[2]
    header = json.loads(_b64(token.split(".")[0]))
    assert header == {"alg": algorithm, "kid": key.kid}  # jose's own header, not ours
    status, body, reason = fetch_with_reason(stack, url.removeprefix(ORIGIN))
    assert (status, reason, body) == (200, "ok", image_bytes(stack, IMAGE))


def test_a_jose_token_for_another_path_is_refused(stack: LocalStack, keys_folder: Path) -> None:
    key = key_for("ES256", "node-ES256")
    url = minted(key, keys_folder, "/books/other.png", int(time.time()) + 300)
    status, body, reason = fetch_with_reason(stack, url.removeprefix(ORIGIN))
    assert (status, reason) == (401, "invalid") and not any_image_in(body, stack)


def test_an_expired_jose_token_is_refused(stack: LocalStack, keys_folder: Path) -> None:
    key = key_for("HS256", "node-HS256")
    url = minted(key, keys_folder, "/books/", int(time.time()) - 5)
    status, _, reason = fetch_with_reason(stack, url.removeprefix(ORIGIN))
    assert (status, reason) == (401, "expired")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
