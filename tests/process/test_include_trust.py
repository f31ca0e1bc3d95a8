"""An included file cannot open another file's signed subtree, through the real nginx in
front of the real sidecar: a new ``sources.d/`` file nesting an unsigned (``mode =
"off"``) source under the main file's signed prefix is refused on reload, counted and
logged, and the subtree stays signed (docs/configuration.md, "What an included file may
do")."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from sidecar.devtools.demo import png
from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config
from tests.support.logs import log_events
from tests.support.metrics import sample
from tests.support.requests import fetch
from tests.support.stacks import assert_denied, running_stack
from tests.support.tokens import md5_signed

TOKEN = "include-trust-token-0123456789"
IMAGE = "/books/free/a.png"
# An empty [server] after the include: the stack writes its ports there (a top-level key
# written after it would belong to [server]).
CONFIG = 'include = ["sources.d/*.toml"]\n' + sidecar_config(
    md5_source("books", "/books/", {"k1": TOKEN}), server={}
)
SHADOW = md5_source("free", "/books/free/", mode="off")


def reloads(stack: LocalStack, result: str) -> float:
    return sample(stack, "signed_url_config_reloads_total", result=result)


def test_a_new_included_file_cannot_open_a_signed_subtree(tmp_path: Path) -> None:
    (tmp_path / "sources.d").mkdir(parents=True)
    with running_stack(tmp_path, CONFIG) as stack:
        (stack.images / "books" / "free").mkdir(parents=True)
        (stack.images / "books" / "free" / "a.png").write_bytes(png(11, 13, (1, 2, 3)))
        assert fetch(stack, md5_signed(IMAGE, TOKEN))[0] == 200
        before = reloads(stack, "failure")
        (tmp_path / "sources.d" / "free.toml").write_text(SHADOW, encoding="utf-8")
        assert stack.sidecar is not None
        stack.sidecar.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while reloads(stack, "failure") == before:
            assert time.monotonic() < deadline, "the shadowing file's reload was not refused"
            time.sleep(0.05)
        status, body = fetch(stack, IMAGE)
        assert_denied(status, body, stack, 401)  # md5-token's denial: still signed
        assert fetch(stack, md5_signed(IMAGE, TOKEN))[0] == 200  # the old config serves
        failed = [e for e in log_events(stack) if e["event"] == "reload_failed"]
        assert any("shadow" in str(event) and "free.toml" in str(event) for event in failed)
        assert reloads(stack, "success") == 0
