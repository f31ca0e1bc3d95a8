"""Run the service: listeners on uvloop, signals (SIGTERM stops, SIGHUP reloads)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry

from sidecar import __version__, config
from sidecar.errors import ConfigError
from sidecar.policy.settings import Address, Settings
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.signing_api import create_signing_app
from sidecar.runtime.state import State, create_metrics_app, create_state
from sidecar.runtime.verify_protocol import MAX_FIELD_SIZE, VerifyServer

# In-flight verifications get this long to finish after SIGTERM.
SHUTDOWN_TIMEOUT = 5.0
# How often the config and key files are checked for changes.
WATCH_INTERVAL = 2.0


def run(settings: Settings, log: JsonLog, *, worker: bool = False) -> None:
    """Serve in this process, or supervise ``workers`` processes sharing the ports."""
    if settings.server.workers > 1 and not worker:
        from sidecar.runtime import workers  # noqa: PLC0415

        workers.supervise(settings, log)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, log, reuse_port=worker))


async def serve(settings: Settings, log: JsonLog, *, reuse_port: bool = False) -> None:
    server = settings.server
    shared_listener = server.metrics_listen == server.listen
    state = create_state(settings, registry=CollectorRegistry(), log=log)
    state.metrics.last_reload.set(time.time())
    verify_server = VerifyServer(state, serve_metrics=shared_listener)
    await verify_server.start(server.listen.host, server.listen.port, reuse_port=reuse_port)
    runners = []
    if not shared_listener:
        metrics_app = create_metrics_app(state)
        runners.append(await _start(metrics_app, server.metrics_listen, reuse_port))
    if settings.signing_listen is not None:
        signing_app = create_signing_app(state)
        runners.append(await _start(signing_app, settings.signing_listen, reuse_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload, state, settings.path, log)
    log.event(
        "start",
        pid=os.getpid(),
        version=__version__,
        listen=str(server.listen),
        metrics_listen=str(server.metrics_listen),
        signing_listen=str(settings.signing_listen) if settings.signing_listen else None,
        sources=[source.name for source in settings.sources],
    )
    watcher = asyncio.create_task(watch_files(state, settings.path, log))
    await stop.wait()
    watcher.cancel()
    state.ready = False
    log.event("stopping")
    await verify_server.stop(SHUTDOWN_TIMEOUT)
    for runner in runners:
        await runner.cleanup()
    log.event("stopped")


async def _start(app: web.Application, address: Address, reuse_port: bool) -> web.AppRunner:
    runner = web.AppRunner(
        app,
        access_log=None,  # an access log line would carry the signature
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        max_field_size=MAX_FIELD_SIZE,
        max_line_size=MAX_FIELD_SIZE,
    )
    await runner.setup()
    site = web.TCPSite(runner, address.host, address.port, backlog=1024, reuse_port=reuse_port)
    await site.start()
    return runner


async def watch_files(
    state: State, path: str, log: JsonLog, interval: float = WATCH_INTERVAL
) -> None:
    """Reload when the config or a key file changes (a Kubernetes Secret update swaps a
    symlink: the path then names a new inode), so rotation needs no signal."""
    seen = fingerprint(state.decider.settings.files)
    while True:
        await asyncio.sleep(interval)
        current = fingerprint(state.decider.settings.files)
        if current != seen:
            log.event("files_changed")
            reloaded = reload(state, path, log)
            # A broken file is not retried in a loop: only its next change triggers again.
            seen = fingerprint(state.decider.settings.files) if reloaded else current


def fingerprint(files: tuple[str, ...]) -> tuple[tuple[int, int, int, int] | None, ...]:
    """What identifies each file's content cheaply; ``os.stat`` follows symlinks."""
    marks: list[tuple[int, int, int, int] | None] = []
    for file in files:
        try:
            status = os.stat(file)
        except OSError:
            marks.append(None)
            continue
        marks.append((status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size))
    return tuple(marks)


def reload(state: State, path: str, log: JsonLog) -> bool:
    """Swap in a re-read config; on any problem keep the old one serving."""
    try:
        settings = config.load(path)
    except ConfigError as error:
        state.metrics.reloads.labels(result="failure").inc()
        log.event("reload_failed", problems=error.problems)
        return False
    state.swap(settings)
    state.metrics.reloads.labels(result="success").inc()
    state.metrics.last_reload.set(time.time())
    log.event("reload", sources=[source.name for source in settings.sources])
    return True
