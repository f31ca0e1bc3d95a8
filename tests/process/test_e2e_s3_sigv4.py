"""``s3-sigv4`` end to end: botocore's and minio's presigned URLs, and ours, through the
real shipped nginx and sidecar.

nginx serves the decoded path from disk, so each test first writes an image at the path
its URL names (``place``): what is served is that file's bytes. Path-style URLs name the
bucket ``books`` in the path; virtual-hosted ones name the bucket ``image`` in the host
(``image.example.com``, the example server's name), so both reach the same nginx.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
import urllib.request

import botocore.auth
import botocore.session
import orjson
import pytest
from botocore.config import Config
from minio import Minio

from sidecar import config
from sidecar.core import canonical
from sidecar.devtools.demo import png
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from tests.support.configs import sidecar_config, source_toml, team_toml
from tests.support.requests import HOST, fetch_with_reason
from tests.support.stacks import StackFactory

ORIGIN = f"https://{HOST}"
KEY_ID, SECRET = "AKIAEXAMPLESIDECAR1", "q8Jw0a7Rk3Vn2Lx9Tz5Pc1Hs6Ym4Gd0Fb8Ne2Ui7"
REGION = "eu-west-1"
API_KEY = "k-" + "s" * 40


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {KEY_ID: {"secret": SECRET}}
    path_style = source_toml("books", "s3-sigv4", "/books/", keys, region=REGION,
                             public_origin=ORIGIN)  # fmt: skip
    virtual = source_toml("image-bucket", "s3-sigv4", "/covers/", keys, region=REGION,
                          public_origin=ORIGIN, hosts=[HOST])  # fmt: skip
    team = team_toml("books-app", "books", API_KEY)
    return shared_stacks(sidecar_config(path_style, virtual, signing={}, teams=[team]))


def amz_date(url: str) -> int:
    """A presigned URL's ``X-Amz-Date`` as unix seconds."""
    stamp = datetime.datetime.strptime(url.partition("X-Amz-Date=")[2][:16], "%Y%m%dT%H%M%SZ")
    return int(stamp.replace(tzinfo=datetime.UTC).timestamp())


def botocore_url(bucket: str, key: str, style: str, endpoint: str) -> str:
    client = botocore.session.get_session().create_client(
        "s3", region_name=REGION, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )  # fmt: skip
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600
    )
    return url


def place(stack: LocalStack, uri: str) -> bytes:
    """Write a distinct image at the file path ``uri`` names; return its bytes."""
    parsed = canonical.parse(uri.partition("?")[0])
    assert parsed is not None, uri
    data = png(6 + len(uri) % 50, 6, (len(uri) % 256, 90, 40))
    target = stack.images / parsed.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def served(stack: LocalStack, url: str, method: str = "GET") -> tuple[int, bytes, str]:
    assert url.startswith(ORIGIN + "/"), url
    uri = url.removeprefix(ORIGIN)
    return fetch_with_reason(stack, uri, method=method)


def test_botocore_path_style_urls_serve_the_image(stack: LocalStack) -> None:
    url = botocore_url("books", "covers/a b \u00fc.jpg", "path", ORIGIN)
    data = place(stack, url.removeprefix(ORIGIN))
    assert served(stack, url) == (200, data, "ok")


def test_botocore_virtual_hosted_urls_serve_the_image(stack: LocalStack) -> None:
    # Bucket "image" on endpoint example.com: the host is image.example.com.
    url = botocore_url("image", "covers/b.jpg", "virtual", "https://example.com")
    assert url.startswith(f"{ORIGIN}/covers/b.jpg?")
    data = place(stack, url.removeprefix(ORIGIN))
    assert served(stack, url) == (200, data, "ok")


def test_minio_urls_serve_the_image(stack: LocalStack) -> None:
    client = Minio(HOST, access_key=KEY_ID, secret_key=SECRET, region=REGION)
    url = client.presigned_get_object("books", "covers/c.jpg", expires=datetime.timedelta(hours=1))
    data = place(stack, url.removeprefix(ORIGIN))
    assert served(stack, url) == (200, data, "ok")


def test_our_urls_are_botocores_and_serve_the_image(stack: LocalStack) -> None:
    url = botocore_url("books", "covers/d.jpg", "path", ORIGIN)
    at = amz_date(url)
    settings = config.load(stack.config_path)
    ours = sign_url(settings, "books", f"{ORIGIN}/books/covers/d.jpg", now=at, expires_in=600,
                    not_before=at)  # fmt: skip
    assert ours == url
    data = place(stack, url.removeprefix(ORIGIN))
    assert served(stack, ours) == (200, data, "ok")
    assert served(stack, ours, method="HEAD")[::2] == (200, "ok")  # verified as the GET


def test_the_signing_api_signs_botocores_url_now_and_it_serves_the_image(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = urllib.parse.urlencode({"url": f"{ORIGIN}/books/covers/g.jpg", "expiresIn": "600"})
    call = urllib.request.Request(f"{stack.signing_url}/public/team/books-app/signUrl?{query}")
    call.add_header("X-Api-Key", API_KEY)
    with urllib.request.urlopen(call, timeout=5) as response:
        ours = str(orjson.loads(response.read())["signedUrl"])
    at = amz_date(ours)
    assert abs(at - time.time()) < 120  # no not-before asked: signed at the API's now
    # botocore, its clock set to that second, writes the same URL.
    stamp = datetime.datetime.fromtimestamp(at, tz=datetime.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_: stamp)
    assert ours == botocore_url("books", "covers/g.jpg", "path", ORIGIN)
    data = place(stack, ours.removeprefix(ORIGIN))
    assert served(stack, ours) == (200, data, "ok")


def test_changed_urls_are_refused_with_their_reason(stack: LocalStack) -> None:
    url = botocore_url("books", "covers/e.jpg", "path", ORIGIN)
    place(stack, url.removeprefix(ORIGIN))
    signature = url.partition("X-Amz-Signature=")[2]
    flipped = url[: -len(signature)] + ("0" if signature[0] != "0" else "1") + signature[1:]
    assert served(stack, flipped)[::2] == (403, "invalid")
    assert served(stack, url[:-1])[::2] == (403, "malformed")
    assert served(stack, url + "&X-Amz-Date=20300101T000000Z")[::2] == (403, "non_canonical")
    other_region = url.replace(f"%2F{REGION}%2F", "%2Fus-east-1%2F")
    assert served(stack, other_region)[::2] == (403, "invalid")
    unknown = url.replace(KEY_ID, "AKIAOTHERKEY0000001")
    assert served(stack, unknown)[::2] == (403, "unknown_key")
    assert served(stack, url.partition("?")[0])[::2] == (403, "missing")


def test_a_url_for_another_host_is_invalid(stack: LocalStack) -> None:
    url = botocore_url("books", "covers/f.jpg", "path", "https://s3.example.net")
    uri = url.removeprefix("https://s3.example.net")
    place(stack, uri)
    status, _, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (403, "invalid")
