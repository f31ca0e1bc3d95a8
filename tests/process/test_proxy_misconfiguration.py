"""A proxy that sends another profile's headers is named as such: counted, and logged once
a minute with the headers the configured profile expects (not taken for a bad signature)."""

from __future__ import annotations

import json
import time

from tests.support.configs import md5_source, sidecar_config
from tests.support.metrics import sample
from tests.support.requests import request
from tests.support.stacks import StackFactory
from tests.support.tokens import BOOKS_TOKEN, md5_signed


def test_traefik_headers_sent_to_an_nginx_profile_are_named(fresh_stack: StackFactory) -> None:
    stack = fresh_stack(
        sidecar_config(md5_source("books", "/books/", {"k": BOOKS_TOKEN})),
        nginx=False,
    )
    traefik = {"X-Forwarded-Uri": md5_signed("/books/x.png"), "X-Forwarded-Method": "GET"}
    for _ in range(3):
        reply = request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=traefik)
        assert (reply.status, reply.headers["x-signature-result"]) == (403, "non_canonical")
    assert sample(stack, "signed_url_proxy_headers_missing_total") == 3
    time.sleep(0.2)
    lines = [json.loads(line) for line in (stack.folder / "sidecar.log").read_text().splitlines()]
    warnings = [line for line in lines if line["event"] == "proxy_headers_missing"]
    assert len(warnings) == 1  # once per interval, not once per request
    assert warnings[0]["proxy"] == "nginx"
    assert warnings[0]["missing"] == ["X-Original-URI", "X-Original-Method"]
    # A well-configured request is not counted.
    nginx = {"X-Original-URI": md5_signed("/books/x.png"), "X-Original-Method": "GET"}
    assert request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=nginx).status == 200
    assert sample(stack, "signed_url_proxy_headers_missing_total") == 3
