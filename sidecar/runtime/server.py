"""Run the service: listeners on uvloop, signals (SIGTERM stops, SIGHUP reloads), the
file watcher, and the offload pool for CPU-heavy work."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry

from sidecar import __version__
from sidecar.build import KIND
from sidecar.errors import StoreError
from sidecar.policy.settings import Address, Settings
from sidecar.runtime.console import create_console_app, share_session_secret
from sidecar.runtime.http_reader import MAX_FIELD_SIZE
from sidecar.runtime.logs import JsonLog, route_library_logs
from sidecar.runtime.offload import Offload
from sidecar.runtime.reload import Reloader, freeze_heap, source_summary
from sidecar.runtime.shared_state import start_shared_state
from sidecar.runtime.signing_api import create_signing_app
from sidecar.runtime.state import create_state
from sidecar.runtime.verify_protocol import MetricsServer, VerifyServer

if TYPE_CHECKING:
    from sidecar.runtime.tracing import Tracing

# In-flight verifications get this long to finish after SIGTERM.
SHUTDOWN_TIMEOUT = 5.0
# How long the verify loop may wait for the GIL while an offload thread (a scrape, a
# reload) computes: CPython's default is 5 ms, paid again at every I/O the loop makes.
SWITCH_INTERVAL = 0.0002
# The start line shows this many warnings and counts the rest (check-config lists them all).
LOGGED_WARNINGS = 20


def run(settings: Settings, log: JsonLog, *, worker: bool = False) -> None:
    """Serve in this process, or supervise ``workers`` processes sharing the ports."""
    if settings.server.workers > 1 and not worker:
        from sidecar.runtime import workers  # noqa: PLC0415

        if settings.admin is not None:
            share_session_secret()  # any worker accepts any console session
        workers.supervise(settings, log)
        return
    route_library_logs(log)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings, log, reuse_port=worker))
    except OSError as error:  # a port taken or not permitted: one line, not a traceback
        log.event("listen_failed", error=str(error), errno=error.errno)
        raise SystemExit(1) from None
    except StoreError as error:  # [state] path: a corrupt, locked or unwritable file
        log.event("state_failed", error=str(error))
        raise SystemExit(1) from None
    except TracingUnavailableError as error:
        log.event("tracing_failed", error=str(error))
        raise SystemExit(1) from None


async def serve(settings: Settings, log: JsonLog, *, reuse_port: bool = False) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    server = settings.server
    shared_listener = server.metrics_listen == server.listen
    offload = Offload()
    state = create_state(settings, registry=CollectorRegistry(), log=log, offload=offload)
    state.metrics.last_reload.set(time.time())
    shared = await start_shared_state(state, settings.state) if settings.state else None
    tracing = _start_tracing(settings)
    freeze_heap()
    runners = []
    listeners: list[VerifyServer] = []
    if not shared_listener:  # the same protocol and answers as the verify listener's
        listeners.append(await _listen(MetricsServer(state), server.metrics_listen, reuse_port))
    if settings.signing_listen is not None:
        signing_app = create_signing_app(state)
        if tracing is not None:
            signing_app.middlewares.append(tracing.sign_middleware)
        runners.append(await _start(signing_app, settings.signing_listen, reuse_port))
    if settings.admin is not None:  # the console, never on the verify listener
        console_app = create_console_app(state)
        runners.append(await _start(console_app, settings.admin.listen, reuse_port))
    # The verify listener (which answers /healthz) starts last: once it answers, every
    # listener of the process does.
    verify = VerifyServer(state, serve_metrics=shared_listener)
    if tracing is not None:  # else /verify calls State.verify itself, as before
        verify.traced = tracing.verify_function(state)
    listeners.append(await _listen(verify, server.listen, reuse_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reloader = Reloader(state, settings.path)
    reloader.tracing = tracing
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    log.event(
        "start",
        pid=os.getpid(),
        version=__version__,
        build=KIND,
        listen=str(server.listen),
        metrics_listen=str(server.metrics_listen),
        signing_listen=str(settings.signing_listen) if settings.signing_listen else None,
        admin_listen=str(settings.admin.listen) if settings.admin else None,
        **source_summary(settings),
        warnings=list(settings.warnings[:LOGGED_WARNINGS]),
        warning_count=len(settings.warnings),
    )
    watcher = asyncio.create_task(reloader.watch())
    await stop.wait()
    watcher.cancel()
    state.ready = False
    log.event("stopping")
    await asyncio.gather(*(listener.stop(SHUTDOWN_TIMEOUT) for listener in listeners))
    for runner in runners:
        await runner.cleanup()
    if shared is not None:
        await shared.close()
    offload.close()
    if tracing is not None:
        tracing.close()
    log.event("stopped")


def _start_tracing(settings: Settings) -> Tracing | None:
    """[tracing]'s spans; without it, OpenTelemetry is never imported."""
    if settings.tracing is None:
        return None
    try:
        from sidecar.runtime.tracing import Tracing  # noqa: PLC0415
    except ImportError as error:  # one line saying what to install, not a traceback
        raise TracingUnavailableError(
            f"[tracing] needs the tracing extra (pip install 'signed-url-sidecar[tracing]'):"
            f" {error}"
        ) from None
    return Tracing(settings.tracing)


class TracingUnavailableError(Exception):
    """``[tracing]`` is set but OpenTelemetry is not installed."""


async def _listen(listener: VerifyServer, address: Address, reuse_port: bool) -> VerifyServer:
    await listener.start(address.host, address.port, reuse_port=reuse_port)
    return listener


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
