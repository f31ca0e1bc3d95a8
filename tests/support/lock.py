"""``requirements.lock``: every release the package depends on, pinned with hashes."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name

from tests.support.paths import REPO

LOCK = REPO / "requirements.lock"
# One pinned release of requirements.lock and the hash options on its continuation lines.
LOCK_ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+) \\\n"
    r"(?P<hashes>(?:    --hash=\S+.*\n)+)",
    re.MULTILINE,
)


def locked_releases() -> dict[str, str]:
    """requirements.lock as {canonical name: pinned version}; every entry carries hashes."""
    text = LOCK.read_text()
    releases: dict[str, str] = {}
    for entry in LOCK_ENTRY.finditer(text):
        hashes = re.findall(r"--hash=sha256:([0-9a-f]+)", entry["hashes"])
        assert hashes and all(len(h) == 64 for h in hashes), entry["name"]
        releases[canonicalize_name(entry["name"])] = str(entry["version"])
    pinned_lines = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    assert len(releases) == len(pinned_lines), "a pin without hashes, or one the reader missed"
    return releases
