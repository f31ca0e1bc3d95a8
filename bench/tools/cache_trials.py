"""``bench/bench.py --cache-trials``: nginx's auth cache (the shipped config) under one
changed setting at a time, against nginx's ``secure_link``, rounds interleaved.

A trial edits the rendered copy of the shipped config, never ``nginx/`` itself; each edit
must apply (a trial that changed nothing would measure the shipped config twice). A
setting that is not about the auth cache (``open_file_cache``, the worker count) is given
to the ``secure_link`` server too, and the trial's ratio is taken against that one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SHIPPED_KEY = 'proxy_cache_key "$request_method $scheme://$host$request_uri";'
ZONE = "keys_zone=signed_url_auth:10m"
OPEN_FILES = (
    "    open_file_cache max=10000 inactive=60s;\n    open_file_cache_valid 60s;\n"
    "    open_file_cache_min_uses 1;\n"
)
AUTH, SIDECAR, MAIN = "signed-url-auth.conf", "signed-url-sidecar.conf", "nginx.conf"
CACHE_LINE = "    proxy_cache signed_url_auth;\n"
NO_TRY_FILES = (MAIN, "            try_files $uri =404;\n", "")
NO_REQUEST_ID = (MAIN, "        add_header X-Request-ID $request_id always;\n", "")


@dataclass(frozen=True)
class Trial:
    name: str
    edits: tuple[tuple[str, str, str], ...] = ()  # (file, old, new) in the rendered config
    http: str = ""  # directives for http {} of both servers (the secure_link one's too)
    workers: int | None = None  # worker_processes of both servers (None: as rendered)
    # Against secure_link inside the shipped nginx.conf's own server (its try_files,
    # X-Request-ID, tcp_nopush and 2 workers): only the verification differs.
    shipped_server: bool = False

    def apply(self, folder: Path) -> None:
        edits = list(self.edits)
        if self.http:
            edits.append((MAIN, "http {\n", "http {\n" + self.http))
        if self.workers is not None:
            edits.append((MAIN, "worker_processes 2;", f"worker_processes {self.workers};"))
        for name, old, new in edits:
            path = folder / name
            text = path.read_text()
            if old not in text:
                raise ValueError(f"trial {self.name!r}: no {old.strip()!r} in {name}")
            path.write_text(text.replace(old, new))


def _auth(old: str, new: str) -> tuple[str, str, str]:
    return (AUTH, old, new)


TRIALS = (
    Trial("as shipped"),
    # Not shippable: the host, method and scheme decide answers too. How much the key's
    # size costs at most.
    Trial("key $request_uri alone (unsafe)",
          (_auth(SHIPPED_KEY, "proxy_cache_key $request_uri;"),)),
    Trial("proxy_cache_lock on", (_auth(CACHE_LINE, CACHE_LINE + "    proxy_cache_lock on;\n"),)),
    Trial("keys_zone 1m", ((SIDECAR, ZONE, "keys_zone=signed_url_auth:1m"),)),
    Trial("keys_zone 100m", ((SIDECAR, ZONE, "keys_zone=signed_url_auth:100m"),)),
    Trial("proxy_cache_valid 200 10m",
          (_auth(CACHE_LINE, CACHE_LINE + "    proxy_cache_valid 200 10m;\n"),)),
    Trial("proxy_buffering off", (_auth(CACHE_LINE, CACHE_LINE + "    proxy_buffering off;\n"),)),
    Trial("proxy_cache_min_uses 2",
          (_auth(CACHE_LINE, CACHE_LINE + "    proxy_cache_min_uses 2;\n"),)),
    # The cache key must fit in this buffer: 4k leaves long URLs uncached. Does its size
    # cost a hit anything (nginx reads a cached answer into a buffer this large)?
    Trial("proxy_buffer_size 4k (long URLs uncached)",
          (_auth("proxy_buffer_size 16k;", "proxy_buffer_size 4k;"),
           _auth("proxy_busy_buffers_size 16k;", "proxy_busy_buffers_size 4k;"))),
    # The shipped nginx.conf corks every answer; the secure_link server does not.
    Trial("tcp_nopush off (as the secure_link server)",
          ((MAIN, "tcp_nopush on;", "tcp_nopush off;"),)),
    Trial("open_file_cache (both servers)", http=OPEN_FILES),
    # Only the auth location's: the cached answers' files kept open, the images not.
    Trial("open_file_cache in the auth location", (_auth(CACHE_LINE, CACHE_LINE + OPEN_FILES),)),
    # What the shipped nginx.conf's image server does that the secure_link server does not.
    Trial("no try_files (as the secure_link server)", (NO_TRY_FILES,)),
    Trial("no X-Request-ID answer header", (NO_REQUEST_ID,)),
    Trial("open_file_cache + no try_files (both)", (NO_TRY_FILES,), http=OPEN_FILES),
    Trial("open_file_cache + no try_files, X-Request-ID (both)", (NO_TRY_FILES, NO_REQUEST_ID),
          http=OPEN_FILES),
    Trial("as shipped, against secure_link in the shipped server", shipped_server=True),
    Trial("open_file_cache, against secure_link in the shipped server", http=OPEN_FILES,
          shipped_server=True),
    Trial("worker_processes 1 (both servers)", workers=1),
    Trial("as shipped, secure_link with 2 workers too", workers=2),
    Trial("worker_processes 1 + open_file_cache (both)", http=OPEN_FILES, workers=1),
)  # fmt: skip


def fair_key(trial: Trial) -> tuple[str, int, bool]:
    """Trials whose secure_link server is the same share it (one per distinct setting)."""
    return trial.http, trial.workers or (2 if trial.shipped_server else 1), trial.shipped_server


def secure_link_in_shipped_server(folder: Path, secret: str) -> None:
    """The rendered shipped nginx.conf with secure_link in place of the auth include."""
    path = folder / MAIN
    text = path.read_text()
    include = "        include signed-url-auth.conf;\n"
    if include not in text:
        raise ValueError(f"no {include.strip()!r} in {MAIN}")
    path.write_text(text.replace(include, SECURE_LINK_LOCATION.replace("SECRET", secret)))


# The shipped log_format names the auth include's variables: they must still exist.
SECURE_LINK_LOCATION = """\
        set $signature_result "";
        set $signature_source "";
        set $signature_key "";
        location /books/ {
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri SECRET";
            if ($secure_link = "") { return 403; }
            if ($secure_link = "0") { return 410; }
            try_files $uri =404;
        }
