"""``sidecar demo``: nginx + sidecar + sample images on localhost, and what URLs get."""

from __future__ import annotations

import struct
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from sidecar import config
from sidecar.devtools.demo_revocation import show_revocation
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.settings import Settings
from sidecar.policy.signing import sign, sign_url
from sidecar.schemes.base import Grant

# The Secure Source documentation's own example token, so its reference URL reproduces.
DEMO_TOKEN = "wakanda123@"  # noqa: S105 (a published example, not a secret)
GCDN_ORIGIN = "https://cdn.example.com"
S3_ORIGIN = "https://s3.example.com"
IMGPROXY_KEY, IMGPROXY_SALT = b"demo-imgproxy-key".hex(), b"demo-imgproxy-salt".hex()
DEMO_CONFIG = f"""\
[server]
clock_skew = 30

# Revocations (sidecar revoke) kept in a SQLite file beside this config.
[state]
path = "state.db"

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
mode = "enforce"
  [[sources.keys]]
  id = "demo"
  secret = "{DEMO_TOKEN}"

[[sources]]
name = "public"
scheme = "md5-token"
path_prefix = "/public/"
mode = "off"

# The other schemes teams bring their signers for, one folder each (published demo keys).
[[sources]]
name = "imgix"
scheme = "imgix"
path_prefix = "/imgix/"
  [[sources.keys]]
  id = "demo"
  secret = "demo-imgix-token"

[[sources]]
name = "hmac"
scheme = "hmac-sha256"
path_prefix = "/hmac/"
max_ttl = 86400
  [[sources.keys]]
  id = "demo-2026"
  secret = "demo-hmac-secret-0123456789"

[[sources]]
name = "gcdn"
scheme = "gcdn"
path_prefix = "/gcdn/"
public_origin = "{GCDN_ORIGIN}"
  [[sources.keys]]
  id = "demo-key"
  secret = "ZGVtby1rZXktMTYtYnl0ZQ=="

# A gallery: one signed cookie (Google Cloud CDN's) grants a whole folder.
[[sources]]
name = "gallery"
scheme = "gcdn"
path_prefix = "/gallery/"
public_origin = "{GCDN_ORIGIN}"
accept_cookies = true
  [[sources.keys]]
  id = "gallery-key"
  secret = "Z2FsbGVyeS1rZXktMTZieQ=="

[[sources]]
name = "akamai"
scheme = "akamai"
path_prefix = "/akamai/"
  [[sources.keys]]
  id = "demo"
  secret = "64656d6f2d616b616d61692d6b65792d3132333435"

[[sources]]
name = "thumbor"
scheme = "thumbor"
path_prefix = "/thumbs/"
  [[sources.keys]]
  id = "demo"
  secret = "demo-thumbor-security-key"

[[sources]]
name = "secure-link"
scheme = "nginx-secure-link"
path_prefix = "/link/"
secure_link = "$arg_md5,$arg_expires"
secure_link_md5 = "$secure_link_expires$uri $secret"
  [[sources.keys]]
  id = "demo"
  secret = "demo-secure-link-secret"

[[sources]]
name = "imgproxy"
scheme = "imgproxy"
path_prefix = "/imgproxy/"
  [[sources.keys]]
  id = "demo"
  secret = "{IMGPROXY_KEY}"
  salt = "{IMGPROXY_SALT}"

[[sources]]
name = "jwt"
scheme = "jwt"
path_prefix = "/jwt/"
  [[sources.keys]]
  id = "demo"
  algorithm = "HS256"
  secret = "demo-jwt-secret-0123456789abcdef"

[[sources]]
name = "cloudflare"
scheme = "cloudflare"
path_prefix = "/cloudflare/"
max_age = 300
  [[sources.keys]]
  id = "demo"
  secret = "demo-cloudflare-secret"

[[sources]]
name = "bunny"
scheme = "bunny"
path_prefix = "/bunny/"
  [[sources.keys]]
  id = "demo"
  secret = "demo-bunny-security-key"

[[sources]]
name = "s3"
scheme = "s3-sigv4"
path_prefix = "/s3/"
region = "eu-west-1"
public_origin = "{S3_ORIGIN}"
  [[sources.keys]]
  id = "AKIADEMOEXAMPLE"
  secret = "demo-s3-secret-access-key-0123456789"
"""
OTHER_SCHEMES = ("imgix", "hmac", "gcdn", "akamai", "thumbor", "secure-link", "imgproxy",
                 "jwt", "cloudflare", "bunny", "s3")  # fmt: skip
