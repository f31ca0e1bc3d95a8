"""What ``[state]`` costs ``/verify`` (docs/revocation.md): revocations and ``max_uses``.

Real sidecar processes (the installed build) on 127.0.0.1, one per setup, the same two
md5-token sources in each (``pics``, measured for revocations; ``tickets``, the one that
may carry ``max_uses``), and a real ``redis-server`` for ``[state] url``. Rounds interleave
every case, so the machine's drift hits them alike; medians, ratios from the same run.

- the direct ``/verify`` rate of an unrevoked ``pics`` URL (one keep-alive connection,
  100 requests in flight) and the sidecar's CPU per request (``/proc``): without
  ``[state]``; with ``[state] path`` and no revocation (``tickets`` then has ``max_uses``,
  ``pics`` none: what a source without it pays); with 100,000 revocations of ``pics``
  (grants, a few keys and prefixes, written straight into the SQLite file); with
  ``[state] url`` (Redis);
- RSS of the process with and without the 100,000 after their first read, and the
  in-memory view alone (tracemalloc), with the time reading and building it takes;
- ``/verify`` p50/p99 at a fixed rate (open loop, from when each request was due): an
  unrevoked ``pics`` URL, and ``tickets`` with ``max_uses = 1`` through SQLite and Redis,
  each request the first use of a grant of its own (a new URL: the store writes a new
  count every time); and ``pics`` while one revocation is added to the 100,000 (the
  sidecar then reads them all again).

    .venv/bin/python bench/state_cost.py [--rounds 3] [--requests 40000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from tools import paced_load  # bench/tools: this script's folder is on its path
from tools.state_setups import (
    PIPELINE,
    Setup,
    pipelined,
    start_redis,
    unmatched_revocations,
    write_rows,
    write_state,
)

from sidecar import config
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.revocations import Kind, Revocation, RevokedView, from_json, new_revocation
from sidecar.policy.settings import UseLimit
from sidecar.runtime.store_redis import RedisStore
from sidecar.runtime.store_sqlite import SqliteStore
from sidecar.runtime.stores import Store
from sidecar.schemes import md5_token

TOKEN = b"bench-state-token-0123456789"
KEYS = PREFIXES = 10  # revoked keys and path prefixes among the revocations
WIDE = 1_000  # prefix revocations of one source, in the decision's last case
SOURCES = (
    '[[sources]]\nname = "pics"\nscheme = "md5-token"\npath_prefix = "/pics/"\n'
    f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN.decode()}"\n\n'
    '[[sources]]\nname = "tickets"\nscheme = "md5-token"\npath_prefix = "/tickets/"\n{uses}'
    f'[[sources.keys]]\nid = "k"\nsecret = "{TOKEN.decode()}"\n'
)


def signed(path: str) -> bytes:
    digest = md5_token.signature(path.encode(), TOKEN).hex()
    return paced_load.verify_request(f"{path}?{md5_token.SIGNATURE_PARAM}={digest}")


def revocations(count: int, now: float) -> list[Revocation]:
    """``count`` revocations of ``pics``, none of which the measured URL falls under."""
    return unmatched_revocations("pics", count, now, keys=KEYS, prefixes=PREFIXES)


def view_cost(records: list[Revocation]) -> tuple[float, float, float]:
    """The in-memory view of ``records``: MB (tracemalloc, the view alone), and the
    seconds parsing the stored bodies and building the view take."""
    bodies = [record.to_json().decode() for record in records]
    started = time.perf_counter()
    parsed = [record for body in bodies if (record := from_json(body)) is not None]
    parse = time.perf_counter() - started
    started = time.perf_counter()
    RevokedView(parsed, time.time())
    build = time.perf_counter() - started
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    view = RevokedView(parsed, time.time())
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del view
    return size / 1e6, parse, build


def adding_one_revocation(state: Path, after: float) -> threading.Timer:
    """One more revocation written into ``state`` ``after`` seconds from now (the sidecar
    sees the revision move and reads every revocation again)."""

    def write() -> None:
        write_rows(state, [new_revocation("pics", Kind.GRANT, secrets.token_hex(16), None,
                                          time.time())])  # fmt: skip

    timer = threading.Timer(after, write)
    timer.start()
    return timer


def decisions(setup: Setup, records: list[Revocation], rounds: int, loops: int) -> None:
    """The decision alone, in process (no sockets: the figure a shared machine's drift
    disturbs least): the same URL with no view (no ``[state]``), an empty one,
    ``records``'s, and ``WIDE`` revoked prefixes'; rounds interleaved, the fastest of each."""
    decider = Decider(config.load(setup.config))
    uri = signed("/pics/summer/beach.jpg").split(b"X-Original-URI: ")[1].split(b"\r\n")[0]
    facts = RequestFacts(uri.decode(), "GET", "image.example.com", "203.0.113.7")
    loaded = f"[state], {len(records):,} revocations"
    now = time.time()
    wide = [new_revocation("pics", Kind.PREFIX, f"/pics/withdrawn-{i}", None, now)
            for i in range(WIDE)]  # fmt: skip
    views = {"no [state]": None, "[state], 0 revocations": RevokedView((), now),
             loaded: RevokedView(records, now),
             f"[state], {WIDE:,} prefix revocations": RevokedView(wide, now)}  # fmt: skip
    best = dict.fromkeys(views, float("inf"))
    for _ in range(rounds):
        for name, view in views.items():
            decider.revocations = view
            started = time.perf_counter()
            for _ in range(loops):
                decider.decide(facts, time.time())
            best[name] = min(best[name], (time.perf_counter() - started) / loops)
    assert decider.decide(facts, time.time()).status == 200
    print(f"\nthe decision alone, in process ({rounds} rounds x {loops:,}, the fastest)")
    for name, seconds in best.items():
        print(f"{name:52} {seconds * 1e6:7.2f} µs {best['no [state]'] / seconds:7.2f} x none")


def one_use_at_a_time(stores: dict[str, Store], count: int) -> None:
    """Each store's ``use`` awaited one after another, in this process: the round trip one
    use costs the sidecar's store client, without a sidecar around it."""
    print(f"\none use at a time, in process ({count:,} new grants, max_uses = 1)")
    for name, store in stores.items():

        async def uses(store: Store = store) -> float:
            await store.open()
            started = time.perf_counter()
            for _ in range(count):
                grant = secrets.token_bytes(20)
                assert await store.use(grant, "c", UseLimit(1, 60), None, time.time())
            elapsed = time.perf_counter() - started
            await store.close()
            return elapsed / count

        print(f"{name:52} {asyncio.run(uses()) * 1e6:7.0f} µs a use")


