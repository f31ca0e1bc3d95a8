"""What ``[tracing]`` costs ``/verify`` (docs/tracing.md): off, and on.

Real sidecar processes on 127.0.0.1, the same md5-token source in each; rounds interleave
every setup, so the machine's drift hits them alike; medians, ratios from the same run.
Each rate run sends one allowed ``/verify`` request, as nginx's auth subrequest sends it
with a client's sampled ``traceparent``, on one keep-alive connection (100 in flight),
and reads the sidecar's CPU per request from ``/proc``.

- ``no [tracing]``: the build under test (``--build``, default the installed one);
- ``a build without tracing`` (``--before``, when given): a build of the commit before
  the verify listener learnt of tracing, on the same config: tracing off must answer at
  least 0.97 x its rate;
- ``[tracing] on``: spans exported to a collector that answers (a small OTLP/HTTP endpoint
  in a process of its own), to one that accepts and never answers, and with
  ``sample_ratio = 0`` and no ``traceparent`` (spans made, none kept).

    .venv/bin/python bench/tracing_cost.py [--rounds 5] [--requests 20000]
        [--build SITE] [--before SITE]

``SITE`` is a folder holding a ``sidecar`` package (a ``pip install --target`` of a wheel).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import paced_load  # bench/tools: this script's folder is on its path
from tools.state_setups import Setup, pipelined

from sidecar.devtools.local_stack import free_port, wait_for_port
from sidecar.schemes import md5_token

TOKEN = b"bench-tracing-token-0123456789"
SOURCE = (
    '[[sources]]\nname = "pics"\nscheme = "md5-token"\npath_prefix = "/pics/"\n'
    f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN.decode()}"\n'
)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# A collector that answers every export with an empty success (it decodes nothing: the
# sidecar's side is measured).
COLLECTOR = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class BuildSetup(Setup):
    """A sidecar process of a chosen build (``site``: a folder put first on its path)."""

    def __init__(self, folder: Path, body: str, site: str | None) -> None:
        super().__init__(folder, body)
        self.site = site

    def start(self) -> None:
        saved = os.environ.get("PYTHONPATH")
        if self.site is not None:
            os.environ["PYTHONPATH"] = self.site
        try:
            super().start()
        finally:
            os.environ.pop("PYTHONPATH", None)
            if saved is not None:
                os.environ["PYTHONPATH"] = saved


def verify_request(traceparent: str | None) -> bytes:
    """nginx's auth subrequest for one allowed URL, with the client's ``traceparent``."""
    path = "/pics/summer/beach.jpg"
    digest = md5_token.signature(path.encode(), TOKEN).hex()
    request = paced_load.verify_request(f"{path}?{md5_token.SIGNATURE_PARAM}={digest}")
    if traceparent is None:
        return request
    return request[:-2] + f"traceparent: {traceparent}\r\n\r\n".encode()


def tracing(endpoint: str, ratio: float = 1.0) -> str:
    return f'[tracing]\notlp_endpoint = "{endpoint}"\nsample_ratio = {ratio}\n\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20_000, help="each rate run")
    parser.add_argument("--build", help="the build under test (default: the installed one)")
    parser.add_argument("--before", help="a build without tracing, to compare tracing off with")
    parser.add_argument("--off-only", action="store_true", help="only tracing off and --before")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tracing-cost-"))
    collector_port = free_port()
    collector = subprocess.Popen([sys.executable, "-c", COLLECTOR, str(collector_port)])
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)  # accepts, never answers
    silent_endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    live = f"http://127.0.0.1:{collector_port}"
    cases = {
        "no [tracing]": (SOURCE, args.build, TRACEPARENT),
        "[tracing] on, collector answering": (tracing(live) + SOURCE, args.build, TRACEPARENT),
        "[tracing] on, collector never answering": (
            tracing(silent_endpoint) + SOURCE,
            args.build,
            TRACEPARENT,
        ),
        "[tracing] on, sample_ratio = 0, no traceparent": (
            tracing(live, 0.0) + SOURCE,
            args.build,
            None,
        ),
    }
    if args.off_only:
        cases = {"no [tracing]": cases["no [tracing]"]}
    if args.before:
        cases["a build without tracing"] = (SOURCE, args.before, TRACEPARENT)
    setups = {
        name: BuildSetup(folder / f"setup{index}", body, site)
        for index, (name, (body, site, _)) in enumerate(cases.items())
    }
    try:
        wait_for_port(collector_port)
        for setup in setups.values():
            setup.start()
        measure(args, setups, {name: verify_request(case[2]) for name, case in cases.items()})
    finally:
        for setup in setups.values():
            setup.stop()
        collector.terminate()
        collector.wait(timeout=10)
        silent.close()
    shutil.rmtree(folder)  # kept after a failure: the sidecars' logs are there


def measure(
    args: argparse.Namespace, setups: dict[str, BuildSetup], requests: dict[str, bytes]
) -> None:
    rates: dict[str, list[float]] = {name: [] for name in setups}
    cpus: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, setup in setups.items():
            rate, cpu = pipelined(setup, requests[name], args.requests)
            rates[name].append(rate)
            cpus[name].append(cpu)
    print(f"direct /verify, one allowed md5-token URL, pipelined (100 in flight): "
          f"{args.rounds} rounds x {args.requests:,} requests, interleaved")  # fmt: skip
    base_rate = statistics.median(rates["no [tracing]"])
    base_cpu = statistics.median(cpus["no [tracing]"])
    print(f"{'setup':<48} {'req/s median (min-max)':>24} {'x off':>6} {'CPU µs':>7} {'+µs':>6}")
    for name in setups:
        rate, cpu = statistics.median(rates[name]), statistics.median(cpus[name])
        spread = f"{min(rates[name]):,.0f}-{max(rates[name]):,.0f}"
        print(f"{name:<48} {rate:>9,.0f} ({spread:>13}) {rate / base_rate:>6.2f} "
              f"{cpu:>7.1f} {cpu - base_cpu:>+6.1f}")  # fmt: skip
    if "a build without tracing" in rates:
        # Each round's own ratio: the two ran back to back, so slow drift cancels.
        pairs = zip(rates["no [tracing]"], rates["a build without tracing"], strict=True)
        ratios = [off / before for off, before in pairs]
        middle, low, high = statistics.median(ratios), min(ratios), max(ratios)
        print(f"tracing off / a build without tracing, the rounds' ratios: median "
              f"{middle:.3f} x the rate ({low:.2f}-{high:.2f})")  # fmt: skip
    print(f"builds: under test {args.build or 'the installed one'}; "
          f"without tracing {args.before or 'not given'}")  # fmt: skip


if __name__ == "__main__":
    main()
