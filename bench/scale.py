"""Many tenants: what 10, 1,000 and 10,000 sources cost one sidecar process.

For each size: a generated configuration (md5-token sources, each with its own key file,
split over ``sources.d/*.toml``), then, on 127.0.0.1 only:
- load: ``config.load`` alone, in a fresh interpreter;
- ready: spawn to the first ``/healthz`` 200 (imports, load, metrics set-up, listening);
- RSS of the serving process after start and after the traffic below;
- one ``/metrics`` scrape (time, size, lines) once ``ACTIVE`` sources have seen requests,
  and once every source has (the worst case);
- ``/verify`` p50/p99 at a fixed rate, without and then during back-to-back scrapes (from
  another process), and the reload from N to N+1 sources under that load: every answer
  must be 200.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools import paced_load, scale_probe  # bench/tools: this script's folder is on its path
from tools.tenants import Tenants

from sidecar.devtools.local_stack import free_port

ACTIVE = 1_000  # sources that see traffic before the first scrape
RATE = 2_000  # /verify requests a second during the latency runs


@dataclass
class Row:
    sources: int
    load: float = 0.0
    ready: float = 0.0
    rss_start: float = 0.0
    rss_end: float = 0.0
    scrape_s: float = 0.0
    scrape_mb: float = 0.0
    scrape_lines: int = 0
    all_active_mb: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    p99_scraping: float = 0.0
    scrapes: int = 0
    reload_s: float = 0.0
    wrong: int = 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--seconds", type=float, default=5.0, help="each latency run")
    args = parser.parse_args()
    rows = [measure(int(size), args.seconds) for size in args.sizes.split(",")]
    report(rows, args.seconds)
    return 0


def measure(count: int, seconds: float) -> Row:
    row = Row(count)
    with tempfile.TemporaryDirectory(prefix="signed-url-scale-") as temp:
        port = free_port()
        tenants = Tenants(Path(temp), count, f"127.0.0.1:{port}")
        config = tenants.write()
        row.load = _load_seconds(config)
        process, row.ready = scale_probe.start(config, port, Path(temp) / "sidecar.log")
        try:
            row.rss_start = scale_probe.rss_mb(process.pid)
            active = [
                paced_load.verify_request(tenants.signed_uri(i)) for i in range(min(count, ACTIVE))
            ]
            warm = paced_load.run(port, active, rate=20 * len(active), seconds=1.0)
            row.wrong += warm.errors + sum(
                n for status, n in warm.statuses.items() if status != 200
            )
            row.scrape_s, body = scale_probe.scrape(port)
            row.scrape_mb, row.scrape_lines = len(body) / 1e6, body.count(b"\n")
            quiet = paced_load.run(port, active, rate=RATE, seconds=seconds)
            with scale_probe.back_to_back_scrapes(port) as scrapes:
                busy = paced_load.run(port, active, rate=RATE, seconds=seconds)
            row.scrapes = scrapes.value
            row.p50, row.p99 = quiet.percentile(0.5), quiet.percentile(0.99)
            row.p99_scraping = busy.percentile(0.99)
            row.reload_s, reloaded = _reload_under_load(tenants, port, active, seconds)
            row.wrong += _wrong(quiet) + _wrong(busy) + _wrong(reloaded)
            everyone = [_request(tenants, i) for i in range(count)]
            paced_load.run(port, everyone, rate=20_000, seconds=max(1.0, count / 10_000))
            row.all_active_mb = len(scale_probe.scrape(port)[1]) / 1e6
            row.rss_end = scale_probe.rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"{count} sources measured", file=sys.stderr)
    return row


def _request(tenants: Tenants, index: int) -> bytes:
    return paced_load.verify_request(tenants.signed_uri(index))


def _wrong(run: paced_load.LoadResult) -> int:
    """Answers other than 200 (every URL sent is validly signed) and broken connections."""
    return run.errors + sum(count for status, count in run.statuses.items() if status != 200)


def _load_seconds(config: Path) -> float:
    code = (
        "import time, sys; from sidecar import config; t = time.perf_counter(); "
        "config.load(sys.argv[1]); print(time.perf_counter() - t)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, str(config)], check=True, capture_output=True, text=True
    )
    return float(output.stdout)


def _reload_under_load(
    tenants: Tenants, port: int, requests: list[bytes], seconds: float
) -> tuple[float, paced_load.LoadResult]:
    """One more source (a new included file) while the load runs; the seconds until the
    new source answers 200, and the load's answers."""
    import threading  # noqa: PLC0415

    newcomer = tenants.count
    result: list[paced_load.LoadResult] = []
    worker = threading.Thread(
        target=lambda: result.append(paced_load.run(port, requests, rate=RATE, seconds=seconds))
    )
    worker.start()
    time.sleep(seconds / 4)
    started = time.perf_counter()
    tenants.write_part(range(newcomer, newcomer + 1))
    probe = [paced_load.verify_request(tenants.signed_uri(newcomer))]
    while paced_load.run(port, probe, rate=10, seconds=0.1, connections=1).statuses[200] == 0:
        if time.perf_counter() - started > 30:
            raise RuntimeError("the new source was never served")
    reload_seconds = time.perf_counter() - started
    worker.join()
    return reload_seconds, result[0]


def report(rows: list[Row], seconds: float) -> None:
    print(f"\n/verify at {RATE}/s for {seconds:g} s per run; {ACTIVE} sources active; "
          "scrapes back to back from another process\n")  # fmt: skip
    header = (
        f"{'sources':>8} {'load s':>7} {'ready s':>8} {'RSS MB':>7} {'RSS end':>8} "
        f"{'scrape s':>9} {'scrape MB':>10} {'lines':>7} {'all-active MB':>14} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99 scraping':>13} {'ratio':>6} {'scrapes':>8} "
        f"{'reload s':>9} {'wrong':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = r.p99_scraping / r.p99 if r.p99 else 0.0
        print(
            f"{r.sources:>8,} {r.load:>7.2f} {r.ready:>8.2f} {r.rss_start:>7.1f} "
            f"{r.rss_end:>8.1f} {r.scrape_s:>9.3f} {r.scrape_mb:>10.2f} {r.scrape_lines:>7,} "
            f"{r.all_active_mb:>14.2f} "
            f"{r.p50 * 1e3:>7.2f} {r.p99 * 1e3:>7.2f} {r.p99_scraping * 1e3:>13.2f} {ratio:>6.2f} "
            f"{r.scrapes:>8} {r.reload_s:>9.2f} {r.wrong:>6}"
        )


if __name__ == "__main__":
    sys.exit(main())
