"""``cloudflare`` end to end: Cloudflare-style timed HMAC URLs through the real nginx and
sidecar: ours and hand-made ones served, every changed byte refused with its reason, the
issue time's two edges, rotated keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sidecar import config
from sidecar.core import canonical
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from sidecar.schemes import cloudflare
from tests.support.configs import sidecar_config, source_toml
from tests.support.requests import HOST, fetch, fetch_with_reason
from tests.support.stacks import StackFactory, image_bytes

ORIGIN = f"https://{HOST}"
SECRET = "e2e-cloudflare-secret-5b1e"
OLD_SECRET = "e2e-cloudflare-older-secret-77"
MAX_AGE = 600
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {"2026-11": {"secret": SECRET}, "2026-05": {"secret": OLD_SECRET}}
    source = source_toml("cf", "cloudflare", "/secret/", keys, max_age=MAX_AGE)
    return shared_stacks(sidecar_config(source, server={"clock_skew": 0}))


def signed_uri(stack: LocalStack, url: str, expires_in: int = MAX_AGE) -> str:
    settings = config.load(stack.config_path)
    signed = sign_url(settings, "cf", ORIGIN + url, now=time.time(), expires_in=expires_in)
    return signed.removeprefix(ORIGIN)


def hand_signed(secret: str, message: str, issued: int) -> str:
    """The WAF rule's format, computed here with the standard library."""
    mac = hmac.new(secret.encode(), f"{message}{issued}".encode(), hashlib.sha256).digest()
    text = base64.b64encode(mac).decode()
    escaped = text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return f"{message}{'&' if '?' in message else '?'}verify={issued}-{escaped}"


def changed(char: str) -> str:
    """Another character of the same kind: digits stay non-zero digits, base64 letters and
    digits stay so with the same low two bits (the padding's unused bits stay zero)."""
    if char.isdigit():
        return "1" if char != "1" else "2"
    if char in BASE64:
        return BASE64[(BASE64.index(char) + 4) % len(BASE64)]
    return "x"


def expected_reason(uri: str, index: int, tampered: str) -> str:
    """The answer for ``uri`` (``<path>?w=640&verify=<time>-<mac>``) with the byte at
    ``index`` changed into ``tampered``."""
    if canonical.parse(tampered) is None:
        return "non_canonical"  # an escape's hex changed into a letter that is not hex
    token = uri.index("&verify=")
    if index < token:
        return "missing" if index == uri.index("?") else "invalid"
    if index < token + len("&verify="):
        return "missing"  # the separator or the parameter's name: no token any more
    _, dash, mac_text = tampered[token + len("&verify=") :].partition("-")
    if index < uri.index("-", token):
        return "invalid"  # a digit of the time: another time, still well formed
    return "invalid" if dash and cloudflare.decode_mac(mac_text) else "malformed"


def test_freshly_signed_url_serves_the_image(stack: LocalStack) -> None:
    uri = signed_uri(stack, "/secret/x.png?w=640")
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/secret/x.png")
    assert "&verify=" in uri and uri.endswith("%3D")


def test_every_changed_byte_is_403_with_its_reason(stack: LocalStack) -> None:
    uri = signed_uri(stack, "/secret/x.png?w=640", expires_in=MAX_AGE - 60)
    answers: dict[str, int] = {}
    for index in range(len("/secret/"), len(uri)):
        tampered = uri[:index] + changed(uri[index]) + uri[index + 1 :]
        status, body, reason = fetch_with_reason(stack, tampered)
        assert (status, reason) == (403, expected_reason(uri, index, tampered)), tampered
        assert body != image_bytes(stack, "/secret/x.png")
        answers[reason] = answers.get(reason, 0) + 1
    assert answers["invalid"] > 50
    assert answers["malformed"] >= 2
    assert answers["missing"] >= 3


def test_the_issue_times_two_edges(stack: LocalStack) -> None:
    now = int(time.time())
    future = hand_signed(SECRET, "/secret/x.png", now + 120)
    assert fetch_with_reason(stack, future)[::2] == (403, "not_yet_valid")
    stale = hand_signed(SECRET, "/secret/x.png", now - MAX_AGE - 5)
    assert fetch_with_reason(stack, stale)[::2] == (403, "expired")


def test_hand_signed_urls_with_either_key_are_served(stack: LocalStack) -> None:
    now = int(time.time())
    expected = image_bytes(stack, "/secret/x.png")
    for secret in (SECRET, OLD_SECRET):
        assert fetch(stack, hand_signed(secret, "/secret/x.png", now - 5)) == (200, expected)
        with_query = hand_signed(secret, "/secret/x.png?w=1", now - 5)
        assert fetch(stack, with_query) == (200, expected)
    status, _, reason = fetch_with_reason(stack, hand_signed("wrong", "/secret/x.png", now))
    assert (status, reason) == (403, "invalid")


@pytest.mark.parametrize(
    ("replace", "by"),
    [("%3D", "="), ("%2F", "/"), ("%2B", "+"), ("%3D", "%3d"), ("%3D", "")],
)
def test_other_spellings_of_the_mac_are_malformed(stack: LocalStack, replace: str,
                                                  by: str) -> None:  # fmt: skip
    now = int(time.time())
    for issued in range(now, now - 50, -1):  # a MAC holding the escape replaced
        uri = hand_signed(SECRET, "/secret/x.png", issued)
        if replace in uri:
            break
    status, _, reason = fetch_with_reason(stack, uri.replace(replace, by))
    assert (status, reason) == (403, "malformed")
