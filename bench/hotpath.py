"""Where the microseconds of one verification go, measured in process (no sockets).

Each stage of the verify path is timed alone over the same requests (minimum of several
rounds, so the machine's noise counts least), then the whole protocol path, which feeds raw
subrequests to the real ``VerifyProtocol`` with a transport that only counts answers.
``--cprofile`` adds cProfile's view of the whole path. ``--compare`` (what
``bash bench/run --profile`` runs) measures the installed build (compiled with mypyc) and
this tree's pure-Python sources side by side, alternating rounds between the two.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client import CollectorRegistry
from tools.paced_load import verify_request  # bench/tools: this folder is on the path

from bench import ORIGIN, SOURCES, TOKEN, write_acme_keys  # bench/bench.py: the same sources
from sidecar import build
from sidecar.config import load
from sidecar.policy.decide import Decision
from sidecar.policy.proxies import EXTRACTORS
from sidecar.policy.signing import sign_url
from sidecar.runtime.http_reader import Request, RequestReader
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.state import State, create_state
from sidecar.runtime.verify_protocol import VerifyProtocol, VerifyServer, verify_answer

CONFIG = f'[server]\nlisten = "127.0.0.1:1"\n\n{SOURCES}'
SUM = "sum of the stages"
WHOLE = "whole protocol path (one kept-alive connection)"
CLOUDFRONT_FIRST = "cloudfront decide, first time (RSA-2048)"
CLOUDFRONT_REPEATED = "cloudfront decide, repeated (remembered)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile's top 20")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="the installed build and this tree's pure Python, side by side",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # --compare's
    args = parser.parse_args()
    if args.compare:
        _report(_compare(args.requests, args.rounds))
        return 0
    figures = uvloop.run(measure(args.requests, args.rounds, args.cprofile))
    if args.json:
        print(json.dumps({build.KIND: figures}))
    else:
        _report({build.KIND: figures})
    return 0


def _compare(count: int, rounds: int) -> dict[str, dict[str, float]]:
    """Each round runs this script once per build, alternately, so the machine's drift
    hits both alike; each figure is the minimum over the rounds."""
    installed = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    pure = {**installed, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for env in (installed, pure):
            command = [sys.executable, __file__, "--json", "--rounds", "1",
                       "--requests", str(count)]  # fmt: skip
            output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            for kind, figures in json.loads(output.stdout).items():
                kept = best.setdefault(kind, {})
                for name, value in figures.items():
                    kept[name] = min(kept.get(name, value), value)
    return best


async def measure(count: int, rounds: int, with_cprofile: bool) -> dict[str, float]:
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
            ("parse (httptools: request line, headers)", lambda: _parse_each(raw)),
            ("extract (proxy profile headers)",
             lambda: _each(lambda m: extract(m.method, m.path, m.headers), messages)),
            ("decide (canonical form, route, md5-token)",
             lambda: _each(lambda f: decide(f, now), facts)),
            ("record (metrics)", lambda: _each(lambda d: state.metrics.record(d, 2e-5), decisions)),
            ("answer (pre-encoded bytes)", lambda: _each(_answer, decisions)),
        ]  # fmt: skip
        figures = {name: _best(run, rounds) / count for name, run in stages}
        figures[SUM] = sum(figures.values())
        figures[WHOLE] = _best(lambda: _protocol(state, raw), rounds) / count
        figures[CLOUDFRONT_FIRST], figures[CLOUDFRONT_REPEATED] = _cloudfront(state, rounds)
        if with_cprofile:
            profiler = cProfile.Profile()
            profiler.runcall(_protocol, state, raw)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return figures


def _state(folder: Path) -> State:
    write_acme_keys(folder)
    (folder / "sidecar.toml").write_text(CONFIG)
    log = JsonLog(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    return create_state(load(folder / "sidecar.toml"), registry=CollectorRegistry(), log=log)


def _md5_uri(index: int) -> str:
    unsigned = f"/books/photo.jpg?w={index}"
    digest = hashlib.md5((unsigned + TOKEN).encode(), usedforsecurity=False).hexdigest()
    return f"{unsigned}&s={digest}"


def _parse_all(raw: list[bytes]) -> list[Request]:
    reader = RequestReader()
    parsed = [reader.feed(request)[0] for request in raw]
    return [request for request in parsed if isinstance(request, Request)]


def _parse_each(raw: list[bytes]) -> None:
    """Each request read on one connection and dropped, as the server does."""
    reader = RequestReader()
    for request in raw:
        reader.feed(request)


def _each(stage: Callable[[Any], object], inputs: list[Any]) -> None:
    for item in inputs:
        stage(item)


def _answer(decision: Decision) -> bytes:
    source = decision.source.name if decision.source is not None else "-"
    return verify_answer(
        decision.status,
        decision.reason,
        decision.cache_ttl,
        True,
        source=source,
        key_id=decision.key_id,
    )


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


def _report(builds: dict[str, dict[str, float]]) -> None:
    """One column of microseconds per build, and their ratio when there are two."""
    kinds = sorted(builds)  # "compiled" before "pure"
    print(f"\nPython {sys.version.split()[0]}, CPU time of one thread, minimum of the rounds\n")
    header = f"{'µs/request':<48}" + "".join(f" {kind:>10}" for kind in kinds)
    if len(kinds) == 2:
        header += f" {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name in builds[kinds[0]]:
        values = [builds[kind][name] for kind in kinds]
        ratio = f" {values[0] / values[1]:>7.2f}" if len(values) == 2 else ""
        print(f"{name:<48}" + "".join(f" {v * 1e6:>10.2f}" for v in values) + ratio)
        if name == WHOLE:
            rates = "".join(f" {1 / v:>10,.0f}" for v in values)
            print(f"{'  = requests/s on one core, before socket I/O':<48}{rates}")


if __name__ == "__main__":
    sys.exit(main())