def wrong(run: paced_load.LoadResult) -> int:
    """Answers other than 200 (every URL sent is validly signed, unrevoked, unused) and
    broken connections."""
    return run.errors + sum(count for status, count in run.statuses.items() if status != 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40_000, help="each rate run")
    parser.add_argument("--seconds", type=float, default=5.0, help="each latency run")
    parser.add_argument("--rate", type=int, default=2_000, help="requests a second")
    parser.add_argument("--revocations", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="state-cost-"))
    records = revocations(args.revocations, time.time())
    redis, url = start_redis(folder / "redis")
    sqlite, sources = (
        '[state]\npath = "state.sqlite"\n\n',
        SOURCES.replace("{uses}", "max_uses = 1\n"),
    )
    setups = {
        "none": Setup(folder / "none", SOURCES.replace("{uses}", "")),
        "sqlite": Setup(folder / "sqlite", sqlite + sources),
        "loaded": Setup(folder / "loaded", sqlite + sources),
        "redis": Setup(folder / "redis-state", f'[state]\nurl = "{url}"\n\n' + sources),
    }
    write_state(folder / "loaded" / "state.sqlite", records)
    try:
        for setup in setups.values():
            setup.start()
        first = setups["sqlite"].rss_mb(), setups["loaded"].rss_mb()  # serving: read once
        measure(args, setups, folder / "loaded" / "state.sqlite")
        stores: dict[str, Store] = {
            "SQLite (one transaction a use)": SqliteStore(str(folder / "uses.sqlite")),
            "Redis (redis-py asyncio, one Lua script a use)": RedisStore(url, "redis"),
        }
        one_use_at_a_time(stores, min(2_000, args.requests))
        print(f"\nRSS after the first read of the revocations: none {first[0]:.1f} MB, "
              f"{len(records):,}: {first[1]:.1f} MB; after the runs (the {args.rounds} "
              f"re-reads included): {setups['loaded'].rss_mb():.1f} MB")  # fmt: skip
    finally:
        for setup in setups.values():
            setup.stop()
        redis.terminate()
        redis.wait(timeout=10)
    decisions(setups["none"], records, max(3, args.rounds), args.requests)
    size, parse, build = view_cost(records)
    print(f"the view the verify loop reads, {len(records):,} revocations: {size:.1f} MB "
          f"(tracemalloc); parsing the stored records {parse * 1e3:.0f} ms, building the "
          f"view {build * 1e3:.0f} ms")  # fmt: skip
    shutil.rmtree(folder)  # kept after a failure: the sidecars' and Redis's logs are there


