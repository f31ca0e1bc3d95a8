"""``sidecar demo`` (the README's first command): every case answers as it says."""

from __future__ import annotations

import re
import subprocess
import sys

OTHER_SCHEMES = ("imgix", "hmac", "gcdn", "akamai", "thumbor", "secure-link", "imgproxy", "jwt",
                 "cloudflare", "bunny", "s3")  # fmt: skip
DENY_STATUS = {"jwt": 401}  # each scheme's default deny status: 403 but for these

# label → (nginx status, the sidecar's reason) the demo must show.
EXPECTED = {
    "signed URL": (200, "ok"),
    "signed, with an expiry in 5 minutes": (200, "ok"),
    "tampered parameter (w=400 -> w=4000)": (401, "invalid"),
    "tampered signature (last digit)": (401, "invalid"),
    "unsigned": (401, "missing"),
    "non-canonical path (/books/./...)": (403, "non_canonical"),
    "a source with signing off": (200, "unsigned_allowed"),
    "no source owns the path": (403, "no_source"),
    **{f"{source}: signed by its own scheme": (200, "ok") for source in OTHER_SCHEMES},
    **{
        f"{source}: one byte of the path changed": (DENY_STATUS.get(source, 403), "invalid")
        for source in OTHER_SCHEMES
    },
    # One signed cookie for a gallery folder: its images served, none elsewhere.
    **{f"gallery: summer/{n}.png with the cookie": (200, "ok") for n in (1, 2, 3)},
    "gallery: winter/1.png with the cookie (outside its prefix)": (403, "invalid"),
    "gallery: summer/1.png without the cookie": (403, "missing"),
    # Allowed by the sidecar, revoked, then refused (revoked before nginx cached it).
    "a signed URL, then revoked (sidecar revoke)": (401, "revoked"),
}
ANSWER = re.compile(r"-> nginx (\d+), (.+) \(sidecar said: (\w+)\)")


def test_the_demo_shows_each_case_answered_as_labelled() -> None:
    output = subprocess.run(
        [sys.executable, "-m", "sidecar", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    blocks = [block.splitlines() for block in output.split("\n\n") if "-> nginx" in block]
    seen = {}
    for lines in blocks:
        answer = ANSWER.search(lines[-1])
        assert answer is not None, lines
        status, served, reason = int(answer[1]), answer[2], answer[3]
        seen[lines[0]] = (status, reason)
        assert ("bytes of image" in served) is (status == 200), lines
    assert seen == EXPECTED
