"""``[state]`` and each source's ``max_uses`` / ``use_window`` (docs/revocation.md): where
revocations and use counts are kept, every problem named (a URL's password never)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sidecar.config.fields import Problems, Table, ranged
from sidecar.policy.settings import Mode, SourceSettings, StateSettings, UseLimit

USE_FIELDS = {"max_uses", "use_window"}
_URL_SCHEMES = ("redis", "rediss", "unix")  # what redis-py connects to (Valkey too)
NEEDS_STATE = "needs [state] (path = a SQLite file, or url = a Valkey/Redis server)"


def parse_state(
    raw: dict[str, object] | None, folder: Path, problems: Problems
) -> StateSettings | None:
    if raw is None:
        return None
    table = Table(raw, "state", problems)
    table.check_names({"path", "url", "timeout_ms"})
    path, url = table.get("path", str), table.get("url", str)
    timeout_ms = ranged(table, "timeout_ms", 50, 1, 10_000)
    if not table.check("path", (path is None) != (url is None), "give exactly one of path or url"):
        return None
    if path is not None:
        if not table.check("path", bool(path.strip()), "must name a file"):
            return None
        return StateSettings(path=str(folder / path), timeout_ms=timeout_ms)
    assert url is not None
    if not table.check("url", _url_ok(url), f"must be a {', '.join(_URL_SCHEMES)} URL"):
        return None
    return StateSettings(url=url, timeout_ms=timeout_ms)


def _url_ok(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in _URL_SCHEMES:
        return False
    return bool(parts.path) if parts.scheme == "unix" else bool(parts.hostname)


def parse_uses(table: Table, mode: Mode | None) -> UseLimit | None:
    """The source's use limit, or None when it sets none (it then pays nothing for it)."""
    if "max_uses" not in table.data:
        table.check("use_window", "use_window" not in table.data, "applies only with max_uses")
        return None
    max_uses = ranged(table, "max_uses", 1, 1, 1_000_000)
    window = ranged(table, "use_window", 60, 0, 86_400)
    enforced = mode in (Mode.ENFORCE, Mode.OPTIONAL)
    table.check("max_uses", enforced, 'needs mode = "enforce" or "optional" (it denies)')
    return UseLimit(max_uses, window)


def check_state_needed(
    state: StateSettings | None, sources: list[SourceSettings], problems: Problems
) -> None:
    if state is not None:
        return
    for source in sources:
        if source.uses is not None:
            problems.add(f"source '{source.name}'.max_uses", NEEDS_STATE)
