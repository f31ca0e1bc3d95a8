"""What the property modules (``test_properties_*``) share: reproducible settings, a tally
of the inputs fuzzed and the wrong allows, strategies for canonical URIs, and mutations.

Every run is reproducible: the examples are derandomized and no example database is read
or written. The figures (inputs fuzzed, wrong allows) are printed per test (``pytest -s``),
summed by the last test of each module, and added to the end-of-run reliability figures.

``SIDECAR_FUZZ_SCALE`` scales every property's examples: ``scripts/test --fast`` runs a
fraction of them (derandomized too), the whole suite all of them.
"""

from __future__ import annotations

import functools
import os
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_plus

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sidecar.schemes import cloudfront_keys as keys
from tests.support.figures import record

NOW = 1_900_000_000


ORIGIN = "https://cdn.example.com"


CLIENT_IP = "203.0.113.5"


# Reproducible in CI: a fixed seed, no example database, no per-example deadline.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


SCALE = float(os.environ.get("SIDECAR_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=max(1, round(examples * SCALE)))


@dataclass
class Tally:
    """One module's figures: inputs fuzzed per property, and the URIs wrongly allowed."""

    fuzzed: Counter[str] = field(default_factory=Counter)
    wrong_allows: list[tuple[str, str]] = field(default_factory=list)

    def count(self, test: str, inputs: int = 1) -> None:
        self.fuzzed[test] += inputs

    def report(self, test: str, wrong: list[str]) -> None:
        """Print and remember a test's figures; ``wrong`` are URIs allowed without a signature."""
        self.wrong_allows.extend((test, uri) for uri in wrong)
        record("inputs fuzzed (properties)", self.fuzzed[test])
        record("wrong allows", len(wrong))
        print(f"[fuzz] {test}: {self.fuzzed[test]} inputs fuzzed, {len(wrong)} wrong allows")

    def print_summary(self) -> None:
        total = sum(self.fuzzed.values())
        print()
        for test, inputs in sorted(self.fuzzed.items()):
            print(f"[fuzz] {test}: {inputs} inputs")
        print(
            f"[fuzz] total: {total} inputs fuzzed across {len(self.fuzzed)} properties, "
            f"{len(self.wrong_allows)} wrong allows"
        )
        for test, uri in self.wrong_allows[:20]:
            print(f"[fuzz] wrong allow in {test}: {uri!r}")


# --- strategies: canonical URIs built from a safe alphabet -------------------------------

PATH_CHARS = string.ascii_letters + string.digits + "-_~.!$&'()*+,=:@"


QUERY_CHARS = string.ascii_letters + string.digits + "-_~.!$'()*+,:@/?"


ENCODED_ASCII = ["%20", "%25", "%2B", "%3F", "%23", "%26", "%3D", "%3B", "%40", "%7E", "%41"]


non_ascii = st.characters(min_codepoint=0xA0, exclude_categories=["Cs"])


percent_utf8 = st.builds(
    lambda char, case: case(quote(char)), non_ascii, st.sampled_from([str.upper, str.lower])
)


def _token(chars: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(chars), st.sampled_from(ENCODED_ASCII), percent_utf8, non_ascii
    )


segment = (
    st.lists(_token(PATH_CHARS), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda s: s not in (".", ".."))
)


query_word = st.lists(_token(QUERY_CHARS), max_size=5).map("".join)


query_pair = st.one_of(
    st.builds(
        lambda n, v: f"{n}={v}",
        query_word,
        st.lists(query_word, min_size=1, max_size=3).map("=".join),
    ),
    query_word,
)


def path_under(prefix: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda parts, slash: prefix + "/".join(parts) + slash,
        st.lists(segment, min_size=1, max_size=4),
        st.sampled_from(["", "", "", "/"]),
    )


def own_query(reserved: frozenset[str]) -> st.SearchStrategy[str | None]:
    """A query of the URL's own parameters (None: no "?"), avoiding signing parameter names."""

    def rename(pair: str) -> str:
        return "x" + pair if unquote_plus(pair.partition("=")[0]) in reserved else pair

    return st.one_of(st.none(), st.lists(query_pair.map(rename), max_size=5).map("&".join))


def with_query(path: str, query: str | None) -> str:
    return path if query is None else f"{path}?{query}"


# --- mutations at the byte level (what a header can carry) -------------------------------

# fmt: off
INTERESTING = [
    *"/.%\\;#?&= +0Aa\u00e9\x00\x1f\x7f\x85\udcff",
    "%2e", "%2E", "%2f", "%2F", "%5c", "%00", "%c0%af", "%e9", "%C3", "%25", "%%", "%g0",
    "//", "/./", "/../", "..", "&s=", "&Expires=0",
]


# fmt: on


def as_header(data: bytes) -> str:
    """Bytes as aiohttp hands a header value over: UTF-8 with surrogateescape."""
    return data.decode("utf-8", "surrogateescape")


def mutate_bytes(data: bytes, op: str, position: int, byte: int) -> bytes:
    """One byte deleted, inserted or replaced; ``nudge`` and ``case`` replace it by a near one."""
    position %= len(data) + (op == "insert")
    if op == "delete":
        return data[:position] + data[position + 1 :]
    if op == "insert":
        return data[:position] + bytes([byte]) + data[position:]
    if op == "nudge":  # the neighbours: what slack bits in an encoding would accept
        byte = (data[position] + (1 if byte % 2 else -1)) % 256
    elif op == "case":
        byte = data[position : position + 1].swapcase()[0]
    return data[:position] + bytes([byte]) + data[position + 1 :]


byte_mutation = st.tuples(
    st.sampled_from(["delete", "insert", "replace", "nudge", "case"]),
    st.integers(0, 10_000),
    st.integers(0, 255),
)


text_mutation = st.tuples(
    st.sampled_from(["delete", "insert", "replace"]),
    st.integers(0, 10_000),
    st.sampled_from(INTERESTING),
)


def mutate_text(text: str, op: str, position: int, token: str) -> str:
    position %= len(text) + 1
    if op == "insert":
        return text[:position] + token + text[position:]
    if op == "replace":
        return text[:position] + token + text[position + 1 :]
    return text[:position] + text[position + 1 :]


def describe(original: bytes, changed: bytes) -> str:
    """A one-line account of a single-byte change: where, what, and in which parameter."""
    start = next(
        (i for i, (a, b) in enumerate(zip(original, changed, strict=False)) if a != b), None
    )
    start = min(len(original), len(changed)) if start is None else start
    if len(changed) < len(original):
        what = f"delete {original[start : start + 1]!r}"
    elif len(changed) > len(original):
        what = f"insert {changed[start : start + 1]!r}"
    else:
        what = f"{original[start : start + 1]!r} -> {changed[start : start + 1]!r}"
    head = original[:start]
    where = (
        head.rpartition(b"&")[2].rpartition(b"?")[2].partition(b"=")[0] if b"?" in head else b"path"
    )
    uri = original.decode(errors="replace")[:60]
    return f"{what} at offset {start} (in {where.decode(errors='replace')}) of {uri}..."


def single_byte_changes(data: bytes, probes: bytes) -> Iterator[bytes]:
    """Every deletion, and every replacement and insertion by a probe byte, at every offset."""
    for position in range(len(data) + 1):
        here = data[position : position + 1]
        near = {(here[0] + d) % 256 for d in (-1, 1)} if here else set()
        swapped = set(here.swapcase()) if here else set()
        candidates = set(probes) | near | swapped
        if here:
            yield data[:position] + data[position + 1 :]
        for byte in sorted(candidates):
            yield data[:position] + bytes([byte]) + data[position:]
            if here and byte != here[0]:
                yield data[:position] + bytes([byte]) + data[position + 1 :]


# --- 2. every scheme ----------------------------------------------------------------------


@functools.cache
def key_pair(kind: str, label: str) -> tuple[bytes, bytes]:
    return keys.new_key_pair(kind)
