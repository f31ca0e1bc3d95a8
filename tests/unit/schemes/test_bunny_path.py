"""Scheme ``bunny``, the path form (``path_tokens``): BunnyWay's path-form vectors as
nginx/signed-url-bunny-path.conf hands them over (``/path?bcdn_token=…``), verified and
signed byte for byte; the ``bcdn_token`` spelling's refusals."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli import main
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from tests.support.configs import sidecar_config, source_toml
from tests.support.scheme_contract import NOW, sign
from tests.unit.schemes.test_bunny import (
    SECRET,
    VECTOR_EXPIRES,
    VECTOR_HOST,
    VECTOR_KEY,
    VECTORS,
    _unsigned,
    check,
    hs256_token,
    source,
)

PATH_FORM = [v for v in VECTORS["hs256"]["vectors"] if "/bcdn_token=" in v["signedUrl"]]
# The snippet's map, in Python: the token segment and the path after it, from the raw URI.
_NGINX_MAP = re.compile(r"/bcdn_token=([A-Za-z0-9._~%&=-]+)(/[A-Za-z0-9._~!&()*+,=:@/-]*)(\?.*)?")


def as_nginx_hands_it(url: str) -> str:
    """The X-Original-URI the shipped snippet sends for a path-form request URI."""
    match = _NGINX_MAP.fullmatch(url.removeprefix(VECTOR_HOST))
    assert match is not None, url
    return f"{match[2]}?bcdn_token={match[1]}{match[3] or ''}"


def path_source(*secrets: bytes, **settings: Any) -> Any:
    return source(*secrets, path_tokens=True, **settings)


@pytest.mark.parametrize("vector", PATH_FORM, ids=lambda v: v["name"])
def test_path_form_vectors_verify(vector: dict[str, Any]) -> None:
    uri = as_nginx_hands_it(vector["signedUrl"])
    ip, country = vector["userIp"], vector["countryCode"]
    verdict = check(path_source(VECTOR_KEY), uri, VECTOR_EXPIRES - 1, ip=ip, country=country)
    assert (verdict.reason, verdict.key_id, verdict.shareable) == (Reason.OK, "k0", False)
    later = check(path_source(VECTOR_KEY), uri, VECTOR_EXPIRES, ip=ip, country=country)
    assert later.reason is Reason.EXPIRED
    # Without path_tokens the spelling is not read at all.
    assert check(source(VECTOR_KEY), uri, VECTOR_EXPIRES - 1, ip=ip).reason is Reason.MISSING


@pytest.mark.parametrize("vector", PATH_FORM, ids=lambda v: v["name"])
def test_path_form_vectors_are_signed_byte_for_byte(vector: dict[str, Any]) -> None:
    grant = {"expires": VECTOR_EXPIRES, "client_ip": vector["userIp"]}
    assert sign(path_source(VECTOR_KEY), _unsigned(vector), **grant) == vector["signedUrl"]


def test_every_one_byte_change_of_a_vector_is_refused() -> None:
    vector = PATH_FORM[0]
    uri = as_nginx_hands_it(vector["signedUrl"])
    ip, country, at = vector["userIp"], vector["countryCode"], VECTOR_EXPIRES - 1
    # Every byte after the leading "/" (without it, the URI is no request URI at all).
    for index, char in enumerate(uri[1:], start=1):
        changed = uri[:index] + ("B" if char != "B" else "C") + uri[index + 1 :]
        verdict = check(path_source(VECTOR_KEY), changed, at, ip=ip, country=country)
        assert verdict.reason is not Reason.OK, changed


def test_a_token_path_grant_in_the_path_form() -> None:
    expires = NOW + 600
    url = sign(path_source(SECRET), "/v/hls/index.m3u8", expires=expires, prefix="/v/hls/")
    token = hs256_token(SECRET, "/v/hls/", expires, "token_path=/v/hls/")
    assert url == f"/bcdn_token={token}&token_path=%2Fv%2Fhls%2F&expires={expires}/v/hls/index.m3u8"
    segment = as_nginx_hands_it(url.replace("index.m3u8", "seg1.ts"))
    assert check(path_source(SECRET), segment).reason is Reason.OK
    outside = as_nginx_hands_it(url.replace("/hls/index.m3u8", "/other/seg1.ts"))
    assert check(path_source(SECRET), outside).reason is Reason.INVALID
    scoped = path_source(SECRET, prefix="/v/hls/sub/")
    assert check(scoped, segment).reason is Reason.INVALID  # token_path outside the source


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("bcdn_token={t}&bcdn_token={t}&expires={e}", Reason.NON_CANONICAL),
        ("bcdn_token={t}&token={t}&expires={e}", Reason.NON_CANONICAL),
        ("token={t}&bcdn_token={t}&expires={e}", Reason.NON_CANONICAL),
        ("w=1&bcdn_token={t}&expires={e}", Reason.MALFORMED),
        ("bcdn_token={t}&expires={e}?w=1", Reason.MALFORMED),  # a query after the path form
        ("bcdn_token={t}&expires={e}&w=1", Reason.MALFORMED),
        ("bcdn%5Ftoken={t}&expires={e}", Reason.MALFORMED),
    ],
)
def test_the_path_form_s_one_spelling(query: str, reason: Reason) -> None:
    expires = NOW + 600
    token = hs256_token(SECRET, "/a.jpg", expires)
    assert (
        check(path_source(SECRET), f"/a.jpg?bcdn_token={token}&expires={expires}").reason
        is Reason.OK
    )
    uri = "/a.jpg?" + query.format(t=token, e=expires)
    assert check(path_source(SECRET), uri).reason is reason


def test_a_query_form_url_still_verifies_at_a_path_tokens_source() -> None:
    expires = NOW + 600
    uri = f"/a.jpg?token={hs256_token(SECRET, '/a.jpg', expires)}&expires={expires}"
    assert check(path_source(SECRET), uri).reason is Reason.OK


@pytest.mark.parametrize("path", ["/a%20b.jpg", "/a'b.jpg", "/a$b.jpg"])
def test_the_signer_refuses_a_path_nginx_would_not_serve_as_written(path: str) -> None:
    with pytest.raises(SchemeError, match="path form"):
        sign(path_source(SECRET), path, expires=NOW + 600)
    assert sign(source(SECRET), path, expires=NOW + 600).startswith(path + "?token=")


def test_sidecar_sign_writes_the_path_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = SECRET.decode()
    keys = {"k1": {"secret": secret}}
    text = sidecar_config(source_toml("videos", "bunny", "/v/", keys, path_tokens=True))
    (tmp_path / "sidecar.toml").write_text(text)
    args = ["sign", "-c", str(tmp_path / "sidecar.toml"), "--source", "videos"]
    before = int(time.time())
    code = main([*args, "--expires-in", "600", "--prefix", "/v/hls/", "/v/hls/index.m3u8"])
    url = capsys.readouterr().out.strip()
    assert code == 0
    expires = int(url.rpartition("&expires=")[2].partition("/")[0])
    assert before + 600 <= expires <= int(time.time()) + 600
    token = hs256_token(SECRET, "/v/hls/", expires, "token_path=/v/hls/")
    assert url == f"/bcdn_token={token}&token_path=%2Fv%2Fhls%2F&expires={expires}/v/hls/index.m3u8"
    assert main([*args, "--expires-in", "600", "/v/a%20b.ts"]) != 0
    assert "path form" in capsys.readouterr().err
