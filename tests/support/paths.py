"""Where the repository's own files are, for the tests that read or run them (docker/,
deploy/, grafana/, examples/, fuzz/, the scripts)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
