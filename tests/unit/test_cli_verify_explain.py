"""``sidecar verify``: the facts a source's rules read (``--referrer``, ``--country``), and,
for a signature a scheme refuses, what that scheme can say about which part failed
(imgproxy: the text it signs and the signature's length), never the expected signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from sidecar.cli import main
from tests.support.config_files import write
from tests.support.configs import md5_source, source_toml

KEY, SALT = (
    "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881",
    "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5",
)
TOKEN = "verify-token-0123456789"


def imgproxy_url(rest: str) -> str:
    digest = hmac.new(
        bytes.fromhex(KEY), bytes.fromhex(SALT) + b"/" + rest.encode(), hashlib.sha256
    )
    signature = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return f"/img/{signature}/{rest}"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        source_toml("pics", "imgproxy", "/img/", {"k1": {"secret": KEY, "salt": SALT}})
        + md5_source(
            "shop",
            "/shop/",
            {"k": TOKEN},
            referrers=["https://shop.example.com"],
            allow_no_referrer=False,
            countries=["JP"],
        ),
    )


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    main(["verify", *args])
    line: dict[str, object] = json.loads(capsys.readouterr().out)
    return line


def test_a_refused_imgproxy_signature_says_what_was_signed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = imgproxy_url("rs:fit:300:300/plain/a.jpg")
    assert verify(capsys, "-c", str(config), good)["result"] == "ok"
    tampered = good.replace("300:300", "300:301")
    line = verify(capsys, "-c", str(config), tampered)
    assert line["result"] == "invalid"
    detail = line["detail"]
    assert isinstance(detail, dict)
    assert detail["signed_text"] == "<salt>/rs:fit:300:301/plain/a.jpg"
    assert detail["signature_characters"] == detail["expected_characters"] == 43
    # Never the signature the tampered URL should have carried.
    expected = imgproxy_url("rs:fit:300:301/plain/a.jpg").split("/")[2]
    assert expected not in json.dumps(line)


def test_rules_are_decided_on_the_facts_given(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = "/shop/a.jpg?s=" + hashlib.md5(f"/shop/a.jpg{TOKEN}".encode()).hexdigest()
    page, country = "--referrer=https://shop.example.com/p", "--country=JP"
    assert verify(capsys, "-c", str(config), page, country, uri)["result"] == "ok"
    assert verify(capsys, "-c", str(config), country, uri)["result"] == "referrer"
    assert verify(capsys, "-c", str(config), page, "--country=FR", uri)["result"] == "country"
    assert "detail" not in verify(capsys, "-c", str(config), page, uri)
