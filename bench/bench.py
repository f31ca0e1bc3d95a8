"""Interleaved throughput benchmark: nginx alone, secure_link, the subrequest limit, and
the sidecar (through nginx, with and without the auth cache, and hit directly).

Every setup runs once per round, rounds interleaved, so the machine's drift hits all of
them alike; the table prints medians with min-max and ratios measured in the same run.
Only 127.0.0.1 is ever targeted.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools import cache_trials, feature_setups, nginx_servers, targets  # bench/tools: on the path

from sidecar import build
from sidecar.devtools import nginx_conf
from sidecar.devtools.local_stack import LocalStack, free_port, nginx_binary, wait_for_port
from sidecar.schemes import cloudfront_keys as keys

HERE = Path(__file__).resolve().parent
HOST = "image.example.com"
TOKEN = "bench-token-0123456789abcdef"
ORIGIN = "https://image.example.com"
SECURE_LINK_SECRET = "bench-secure-link-secret"
IMAGE_BYTES = 20 * 1024
DISTINCT_URLS = 20_000
WRK_CONNECTIONS = 32
SECURE_LINK = "nginx secure_link (native MD5)"
SUBREQUEST = "auth_request -> nginx stub (subrequest limit)"
# secure_link inside the shipped nginx.conf's server (its try_files, X-Request-ID,
# tcp_nopush, 2 workers) in place of the auth include: only the verification differs.
SECURE_LINK_SHIPPED = "nginx secure_link in the shipped nginx.conf"
AUTH_CACHE = "sidecar via nginx, md5-token, auth cache"
COMPILED_DIRECT = "sidecar direct, md5-token, 1 process"
VIA_NGINX = "sidecar via nginx, md5-token, no cache"
FLOOR_DIRECT = "bare uvloop protocol, direct (I/O floor)"
FLOOR_VIA_NGINX = "auth_request -> bare uvloop protocol (floor)"
PURE_DIRECT = "sidecar direct, md5-token, 1 process, pure Python"
TARGETS = [
    targets.Target("direct, md5-token, CPU a request", COMPILED_DIRECT, FLOOR_DIRECT, "CPU µs",
                   2.0, at_most=True),
    targets.Target("via nginx, md5-token, no cache, req/s", VIA_NGINX, FLOOR_VIA_NGINX, "req/s",
                   0.8, at_most=False),
    targets.Target("via nginx, md5-token, no cache, p99", VIA_NGINX, FLOOR_VIA_NGINX, "p99", 1.1,
                   at_most=True),
    targets.Target("auth cache, req/s", AUTH_CACHE, SECURE_LINK, "req/s", 0.9, at_most=False),
    targets.Target("auth cache, req/s (same nginx server)", AUTH_CACHE, SECURE_LINK_SHIPPED,
                   "req/s", 0.9, at_most=False),
]  # fmt: skip


# The sources every sidecar setup serves (and bench/hotpath.py too): md5-token "books" and
# cloudfront "acme", whose RSA key pair write_acme_keys makes.
SOURCES = f"""\
[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
  [[sources.keys]]
  id = "k"
  secret = "{TOKEN}"

[[sources]]
name = "acme"
scheme = "cloudfront"
path_prefix = "/acme/"
public_origin = "{ORIGIN}"
  [[sources.keys]]
  id = "KBENCH"
  public_key_file = "acme.pub.pem"
  private_key_file = "acme.pem"
"""


def write_acme_keys(folder: Path) -> None:
    private, public = keys.new_key_pair("rsa")
    (folder / "acme.pem").write_bytes(private)
    (folder / "acme.pub.pem").write_bytes(public)


@dataclass
class Setup:
    name: str
    port: int
    urls: Path
    direct: bool = False
    verifier: list[int] = field(default_factory=list)  # pids whose CPU time is counted
    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # the verifier's CPU per answer
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: int = 0
    referer: str | None = None  # sent as nginx's X-Original-Referer (direct requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--only", default="", help="the setups whose name holds one of these, split by | (trials)"
    )
    parser.add_argument("--cache-trials", action="store_true",
                        help="the auth cache under each setting in tools/cache_trials")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signed-url-bench-") as temp:
        bench = Bench(Path(temp))
        try:
            setups = bench.start_cache_trials() if args.cache_trials else bench.start()
            only = args.only.split("|")
            setups = [setup for setup in setups if any(part in setup.name for part in only)]
            started = time.monotonic()
            for round_number in range(1, args.rounds + 1):
                for setup in setups:
                    run_wrk(setup, args.seconds)
                print(f"round {round_number}/{args.rounds} done", file=sys.stderr)
            report(setups, bench, args, time.monotonic() - started)
            if args.cache_trials:
                cache_trials.report(setups, bench.secure_ports)
        finally:
            bench.stop()
    return 0


class Bench:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.images = folder / "images"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stacks: list[LocalStack] = []
        self.secure_ports: dict[tuple[str, int, bool], int] = {}  # --cache-trials' secure_links

    def start(self) -> list[Setup]:
        self._write_images()
        one = self._sidecar("one", workers=1)
        two = self._sidecar("two", workers=2)
        pure = self._sidecar("pure", workers=1, pure=True)
        md5_urls = self._md5_urls("md5-distinct.txt", DISTINCT_URLS)
        md5_one = self._md5_urls("md5-one.txt", 1)
        cloudfront_urls = self._cloudfront_urls(one, "cloudfront-distinct.txt", 2_000)
        plain = self._nginx("plain", nginx_servers.PLAIN)
        secure = self._nginx("secure-link", nginx_servers.SECURE_LINK)
        secure_shipped = self._secure_link_trial("secure-link-shipped", ("", 2, True))
        stub_port = free_port()
        stub = self._nginx(
            "stub", nginx_servers.STUB.replace("STUB_PORT", str(stub_port)), stub_port
        )
        no_cache = self._sidecar_nginx(one, cache=False)
        no_cache_two = self._sidecar_nginx(two, cache=False)
        cached = self._sidecar_nginx(one, cache=True)
        floor, floor_pid = self._floor()
        floor_nginx = self._auth_nginx("floor", floor, cache=False)
        # Whose CPU time a setup counts: the verifier's processes (a supervisor and its
        # workers for workers = 2).
        floor_cpu, one_cpu, two_cpu = [floor_pid], self.pids(one), self.pids(two)
        pure_cpu = self.pids(pure)
        return [
            Setup("nginx, no verification (ceiling)", plain, self._plain_urls()),
            Setup(SECURE_LINK, secure, self._secure_link_urls()),
            Setup(SECURE_LINK_SHIPPED, secure_shipped, self._secure_link_urls()),
            Setup(SUBREQUEST, stub, self._plain_urls()),
            Setup(FLOOR_VIA_NGINX, floor_nginx, md5_urls, verifier=floor_cpu),
            Setup(VIA_NGINX, no_cache, md5_urls, verifier=one_cpu),
            Setup("sidecar via nginx, md5-token, no cache, workers=2", no_cache_two, md5_urls,
                  verifier=two_cpu),
            Setup("sidecar via nginx, cloudfront RSA, no cache", no_cache, cloudfront_urls,
                  verifier=one_cpu),
            Setup(AUTH_CACHE, cached, md5_one, verifier=one_cpu),
            Setup(FLOOR_DIRECT, floor, md5_urls, True, floor_cpu),
            Setup(COMPILED_DIRECT, one.sidecar_port, md5_urls, True, one_cpu),
            # Right after the same scheme with every feature off: each round's ratio of
            # the two is measured back to back, so the machine's slow drift cancels.
            *self._feature_setups(md5_urls),
            Setup("sidecar direct, cloudfront RSA, 1 process", one.sidecar_port, cloudfront_urls,
                  True, one_cpu),
            Setup("sidecar direct, md5-token, workers = 2", two.sidecar_port, md5_urls, True,
                  two_cpu),
            Setup(PURE_DIRECT, pure.sidecar_port, md5_urls, True, pure_cpu),
        ]  # fmt: skip

    def _feature_setups(self, md5_urls: Path) -> list[Setup]:
        """The features a source may turn on, each in a sidecar process of its own, hit
        directly like COMPILED_DIRECT (the same features off), whose URLs they share."""
        rules = self._sidecar("rules", workers=1, sources=feature_setups.rules_sources(TOKEN))
        revoked_config = feature_setups.revoked_sources(SOURCES)
        revoked = self._sidecar("revoked", workers=1, sources=revoked_config,
                                prepare=feature_setups.write_revocations)  # fmt: skip
        feature_setups.wait_for_revocations(revoked.metrics_url)
        jwt = self._sidecar("jwt", workers=1, sources=feature_setups.jwt_sources())
        jwt_urls = self._write_urls("jwt.txt", feature_setups.jwt_uris(jwt.config_path, 2_000))
        return [
            Setup(feature_setups.RULES, rules.sidecar_port, md5_urls, True, self.pids(rules),
                  referer=feature_setups.REFERER),
            Setup(feature_setups.REVOKED, revoked.sidecar_port, md5_urls, True,
                  self.pids(revoked)),
            Setup(feature_setups.JWT, jwt.sidecar_port, jwt_urls, True, self.pids(jwt)),
        ]  # fmt: skip

    def start_cache_trials(self) -> list[Setup]:
        """``--cache-trials``: secure_link and the auth cache under each trial's setting. The
        CPU column is then nginx's own (its master and workers): in the auth cache's hits
        the sidecar does nothing."""
        self._write_images()
        one = self._sidecar("one", workers=1)
        md5_one, secure_urls = self._md5_urls("md5-one.txt", 1), self._secure_link_urls()
        setups = []
        for number, trial in enumerate(cache_trials.TRIALS):
            key = cache_trials.fair_key(trial)
            if key not in self.secure_ports:
                self.secure_ports[key] = self._secure_link_trial(f"secure-link-{number}", key)
                setups.append(Setup(f"{SECURE_LINK}, trial {number}", self.secure_ports[key],
                                    secure_urls, verifier=[self.processes[-1].pid]))  # fmt: skip
            port = self._auth_nginx(f"trial-{number}", one.sidecar_port, cache=True,
                                    edit=trial.apply)  # fmt: skip
            setups.append(Setup(trial.name, port, md5_one, verifier=[self.processes[-1].pid]))
        time.sleep(1)  # every nginx has forked its workers
        for setup in setups:  # its workers (the cache loader exits after a minute)
            setup.verifier += [pid for pid in _children(setup.verifier[0]) if b"worker" in
                               Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip
        return setups

    def _secure_link_trial(self, name: str, key: tuple[str, int, bool]) -> int:
        """A secure_link server for trials sharing ``key`` (cache_trials.fair_key)."""
        http, workers, shipped = key
        if not shipped:
            return self._nginx(name, nginx_servers.SECURE_LINK, http=http, workers=workers)

        def edit(folder: Path) -> None:
            cache_trials.secure_link_in_shipped_server(folder, SECURE_LINK_SECRET)
            cache_trials.Trial(name, http=http, workers=workers).apply(folder)

        return self._auth_nginx(name, free_port(), cache=False, edit=edit)

    def pids(self, stack: LocalStack) -> list[int]:
        assert stack.sidecar is not None
        return [stack.sidecar.pid, *_children(stack.sidecar.pid)]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
        for stack in self.stacks:
            stack.stop()

    def sidecar_pids(self) -> dict[str, list[int]]:
        pids: dict[str, list[int]] = {}
        for stack in self.stacks:
            assert stack.sidecar is not None
            children = _children(stack.sidecar.pid)
            pids[stack.folder.name] = children or [stack.sidecar.pid]
        return pids

    def _write_images(self) -> None:
        for folder in ("books", "acme", "plain"):
            (self.images / folder).mkdir(parents=True, exist_ok=True)
            (self.images / folder / "photo.jpg").write_bytes(os.urandom(IMAGE_BYTES))

    def _sidecar(
        self,
        name: str,
        *,
        workers: int,
        pure: bool = False,
        sources: str = SOURCES,
        prepare: Callable[[Path], None] | None = None,
    ) -> LocalStack:
        folder = self.folder / name
        folder.mkdir()
        write_acme_keys(folder)
        if prepare is not None:
            prepare(folder)
        config = f"[server]\nworkers = {workers}\n\n{sources}"
        stack = LocalStack(folder, config, self.images)
        stack.write_config()
        # The pure-Python build: this repository's sources ahead of the installed wheel.
        stack.start_sidecar({**os.environ, "PYTHONPATH": str(HERE.parent)} if pure else None)
        self.stacks.append(stack)
        return stack

    def _floor(self) -> tuple[int, int]:
        """bench/floor.py, a bare uvloop protocol answering a constant (the I/O floor): its
        port and pid."""
        port = free_port()
        process = subprocess.Popen([sys.executable, str(HERE / "floor.py"), str(port)])
        self.processes.append(process)
        wait_for_port(port)
        return port, process.pid

    def _sidecar_nginx(self, stack: LocalStack, *, cache: bool) -> int:
        return self._auth_nginx(stack.folder.name, stack.sidecar_port, cache=cache)

    def _auth_nginx(
        self, name: str, upstream: int, *, cache: bool, edit: Callable[[Path], None] | None = None
    ) -> int:
        """The shipped nginx config in front of the verifier listening on ``upstream``."""
        port = free_port()
        folder = self.folder / f"nginx-{name}-{'cache' if cache else 'nocache'}"
        conf = nginx_conf.render(folder, port=port, sidecar=f"127.0.0.1:{upstream}",
                                 root=self.images)  # fmt: skip
        if not cache:
            auth = folder / "signed-url-auth.conf"
            auth.write_text(auth.read_text().replace("proxy_cache signed_url_auth;", ""))
        # The access log would measure the disk, not the verification.
        conf.write_text(re.sub(r"access_log [^;]+;", "access_log off;", conf.read_text()))
        if edit is not None:
            edit(folder)
        self._start_nginx(conf)
        wait_for_port(port)
        return port

    def _nginx(
        self, name: str, server: str, *extra_ports: int, http: str = "", workers: int = 1
    ) -> int:
        port = free_port()
        folder = self.folder / f"nginx-{name}"
        folder.mkdir()
        text = nginx_servers.BASE.replace("SERVERS", http + server).replace("PORT", str(port))
        text = text.replace("worker_processes 1;", f"worker_processes {workers};")
        text = text.replace("ROOT", str(self.images)).replace("PREFIX", str(folder))
        text = text.replace("SECRET", SECURE_LINK_SECRET).replace("USER", getpass.getuser())
        (folder / "nginx.conf").write_text(text)
        self._start_nginx(folder / "nginx.conf")
        for waiting in (port, *extra_ports):
            wait_for_port(waiting)
        return port

    def _start_nginx(self, conf: Path) -> None:
        command = [nginx_binary(), "-p", str(conf.parent), "-c", str(conf),
                   "-e", str(conf.parent / "error.log"), "-g", "daemon off;"]  # fmt: skip
        self.processes.append(subprocess.Popen(command))

    def _write_urls(self, name: str, uris: list[str]) -> Path:
        path = self.folder / name
        path.write_text("\n".join(uris) + "\n")
        return path

    def _plain_urls(self) -> Path:
        return self._write_urls("plain.txt", [f"/plain/photo.jpg?v={n}" for n in range(1000)])

    def _md5_urls(self, name: str, count: int) -> Path:
        return self._write_urls(name, md5_uris(count))

    def _cloudfront_urls(self, stack: LocalStack, name: str, count: int) -> Path:
        from sidecar import config, sign_url  # noqa: PLC0415

        settings = config.load(stack.config_path)
        now = time.time()
        signed = (
            sign_url(settings, "acme", f"{ORIGIN}/acme/photo.jpg?v={n}", now=now, expires_in=86400)
            for n in range(count)
        )
        uris = [url.removeprefix(ORIGIN) for url in signed]
        return self._write_urls(name, uris)

    def _secure_link_urls(self) -> Path:
        expires = int(time.time()) + 86400
        uris = []
        for n in range(1000):
            uri = "/books/photo.jpg"
            digest = hashlib.md5(f"{expires}{uri} {SECURE_LINK_SECRET}".encode()).digest()
            token = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            uris.append(f"{uri}?md5={token}&expires={expires}&v={n}")
        return self._write_urls("secure-link.txt", uris)


def md5_uris(count: int) -> list[str]:
    """``count`` distinct md5-token request URIs of the ``books`` source."""
    uris = []
    for n in range(count):
        unsigned = f"/books/photo.jpg?w=400&v={n}"
        digest = hashlib.md5((unsigned + TOKEN).encode()).hexdigest()
        uris.append(f"{unsigned}&s={digest}")
    return uris


def run_wrk(setup: Setup, seconds: int) -> None:
    env = {**os.environ, "URLS": str(setup.urls), "BENCH_HOST": HOST}
    if setup.direct:
        env["VERIFY_HEADERS"] = "1"
    if setup.referer is not None:
        env["BENCH_REFERER"] = setup.referer
    command = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
               "-s", str(HERE / "lua_urls.lua"), f"http://127.0.0.1:{setup.port}/"]  # fmt: skip
    cpu_before = sum(_cpu_seconds(pid) for pid in setup.verifier)
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    cpu = sum(_cpu_seconds(pid) for pid in setup.verifier) - cpu_before
    answered = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    setup.rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)))  # type: ignore[union-attr]
    if setup.verifier:
        setup.cpu_us.append(cpu / answered * 1e6)
    setup.p50.append(_latency(output, "50%"))
    setup.p99.append(_latency(output, "99%"))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    setup.errors += int(errors.group(1)) if errors else 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latency(output: str, percentile: str) -> float:
    """Milliseconds."""
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert match, output
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(setups: list[Setup], bench: Bench, args: argparse.Namespace, elapsed: float) -> None:
    rates = {setup.name: statistics.median(setup.rates) for setup in setups}
    secure, limit = rates.get(SECURE_LINK, math.nan), rates.get(SUBREQUEST, math.nan)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_model()}; "
        f"Linux {platform.release()}; Python {platform.python_version()}; {_nginx_version()}"
    )
    method = (
        f"wrk -t1 -c{WRK_CONNECTIONS}, {args.rounds} rounds x {args.seconds} s interleaved "
        f"({elapsed:.0f} s)"
    )
    print(f"\nmachine: {machine}\nmethod: {method}\n")
    header = (
        f"{'setup':<52} {'req/s median (min-max)':>26} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'x secure_link':>13} {'x subrequest':>12} {'non-2xx':>8} {'CPU µs':>7}"
    )
    print(header)
    print("-" * len(header))
    for setup in setups:
        median = statistics.median(setup.rates)
        spread = f"{median:,.0f} ({min(setup.rates):,.0f}-{max(setup.rates):,.0f})"
        cpu = f"{statistics.median(setup.cpu_us):.1f}" if setup.cpu_us else "-"
        print(f"{setup.name:<52} {spread:>26} {statistics.median(setup.p50):>7.2f} "
              f"{statistics.median(setup.p99):>7.2f} {median / secure:>13.2f} "
              f"{median / limit:>12.2f} {setup.errors:>8} {cpu:>7}")  # fmt: skip
    speedup = rates.get(COMPILED_DIRECT, math.nan) / rates.get(PURE_DIRECT, math.nan)
    print(f"\nsidecar build: {build.KIND}; direct md5-token, this build / pure Python: "
          f"{speedup:.2f}")  # fmt: skip
    # Under load, what a request costs the sidecar beyond a Python process's own floor.
    for name, floor in ((COMPILED_DIRECT, FLOOR_DIRECT), (PURE_DIRECT, FLOOR_DIRECT),
                        (VIA_NGINX, FLOOR_VIA_NGINX)):  # fmt: skip
        if name not in rates or floor not in rates:  # left out by --only
            continue
        extra = (1 / rates[name] - 1 / rates[floor]) * 1e6
        ratio = rates[name] / rates[floor]
        print(f"{name}: {ratio:.2f} x its floor, {extra:.1f} µs more per request")
    cpu = {setup.name: setup.cpu_us for setup in setups if setup.cpu_us}
    if AUTH_CACHE in rates and SECURE_LINK_SHIPPED in rates:
        print(f"{AUTH_CACHE}: {rates[AUTH_CACHE] / rates[SECURE_LINK_SHIPPED]:.2f} x "
              f"{SECURE_LINK_SHIPPED} (same server otherwise)")  # fmt: skip
    feature_setups.report(COMPILED_DIRECT, cpu, rates)
    figures = {"req/s": rates, "CPU µs": {name: statistics.median(us) for name, us in cpu.items()},
               "p99": {setup.name: statistics.median(setup.p99) for setup in setups}}  # fmt: skip
    targets.report(TARGETS, figures)
    print()
    for name, pids in bench.sidecar_pids().items():
        sizes = ", ".join(f"{_rss_mb(pid):.1f} MB" for pid in pids)
        print(f"sidecar '{name}': RSS per process {sizes}")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return "unknown CPU"


def _nginx_version() -> str:
    result = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().replace("nginx version: ", "")


if __name__ == "__main__":
    sys.exit(main())