RATE_CASES = {
    "no [state]": "none",
    "[state] path, 0 revocations (pics: no max_uses)": "sqlite",
    "[state] path, {n} revocations of pics": "loaded",
    "[state] url (Redis), 0 revocations": "redis",
}
LATENCY_CASES = {
    "pics, no [state]": "none",
    "pics, {n} revocations": "loaded",
    "pics, {n} revocations, one added mid-run": "loaded",
    "tickets max_uses=1, SQLite, new grant each": "sqlite",
    "tickets max_uses=1, Redis, new grant each": "redis",
}


def measure(args: argparse.Namespace, setups: dict[str, Setup], state: Path) -> None:
    pics = signed("/pics/summer/beach.jpg")
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in RATE_CASES}
    runs: dict[str, list[paced_load.LoadResult]] = {name: [] for name in LATENCY_CASES}
    count = int(args.rate * args.seconds * 1.05) + 16  # a fresh grant for every request due
    for round_ in range(args.rounds):  # interleaved: drift hits every case alike
        for name, key in RATE_CASES.items():
            rates[name].append(pipelined(setups[key], pics, args.requests))
        for name, key in LATENCY_CASES.items():
            requests = [pics]
            if name.startswith("tickets"):
                requests = [signed(f"/tickets/{round_}/{i}.jpg") for i in range(count)]
            timer = adding_one_revocation(state, args.seconds / 2) if "added" in name else None
            runs[name].append(
                paced_load.run(setups[key].port, requests, rate=args.rate, seconds=args.seconds)
            )
            if timer is not None:
                timer.join()
    report(args, rates, runs)


def report(
    args: argparse.Namespace,
    rates: dict[str, list[tuple[float, float]]],
    runs: dict[str, list[paced_load.LoadResult]],
) -> None:
    n = f"{args.revocations:,}"
    print(f"\ndirect /verify, an unrevoked pics URL, pipelined ({PIPELINE} in flight): "
          f"{args.rounds} rounds x {args.requests:,} requests, interleaved")  # fmt: skip
    print(f"{'setup':52} {'req/s median (min-max)':>24} {'x none':>7} {'CPU µs':>7} {'x none':>7}")
    base_rate = statistics.median(r for r, _ in rates["no [state]"])
    base_cpu = statistics.median(c for _, c in rates["no [state]"])
    for name, values in rates.items():
        rate, cpu = statistics.median(r for r, _ in values), statistics.median(c for _, c in values)
        spread = f"{rate:,.0f} ({min(r for r, _ in values):,.0f}-{max(r for r, _ in values):,.0f})"
        print(f"{name.format(n=n):52} {spread:>24} {rate / base_rate:7.2f} {cpu:7.1f} "
              f"{cpu / base_cpu:7.2f}")  # fmt: skip
    print(
        f"\n/verify at {args.rate:,}/s, open loop (8 connections, latency from when each "
        f"request was due): {args.rounds} rounds x {args.seconds:g} s, medians of the rounds"
    )
    print(f"{'case':52} {'answers':>8} {'p50 ms':>7} {'p99 ms':>7} {'x none':>7} {'max ms':>7} "
          f"{'non-200':>8}")  # fmt: skip
    base_p99 = statistics.median(r.percentile(0.99) for r in runs["pics, no [state]"])
    for name, results in runs.items():
        p50 = statistics.median(r.percentile(0.5) for r in results) * 1e3
        p99 = statistics.median(r.percentile(0.99) for r in results) * 1e3
        peak = statistics.median(max(r.latencies, default=0.0) for r in results) * 1e3
        answers = sum(len(r.latencies) for r in results)
        bad = sum(wrong(r) for r in results)
        print(f"{name.format(n=n):52} {answers:8,} {p50:7.2f} {p99:7.2f} "
              f"{p99 / (base_p99 * 1e3):7.2f} {peak:7.2f} {bad:8}")  # fmt: skip


if __name__ == "__main__":
    main()
