"""``[state]``, ``max_uses`` and ``use_window`` (sidecar/config/state.py): every problem
named, a URL's password never."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config
from sidecar.errors import ConfigError
from sidecar.policy.settings import UseLimit
from tests.support.configs import md5_source, sidecar_config
from tests.support.tokens import BOOKS_TOKEN


def load(tmp_path: Path, state: str, **fields: object) -> object:
    source = md5_source("books", "/books/", {"k1": BOOKS_TOKEN}, **fields)  # type: ignore[arg-type]
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(source) + state)
    return config.load(path)


def test_a_path_is_relative_to_the_config_and_a_url_hides_its_password(tmp_path: Path) -> None:
    settings = load(tmp_path, '[state]\npath = "state.db"\n', max_uses=3)
    assert settings.state.path == str(tmp_path / "state.db")  # type: ignore[attr-defined]
    assert settings.sources[0].uses == UseLimit(3, 60)  # type: ignore[attr-defined]
    settings = load(tmp_path, '[state]\nurl = "redis://:s3cret@cache:6379/0"\ntimeout_ms = 20\n')
    state = settings.state  # type: ignore[attr-defined]
    assert (state.where, state.timeout_ms) == ("redis://cache:6379/0", 20)
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("state", "fields", "problem"),
    [
        ("", {"max_uses": 3}, "max_uses: needs [state]"),
        ('[state]\npath = "a.db"\nurl = "redis://x"\n', {}, "exactly one of path or url"),
        ("[state]\n", {}, "exactly one of path or url"),
        ('[state]\nurl = "http://cache:6379"\n', {}, "url: must be a redis"),
        ('[state]\nurl = "redis://:pw@"\n', {}, "url: must be a redis"),
        ('[state]\npath = "a.db"\ntimeout_ms = 0\n', {}, "timeout_ms"),
        ('[state]\npath = "a.db"\nttl = 1\n', {}, "unknown field 'ttl'"),
        ('[state]\npath = "a.db"\n', {"max_uses": 0}, "max_uses"),
        ('[state]\npath = "a.db"\n', {"use_window": 5}, "use_window: applies only with max_uses"),
        ('[state]\npath = "a.db"\n', {"max_uses": 2, "mode": "report"}, "needs mode"),
    ],
)
def test_problems(tmp_path: Path, state: str, fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, state, **fields)
    assert any(problem in line for line in raised.value.problems), raised.value.problems
    assert "pw" not in str(raised.value)