# The folder each demo source serves (thumbor's and imgproxy's images sit under their
# signature segment).
FOLDERS = {"secure-link": "/link/", "thumbor": "/thumbs/"}
# Schemes whose signature is a path segment: nginx serves the file at the signed path.
PATH_SIGNED = {"thumbor": "300x200/photo.png", "imgproxy": "rs:fit:300:200/plain/photo.png"}
# The origin a source's signature covers, where it is not the demo nginx's own.
ORIGINS = {"gcdn": GCDN_ORIGIN, "s3": S3_ORIGIN}


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real, tiny PNG (a vertical gradient), made without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(min(255, c * y // max(1, height - 1)) for c in rgb) * width
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip


def write_images(root: Path) -> dict[str, bytes]:
    """The sample images of the seed sources (also the compose stack's ``docker/images``)."""
    return _write(root, {
        "/books/database-internals.png": png(40, 60, (200, 80, 40)),
        "/books/caf\u00e9 menu.png": png(30, 30, (40, 160, 90)),
        "/public/logo.png": png(16, 16, (30, 60, 220)),
    })  # fmt: skip


def write_scheme_images(root: Path) -> dict[str, bytes]:
    """One image in the folder of each other scheme's demo source."""
    return _write(root, {
        "/imgix/photo.png": png(20, 14, (220, 180, 30)),
        "/hmac/photo.png": png(20, 14, (30, 180, 220)),
        "/gcdn/photo.png": png(20, 14, (120, 200, 60)),
        "/link/photo.png": png(20, 14, (200, 60, 160)),
        "/akamai/photo.png": png(20, 14, (90, 90, 200)),
        "/jwt/photo.png": png(20, 14, (30, 120, 90)),
        "/cloudflare/photo.png": png(20, 14, (240, 130, 30)),
        "/bunny/photo.png": png(20, 14, (250, 140, 180)),
        "/s3/photo.png": png(20, 14, (230, 150, 20)),
        **{f"/gallery/summer/{n}.png": png(12, 12, (40 * n, 150, 90)) for n in (1, 2, 3)},
        "/gallery/winter/1.png": png(12, 12, (200, 200, 250)),
    })  # fmt: skip


def _write(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    for path, data in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def fetch(
    url: str, host: str = "image.example.com", cookie: str | None = None
) -> tuple[int, int, str]:
    """Status, body length and nginx's request id (X-Request-ID) of a GET through nginx."""
    headers = {"Host": host} | ({"Cookie": cookie} if cookie else {})
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, len(response.read()), response.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        return error.code, 0, error.headers["X-Request-ID"]


def run(*, keep: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="signed-url-demo-") as temp:
        folder = Path(temp)
        images = folder / "images"
        write_images(images)
        write_scheme_images(images)
        with LocalStack(folder, DEMO_CONFIG, images) as stack:
            _show(stack)
            if keep:
                print(f"\nServing on {stack.nginx_url} (Host: image.example.com). Ctrl-C stops.")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    return 0


def _signed_other(stack: LocalStack, settings: Settings, source: str, now: float) -> str:
    """A URL of ``source``'s folder signed with its scheme, to fetch through the demo."""
    prefix = FOLDERS.get(source, f"/{source}/")
    origin = ORIGINS.get(source, stack.nginx_url)
    lifetime = None if source == "thumbor" else 300  # thumbor URLs never expire
    path = PATH_SIGNED.get(source)
    signed = sign_url(settings, source, f"{origin}{prefix}{path or 'photo.png?w=400'}",
                      now=now, expires_in=lifetime).removeprefix(origin)  # fmt: skip
    if path is not None:  # nginx serves the file at the signed path itself
        _write(stack.images, {signed: png(20, 14, (160, 120, 40))})
    return stack.nginx_url + signed


def _show(stack: LocalStack) -> None:
    settings = config.load(stack.config_path)
    now = time.time()
    signed = sign_url(
        settings, "books", f"{stack.nginx_url}/books/database-internals.png?w=400&h=600", now=now
    )
    expiring = sign_url(settings, "books", f"{stack.nginx_url}/books/caf%C3%A9%20menu.png",
                        now=now, expires_in=300)  # fmt: skip
    cases = [
        ("signed URL", signed),
        ("signed, with an expiry in 5 minutes", expiring),
        ("tampered parameter (w=400 -> w=4000)", signed.replace("w=400", "w=4000")),
        ("tampered signature (last digit)", signed[:-1] + ("0" if signed[-1] != "0" else "1")),
        ("unsigned", signed.partition("&s=")[0]),
        ("non-canonical path (/books/./...)", signed.replace("/books/", "/books/./")),
        ("a source with signing off", f"{stack.nginx_url}/public/logo.png"),
        ("no source owns the path", f"{stack.nginx_url}/private/logo.png"),
    ]
    for source in OTHER_SCHEMES:
        url = _signed_other(stack, settings, source, now)
        cases.append((f"{source}: signed by its own scheme", url))
        cases.append((f"{source}: one byte of the path changed", url.replace("photo", "phoTo")))
    print(f"nginx on {stack.nginx_url}, sidecar on {stack.sidecar_url}, "
          f"metrics on {stack.metrics_url}\n")  # fmt: skip
    for label, url in cases:
        _report(stack, label, url)
    _gallery(stack, settings, now)
    show_revocation(stack, settings, now, _report)


def _report(stack: LocalStack, label: str, url: str, cookie: str | None = None) -> None:
    status, size, request_id = fetch(url, cookie=cookie)
    served = f"{size} bytes of image" if status == 200 else "no image"
    reason = stack.result_for(request_id)
    print(f"{label}\n  {url}\n  -> nginx {status}, {served} (sidecar said: {reason})\n")


def _gallery(stack: LocalStack, settings: Settings, now: float) -> None:
    """One signed cookie for /gallery/summer/: every image there served, none elsewhere."""
    grant = Grant(cookies=True, prefix="/gallery/summer/")
    signed = sign(settings, "gallery", f"{GCDN_ORIGIN}/gallery/summer/", grant, now=now,
                  expires_in=300)  # fmt: skip
    cookie = signed.cookies[0].partition(";")[0]
    print(f"gallery: one signed cookie for /gallery/summer/\n  Set-Cookie: {signed.cookies[0]}\n")
    for n in (1, 2, 3):
        url = f"{stack.nginx_url}/gallery/summer/{n}.png"
        _report(stack, f"gallery: summer/{n}.png with the cookie", url, cookie)
    outside = f"{stack.nginx_url}/gallery/winter/1.png"
    _report(stack, "gallery: winter/1.png with the cookie (outside its prefix)", outside, cookie)
    _report(
        stack, "gallery: summer/1.png without the cookie", f"{stack.nginx_url}/gallery/summer/1.png"
    )
