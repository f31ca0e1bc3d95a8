"""The signing API's per-key rate limit, against the real signing listener: a key calling
faster than ``[signing] rate_limit`` gets 429 with ``Retry-After`` and a JSON error, other
keys are untouched, refusals are counted, and the bucket refills."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.errors import ConfigError
from sidecar.policy.settings import SIGNING_RATE_LIMIT
from tests.support.configs import md5_source, sidecar_config, team_toml
from tests.support.metrics import sample
from tests.support.stacks import running_stack

KEY, SECOND_KEY, OTHER_KEY = "k-" + "a" * 40, "k-" + "b" * 40, "k-" + "c" * 40
RATE = 1  # a second, so bursts of 2
BOOKS = md5_source("books", "/books/", {"k": "books-token-0123456789"})
CONFIG = sidecar_config(
    BOOKS,
    signing={"rate_limit": RATE},
    teams=[team_toml("acme", "books", KEY, SECOND_KEY), team_toml("other", "books", OTHER_KEY)],
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("ratelimit"), CONFIG, nginx=False) as running:
        yield running


def call(stack: LocalStack, team: str, key: str) -> tuple[int, dict[str, str], bytes]:
    query = urllib.parse.urlencode({"url": "https://image.example.com/books/a.png"})
    request = urllib.request.Request(
        f"{stack.signing_url}/public/team/{team}/signUrl?{query}", headers={"X-Api-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_key_over_its_rate_is_refused_with_retry_after(stack: LocalStack) -> None:
    started = time.monotonic()
    answers = [call(stack, "acme", KEY) for _ in range(8)]
    elapsed = time.monotonic() - started
    allowed = sum(status == 200 for status, _, _ in answers)
    refused = [(headers, body) for status, headers, body in answers if status == 429]
    # A burst of 2, then 1 a second: never more than that went through.
    assert 2 <= allowed <= 2 + RATE * elapsed + 1
    assert refused and allowed + len(refused) == len(answers)
    for headers, body in refused:
        assert orjson.loads(body) == {"error": "too many requests for this API key: retry later"}
        assert headers["Retry-After"] == "1"
        assert headers["Content-Type"].startswith("application/json")
        assert headers["Cache-Control"] == "no-store"
    assert sample(
        stack, "signed_url_signing_requests_total", team="acme", result="rate_limited"
    ) == len(refused)
    # Each key has its own bucket: the team's second key and another team are untouched.
    assert call(stack, "acme", SECOND_KEY)[0] == 200
    assert call(stack, "other", OTHER_KEY)[0] == 200
    # A wrong key is refused as unauthorized, never as rate limited.
    assert call(stack, "acme", "k-wrong")[0] == 401
    # The bucket refills: the key is served again within its Retry-After (and a margin).
    deadline = time.monotonic() + 3
    while (status := call(stack, "acme", KEY)[0]) == 429 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200


def test_rate_limit_config(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(BOOKS, signing={}))
    assert config.load(path).signing_rate_limit == SIGNING_RATE_LIMIT == 50  # on by default
    path.write_text(sidecar_config(BOOKS, signing={"rate_limit": 0}))
    assert config.load(path).signing_rate_limit == 0  # 0: no limit
    for bad in ("-1", '"fast"', "100001"):
        path.write_text(
            sidecar_config(BOOKS, signing={}).replace(
                "[signing]\n", f"[signing]\nrate_limit = {bad}\n"
            )
        )
        with pytest.raises(ConfigError) as refused:
            config.load(path)
        assert any("rate_limit" in problem for problem in refused.value.problems)
