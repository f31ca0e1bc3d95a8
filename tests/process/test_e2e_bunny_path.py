"""``bunny``'s path form end to end: /bcdn_token=…/path through the shipped
signed-url-bunny-path{-map,}.conf, a real nginx in front of the real sidecar, the auth
cache on. A signed playlist's relative segment URLs, resolved as a player resolves them,
are served within its ``token_path`` and nowhere else; ``sign_url``'s and the Node
example's URLs are served and every one-byte change refused; BunnyWay's path-form
vectors hold their signature (``expired``), and are allowed at their time (the sidecar's
clock set back); ffmpeg plays a stream from one playlist URL; and each hostile spelling
gets its reason, never another file, nor a token in nginx's log. Clients claim
BunnyWay's vector addresses through X-Forwarded-For, which nginx's realip module trusts
from loopback, as a load balancer in front would.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from tests.support.configs import sidecar_config, source_toml
from tests.support.node_signers import signer_output
from tests.support.paths import REPO
from tests.support.requests import HOST
from tests.support.stacks import any_image_in, running_stack
from tests.unit.schemes.test_bunny import VECTORS, b64url

ORIGIN = f"https://{HOST}"
SECRET = "e2e-bunny-path-zone-key-7c1d"
HTTP_EXTRA = (
    "set_real_ip_from 127.0.0.0/8;\nreal_ip_header X-Forwarded-For;\n"
    "map $remote_addr $geoip2_data_country_code "
    "{ 1.2.3.4 CA; 2001:db8:85a3::8a2e:370:7334 US; default FR; }\n"
)
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"  # scripts/setup installs it
KEYS = {"k1": {"secret": SECRET}}
CONFIG = sidecar_config(
    source_toml("videos", "bunny", "/videos/", KEYS, path_tokens=True),
    source_toml("clips", "bunny", "/clips/hls/", KEYS, path_tokens=True),
    source_toml("books", "bunny", "/books/", KEYS),
    source_toml("vendor", "bunny", "/abc/", {"v1": {"secret": VECTORS["key"]}}, path_tokens=True),
    source_toml("root", "bunny", "/", KEYS),
    server={"cache_ttl": 60, "clock_skew": 0},
)
FILES = {
    "videos/hls/index.m3u8": b"#EXTM3U\n#EXTINF:2,\nseg1.ts\n#EXTINF:2,\nseg2.ts\n",
    "videos/hls/seg1.ts": b"segment one of the signed folder",
    "videos/hls/seg2.ts": b"segment two of the signed folder",
    "videos/hls/sub/seg3.ts": b"segment three, one folder down",
    "videos/other/seg1.ts": b"a segment of another folder",
    "videos/a.ts": b"a single signed file",
    "clips/hls/a.ts": b"a clip",
    "books/b.ts": b"a file of a source without path tokens",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder: Path = tmp_path_factory.mktemp("bunny-path")
    with running_stack(folder, CONFIG, http_extra=HTTP_EXTRA, country=True,
                       bunny_path=True) as running:  # fmt: skip
        for name, body in FILES.items():
            (running.images / name).parent.mkdir(parents=True, exist_ok=True)
            (running.images / name).write_bytes(body)
        yield running


def request(stack: LocalStack, uri: str, client: str | None = None) -> tuple[int, bytes, str]:
    """Status, body and X-Request-ID; ``client`` claimed by X-Forwarded-For."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=10)
    headers = {"Host": HOST} | ({"X-Forwarded-For": client} if client else {})
    try:
        connection.request("GET", uri, headers=headers)
        response = connection.getresponse()
        body, request_id = response.read(), response.getheader("X-Request-ID") or ""
    finally:
        connection.close()
    return response.status, body, request_id


def get(stack: LocalStack, uri: str, client: str | None = None) -> tuple[int, bytes, str]:
    """Status, body and the reason nginx logged."""
    status, body, request_id = request(stack, uri, client)
    return status, body, stack.result_for(request_id)


def _access_log(stack: LocalStack) -> str:
    return (stack.folder / "nginx" / "access.log").read_text()


def signed(stack: LocalStack, source: str, url: str, **grant: Any) -> str:
    settings = config.load(stack.config_path)
    text = sign_url(settings, source, ORIGIN + url, now=time.time(), expires_in=600, **grant)
    return text.removeprefix(ORIGIN)


