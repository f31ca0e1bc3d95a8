"""What the console's charts cost ``/verify``: the same sidecar without and with
``[admin]`` (whose console samples every source's counts every 5 seconds, in the offload
pool), under the same open-loop load, rounds interleaved.

``sources`` md5-token tenants (``bench/tools/tenants.py``); the load cycles through all of
them at ``--rate``, so at the default 10,000 sources and 2,000/s every source has traffic
in every 5-second sample: the most a sample reads and keeps. Nobody opens the console:
this is the cost of keeping the history, which runs whether or not anyone looks.

    .venv/bin/python bench/console_cost.py [--sources 10000] [--rate 2000] [--seconds 12]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
from pathlib import Path

from tools import paced_load, scale_probe  # bench/tools: this script's folder is on its path
from tools.tenants import Tenants

from sidecar.devtools.local_stack import free_port

ADMIN_KEY_SHA256 = hashlib.sha256(b"bench-console-admin-key").hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--seconds", type=float, default=12.0, help="each run (>= 2 samples)")
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    runs: dict[str, list[paced_load.LoadResult]] = {"console off": [], "console on": []}
    for _ in range(arguments.rounds):
        for label, results in runs.items():
            results.append(measure(arguments, console=label == "console on"))
    print(f"\n{arguments.sources} sources, all with traffic; /verify at {arguments.rate:g}/s for "
          f"{arguments.seconds:g} s per run, {arguments.rounds} rounds interleaved\n")  # fmt: skip
    print(f"{'':<12} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>9} {'max ms':>7} {'wrong':>6}")
    for label, results in runs.items():
        print(f"{label:<12} " + " ".join(_figures(results)))
    return 0


def measure(arguments: argparse.Namespace, *, console: bool) -> paced_load.LoadResult:
    with tempfile.TemporaryDirectory(prefix="signed-url-console-cost-") as temp:
        port = free_port()
        tenants = Tenants(Path(temp), arguments.sources, f"127.0.0.1:{port}")
        config = tenants.write()
        if console:
            with config.open("a", encoding="utf-8") as text:
                text.write(f'\n[admin]\nlisten = "127.0.0.1:{free_port()}"\n'
                           f'api_key_sha256 = ["{ADMIN_KEY_SHA256}"]\n')  # fmt: skip
        log = Path(temp) / "sidecar.log"
        process, _ = scale_probe.start(config, port, log)
        try:
            everyone = [paced_load.verify_request(tenants.signed_uri(i))
                        for i in range(arguments.sources)]  # fmt: skip
            warm = max(0.5, arguments.sources / arguments.rate)  # every source seen once
            paced_load.run(port, everyone, rate=arguments.rate, seconds=warm)
            result = paced_load.run(port, everyone, rate=arguments.rate, seconds=arguments.seconds)
            if b"console_sample_failed" in log.read_bytes():
                raise RuntimeError(f"a console sample failed: see {log}")
            return result
        finally:
            process.terminate()
            process.wait(timeout=10)


def _figures(results: list[paced_load.LoadResult]) -> list[str]:
    """Medians over the rounds, in milliseconds, and every answer that was not a 200."""
    median = statistics.median
    wrong = sum(r.errors + sum(n for s, n in r.statuses.items() if s != 200) for r in results)
    return [
        f"{1e3 * median(r.percentile(0.5) for r in results):>7.2f}",
        f"{1e3 * median(r.percentile(0.99) for r in results):>7.2f}",
        f"{1e3 * median(r.percentile(0.999) for r in results):>9.2f}",
        f"{1e3 * median(max(r.latencies, default=0.0) for r in results):>7.2f}",
        f"{wrong:>6}",
    ]


if __name__ == "__main__":
    sys.exit(main())
