"""``POST /public/team/{teamId}/revoke`` against the real sidecar process with ``[state]
path`` (a real SQLite file): a team takes back a grant or a prefix of its own source and
``/verify`` denies it ``revoked`` within a second; nothing outside its source; strict
bodies; 409 without ``[state]``; 503 while the store is locked (or a redis-server is
down), and the same call succeeds once it is back. Through the Python client and the Node
example too."""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sidecar.client import SigningClient
from sidecar.devtools.local_stack import LocalStack
from sidecar.errors import SigningApiError
from tests.support.configs import md5_source, sidecar_config, source_toml, team_toml
from tests.support.metrics import sample
from tests.support.paths import REPO
from tests.support.redis_server import running_redis, wait_until
from tests.support.requests import nginx_headers, request, verify
from tests.support.stacks import StackFactory, running_stack
from tests.support.tokens import BOOKS_TOKEN, md5_signed, signature_of

API_KEY = "k-revoke-" + "a" * 32
OTHER_KEY = "k-revoke-" + "b" * 32
PUBLIC_TOKEN = "public-token-0123456789"
GALLERY_KEY = "k-revoke-" + "c" * 32
ORIGIN = "https://image.example.com"
SOURCES = (
    md5_source("books", "/books/", {"current": BOOKS_TOKEN}),
    md5_source("public", "/public/", {"p": PUBLIC_TOKEN}),
    source_toml(
        "gallery",
        "gcdn",
        "/gallery/",
        {"g1": {"secret": "N3yAAtXbJ8oKd1_qzR0v-w=="}},
        public_origin=ORIGIN,
        accept_cookies=True,
    ),
)
TEAMS = [team_toml("acme", "books", API_KEY), team_toml("other", "public", OTHER_KEY),
         team_toml("gallery", "gallery", GALLERY_KEY)]  # fmt: skip
COUNTED = "signed_url_signing_requests_total"
RECORD_FIELDS = {"id", "source", "kind", "value", "until", "created"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("signing-revoke")
    config = sidecar_config(*SOURCES, server={"clock_skew": 0}, signing={}, teams=TEAMS)
    config += f'\n[state]\npath = "{folder / "state.db"}"\n'
    with running_stack(folder, config, nginx=False) as running:
        yield running


def revoke(
    stack: LocalStack, body: object, *, team: str = "acme", api_key: str | None = API_KEY
) -> tuple[int, dict[str, object], dict[str, str]]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers: dict[str, str | bytes] = {"Content-Type": "application/json",
                                       "Content-Length": str(len(data))}  # fmt: skip
    if api_key is not None:
        headers["X-Api-Key"] = api_key
    reply = _post(stack, f"/public/team/{team}/revoke", data, headers)
    answer = orjson.loads(reply[1])
    assert isinstance(answer, dict)
    return reply[0], answer, reply[2]


def _post(
    stack: LocalStack, path: str, data: bytes, headers: dict[str, str | bytes]
) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", stack.signing_port, timeout=10)
    try:
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def reason(stack: LocalStack, uri: str) -> str:
    return verify(stack, uri).headers["x-signature-result"]


def until_revoked(stack: LocalStack, uri: str, timeout: float = 1.0) -> float:
    started = time.monotonic()
    while (got := reason(stack, uri)) != "revoked":
        assert time.monotonic() - started < timeout, f"still {got} after {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_team_revokes_a_url_through_the_client_and_verify_denies_it_within_a_second(
    stack: LocalStack,
) -> None:
    uri = md5_signed("/books/revoked-by-api.jpg?w=1")
    assert reason(stack, uri) == "ok"

    async def call() -> dict[str, object]:
        async with SigningClient(stack.signing_url, "acme", API_KEY) as client:
            return await client.revoke(uri)

    record = asyncio.run(call())
    assert set(record) == RECORD_FIELDS
    assert (record["source"], record["kind"], record["until"]) == ("books", "grant", None)
    assert signature_of(uri) not in orjson.dumps(record).decode()  # its digest, not itself
    assert until_revoked(stack, uri) < 1.0
    assert reason(stack, md5_signed("/books/revoked-by-api.jpg?w=2")) == "ok"