def hand_made(path: str, data: str = "", signed_path: str | None = None) -> str:
    """A path-form URI made with the standard library: ``data`` its signed parameters
    (already in the URL's spelling, and signed decoded)."""
    expires = int(time.time()) + 300
    message = f"{signed_path or path}{expires}{data.replace('%2F', '/')}".encode()
    token = "HS256-" + b64url(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    return f"/bcdn_token={token}{'&' + data if data else ''}&expires={expires}{path}"


def test_a_signed_playlist_opens_its_folder_as_a_player_resolves_it(stack: LocalStack) -> None:
    playlist = signed(stack, "videos", "/videos/hls/index.m3u8", prefix="/videos/hls/")
    assert playlist.startswith("/bcdn_token=HS256-")
    assert "&token_path=%2Fvideos%2Fhls%2F&expires=" in playlist
    status, body, reason = get(stack, playlist)
    assert (status, body, reason) == (200, FILES["videos/hls/index.m3u8"], "ok")
    base = ORIGIN + playlist
    segments = [line for line in body.decode().splitlines() if not line.startswith("#")]
    for segment in [*segments, "sub/seg3.ts"]:
        uri = urljoin(base, segment).removeprefix(ORIGIN)
        assert uri.startswith(playlist[: playlist.rindex("/")])  # the token segment kept
        name = "videos/hls/" + segment
        assert get(stack, uri) == (200, FILES[name], "ok")
    outside = urljoin(base, "../other/seg1.ts").removeprefix(ORIGIN)
    assert outside.endswith("/videos/other/seg1.ts")
    status, body, reason = get(stack, outside)
    assert (status, reason) == (403, "invalid") and not any_image_in(body, stack)


def test_the_node_example_s_path_form_is_served(stack: LocalStack) -> None:
    signer = REPO / "examples" / "node" / "bunny.mjs"
    expires = int(time.time()) + 300
    for path, allowed in (("/videos/a.ts", None), ("/videos/hls/seg2.ts", "/videos/hls/")):
        options = {"secret": SECRET, "expires": expires, "isDirectory": True,
                   "pathAllowed": allowed}  # fmt: skip
        uri = signer_output(signer, "signBunny", ORIGIN + path, options).removeprefix(ORIGIN)
        assert uri.startswith("/bcdn_token=HS256-") and uri.endswith(path)
        assert get(stack, uri) == (200, FILES[path.lstrip("/")], "ok")


def test_every_one_byte_change_is_refused(stack: LocalStack) -> None:
    uri = signed(stack, "videos", "/videos/a.ts?w=1")
    assert uri.startswith("/bcdn_token=HS256-") and "&w=1&expires=" in uri
    assert get(stack, uri)[::2] == (200, "ok")
    for index in range(1, len(uri)):
        changed = uri[:index] + ("B" if uri[index] != "B" else "C") + uri[index + 1 :]
        status, body, reason = get(stack, changed)
        assert status == 403 and reason != "ok", (changed, reason)
        assert not any_image_in(body, stack)


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["hs256"]["vectors"] if "/bcdn_token=" in v["signedUrl"]],
    ids=lambda v: v["name"],
)
def test_bunnyway_path_form_vectors_hold_their_signature(
    stack: LocalStack, vector: dict[str, Any]
) -> None:
    uri = vector["signedUrl"].removeprefix("https://token-tester.b-cdn.net")
    ip = vector["userIp"].replace("0000:0000:", ":").replace(":0db8:", ":db8:")
    assert get(stack, uri, ip)[::2] == (403, "expired")  # signed in 2020: genuine, and over
    assert get(stack, uri.replace("&expires=", "&expires=1"), ip)[::2] == (403, "invalid")
    assert get(stack, uri, "198.51.100.7")[::2] == (403, "invalid")  # bound to its address


