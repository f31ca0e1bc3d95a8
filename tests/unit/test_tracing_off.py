"""Without ``[tracing]`` the service never loads OpenTelemetry (runtime/tracing.py is
imported only when the table is set): nothing of it is paid on /verify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.configs import md5_source, sidecar_config
from tests.support.paths import REPO
from tests.support.tokens import BOOKS_TOKEN

PROBE = """
import sys
from sidecar import config
from sidecar.runtime import server
settings = config.load(sys.argv[1])
tracing = server._start_tracing(settings)
print(type(tracing).__name__, any(name.startswith("opentelemetry") for name in sys.modules))
"""


def loaded(tmp_path: Path, tracing: str) -> str:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(md5_source("books", "/books/", {"k": BOOKS_TOKEN})) + tracing)
    command = [sys.executable, "-c", PROBE, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    return done.stdout.strip()


def test_opentelemetry_is_loaded_only_with_tracing(tmp_path: Path) -> None:
    assert loaded(tmp_path, "") == "NoneType False"
    on = '[tracing]\notlp_endpoint = "http://127.0.0.1:9"\n'
    assert loaded(tmp_path, on) == "Tracing True"