def test_a_prefix_inside_the_team_source_is_revoked_and_one_outside_is_refused(
    stack: LocalStack,
) -> None:
    status, record, _ = revoke(stack, {"prefix": "/books/withdrawn/", "until": time.time() + 600})
    assert status == 200, record
    assert (record["kind"], record["value"]) == ("prefix", "/books/withdrawn/")
    assert until_revoked(stack, md5_signed("/books/withdrawn/a.jpg")) < 1.0
    assert reason(stack, md5_signed("/books/withdrawn-not/a.jpg")) == "ok"  # segment boundary
    status, answer, _ = revoke(stack, {"prefix": "/public/"})
    assert status == 400 and "path_prefix /books/" in str(answer["error"])
    other_team_url = md5_signed("/public/a.jpg", PUBLIC_TOKEN)
    status, answer, _ = revoke(stack, {"url": other_team_url})
    assert status == 400 and answer["error"] == "no source of this config serves that URL"
    assert reason(stack, other_team_url) == "ok"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "JSON object"),
        ([md5_signed("/books/a.jpg")], "JSON object"),
        ({}, '"url" or a "prefix"'),
        ({"url": md5_signed("/books/a.jpg"), "prefix": "/books/"}, "takes only"),
        ({"url": md5_signed("/books/a.jpg"), "key": "current"}, "takes only"),
        ({"prefix": "/books/", "cookies": "a=b"}, "takes only"),
        ({"url": 7}, '"url" must be'),
        ({"url": md5_signed("/books/a.jpg"), "until": True}, '"until" must be'),
        ({"url": md5_signed("/books/a.jpg"), "until": "tomorrow"}, '"until" must be'),
        ({"url": md5_signed("/books/a.jpg"), "until": 1000}, "already ended"),
        ({"url": md5_signed("/books/a.jpg"), "client_ip": "nowhere"}, '"client_ip" must be'),
        ({"url": "/books/a.jpg?s=" + "0" * 32}, "nothing to revoke"),
        ({"prefix": "/books/../etc/"}, "canonical path"),
    ],
)
def test_a_bad_body_is_a_400_that_says_why(stack: LocalStack, body: object, says: str) -> None:
    status, answer, headers = revoke(stack, body)
    assert status == 400 and says in str(answer["error"]), answer
    assert headers["content-type"].startswith("application/json")


def test_keys_and_teams_are_checked_as_the_sign_endpoints_check_them(stack: LocalStack) -> None:
    body = {"url": md5_signed("/books/keys.jpg")}
    assert revoke(stack, body, api_key=None)[:2] == (401, {"error": "missing or wrong API key"})
    assert revoke(stack, body, api_key=OTHER_KEY)[0] == 401  # another team's key
    assert revoke(stack, body, team="nobody")[:2] == (404, {"error": "unknown team"})
    data = orjson.dumps(body)
    repeated = _post(stack, "/public/team/acme/revoke?a=1&a=2", data,
                     {"X-Api-Key": API_KEY, "Content-Length": str(len(data))})  # fmt: skip
    assert repeated[0] == 400 and b"repeated" in repeated[1]
    assert reason(stack, body["url"]) == "ok"  # none of these revoked anything


