"""Scheme ``thumbor`` through the config loader, ``sign_url`` and the CLI: ``sidecar sign``
prints libthumbor's URL under the source's prefix, ``sidecar verify`` accepts it, and an
expiry (asked for, or from ``default_ttl``) is refused: thumbor URLs never expire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from libthumbor import CryptoURL  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import config
from sidecar.cli import main
from sidecar.errors import ConfigError
from sidecar.policy.signing import sign_url
from tests.support.configs import sidecar_config, source_toml

ORIGIN = "https://image.example.com"
KEY = "cli-thumbor-security-key-9f2"


def thumbor_config(tmp_path: Path, key: str = KEY, **fields: int) -> Path:
    source = source_toml("thumbs", "thumbor", "/thumbs/", {"t1": {"secret": key}}, **fields)
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(source))
    return path


def library(key: str = KEY, /, **options: Any) -> str:
    url: str = CryptoURL(key=key.encode()).generate(**options)
    return url


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("/thumbs/300x200/smart/books/a.jpg", {"width": 300, "height": 200, "smart": True}),
        (
            f"{ORIGIN}/thumbs/fit-in/300x200/filters:quality(80)/books/a.jpg",
            {"width": 300, "height": 200, "fit_in": True, "filters": ["quality(80)"]},
        ),
        ("/thumbs/books/a.jpg", {}),
    ],
)
def test_sidecar_sign_prints_libthumbors_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, options: dict[str, Any]
) -> None:
    path = thumbor_config(tmp_path)
    assert main(["sign", "-c", str(path), "--source", "thumbs", url]) == 0
    out = capsys.readouterr().out.strip()
    origin = ORIGIN if url.startswith(ORIGIN) else ""
    assert out == origin + "/thumbs" + library(image_url="books/a.jpg", **options)
    # And the same config's decision accepts it, with no expiry.
    assert main(["verify", "-c", str(path), "--at", "4000000000", out]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["source"], line["result"], line["key"]) == ("thumbs", "ok", "t1")


def test_sign_url_gives_libthumbors_url(tmp_path: Path) -> None:
    settings = config.load(thumbor_config(tmp_path))
    url = f"{ORIGIN}/thumbs/-300x-200/left/top/books/caf%C3%A9%20menu.png"
    signed = sign_url(settings, "thumbs", url, now=1_900_000_000)
    options = {"width": 300, "height": 200, "flip": True, "flop": True}
    expected = library(image_url="books/caf%C3%A9%20menu.png", halign="left", valign="top",
                       **options)  # fmt: skip
    assert signed == f"{ORIGIN}/thumbs{expected}"


def test_an_expiry_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = thumbor_config(tmp_path)
    code = main(["sign", "-c", str(path), "--source", "thumbs", "--expires-in", "60",
                 "/thumbs/300x200/books/a.jpg"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "do not expire" in err and KEY not in err


@pytest.mark.parametrize("lifetime", ["default_ttl", "max_ttl"])
def test_a_thumbor_source_may_not_set_a_lifetime(tmp_path: Path, lifetime: str) -> None:
    # thumbor URLs never expire: a lifetime would refuse every URL signed (default_ttl) or
    # served (max_ttl is enforced on verify), so the config refuses it.
    with pytest.raises(ConfigError) as caught:
        path = thumbor_config(tmp_path)
        path.write_text(
            path.read_text().replace("[[sources.keys]]", f"{lifetime} = 300\n  [[sources.keys]]")
        )
        config.load(path)
    assert any(f".{lifetime}" in p and "never expire" in p for p in caught.value.problems)


def test_sign_refuses_unsafe_and_other_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = thumbor_config(tmp_path)
    for url, problem in (
        ("/thumbs/unsafe/300x200/books/a.jpg", "unsafe"),
        ("/books/300x200/a.jpg", "outside source"),
    ):
        assert main(["sign", "-c", str(path), "--source", "thumbs", url]) == 1
        assert problem in capsys.readouterr().err


def test_token_new_makes_a_key_that_signs_like_libthumbor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = thumbor_config(tmp_path)
    assert main(["token", "new", "-c", str(path), "--source", "thumbs"]) == 0
    made = capsys.readouterr().out.strip()
    assert len(made) >= 43 and made != KEY
    path = thumbor_config(tmp_path, key=made)
    assert main(["sign", "-c", str(path), "--source", "thumbs", "/thumbs/300x0/books/a.jpg"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "/thumbs" + library(made, image_url="books/a.jpg", width=300)
