"""What not sharing an allow under rules through nginx's auth cache costs, against keying
the cache on the facts a rule reads (docs/security.md, "What the auth cache may share").

The real sidecar behind the shipped nginx config on 127.0.0.1, one keep-alive client
asking the same signed image again and again (rounds interleaved, medians):

- a source without rules: after the first request, nginx answers from its auth cache;
- a source with ``referrers``: every request asks the sidecar (the allow is not shared).

Keying the cache on the Referer instead would give the second source the first one's
figure only while the same page asks again: every other page (every product page of a
shop) misses once per URL, and holds a cache entry of its own.

    .venv/bin/python bench/rules_cache.py [--rounds 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import statistics
import tempfile
import time
from pathlib import Path

from sidecar.devtools.demo import write_images
from sidecar.devtools.local_stack import LocalStack

TOKEN = "bench-rules-token-0123456789"
PAGE = "https://shop.example.com/product/7"
CONFIG = (
    "[server]\ncache_ttl = 60\n\n"
    '[[sources]]\nname = "plain"\nscheme = "md5-token"\npath_prefix = "/public/"\n'
    f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN}"\n\n'
    '[[sources]]\nname = "shop"\nscheme = "md5-token"\npath_prefix = "/books/"\n'
    'referrers = ["https://shop.example.com"]\n'
    f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN}"\n'
)
CASES = {
    "no rules: auth cache hit": "/public/logo.png",
    "referrers: asks the sidecar": "/books/database-internals.png",
}


def signed(path: str) -> str:
    return f"{path}?s={hashlib.md5((path + TOKEN).encode()).hexdigest()}"


def seconds_per_request(port: int, uri: str, count: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": "image.example.com", "Referer": PAGE}
    try:
        started = time.perf_counter()
        for _ in range(count):
            connection.request("GET", uri, headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, (uri, response.status)
        return (time.perf_counter() - started) / count
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rules-cache-"))
    write_images(folder / "images")
    stack = LocalStack(folder / "stack", CONFIG, folder / "images")
    timings: dict[str, list[float]] = {name: [] for name in CASES}
    try:
        stack.start()
        for _ in range(args.rounds):  # interleaved: drift hits both cases alike
            for name, path in CASES.items():
                timings[name].append(
                    seconds_per_request(stack.nginx_port, signed(path), args.requests)
                )
    finally:
        stack.stop()
    base = statistics.median(timings["no rules: auth cache hit"])
    print(f"\n{'case':32} {'us/request':>11} {'x cached':>9}   ({args.rounds} x {args.requests})")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:32} {median * 1e6:11.1f} {median / base:9.2f}")


if __name__ == "__main__":
    main()
