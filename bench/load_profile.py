"""Where a verification's CPU goes under load, by layer: ``perf`` samples one verifier
process while wrk drives its ``/verify`` directly (the same URLs and headers as
``bench.py``'s direct rows), and each layer's share of the samples is turned into
microseconds per request with the process's own CPU time (``/proc``).

The verifiers: the bare uvloop protocol (``floor.py``: sockets and event loop only), the
installed (compiled) sidecar, and this tree's pure-Python sources. Layers are the shared
objects the samples fall in: the kernel (sockets, scheduling), the interpreter (libpython:
objects, dicts, calls), the compiled verify path (mypyc's library), httptools (llhttp and
its callbacks), uvloop, libc, the digests. Run by ``bash bench/run --profile-load``;
127.0.0.1 only. ``perf`` comes from Debian's ``linux-perf``; a VM without hardware
counters still samples the CPU clock, which is what this uses.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import HERE, SOURCES, _cpu_seconds, md5_uris, write_acme_keys
from sidecar.devtools.local_stack import free_port, wait_for_port

LAYERS = (  # (name, pattern of the shared object's name), first match wins
    ("kernel", r"\[kernel"),
    ("interpreter (libpython)", r"libpython|^python"),
    ("compiled verify path (mypyc)", r"__mypyc"),
    ("httptools (llhttp + callbacks)", r"^parser\.cpython"),
    ("uvloop", r"^loop\.cpython"),
    ("digests (_md5, OpenSSL)", r"_md5|_hashlib|libcrypto"),
    ("libc", r"^libc\."),
)
OTHER = "other"
VERIFIERS = ("floor", "compiled", "pure")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warm", type=int, default=1, help="seconds of load before sampling")
    parser.add_argument("--top", type=int, default=25, help="symbols listed for the compiled build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signed-url-load-profile-") as name:
        folder = Path(name)
        urls = _write_urls(folder)
        figures: dict[str, tuple[float, dict[str, float]]] = {}
        top: list[str] = []
        for verifier in VERIFIERS:
            with _running(verifier, folder) as (pid, port):
                cpu_us, shares, symbols = _profile(
                    pid, port, urls, folder, seconds=args.seconds, warm=args.warm
                )
            figures[verifier] = (cpu_us, shares)
            if verifier == "compiled":
                top = symbols[: args.top]
    _report(figures, top)
    return 0


def _write_urls(folder: Path) -> Path:
    """bench.py's 20,000 distinct md5-token URLs of the ``books`` source, one per line."""
    path = folder / "urls.txt"
    path.write_text("".join(uri + "\n" for uri in md5_uris(20_000)))
    return path


@contextmanager
def _running(verifier: str, folder: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    if verifier == "floor":
        command = [sys.executable, str(HERE / "floor.py"), str(port)]
        env = None
    else:
        home = folder / verifier
        home.mkdir()
        write_acme_keys(home)
        (home / "sidecar.toml").write_text(f'[server]\nlisten = "127.0.0.1:{port}"\n\n{SOURCES}')
        command = [sys.executable, "-m", "sidecar", "serve", "-c", str(home / "sidecar.toml")]
        # The pure-Python build: this repository's sources ahead of the installed wheel.
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)} if verifier == "pure" else None
    log = (folder / f"{verifier}.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _profile(
    pid: int, port: int, urls: Path, folder: Path, *, seconds: int, warm: int
) -> tuple[float, dict[str, float], list[str]]:
    """CPU µs per request, each layer's share of the samples, and the top symbols."""
    if warm:
        _wrk(port, urls, warm)  # connections, caches, the answers' bytes
    data = folder / f"perf-{pid}.data"
    perf = subprocess.Popen(
        ["perf", "record", "-q", "-F", "1999", "-e", "cpu-clock", "-p", str(pid),
         "-o", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(0.3)  # perf attached before the load starts
    before = _cpu_seconds(pid)
    answered, non_2xx = _wrk(port, urls, seconds)
    cpu_us = (_cpu_seconds(pid) - before) / answered * 1e6
    perf.send_signal(signal.SIGINT)  # perf writes its samples and ends
    _, errors = perf.communicate(timeout=60)
    # Stopped as asked: perf writes its samples, then ends by the signal it was sent.
    if perf.returncode not in {0, -signal.SIGINT, 128 + signal.SIGINT}:
        failure = errors.decode(errors="replace")
        raise RuntimeError(f"perf record: exit {perf.returncode}: {failure}")
    if non_2xx:
        raise RuntimeError(f"{non_2xx} answers were not 200: every URL is validly signed")
    shares = _shares(_report_lines(data, "dso"))
    # "7.78%  [kernel.kallsyms]   [k] finish_task_switch   -  -": the columns that say something.
    symbols = [
        re.sub(r"\s{2,}", "  ", line.strip()).removesuffix("  -  -")
        for line in _report_lines(data, "dso,symbol")
    ]
    return cpu_us, shares, symbols


def _wrk(port: int, urls: Path, seconds: int) -> tuple[int, int]:
    env = {**os.environ, "URLS": str(urls), "VERIFY_HEADERS": "1"}
    command = ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(HERE / "lua_urls.lua"),
               f"http://127.0.0.1:{port}/"]  # fmt: skip
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    answered = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return answered, int(non_2xx.group(1)) if non_2xx else 0


def _report_lines(data: Path, sort: str) -> list[str]:
    """``perf report``'s rows (``NN.NN%  name...``), highest first."""
    output = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort,
         "--percent-limit", "0.3"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line for line in output.splitlines() if re.match(r"\s+[\d.]+%", line)]


def _shares(lines: list[str]) -> dict[str, float]:
    """Each layer's fraction of the samples (the rest, and rows under 0.3 %, are other)."""
    shares = dict.fromkeys([name for name, _ in LAYERS] + [OTHER], 0.0)
    for line in lines:
        percent, _, dso = line.strip().partition("%")
        dso = dso.strip()
        layer = next((name for name, pattern in LAYERS if re.search(pattern, dso)), OTHER)
        shares[layer] += float(percent) / 100
    shares[OTHER] += max(0.0, 1.0 - sum(shares.values()))
    return shares


def _report(figures: dict[str, tuple[float, dict[str, float]]], top: list[str]) -> None:
    print("\nCPU µs per request under load (wrk -t1 -c32 straight at /verify), by layer\n")
    header = f"{'layer':<34}" + "".join(f" {name:>10}" for name in figures)
    print(header)
    print("-" * len(header))
    for layer in [name for name, _ in LAYERS] + [OTHER]:
        cells = "".join(f" {cpu * shares[layer]:>10.1f}" for cpu, shares in figures.values())
        print(f"{layer:<34}{cells}")
    print(
        f"{'total (process CPU time)':<34}"
        + "".join(f" {cpu:>10.1f}" for cpu, _ in figures.values())
    )
    if "floor" in figures:
        floor = figures["floor"][0]
        print(
            f"{'x the floor':<34}"
            + "".join(f" {cpu / floor:>10.2f}" for cpu, _ in figures.values())
        )
    print("\ncompiled build, the symbols with most samples (share of the process's):\n")
    print("\n".join(top))


if __name__ == "__main__":
    sys.exit(main())
