"""What one verification costs as the URL grows: typical URLs against 8 KB ones, wildcard
policies included (the review's CPU amplification finding). Two views, rounds interleaved,
medians, ratios from the same run:

- the decision alone, in-process (canonical parse, routing, the scheme's check);
- the service: the real sidecar process answering ``/verify`` on loopback, requests
  pipelined on one keep-alive connection so the client's own cost stays small.

    .venv/bin/python bench/verify_cost.py [--rounds 7] [--loops 2000]

The target: any URL up to 8 KB costs the service at most 3 x a typical URL of its scheme.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sidecar import config, schemes
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.signing import sign_request, sign_url
from sidecar.schemes.base import Grant
from sidecar.schemes.cloudfront_keys import new_key_pair

NOW = 1_900_000_000
ORIGIN = "https://cdn.example.com"
TOKEN = "bench-token-0123456789"
LONG = 8000  # bytes of request URI, under nginx's default 8 KB request line


# One source per scheme (name, scheme, its own settings and key), each on its own prefix.
SCHEME_SOURCES = {
    "imgix": ("imgix", "", f'secret = "{TOKEN}"'),
    "hmac": ("hmac-sha256", "", f'secret = "{TOKEN}"'),
    "gcdn": ("gcdn", f'public_origin = "{ORIGIN}"', 'secret = "AAECAwQFBgcICQoLDA0ODw=="'),
    # secure_link without $remote_addr: allows the auth cache may share, like the others.
    "link": ("nginx-secure-link", 'secure_link_md5 = "$secure_link_expires$uri $secret"',
             f'secret = "{TOKEN}"'),
    "akamai": ("akamai", "", f'secret = "{TOKEN.encode().hex()}"'),
    "thumbs": ("thumbor", "", f'secret = "{TOKEN}"'),
    # max_age = the signing lifetime: the token's time is the benchmark's NOW.
    "cf": ("cloudflare", "max_age = 3600", f'secret = "{TOKEN}"'),
    "jwths": ("jwt", "", f'algorithm = "HS256"\nsecret = "{TOKEN.encode().hex()}"'),
    # The same ES256 token on every request: its signature is verified once, then
    # remembered, as a page showing one image many times asks.
    "jwtes": ("jwt", "", 'algorithm = "ES256"\npublic_key_file = "jwt-es256.pub.pem"\n'
              'private_key_file = "jwt-es256.pem"'),
    # The source's key id ("Ks3") is its access key id; X-Amz-Date is the benchmark's NOW.
    "s3": ("s3-sigv4", f'region = "eu-west-1"\npublic_origin = "{ORIGIN}"', f'secret = "{TOKEN}"'),
    "bunny": ("bunny", "", f'secret = "{TOKEN}"'),
    "imgp": ("imgproxy", "", f'secret = "{TOKEN.encode().hex()}"\nsalt = "{b"salt".hex()}"'),
}  # fmt: skip
# imgproxy signs the path alone and refuses a query: its options are path segments.
QUERYLESS = {"imgproxy": "rs:fit:400:600/plain/photo.jpg"}
# How a case names a scheme when one scheme appears twice.
LABELS = {"jwths": "jwt HS256", "jwtes": "jwt ES256 (repeated)"}
KEY_FILES = ("acme.pem", "acme.pub.pem", "jwt-es256.pem", "jwt-es256.pub.pem")


def build(folder: Path) -> Decider:
    private, public = new_key_pair("rsa")
    (folder / "acme.pem").write_bytes(private)
    (folder / "acme.pub.pem").write_bytes(public)
    es256 = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = serialization.PrivateFormat.PKCS8
    (folder / "jwt-es256.pem").write_bytes(
        es256.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    )
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    (folder / "jwt-es256.pub.pem").write_bytes(
        es256.public_key().public_bytes(serialization.Encoding.PEM, spki)
    )
    others = "".join(
        f'[[sources]]\nname = "{name}"\nscheme = "{scheme}"\npath_prefix = "/{name}/"\n'
        f'{settings}\n[[sources.keys]]\nid = "K{name}"\n{key}\n'
        for name, (scheme, settings, key) in SCHEME_SOURCES.items()
    )
    (folder / "sidecar.toml").write_text(
        f'[[sources]]\nname = "books"\nscheme = "md5-token"\npath_prefix = "/books/"\n'
        f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN}"\n'
        # The same scheme under every rule (what the benchmark's client passes holds them):
        # against "books", what rules cost a source that has them.
        f'[[sources]]\nname = "ruled"\nscheme = "md5-token"\npath_prefix = "/ruled/"\n'
        'referrers = ["https://shop.example.com"]\nnetworks = ["203.0.113.0/24"]\n'
        'countries_blocked = ["XX"]\n'
        f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN}"\n'
        f'[[sources]]\nname = "acme"\nscheme = "cloudfront"\npath_prefix = "/acme/"\n'
        f'public_origin = "{ORIGIN}"\n[[sources.keys]]\nid = "KBENCH"\n'
        'public_key_file = "acme.pub.pem"\nprivate_key_file = "acme.pem"\n' + others
    )
    return Decider(config.load(folder / "sidecar.toml"))


def scheme_cases(decider: Decider) -> dict[str, tuple[str, str]]:
    """A typical signed URL of every other scheme, signed by the project's own signer."""
    return {
        f"{LABELS.get(name, scheme)}, typical": (
            sign_url(decider.settings, name,
                     f"{ORIGIN}/{name}/{QUERYLESS.get(scheme, 'photo.jpg?w=400&h=600')}", now=NOW,
                     expires_in=3600 if _expiring(scheme) else None).removeprefix(ORIGIN),
            "md5-token",
        )
        for name, (scheme, _, _) in SCHEME_SOURCES.items()
    }  # fmt: skip


