"""MD5 length extension, for tests that must show an attack is real before showing it is
refused.

Given ``MD5(secret + message)`` and the length of ``secret + message`` (not the secret),
``extend`` gives ``MD5(secret + message + padding + suffix)`` and the bytes appended:
the hash's state is the digest, so hashing can resume from it. A small MD5 (RFC 1321)
whose state can be set does it; ``hashlib`` cannot be resumed from a digest.
"""

from __future__ import annotations

import math
import struct

_SHIFTS = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_SINES = [int(abs(math.sin(index + 1)) * 2**32) & 0xFFFFFFFF for index in range(64)]
_MASK = 0xFFFFFFFF


def padding(length: int) -> bytes:
    """MD5's padding after ``length`` bytes: 0x80, zeros to 56 mod 64, the bit count."""
    zeros = (55 - length) % 64
    return b"\x80" + b"\x00" * zeros + struct.pack("<Q", (8 * length) & 0xFFFFFFFFFFFFFFFF)


def _rotate(value: int, amount: int) -> int:
    return ((value << amount) | (value >> (32 - amount))) & _MASK


def _compress(state: tuple[int, int, int, int], block: bytes) -> tuple[int, int, int, int]:
    words = struct.unpack("<16I", block)
    a, b, c, d = state
    for index in range(64):
        if index < 16:
            mixed, word = (b & c) | (~b & d), index
        elif index < 32:
            mixed, word = (d & b) | (~d & c), (5 * index + 1) % 16
        elif index < 48:
            mixed, word = b ^ c ^ d, (3 * index + 5) % 16
        else:
            mixed, word = c ^ (b | ~d), (7 * index) % 16
        total = (a + mixed + _SINES[index] + words[word]) & _MASK
        a, d, c, b = d, c, b, (b + _rotate(total, _SHIFTS[index])) & _MASK
    first, second, third, fourth = state
    return ((first + a) & _MASK, (second + b) & _MASK, (third + c) & _MASK, (fourth + d) & _MASK)


def md5_from(state: tuple[int, int, int, int], done: int, data: bytes) -> bytes:
    """MD5 resumed from ``state`` after ``done`` bytes (a multiple of 64) over ``data``."""
    assert done % 64 == 0
    tail = data + padding(done + len(data))
    for start in range(0, len(tail), 64):
        state = _compress(state, tail[start : start + 64])
    return struct.pack("<4I", *state)


def md5(data: bytes) -> bytes:
    """Plain MD5 from MD5's initial state (checked against hashlib by the tests)."""
    return md5_from((0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476), 0, data)


def extend(digest: bytes, signed_length: int, suffix: bytes) -> tuple[bytes, bytes]:
    """(the forged digest, the bytes to append to the message): ``digest`` is
    ``MD5(secret + message)`` and ``signed_length`` is ``len(secret + message)``."""
    glue = padding(signed_length)
    state = struct.unpack("<4I", digest)
    forged = md5_from((state[0], state[1], state[2], state[3]), signed_length + len(glue), suffix)
    return forged, glue + suffix
