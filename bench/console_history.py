"""What the console's charts cost with many sources (docs/console.md, "Live"): one sample
(the summed counts read as numbers, and their changes into the ring), the Live page's
charts drawn, and the ring's memory, for 10,000 sources that all have traffic and one
rejection reason each. All of it runs in the offload pool every 5 seconds (the sample)
or once per sample and filter (the drawing), never on ``/verify``.

    .venv/bin/python bench/console_history.py [--sources 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

from sidecar.runtime.console import live_charts, numbers
from sidecar.runtime.console.history import History
from sidecar.runtime.tally import Counts


def counts(sources: int, step: int) -> Counts:
    """What ``Metrics.snapshot`` gives: every source's decisions and one rejection."""
    return Counts(
        verifications={
            **{(f"s{n}", "md5", "ok", "allow"): 10.0 * step for n in range(sources)},
            **{(f"s{n}", "md5", "invalid", "deny"): 1.0 * step for n in range(sources)},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    history, samples, drawings = History(), [], []
    history.add(numbers.read(counts(arguments.sources, 0)), 0.0)
    for step in range(1, arguments.rounds + 1):
        read = counts(arguments.sources, step)
        started = time.process_time()
        history.add(numbers.read(read), 5.0 * step)
        samples.append(time.process_time() - started)
        started = time.process_time()
        live_charts.fragment(history, "")
        drawings.append(time.process_time() - started)
    print(f"{arguments.sources} sources with traffic")
    print(f"one sample (read + ring): {1000 * statistics.median(samples):.1f} ms of CPU")
    print(f"Live page charts drawn:   {1000 * statistics.median(drawings):.1f} ms of CPU")
    print(f"memory (ring + last read): {memory(arguments.sources) / 2**20:.1f} MiB")


def memory(sources: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = History()
        for step in range(3):  # every series is a full array from its first count on
            history.add(numbers.read(counts(sources, step)), 5.0 * step)
        gc.collect()
        return int(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()


if __name__ == "__main__":
    main()