def _expiring(scheme: str) -> bool:
    found = schemes.get(scheme)
    return found is not None and found.expiring


def md5(uri: str) -> str:
    return f"{uri}&s={hashlib.md5((uri + TOKEN).encode()).hexdigest()}"


def cloudfront(decider: Decider, uri: str, **grant: object) -> str:
    source = decider.settings.source("acme")
    assert source is not None and source.signatures is not None
    request = sign_request(ORIGIN + uri, Grant(expires=NOW + 3600, **grant))  # type: ignore[arg-type]
    return source.signatures.sign(request).url.removeprefix(ORIGIN)


def padded(uri: str, target: int, filler: str = "a", tail: int = 200) -> str:
    """``uri`` with an ``x=`` parameter that brings it to ``target`` bytes once signed
    (``tail`` leaves room for the signing parameters)."""
    return f"{uri}&x={filler * ((target - len(uri) - tail) // len(filler))}"


def cases(decider: Decider) -> dict[str, tuple[str, str]]:
    """name -> (URI, the name of the typical case it is compared with)."""
    wildcard = {"resource": f"{ORIGIN}/acme/*.jpg"}
    return {
        "md5-token, typical": (md5("/books/photo.jpg?w=400&h=600"), ""),
        "md5-token, 8 KB": (md5(padded("/books/photo.jpg?w=400", LONG, tail=40)), "md5-token"),
        "md5-token with rules": (md5("/ruled/photo.jpg?w=400&h=600"), "md5-token"),
        "cloudfront canned, typical": (cloudfront(decider, "/acme/photo.jpg?w=400"), ""),
        "cloudfront canned, 8 KB": (
            cloudfront(decider, padded("/acme/photo.jpg?w=400", LONG, tail=450)),
            "cloudfront canned",
        ),
        "cloudfront wildcard, typical": (cloudfront(decider, "/acme/a.jpg", **wildcard), ""),
        "cloudfront wildcard, 8 KB of '.j'": (
            # The review's amplification: ".j" repeated against "*.jpg" (denied: no ".jpg" end).
            cloudfront(decider, "/acme/a.jpg", **wildcard) + "&x=" + ".j" * 3600,
            "cloudfront wildcard",
        ),
    }