"""


class Measured(Protocol):
    name: str
    port: int
    rates: list[float]
    cpu_us: list[float]


def report(setups: Sequence[Measured], secure_ports: dict[tuple[str, int, bool], int]) -> None:
    """Each trial's auth-cache rate and nginx CPU per request against its own secure_link
    server's (same run, medians): the rate's ratio, and secure_link's CPU over the trial's
    (the rate's ratio if nginx's core were all it had; the machine's drift disturbs it
    least)."""
    figures = {one.name: (statistics.median(one.rates), statistics.median(one.cpu_us))
               for one in setups}  # fmt: skip
    by_port = {one.port: figures[one.name] for one in setups}
    print("\nauth cache trials, each against the secure_link server with the same http-level "
          "settings and worker count")  # fmt: skip
    print(f"{'trial':56} {'req/s':>9} {'x secure_link':>13} {'nginx CPU µs':>12} {'CPU ratio':>9}")
    for trial in TRIALS:
        secure_port = secure_ports[fair_key(trial)]
        if trial.name not in figures or secure_port not in by_port:  # left out by --only
            continue
        rate, cpu = figures[trial.name]
        secure_rate, secure_cpu = by_port[secure_port]
        print(f"{trial.name:56} {rate:9,.0f} {rate / secure_rate:13.2f} {cpu:12.1f} "
              f"{secure_cpu / cpu:9.2f}")  # fmt: skip
