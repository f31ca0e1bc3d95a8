"""Where the microseconds of one verification go, measured in process (no sockets).

Each stage of the verify path is timed alone over the same requests (minimum of several
rounds, so the machine's noise counts least), then the whole protocol path, which feeds raw
subrequests to the real ``VerifyProtocol`` with a transport that only counts answers.
``--cprofile`` adds cProfile's view of the whole path. Run: ``bash bench/run --profile``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from aiohttp.http_parser import HttpRequestParser
from prometheus_client import CollectorRegistry

from bench import ORIGIN, SOURCES, TOKEN, write_acme_keys  # bench/bench.py: the same sources
from sidecar.config import load
from sidecar.devtools.paced_load import verify_request
from sidecar.policy.decide import Decision
from sidecar.policy.proxies import EXTRACTORS
from sidecar.policy.signing import sign_url
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.state import State, create_state
from sidecar.runtime.verify_protocol import VerifyProtocol, VerifyServer, verify_answer

CONFIG = f'[server]\nlisten = "127.0.0.1:1"\n\n{SOURCES}'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile's top 20")
    args = parser.parse_args()
    uvloop.run(measure(args.requests, args.rounds, args.cprofile))
    return 0


async def measure(count: int, rounds: int, with_cprofile: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="signed-url-hotpath-") as folder:
        state = _state(Path(folder))
        raw = [verify_request(_md5_uri(i)) for i in range(count)]
        messages = _parse_all(raw)
        profile = state.decider.settings.server.proxy
        extract = EXTRACTORS[profile]
        facts = [extract(m.method, m.path, m.headers) for m in messages]
        now = time.time()
        decide = state.decider.decide
        decisions = [decide(f, now) for f in facts]
        gc.collect()
        gc.freeze()  # as the server does after loading its config
        stages: list[tuple[str, Callable[[], object]]] = [
            ("parse (aiohttp C parser, message, headers)", lambda: _parse_each(raw)),
            ("extract (proxy profile headers)",
             lambda: _each(lambda m: extract(m.method, m.path, m.headers), messages)),
            ("decide (canonical form, route, md5-token)",
             lambda: _each(lambda f: decide(f, now), facts)),
            ("record (metrics)", lambda: _each(lambda d: state.metrics.record(d, 2e-5), decisions)),
            ("answer (pre-encoded bytes)", lambda: _each(_answer, decisions)),
        ]  # fmt: skip
        rows = [(name, _best(run, rounds) / count) for name, run in stages]
        whole = _best(lambda: _protocol(state, raw), rounds) / count
        cloudfront = _cloudfront(state, rounds)
        _report(rows, whole, cloudfront)
        if with_cprofile:
            profiler = cProfile.Profile()
            profiler.runcall(_protocol, state, raw)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def _state(folder: Path) -> State:
    write_acme_keys(folder)
    (folder / "sidecar.toml").write_text(CONFIG)
    log = JsonLog(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    return create_state(load(folder / "sidecar.toml"), registry=CollectorRegistry(), log=log)


def _md5_uri(index: int) -> str:
    unsigned = f"/books/photo.jpg?w={index}"
    digest = hashlib.md5((unsigned + TOKEN).encode(), usedforsecurity=False).hexdigest()
    return f"{unsigned}&s={digest}"


class _Reader:
    """The flow-control calls aiohttp's parser makes on its protocol."""

    _reading_paused = False

    def pause_reading(self) -> None: ...

    def resume_reading(self, resume_parser: bool = True) -> None: ...


def _parser() -> Any:
    return HttpRequestParser(_Reader(), asyncio.get_event_loop(), 2**16,  # type: ignore[arg-type]
                             max_line_size=16384, max_field_size=16384, max_headers=64)  # fmt: skip


def _parse_all(raw: list[bytes]) -> list[Any]:
    parser = _parser()
    return [parser.feed_data(request)[0][0][0] for request in raw]


def _parse_each(raw: list[bytes]) -> None:
    """Each request parsed and its message dropped, as the server does."""
    parser = _parser()
    for request in raw:
        parser.feed_data(request)


def _each(stage: Callable[[Any], object], inputs: list[Any]) -> None:
    for item in inputs:
        stage(item)


def _answer(decision: Decision) -> bytes:
    return verify_answer(decision.status, decision.reason, decision.cache_ttl, True)


class _Transport:
    def __init__(self) -> None:
        self.answers = 0

    def write(self, data: bytes) -> None:
        self.answers += 1

    def close(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _protocol(state: State, raw: list[bytes]) -> None:
    """Every request through the real protocol object on one kept-alive connection (the
    shipped nginx config keeps upstream connections), answers counted."""
    server = VerifyServer(state, serve_metrics=False)
    transport = _Transport()
    protocol = VerifyProtocol(server)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for request in raw:
        protocol.data_received(request)
    assert transport.answers == len(raw)


def _cloudfront(state: State, rounds: int) -> tuple[float, float]:
    """Microseconds of one cloudfront decision: a URL seen for the first time (RSA), and
    a repeated one (the verified signature remembered)."""
    settings = state.decider.settings
    extract = EXTRACTORS[settings.server.proxy]
    now = time.time()
    facts = []
    for index in range(200):
        url = f"{ORIGIN}/acme/photo.jpg?w={index}"
        signed = sign_url(settings, "acme", url, now=now, expires_in=3600)
        message = _parse_all([verify_request(signed.removeprefix(ORIGIN))])[0]
        facts.append(extract(message.method, message.path, message.headers))
    decide = state.decider.decide
    started = time.thread_time()
    first = [decide(f, now) for f in facts]  # each signature verified with RSA once
    first_seconds = (time.thread_time() - started) / len(facts)
    assert all(d.status == 200 for d in first)
    repeated = _best(lambda: [decide(f, now) for f in facts], rounds) / len(facts)
    return first_seconds, repeated


def _best(run: Callable[[], object], rounds: int) -> float:
    """CPU seconds of the fastest of ``rounds`` runs: this thread's own CPU time, so time a
    busy neighbour takes from the machine (steal) is not counted."""
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best


def _report(rows: list[tuple[str, float]], whole: float, cloudfront: tuple[float, float]) -> None:
    print(f"\nPython {sys.version.split()[0]}, CPU time of one thread, minimum of the rounds\n")
    print(f"{'stage':<48} {'µs/request':>10}")
    print("-" * 59)
    for name, seconds in rows:
        print(f"{name:<48} {seconds * 1e6:>10.2f}")
    print(f"{'sum of the stages':<48} {sum(s for _, s in rows) * 1e6:>10.2f}")
    print(f"{'whole protocol path (one kept-alive connection)':<48} {whole * 1e6:>10.2f}")
    print(f"{'  = requests/s on one core, before socket I/O':<48} {1 / whole:>10,.0f}")
    first, repeated = cloudfront
    print(f"{'cloudfront decide, first time (RSA-2048)':<48} {first * 1e6:>10.2f}")
    print(f"{'cloudfront decide, repeated (remembered)':<48} {repeated * 1e6:>10.2f}")


if __name__ == "__main__":
    sys.exit(main())
