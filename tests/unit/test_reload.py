"""Reloading: a key file rewritten while a reload reads it is reloaded again, so what
serves is the newest key, never the one it replaced."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sidecar import config
from sidecar.policy.revocations import EMPTY_VIEW
from sidecar.policy.settings import Settings
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.reload import Reloader
from sidecar.runtime.state import create_state
from tests.support.config_files import write
from tests.support.configs import source_toml


async def test_a_key_changed_during_a_reload_is_not_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "books-token"
    key.write_text("token-one-0123456789")
    books_source = source_toml("books", "md5-token", "/books/", {"k": {"secret_file": key.name}})
    path = write(tmp_path, books_source)
    state = create_state(config.load(path), registry=CollectorRegistry(), log=JsonLog(io.BytesIO()))
    real_load = config.load
    loads: list[str] = []

    def load_while_the_secret_rotates(file: str) -> Settings:
        settings = real_load(file)
        loads.append(file)
        if len(loads) == 1:  # the Secret is replaced just after this reload read it
            key.write_text("token-three-written-during-the-reload")
        return settings

    monkeypatch.setattr(config, "load", load_while_the_secret_rotates)
    # The change that starts the first reload (another size: coarse mtimes cannot hide it).
    key.write_text("token-two-a-little-longer")
    watcher = asyncio.create_task(Reloader(state, str(path)).watch(interval=0.01))
    try:
        for _ in range(500):
            if len(loads) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
    books = state.decider.settings.source("books")
    assert books is not None and books.signatures is not None
    # The token that replaced the one being read is what serves, not the replaced one.
    assert [key.material for key in books.signatures.key_material()] == [
        b"token-three-written-during-the-reload"
    ]


async def test_a_reload_keeps_the_store_and_the_revocations_in_force(tmp_path: Path) -> None:
    # [state] is opened at start: a reload that changes it says so and keeps serving
    # the revocations the process holds.
    books_source = source_toml(
        "books", "md5-token", "/books/", {"k": {"secret": "t0ken-0123456789"}}
    )
    path = write(tmp_path, books_source + '\n[state]\npath = "one.db"\n')
    log = io.BytesIO()
    state = create_state(config.load(path), registry=CollectorRegistry(), log=JsonLog(log))
    state.set_revocations(EMPTY_VIEW)
    path.write_text(path.read_text().replace("one.db", "two.db"))
    assert await Reloader(state, str(path)).reload()
    assert state.decider.revocations is EMPTY_VIEW
    assert b'"event":"state_kept"' in log.getvalue()
