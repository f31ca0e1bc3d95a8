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
if len(sys.argv) > 2:
    sys.modules["opentelemetry"] = None  # as if the tracing extra were not installed
from sidecar import config
from sidecar.runtime import server
settings = config.load(sys.argv[1])
tracing = server._start_tracing(settings)
print(type(tracing).__name__, any(name.startswith("opentelemetry") for name in sys.modules))
"""


def loaded(tmp_path: Path, tracing: str, *missing: str) -> str:
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(md5_source("books", "/books/", {"k": BOOKS_TOKEN})) + tracing)
    command = [sys.executable, "-c", PROBE, str(path), *missing]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=not missing)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def test_opentelemetry_is_loaded_only_with_tracing(tmp_path: Path) -> None:
    assert loaded(tmp_path, "") == "NoneType False"
    on = '[tracing]\notlp_endpoint = "http://127.0.0.1:9"\n'
    assert loaded(tmp_path, on) == "Tracing True"


def test_tracing_without_opentelemetry_installed_names_the_extra(tmp_path: Path) -> None:
    on = '[tracing]\notlp_endpoint = "http://127.0.0.1:9"\n'
    # A config problem, so check-config says it too (serve's own check stays behind it).
    last = loaded(tmp_path, on, "missing")
    assert last.startswith("sidecar.errors.ConfigError: ")
    assert last.endswith(
        "tracing: needs the tracing extra: pip install 'signed-url-sidecar[tracing]'"
    )
