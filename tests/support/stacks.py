"""Stacks of the real processes: the shipped nginx config rendered into a private folder
in front of ``sidecar serve``, both on loopback ports of their own, serving real PNG files.

``running_stack`` starts one for a ``with`` block. ``StackPool`` shares stacks that tests
only read from: every module asking for the same config (and nginx or not) is given the
same running stack; tests that stop, reload or count what a stack did start their own.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Protocol

from sidecar.devtools.demo import png, write_images
from sidecar.devtools.local_stack import LocalStack
from tests.support.metrics import sample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Files beyond the demo's; every image differs, so its bytes identify the file.
EXTRA_IMAGES = {
    "/books/database-internals.jpg": png(24, 36, (180, 120, 30)),
    "/books/x.png": png(12, 12, (90, 20, 140)),
    "/public/x.png": png(10, 14, (20, 200, 200)),
    "/secret/x.png": png(14, 10, (250, 10, 10)),
    "/reports/r.png": png(8, 8, (60, 60, 60)),
    "/other/o.png": png(9, 9, (10, 240, 10)),
}


class StackFactory(Protocol):
    def __call__(self, config_text: str, *, nginx: bool = True) -> LocalStack: ...


def write_test_images(root: Path) -> None:
    """The demo's images (real PNGs, one with an encoded name) plus ``EXTRA_IMAGES``."""
    write_images(root)
    for path, data in EXTRA_IMAGES.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def image_bytes(stack: LocalStack, path: str) -> bytes:
    """The file on disk that ``path`` (decoded URL path) names: what nginx must serve."""
    return (stack.images / path.lstrip("/")).read_bytes()


def any_image_in(body: bytes, stack: LocalStack) -> bool:
    """True when ``body`` contains a PNG or any served file's bytes."""
    if not body:
        return False
    files = (path for path in stack.images.rglob("*") if path.is_file())
    return PNG_MAGIC in body or any(file.read_bytes() in body for file in files)


def assert_denied(status: int, body: bytes, stack: LocalStack, expected_status: int) -> None:
    """A denial as a client sees it: the status, and not one byte of any image."""
    assert status == expected_status
    assert not any_image_in(body, stack)


def start_sidecar(stack: LocalStack) -> None:
    """(Re)start the stack's sidecar process and wait until it answers."""
    stack.start_sidecar()


def reload_and_wait(stack: LocalStack, config_text: str, result: str) -> None:
    """Rewrite the config, SIGHUP the sidecar, wait until the reload was counted."""
    before = sample(stack, "signed_url_config_reloads_total", result=result)
    stack.write_config(config_text)
    assert stack.sidecar is not None
    stack.sidecar.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while sample(stack, "signed_url_config_reloads_total", result=result) == before:
        assert time.monotonic() < deadline, f"no {result} reload counted"
        time.sleep(0.02)


@contextmanager
def running_stack(
    folder: Path,
    config_text: str,
    *,
    nginx: bool = True,
    http_extra: str = "",
    catch_all: bool = True,
    gone: bool = False,
    country: bool = False,
    bunny_path: bool = False,
) -> Iterator[LocalStack]:
    """A started stack (sidecar, and nginx unless ``nginx=False``), stopped on exit; the
    keywords are operators' variations of the shipped nginx files
    (``sidecar.devtools.nginx_conf.render``)."""
    images = folder / "images"
    write_test_images(images)
    stack = LocalStack(
        folder,
        config_text,
        images,
        nginx_http_extra=http_extra,
        nginx_catch_all=catch_all,
        nginx_gone=gone,
        nginx_country=country,
        nginx_bunny_path=bunny_path,
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stack.write_config()
        start_sidecar(stack)
        if nginx:
            stack.start_nginx()
        yield stack
    finally:
        stack.stop()


class StackPool:
    """Running stacks shared across the session, one per (config, nginx or not).

    A stack stays up while it may be asked for again; when more than ``kept`` run, the
    least recently used one that the current module has not asked for is stopped (so a
    module never loses a stack it holds). Tests given a pooled stack only read from it.
    """

    def __init__(self, new_folder: Callable[[], Path], kept: int = 6) -> None:
        self._new_folder = new_folder
        self._kept = kept
        self._running: dict[tuple[str, bool], tuple[LocalStack, ExitStack, str]] = {}
        self.started = 0  # stacks the pool started ...
        self.asked: set[tuple[str, str, bool]] = set()  # ... for these (module, config) asks

    def get(self, config_text: str, *, nginx: bool = True, user: str) -> LocalStack:
        key = (config_text, nginx)
        self.asked.add((user, *key))
        found = self._running.pop(key, None)
        if found is None:
            owner = ExitStack()
            stack = owner.enter_context(running_stack(self._new_folder(), config_text, nginx=nginx))
            self.started += 1
            found = (stack, owner, user)
        self._running[key] = (found[0], found[1], user)  # now the most recently used
        self._stop_unused(user)
        return found[0]

    def _stop_unused(self, user: str) -> None:
        for key, (_, owner, last_user) in list(self._running.items()):
            if len(self._running) <= self._kept:
                return
            if last_user != user:
                del self._running[key]
                owner.close()

    def close(self) -> None:
        for _, owner, _ in self._running.values():
            owner.close()
        self._running.clear()
