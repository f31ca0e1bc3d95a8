"""``sidecar/__init__.py`` is the public face; the client stays light to import."""

from __future__ import annotations

import subprocess
import sys

import sidecar
from sidecar import errors


def test_public_names_are_exported_and_importable() -> None:
    for name in sidecar.__all__:
        assert getattr(sidecar, name) is not None, name
    assert {"sign_url", "sign", "SigningClient", "Reason", "Verdict", "load_config"} <= set(
        sidecar.__all__
    )


def test_one_exception_tree() -> None:
    raised = [
        errors.ConfigError,
        errors.UrlError,
        errors.SchemeError,
        errors.SigningError,
        errors.SigningApiError,
    ]
    assert all(issubclass(kind, sidecar.SidecarError) for kind in raised)
    assert sidecar.ConfigError(["a", "b"]).problems == ["a", "b"]


def test_importing_the_client_loads_no_server_and_no_metrics() -> None:
    # An application that only calls the signing API must not pay for aiohttp.web or
    # prometheus_client (nor start anything).
    output = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sidecar.client"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    loaded = {line.rpartition("|")[2].strip() for line in output.splitlines()}
    assert "sidecar.client" in loaded
    assert "aiohttp" in loaded  # the client itself: the check can see what loads
    assert not any(name.startswith(("aiohttp.web", "prometheus_client")) for name in loaded)
