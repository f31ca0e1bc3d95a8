"""``sidecar revoke``, ``sidecar revocations`` and ``sidecar unrevoke``: what each does
(their options are in cli.py). Each opens the store ``[state]`` names, as a serving
sidecar does, and every sidecar sharing it applies a change within a second."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sidecar import config
from sidecar.errors import UsageError
from sidecar.policy.revocations import Revocation
from sidecar.policy.revoking import revoke_key, revoke_prefix, revoke_url
from sidecar.policy.settings import Settings
from sidecar.runtime.stores import Store, open_store

T = TypeVar("T")
EXIT_OK, EXIT_FAILURE = 0, 1
NEEDS_STATE = "revoking needs [state] in the config (path = a SQLite file, or url = Valkey/Redis)"


def run_revoke(args: argparse.Namespace, instant: Callable[[str | None], float]) -> int:
    settings = _with_state(args.config)
    now = time.time()
    until = instant(args.until) if args.until else None
    if args.url is not None:
        if args.key or args.prefix:
            raise UsageError("give a URL, or --source with --key or --prefix, not both")
        record = revoke_url(settings, args.url, now=now, until=until, cookies=args.cookie,
                            client_ip=args.client_ip, host=args.host)  # fmt: skip
    elif args.source is None or (args.key is None) == (args.prefix is None):
        raise UsageError("give a URL, or --source with one of --key or --prefix")
    elif args.key is not None:
        record = revoke_key(settings, args.source, args.key, now=now, until=until)
    else:
        record = revoke_prefix(settings, args.source, args.prefix, now=now, until=until)
    _on_store(settings, lambda store: store.revoke(record))
    _print(record)
    return EXIT_OK


def run_revocations(args: argparse.Namespace) -> int:
    settings = _with_state(args.config)
    now = time.time()
    records = _on_store(settings, lambda store: store.revocations())
    for record in sorted(records, key=lambda record: (record.created, record.id)):
        if args.all or record.active(now):
            _print(record)
    return EXIT_OK


def run_unrevoke(args: argparse.Namespace) -> int:
    settings = _with_state(args.config)
    removed = _on_store(settings, lambda store: store.unrevoke(args.id))
    if not removed:
        print(f"error: no revocation with id {args.id}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"removed {args.id}")
    return EXIT_OK


def _with_state(path: str) -> Settings:
    settings = config.load(path)
    if settings.state is None:
        raise UsageError(NEEDS_STATE)
    return settings


def _on_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    state = settings.state
    assert state is not None

    async def run() -> T:
        store = open_store(state)
        try:
            await store.open()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _print(record: Revocation) -> None:
    sys.stdout.buffer.write(record.to_json() + b"\n")
    sys.stdout.flush()
