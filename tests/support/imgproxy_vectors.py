"""Writes ``tests/unit/schemes/vectors/imgproxy.json``: imgproxy URLs made by imgproxy's
documented example and the ``imgproxy`` Python package, and truncated signatures
(``signature_size``) computed by ``openssl dgst -sha256 -mac HMAC``.

Run from the repository's root: ``python -m tests.support.imgproxy_vectors``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from imgproxy import ImgProxy  # type: ignore[import-untyped]  # no stubs, no py.typed

OUT = Path(__file__).parents[1] / "unit" / "schemes" / "vectors" / "imgproxy.json"
KEY = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881"
SALT = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5"
LIBRARY_CASES: tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...] = (
    ("http://img.example.com/pretty/image.jpg", {"width": 300, "height": 400}, ()),
    ("s3://books/covers/a.jpg", {"resizing_type": "fill", "width": 120, "extension": "webp"}, ()),
    ("local:///books/café menu.png", {"gravity": "sm", "enlarge": True}, ("q:80", "bl:2")),
    (
        "https://example.com/a.jpg?v=2&w=1",
        {"resizing_type": "fit", "height": 90},
        ("exp:1900003600",),
    ),
)


def openssl_signature(key: str, salt: str, path: str, size: int) -> str:
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary", "-mac", "HMAC", "-macopt", f"hexkey:{key}"],
        input=bytes.fromhex(salt) + path.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return base64.urlsafe_b64encode(digest[:size]).rstrip(b"=").decode()


def vectors() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "description": "imgproxy's documented example (key 'secret', salt 'hello')",
            "generator": "imgproxy documentation, 'Signing a URL'",
            "key": b"secret".hex(),
            "salt": b"hello".hex(),
            "signature_size": 32,
            "expected": "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/"
            "aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
        }
    ]
    for source, options, advanced in LIBRARY_CASES:
        url = ImgProxy(source, key=KEY, salt=SALT, **options)(*advanced)
        found.append(
            {
                "description": f"imgproxy package: {source}",
                "generator": "imgproxy 1.0.0 (PyPI)",
                "key": KEY,
                "salt": SALT,
                "signature_size": 32,
                "expected": url,
            }
        )
    rest = "/rs:fit:300:300/plain/books/a.jpg@webp"
    for size in (1, 8, 16, 31):
        found.append(
            {
                "description": f"signature_size {size}",
                "generator": "openssl dgst -sha256 -mac HMAC",
                "key": KEY,
                "salt": SALT,
                "signature_size": size,
                "expected": f"/{openssl_signature(KEY, SALT, rest, size)}{rest}",
            }
        )
    return found


def main() -> None:
    document = {
        "scheme": "imgproxy",
        "note": "expected = '/<signature>/<rest>', served under a source's path_prefix",
        "vectors": vectors(),
    }
    OUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