HOSTILE = {
    "dot-dot in the path": ("/videos/hls/../other/seg1.ts", "non_canonical"),
    "dot-dot above the token": ("/../videos/other/seg1.ts", "non_canonical"),
    "a single dot": ("/videos/./other/seg1.ts", "non_canonical"),
    "an encoded slash in the path": ("/videos%2Fother/seg1.ts", "non_canonical"),
    "an encoded dot": ("/videos/%2e%2e/videos/other/seg1.ts", "non_canonical"),
    "an encoded letter": ("/videos/other/s%65g1.ts", "missing"),  # not the path form
    "a double slash": ("//videos/other/seg1.ts", "non_canonical"),
    "a query after the path form": ("/videos/other/seg1.ts?x=1", "malformed"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=str)
def test_hostile_spellings_are_refused_with_their_reason(stack: LocalStack, case: str) -> None:
    suffix, expected = HOSTILE[case]
    genuine = signed(stack, "videos", "/videos/other/seg1.ts")
    segment = genuine[: genuine.index("/videos/")]
    status, body, reason = get(stack, segment + suffix)
    assert (status, reason) == (403, expected)
    assert not any_image_in(body, stack)


def test_a_second_or_a_later_token_segment_is_not_the_path_form(stack: LocalStack) -> None:
    uri = signed(stack, "videos", "/videos/a.ts")
    segment = uri[: uri.index("/videos/")]
    for spelling in (segment + uri, f"/videos{segment}/a.ts", uri.replace("/bcdn_", "/bcdn%5F")):
        status, body, reason = get(stack, spelling)
        assert (status, reason) == (403, "missing"), spelling
        assert not any_image_in(body, stack)


def test_a_token_path_outside_the_source_is_invalid(stack: LocalStack) -> None:
    inside = hand_made("/clips/hls/a.ts", "token_path=%2Fclips%2Fhls%2F", "/clips/hls/")
    assert get(stack, inside) == (200, FILES["clips/hls/a.ts"], "ok")
    outside = hand_made("/clips/hls/a.ts", "token_path=%2Fclips%2F", "/clips/")
    status, body, reason = get(stack, outside)
    assert (status, reason) == (403, "invalid") and not any_image_in(body, stack)


def test_a_source_without_path_tokens_does_not_read_it(stack: LocalStack) -> None:
    status, body, reason = get(stack, hand_made("/books/b.ts"))
    assert (status, reason) == (403, "missing") and not any_image_in(body, stack)


def test_a_folder_is_verified_never_served(stack: LocalStack) -> None:
    for folder in ("/videos/hls/", "/videos/hls"):
        status, body, reason = get(stack, hand_made(folder))
        assert (status, reason) == (404, "ok") and not any_image_in(body, stack)


def test_the_query_spelling_names_the_same_file(stack: LocalStack) -> None:
    uri = hand_made("/videos/a.ts")
    segment, path = uri[1 : uri.index("/videos/")], "/videos/a.ts"
    assert get(stack, f"{path}?{segment}") == (200, FILES["videos/a.ts"], "ok")


def test_ffmpeg_plays_a_stream_from_one_path_form_playlist_url(stack: LocalStack) -> None:
    folder = stack.images / "videos" / "play"
    folder.mkdir()
    make = [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc=duration=3:size=64x48:rate=10", "-c:v", "mpeg2video", "-f", "hls",
            "-hls_time", "1", "-hls_list_size", "0", "-hls_segment_filename",
            str(folder / "seg%d.ts"), str(folder / "index.m3u8")]  # fmt: skip
    subprocess.run(make, check=True, timeout=60, capture_output=True)
    segments = sorted(path.name for path in folder.glob("*.ts"))
    assert len(segments) >= 3
    playlist = signed(stack, "videos", "/videos/play/index.m3u8", prefix="/videos/play/")
    play = [FFMPEG, "-hide_banner", "-loglevel", "error", "-headers", f"Host: {HOST}\r\n",
            "-i", f"{stack.nginx_url}{playlist}", "-f", "null", "-"]  # fmt: skip
    played = subprocess.run(play, timeout=60, capture_output=True, text=True, check=False)
    assert played.returncode == 0, played.stderr
    # nginx writes a line after it answers: the last segment's may follow ffmpeg's exit.
    deadline, served = time.monotonic() + 5, set[str]()
    while set(segments) - served and time.monotonic() < deadline:
        log = _access_log(stack)
        served = set(re.findall(r'"GET /videos/play/(seg\d+\.ts)" 20[06] .* sig=ok ', log))
        time.sleep(0.05)
    assert sorted(served) == segments


def test_nginx_logs_the_path_never_the_token(stack: LocalStack) -> None:
    uri = signed(stack, "videos", "/videos/a.ts")
    token = uri[len("/bcdn_token=") : uri.index("&")]
    for uri_sent, logged in ((uri, "/videos/a.ts"), (uri + "?x=1", "/videos/a.ts"),
                             (uri.replace("/a.ts", "/s%65g.ts"), "/bcdn_token=")):  # fmt: skip
        status, _, request_id = request(stack, uri_sent)
        assert status in (200, 403) and stack.result_for(request_id)  # its line is written
        line = next(line for line in _access_log(stack).splitlines() if request_id in line)
        assert f'"GET {logged}" ' in line
        assert token not in line and "expires=" not in line


def test_bunnyway_path_form_vectors_are_allowed_at_their_time(tmp_path: Path) -> None:
    """The sidecar's clock set a minute before the vectors expire (libfaketime): each is
    allowed through nginx, its address and country as the vendor signed them. Each names
    a folder (/abc/), which the snippet verifies and never serves: 404 once allowed."""
    assert LIBFAKETIME.exists(), "libfaketime is required (scripts/setup: faketime)"
    keys = {"v1": {"secret": VECTORS["key"]}}
    text = sidecar_config(source_toml("vendor", "bunny", "/abc/", keys, path_tokens=True))
    with running_stack(tmp_path, text, http_extra=HTTP_EXTRA, country=True,
                       bunny_path=True) as stack:  # fmt: skip
        assert stack.sidecar is not None
        stack.sidecar.terminate()
        stack.sidecar.wait(timeout=10)
        then = time.strftime("@%Y-%m-%d %H:%M:%S", time.gmtime(VECTORS["expires"] - 60))
        stack.start_sidecar(dict(os.environ, LD_PRELOAD=str(LIBFAKETIME), FAKETIME=then,
                                 DONT_FAKE_MONOTONIC="1", TZ="UTC"))  # fmt: skip
        for vector in VECTORS["hs256"]["vectors"]:
            if "/bcdn_token=" in vector["signedUrl"]:
                uri = vector["signedUrl"].removeprefix("https://token-tester.b-cdn.net")
                ip = vector["userIp"].replace("0000:0000:", ":").replace(":0db8:", ":db8:")
                assert get(stack, uri, ip)[::2] == (404, "ok"), vector["name"]
                assert get(stack, uri, "198.51.100.7")[::2] == (403, "invalid")
