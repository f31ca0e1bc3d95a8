"""The end-to-end table every proxy in front of the sidecar passes (nginx, Caddy, HAProxy),
for the sources of ``md5_sources.MAIN_CONFIG``: signed URLs served byte for byte, tampered
and unsigned ones denied with their reason, non-canonical URIs refused, and forwarded
headers a client sends that must change nothing."""

from __future__ import annotations

from tests.support.md5_sources import REFERENCE_SIGNATURE, REFERENCE_UNSIGNED, REFERENCE_URL
from tests.support.requests import HOST
from tests.support.tokens import SECRET_TOKEN, md5_signed

# Signed URLs (signed as written) and the file each must serve.
SERVED = {
    "no query": ("/books/x.png", "/books/x.png"),
    "query": ("/books/x.png?w=100&fmt=webp", "/books/x.png"),
    "encoded name": ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png"),
    "future expiry": ("/books/x.png?expires=4102444800", "/books/x.png"),
}

# The reference URL changed, each with the reason it is denied (md5-token's 401).
TAMPERED = {
    "changed parameter": (REFERENCE_URL.replace("w=400", "w=401"), "invalid"),
    "added parameter": (REFERENCE_URL.replace("&s=", "&dpr=2&s="), "invalid"),
    "removed parameter": (REFERENCE_URL.replace("&fit=crop", ""), "invalid"),
    "reordered parameters": (REFERENCE_URL.replace("w=400&h=600", "h=600&w=400"), "invalid"),
    "other file": (REFERENCE_URL.replace("database-internals.jpg", "x.png"), "invalid"),
    "path case": (REFERENCE_URL.replace("/books/d", "/books/D"), "invalid"),
    "wrong signature": (REFERENCE_URL[:-1] + "0", "invalid"),
    "signature of another token": (md5_signed(REFERENCE_UNSIGNED, SECRET_TOKEN), "invalid"),
    "truncated signature": (REFERENCE_URL[:-1], "malformed"),
    "signature too long": (REFERENCE_URL + "0", "malformed"),
    "signature not hex": (REFERENCE_URL[:-1] + "g", "malformed"),
    "empty signature": (REFERENCE_UNSIGNED + "&s=", "malformed"),
    "signature not last": (
        f"/books/database-internals.jpg?s={REFERENCE_SIGNATURE}&w=400&h=600&fit=crop",
        "malformed",
    ),
    "parameter after signature": (REFERENCE_URL + "&w=800", "malformed"),
    "unsigned": (REFERENCE_UNSIGNED, "missing"),
    "unsigned, no query": ("/books/database-internals.jpg", "missing"),
}

# Each of these makes a file server serve a file other than the raw path names (it decodes
# and normalises), so the sidecar must refuse them even when the signature over the raw
# bytes is right: a signing API fed such a path must not become a way around a source.
# Denied as non_canonical with the server's deny_status (403): no source is chosen.
NON_CANONICAL = [
    "/books/%2E%2E/secret/x.png",
    "/books/%2e%2e/secret/x.png",
    "/books/../secret/x.png",
    "/books/%2e/x.png",
    "/books/./x.png",
    "/books//x.png",
    "/books/x.png;v=1",
    "/books;/x.png",
    "/books%2Fx.png",
    "/books/x%2epng",
    "/books/%5C..%5Csecret/x.png",
    "/public/%2E%2E/secret/x.png",
    "/public/../secret/x.png",
    "/public%2F..%2Fsecret/x.png",
    "/public/..%2Fsecret/x.png",
    "/public/%2e%2e%2fsecret/x.png",
    "/other/%2E%2E/secret/x.png",
    "/%2Fsecret/x.png",
    "/secret%2Fx.png",
]

# Headers a client sends pointing at the signed reference URL (or another target): sent
# with the unsigned URL, none may change its denial (401, missing).
SPOOFED = {
    "X-Original-URI": REFERENCE_URL,
    "X-Original-URL": f"http://{HOST}{REFERENCE_URL}",
    "X-Forwarded-Uri": REFERENCE_URL,
    "X-Forwarded-Host": HOST,
    "X-Forwarded-Method": "GET",
    "X-Original-Method": "GET",
    "X-Real-IP": "127.0.0.1",
    "X-Forwarded-For": "127.0.0.1",
    "X-Request-ID": "spoofed",
}
