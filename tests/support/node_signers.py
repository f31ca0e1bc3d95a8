"""Calling a Node.js example's signer function (``examples/node/*.mjs``) from a test: one
``node -e`` per call, the function's result printed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path


def call_signer(
    module: Path, function: str, url: str, options: object
) -> subprocess.CompletedProcess[str]:
    """``function(url, options)`` of the ES module ``module``, run by the machine's node."""
    binary = shutil.which("node")
    assert binary is not None, "node is required (scripts/setup installs it)"
    script = (
        f"import {{ {function} }} from {json.dumps(module.as_uri())};"
        f"console.log({function}({json.dumps(url)}, {json.dumps(options)}));"
    )
    return subprocess.run([binary, "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip


def signer_output(module: Path, function: str, url: str, options: object) -> str:
    """What the signer printed; the test fails on an error."""
    result = call_signer(module, function, url, options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
