"""The verify answer's bytes (``verify_answer``): kept whole by everything they say, so a
kept answer must never say another decision's source, key, result or lifetime."""

from __future__ import annotations

import itertools

from sidecar.core.verdict import Reason
from sidecar.runtime import verify_protocol
from sidecar.runtime.verify_protocol import verify_answer


def headers_of(answer: bytes) -> tuple[str, dict[str, str]]:
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert rest == b""  # no body, one empty line at the end
    status, *lines = head.decode().split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines)


def expected(
    reason: str, ttl: int, keep_alive: bool, source: str, key: str | None
) -> dict[str, str]:
    headers = {"X-Signature-Result": reason}
    if ttl > 0:
        headers |= {"X-Accel-Expires": str(ttl), "Cache-Control": f"private, max-age={ttl}"}
    else:
        headers |= {"X-Accel-Expires": "0", "Cache-Control": "no-store"}
    headers["Content-Length"] = "0"
    if not keep_alive:
        headers["Connection"] = "close"
    headers["X-Signature-Source"] = source
    if key is not None:
        headers["X-Signature-Key"] = key
    return headers


CASES = list(
    itertools.product(
        [(200, Reason.OK), (401, Reason.INVALID), (403, Reason.EXPIRED)],
        [0, 1, 60],
        [True, False],
        ["books", "acme"],
        [None, "k1", "k2"],
    )
)


def test_each_answer_says_its_own_decision_every_time_it_is_given() -> None:
    for _ in range(2):  # made, then kept
        for (status, reason), ttl, keep_alive, source, key in CASES:
            line, headers = headers_of(
                verify_answer(status, reason, ttl, keep_alive, source=source, key_id=key)
            )
            assert line.startswith(f"HTTP/1.1 {status} ")
            assert headers == expected(reason, ttl, keep_alive, source, key)


def test_kept_answers_stay_bounded_and_right_after_starting_over() -> None:
    for ttl in range(verify_protocol._MAX_ANSWERS + 5):
        verify_answer(200, Reason.OK, ttl, True, source="books", key_id="k1")
    assert len(verify_protocol._ANSWERS) <= verify_protocol._MAX_ANSWERS
    _, headers = headers_of(verify_answer(200, Reason.OK, 7, True, source="acme", key_id="k2"))
    assert headers == expected(Reason.OK, 7, True, "acme", "k2")


def test_a_folder_grants_cookies_come_before_the_identity() -> None:
    cookie = b"Set-Cookie: grant=abc; Path=/books/; HttpOnly\r\n"
    answer = verify_answer(200, Reason.OK, 0, True, source="books", key_id="k1", cookies=cookie)
    _, headers = headers_of(answer)
    assert headers["Set-Cookie"] == "grant=abc; Path=/books/; HttpOnly"
    assert answer.index(cookie) < answer.index(b"X-Signature-Source: books")
    # and the answer kept for the same decision without cookies carries none
    plain = verify_answer(200, Reason.OK, 0, True, source="books", key_id="k1")
    assert b"Set-Cookie" not in plain