REFERRER, COUNTRY = "https://shop.example.com/product/7", "JP"


def measure(decider: Decider, uri: str, loops: int) -> float:
    facts = RequestFacts(
        uri, "GET", "cdn.example.com", "203.0.113.5", None, True, REFERRER, COUNTRY
    )
    started = time.perf_counter()
    for _ in range(loops):
        decider.decide(facts, NOW)
    return (time.perf_counter() - started) / loops


PIPELINE = 100  # requests in flight on the one connection


def measure_service(port: int, uri: str, loops: int) -> float:
    """Seconds per ``/verify`` answered by the sidecar process (nginx's headers)."""
    one = (
        f"GET /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Original-URI: {uri}\r\n"
        "X-Original-Method: GET\r\nX-Original-Host: cdn.example.com\r\n"
        f"X-Real-IP: 203.0.113.5\r\nX-Original-Referer: {REFERRER}\r\n"
        f"X-Country-Code: {COUNTRY}\r\n\r\n"
    ).encode()
    batch = one * PIPELINE
    with socket.create_connection(("127.0.0.1", port)) as connection:
        started = time.perf_counter()
        for _ in range(max(1, loops // PIPELINE)):
            connection.sendall(batch)
            answered = 0
            while answered < PIPELINE:
                answered += connection.recv(1 << 20).count(b"HTTP/1.1 ")
        return (time.perf_counter() - started) / (max(1, loops // PIPELINE) * PIPELINE)


def report(title: str, table: dict[str, tuple[str, str]], timings: dict[str, list[float]],
           decider: Decider) -> None:  # fmt: skip
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"\n{title}\n{'case':38} {'bytes':>6} {'reason':>9} {'us/verify':>10} {'x typical':>10}")
    for name, (uri, base) in table.items():
        facts = RequestFacts(
            uri, "GET", "cdn.example.com", "203.0.113.5", None, True, REFERRER, COUNTRY
        )
        reason = decider.decide(facts, NOW).reason
        ratio = medians[name] / medians[f"{base}, typical"] if base else 1.0
        print(f"{name:38} {len(uri):6} {reason:>9} {medians[name] * 1e6:10.1f} {ratio:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="verify-cost-"))
    decider = build(folder)
    table = cases(decider) | scheme_cases(decider)
    text = (folder / "sidecar.toml").read_text()
    decisions: dict[str, list[float]] = {name: [] for name in table}
    service: dict[str, list[float]] = {name: [] for name in table}
    stack = LocalStack(folder / "stack", text, folder)
    (folder / "stack").mkdir()
    for name in KEY_FILES:
        (folder / "stack" / name).write_bytes((folder / name).read_bytes())
    stack.write_config()
    stack.start_sidecar()
    try:
        for _ in range(args.rounds):  # interleaved: drift hits every case alike
            for name, (uri, _) in table.items():
                decisions[name].append(measure(decider, uri, args.loops))
                service[name].append(measure_service(stack.sidecar_port, uri, args.loops))
    finally:
        stack.stop()
    report("the decision, in-process", table, decisions, decider)
    report("the service: /verify on loopback, pipelined", table, service, decider)
    print("\ntarget: on the service, every 8 KB case at most 3.00 x its typical case")
    rates(table, service)


def rates(table: dict[str, tuple[str, str]], service: dict[str, list[float]]) -> None:
    """Each scheme's direct /verify rate, and its ratio to md5-token's, from the same run."""
    md5_rate = 1 / statistics.median(service["md5-token, typical"])
    print(
        f"\ndirect /verify rate by scheme (typical URLs)\n{'scheme':28} {'per s':>8} {'/ md5':>6}"
    )
    for name in table:
        if name.endswith(", typical"):
            rate = 1 / statistics.median(service[name])
            print(f"{name.removesuffix(', typical'):28} {rate:8,.0f} {rate / md5_rate:6.2f}")


if __name__ == "__main__":
    main()