def test_a_locked_store_is_a_503_and_the_same_call_succeeds_once_it_is_free(
    stack: LocalStack,
) -> None:
    uri = md5_signed("/books/locked.jpg")
    holder = sqlite3.connect(stack.folder / "state.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long writer holds it
        status, answer, headers = revoke(stack, {"url": uri})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (status, headers.get("retry-after")) == (503, "1"), answer
    assert "state.db" not in str(answer["error"])  # where the store lives stays in the log
    assert sample(stack, COUNTED, team="acme", result="unavailable") == 1.0
    assert reason(stack, uri) == "ok"
    status, record, _ = revoke(stack, {"url": uri})
    assert status == 200, record
    assert until_revoked(stack, uri) < 1.0


def test_a_cookie_grant_is_revoked_with_a_url_it_opens(stack: LocalStack) -> None:
    query = urllib.parse.urlencode({"url": f"{ORIGIN}/gallery/", "cookies": "true"})
    asked = urllib.request.Request(f"{stack.signing_url}/public/team/gallery/signUrl?{query}",
                                   headers={"X-Api-Key": GALLERY_KEY})  # fmt: skip
    with urllib.request.urlopen(asked, timeout=10) as answer:
        set_cookies = orjson.loads(answer.read())["cookies"]
    cookie = "; ".join(value.partition(";")[0] for value in set_cookies)

    def with_cookie(uri: str) -> str:
        headers = {**nginx_headers(uri), "Cookie": cookie}
        return request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=headers).headers[
            "x-signature-result"
        ]

    assert with_cookie("/gallery/a.png") == "ok"
    body = {"url": f"{ORIGIN}/gallery/b.png", "cookies": cookie}
    assert revoke(stack, body)[0] == 400  # acme's team: not its source
    status, record, _ = revoke(stack, body, team="gallery", api_key=GALLERY_KEY)
    assert status == 200 and record["kind"] == "grant", record
    started = time.monotonic()
    while with_cookie("/gallery/a.png") != "revoked":
        assert time.monotonic() - started < 1.0, "the cookie grant still opens the gallery"
        time.sleep(0.01)


def test_the_node_example_revokes_a_url(stack: LocalStack) -> None:
    uri = md5_signed("/books/node.jpg")
    node = shutil.which("node")
    assert node is not None, "node is required (scripts/setup installs it)"
    done = subprocess.run(
        [node, str(REPO / "examples/node/cli.mjs"), "revoke", stack.signing_url, "acme", uri],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "SIGNING_API_KEY": API_KEY},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = orjson.loads(done.stdout)
    assert (record["source"], record["kind"]) == ("books", "grant")
    assert until_revoked(stack, uri) < 1.0


def test_without_state_revoking_is_a_409_that_names_state(shared_stacks: StackFactory) -> None:
    stateless = shared_stacks(sidecar_config(*SOURCES, signing={}, teams=TEAMS), nginx=False)
    before = sample(stateless, COUNTED, team="acme", result="no_state")
    status, answer, _ = revoke(stateless, {"url": md5_signed("/books/a.jpg")})
    assert status == 409 and "[state]" in str(answer["error"])
    assert sample(stateless, COUNTED, team="acme", result="no_state") == before + 1

    async def call() -> None:
        async with SigningClient(stateless.signing_url, "acme", API_KEY) as client:
            await client.revoke(prefix="/books/")

    with pytest.raises(SigningApiError) as raised:
        asyncio.run(call())
    assert raised.value.status == 409


def test_through_redis_a_revocation_applies_and_a_server_down_is_a_503_until_it_returns(
    tmp_path: Path,
) -> None:
    with running_redis(tmp_path / "redis") as redis:
        config = sidecar_config(*SOURCES, server={"clock_skew": 0}, signing={}, teams=TEAMS)
        config += f'\n[state]\nurl = "{redis.url}"\n'
        with running_stack(tmp_path / "sidecar", config, nginx=False) as fleet_member:
            uri = md5_signed("/books/redis.jpg")
            status, record, _ = revoke(fleet_member, {"url": uri})
            assert status == 200, record
            assert until_revoked(fleet_member, uri) < 1.0
            redis.kill()
            down = md5_signed("/books/redis-down.jpg")
            started = time.monotonic()
            status, answer, headers = revoke(fleet_member, {"url": down})
            assert (status, headers.get("retry-after")) == (503, "1"), answer
            assert time.monotonic() - started < 3.5  # bounded, whatever the client does
            assert str(redis.port) not in str(answer["error"])
            redis.start()  # the same port and data: the store is back, no restart of ours
            wait_until(lambda: revoke(fleet_member, {"url": down})[0] == 200, timeout=10.0)
            assert until_revoked(fleet_member, down) < 1.0
            assert reason(fleet_member, uri) == "revoked"  # kept through the outage
