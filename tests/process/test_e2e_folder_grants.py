"""``folder_grant`` end to end (docs/folder-grants.md): a URL-signed playlist answered
through the shipped nginx with the scheme's own cookies for its folder, for each cookie
scheme (cloudfront's three, gcdn's and akamai's one); the cookies open that folder and
nothing beside it, end with the URL, and are never answered to a bad, expired or crafted
playlist URL, nor renewed by a cookie; a gallery's signed index opens its images."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign
from sidecar.schemes.base import Grant
from tests.support.folder_grants import (
    ORIGIN,
    cookie_header,
    get,
    granting_stack,
    signed,
    write,
)
from tests.support.metrics import verifications_total

PLAYLIST = b"#EXTM3U\n#EXTINF:1,\nseg0.ts\n#EXTINF:1,\nsub/seg1.ts\n"
COOKIES = {"cf": 3, "g": 1, "ak": 1}


def files(prefix: str) -> dict[str, bytes]:
    return {
        f"{prefix}v1/index.m3u8": PLAYLIST,
        f"{prefix}v1/seg0.ts": f"{prefix} v1 segment 0".encode(),
        f"{prefix}v1/sub/seg1.ts": f"{prefix} v1 segment 1".encode(),
        f"{prefix}v1/sub/index.m3u8": PLAYLIST,
        f"{prefix}v2/index.m3u8": PLAYLIST,
        f"{prefix}v2/seg0.ts": f"{prefix} v2 segment 0".encode(),
        f"{prefix}v1-other/seg0.ts": f"{prefix} a sibling folder".encode(),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with granting_stack(tmp_path_factory.mktemp("folder-grants")) as running:
        for prefix in ("/cf/", "/g/", "/ak/"):
            write(running, files(prefix))
        yield running


@pytest.fixture(params=sorted(COOKIES))
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def granted(
    stack: LocalStack,
    source: str,
    folder: str = "v1",
    expires_in: int = 600,
    now: float | None = None,
) -> list[str]:
    uri = signed(stack, source, f"/{source}/{folder}/index.m3u8", expires_in=expires_in, now=now)
    answer = get(stack, uri)
    assert (answer.status, answer.body, answer.reason) == (200, PLAYLIST, "ok")
    return answer.set_cookies


def test_a_signed_playlist_grants_its_folder_until_the_url_ends(
    stack: LocalStack, source: str
) -> None:
    now = time.time()  # the URL's expiry is counted from it: ends at int(now) + 600
    set_cookies = granted(stack, source, now=now)
    expires = int(now) + 600
    assert len(set_cookies) == COOKIES[source]
    for value in set_cookies:
        attributes = value.split("; ")[1:]
        assert attributes == [f"Path=/{source}/v1/", f"Expires={formatdate(expires, usegmt=True)}",
                              "Secure", "HttpOnly", "SameSite=Lax"]  # fmt: skip
    assert _signed_expiry(source, set_cookies) == expires  # the grant itself ends then too
    # The cookies `sidecar sign --cookies --prefix /<source>/v1/` makes, byte for byte.
    settings, folder = config.load(stack.config_path), f"/{source}/v1/"
    made = sign(settings, source, ORIGIN + folder, Grant(prefix=folder, cookies=True), now=now,
                expires_in=600)  # fmt: skip
    assert set_cookies == list(made.cookies)
    cookies = cookie_header(set_cookies)
    for name in ("v1/seg0.ts", "v1/sub/seg1.ts"):
        assert (
            get(stack, f"/{source}/{name}", cookies).body
            == files(f"/{source}/")[f"/{source}/{name}"]
        )
    for outside in ("v2/seg0.ts", "v1-other/seg0.ts"):
        answer = get(stack, f"/{source}/{outside}", cookies)
        assert (answer.status, answer.set_cookies) == (403, []), outside
    assert get(stack, f"/{source}/v1/seg0.ts").status == 403  # without the cookie


def _signed_expiry(source: str, set_cookies: list[str]) -> int:
    values = dict(value.split(";", 1)[0].split("=", 1) for value in set_cookies)
    if source == "cf":
        policy = values["CloudFront-Policy"].replace("-", "+").replace("_", "=").replace("~", "/")
        statement = json.loads(base64.b64decode(policy))["Statement"][0]
        assert statement["Resource"] == "https://image.example.com/cf/v1/*"
        return int(statement["Condition"]["DateLessThan"]["AWS:EpochTime"])
    text = values["Cloud-CDN-Cookie" if source == "g" else "__token__"]
    field = "Expires=" if source == "g" else "exp="
    return int(text.split(field, 1)[1].split(":" if source == "g" else "~", 1)[0])


def test_bad_playlist_urls_get_the_denial_and_no_cookie(stack: LocalStack, source: str) -> None:
    uri = signed(stack, source, f"/{source}/v1/index.m3u8")
    path, query = uri.split("?", 1)
    at = uri.index("hmac=" if source == "ak" else "Signature=") + 10  # inside the signature
    tampered = uri[:at] + ("a" if uri[at] != "a" else "b") + uri[at + 1 :]
    expired = signed(stack, source, f"/{source}/v1/index.m3u8", now=time.time() - 700)
    crafted = [f"/{source}/v2/../v1/index.m3u8?{query}", f"/{source}/v1%2Findex.m3u8?{query}",
               f"/{source}/v1/.%2E/v1/index.m3u8?{query}"]  # fmt: skip
    for bad, reason in [
        (tampered, None),
        (expired, "expired"),
        *((c, "non_canonical") for c in crafted),
    ]:
        answer = get(stack, bad)
        assert (answer.status, answer.set_cookies) == (403, []), bad
        assert answer.reason == (reason or "invalid"), bad
    assert path.endswith("/v1/index.m3u8")


def test_the_url_decides_over_a_cookie_for_another_folder(stack: LocalStack, source: str) -> None:
    other = cookie_header(granted(stack, source, "v2"))
    answer = get(stack, signed(stack, source, f"/{source}/v1/index.m3u8"), other)
    assert answer.status == 200
    assert {value.split("; ")[1] for value in answer.set_cookies} == {f"Path=/{source}/v1/"}
    unsigned = get(stack, f"/{source}/v1/index.m3u8", other)
    assert (unsigned.status, unsigned.set_cookies) == (403, [])
    assert get(stack, f"/{source}/v2/seg0.ts", other).status == 200  # its own folder still


def test_a_playlist_won_by_a_cookie_grants_nothing_new(stack: LocalStack, source: str) -> None:
    cookies = cookie_header(granted(stack, source))
    answer = get(stack, f"/{source}/v1/sub/index.m3u8", cookies)
    assert (answer.status, answer.body, answer.set_cookies) == (200, PLAYLIST, [])


def test_a_folder_its_cookie_cannot_name_alone_gets_no_cookie(stack: LocalStack) -> None:
    # akamai's ACL is a glob: a grant for "/ak/a*b/" would open "/ak/aXb/" too; and it
    # takes no '%'. The URL's own allow stands, without a grant.
    write(stack, {"/ak/a*b/index.m3u8": PLAYLIST, "/ak/a b/index.m3u8": PLAYLIST})
    for path in ("/ak/a*b/index.m3u8", "/ak/a%20b/index.m3u8"):
        answer = get(stack, signed(stack, "ak", path))
        assert (answer.status, answer.body, answer.set_cookies) == (200, PLAYLIST, []), path


@pytest.mark.parametrize("source", ["cf", "ak"])
def test_a_url_bound_to_the_clients_address_grants_a_cookie_bound_to_it(
    stack: LocalStack, source: str
) -> None:
    # nginx passes $remote_addr (127.0.0.1 here): the cookie never grants more than the URL.
    answer = get(stack, signed(stack, source, f"/{source}/v1/index.m3u8", client_ip="127.0.0.1"))
    assert answer.status == 200
    values = dict(value.split(";", 1)[0].split("=", 1) for value in answer.set_cookies)
    if source == "cf":
        policy = values["CloudFront-Policy"].replace("-", "+").replace("_", "=").replace("~", "/")
        condition = json.loads(base64.b64decode(policy))["Statement"][0]["Condition"]
        assert condition["IpAddress"] == {"AWS:SourceIp": "127.0.0.1/32"}
    else:
        assert values["__token__"].startswith("ip=127.0.0.1~")
    assert get(stack, f"/{source}/v1/seg0.ts", cookie_header(answer.set_cookies)).status == 200


def test_a_repeated_playlist_request_reaches_the_sidecar(stack: LocalStack) -> None:
    uri = signed(stack, "cf", "/cf/v1/index.m3u8")
    before = verifications_total(stack)
    first, second = get(stack, uri), get(stack, uri)
    assert verifications_total(stack) - before == 2  # the auth cache answered neither
    assert len(first.set_cookies) == 3 and second.set_cookies == first.set_cookies  # kept


def test_an_image_answer_sets_no_cookie(stack: LocalStack) -> None:
    # An empty $signed_url_cookie adds no Set-Cookie header (nginx skips empty values).
    answer = get(stack, signed(stack, "g", "/g/v1/seg0.ts"))
    assert (answer.status, answer.set_cookies) == (200, [])


def test_a_segment_after_the_grant_expired_is_denied(stack: LocalStack) -> None:
    now = time.time()
    cookies = cookie_header(granted(stack, "g", expires_in=3, now=now))
    assert get(stack, "/g/v1/seg0.ts", cookies).status == 200
    time.sleep(max(0.0, int(now) + 3 - time.time()))  # until the URL's expiry (skew 0)
    answer = get(stack, "/g/v1/seg0.ts", cookies)
    assert (answer.status, answer.reason) == (403, "expired")


def test_a_signed_gallery_index_opens_its_images(stack: LocalStack) -> None:
    images = {f"/g/gallery/{n}.png": f"image {n}".encode() for n in range(3)}
    index = json.dumps(sorted(images)).encode()
    write(stack, {"/g/gallery/index.json": index, "/g/other/0.png": b"another gallery", **images})
    answer = get(stack, signed(stack, "g", "/g/gallery/index.json"))
    assert (answer.status, answer.body) == (200, index)
    cookies = cookie_header(answer.set_cookies)
    for name in json.loads(answer.body):
        assert get(stack, name, cookies).body == images[name]
    assert get(stack, "/g/other/0.png", cookies).status == 403
    assert get(stack, "/g/gallery/0.png").status == 403
