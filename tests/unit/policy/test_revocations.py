"""Revocations (sidecar/policy/revocations.py, revoking.py): the records, the in-memory
view a decision reads, and what a revocation request names; then the decisions a loaded
config makes with a view in force."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from sidecar import config
from sidecar.core.verdict import Reason, allow
from sidecar.errors import RevokeError
from sidecar.policy.decide import Decider, Outcome, RequestFacts
from sidecar.policy.revocations import (
    Kind,
    RevokedView,
    from_json,
    grant_digest,
    new_revocation,
    revocation_id,
    within,
)
from sidecar.policy.revoking import revoke_key, revoke_prefix, revoke_url
from sidecar.policy.settings import Settings
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import Grant
from tests.support.configs import md5_source, sidecar_config
from tests.support.tokens import BOOKS_TOKEN

NOW = 1_800_000_000.0
GRANT = b"\x01" * 16


def view(*records: tuple[Kind, str, float | None]) -> RevokedView:
    return RevokedView([new_revocation("books", kind, value, until, NOW) for kind, value, until
                        in records], NOW)  # fmt: skip


def verdict(grant: bytes = GRANT, key: str = "k1") -> object:
    return allow(key, int(NOW) + 60, shareable=True, grant=grant)


@pytest.mark.parametrize(
    ("path", "prefix", "inside"),
    [("/a/b", "/a/b", True), ("/a/b/c.jpg", "/a/b", True), ("/a/bc", "/a/b", False),
     ("/a/b/c", "/a/b/", True), ("/a/b", "/a/b/", False), ("/a", "/a/b", False),
     ("/x/a/b", "/a/b", False)],
)  # fmt: skip
def test_a_prefix_holds_on_a_segment_boundary(path: str, prefix: str, inside: bool) -> None:
    assert within(path, prefix) is inside


def test_a_grant_a_key_and_a_prefix_each_revoke_within_their_source() -> None:
    revoked = view((Kind.GRANT, grant_digest(GRANT).hex(), None), (Kind.KEY, "old", None),
                   (Kind.PREFIX, "/books/leaked", None))  # fmt: skip
    assert revoked.count == 3
    assert revoked.revoked("books", verdict(), "/books/a.jpg", NOW)  # type: ignore[arg-type]
    assert not revoked.revoked("books", verdict(b"\x02" * 16), "/books/a.jpg", NOW)  # type: ignore[arg-type]
    assert not revoked.revoked("other", verdict(), "/books/a.jpg", NOW)  # type: ignore[arg-type]
    assert revoked.revoked("books", verdict(b"\x02", "old"), "/books/a.jpg", NOW)  # type: ignore[arg-type]
    assert revoked.revoked("books", verdict(b"\x02"), "/books/leaked/a.jpg", NOW)  # type: ignore[arg-type]
    assert not revoked.revoked("books", verdict(b"\x02"), "/books/leakedx.jpg", NOW)  # type: ignore[arg-type]


def test_a_revocation_holds_until_its_end_and_an_ended_one_is_not_loaded() -> None:
    revoked = view((Kind.KEY, "k1", NOW + 10), (Kind.KEY, "k2", NOW - 1))
    assert revoked.count == 1
    assert revoked.revoked("books", verdict(), "/books/a", NOW + 9.9)  # type: ignore[arg-type]
    assert not revoked.revoked("books", verdict(), "/books/a", NOW + 10)  # type: ignore[arg-type]
    assert not revoked.revoked("books", verdict(key="k2"), "/books/a", NOW)  # type: ignore[arg-type]


def test_ids_are_one_per_thing_revoked() -> None:
    assert revocation_id("books", Kind.KEY, "k1") == revocation_id("books", Kind.KEY, "k1")
    assert revocation_id("books", Kind.KEY, "k1") != revocation_id("shop", Kind.KEY, "k1")
    assert revocation_id("books", Kind.KEY, "k1").startswith("k-")


def test_a_record_is_read_back_only_in_its_one_spelling() -> None:
    record = new_revocation("books", Kind.PREFIX, "/books/x", None, NOW)
    assert from_json(record.to_json()) == record
    raw = orjson.loads(record.to_json())
    for changed in (
        {"id": "p-0"},
        {"kind": "everything"},
        {"value": "books"},
        {"until": "soon"},
        {"until": True},
        {"extra": 1},
        {"created": None},
    ):
        assert from_json(orjson.dumps({**raw, **changed})) is None, changed
    assert from_json(b"not json") is None
    assert from_json(b"[]") is None
    grant = new_revocation("books", Kind.GRANT, "AB" * 16, None, NOW)
    assert from_json(grant.to_json()) is None  # a digest in lowercase only


# --- what a revocation request names -------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    text = sidecar_config(md5_source("books", "/books/", {"k1": BOOKS_TOKEN}, max_ttl=3600))
    path = tmp_path / "sidecar.toml"
    path.write_text(text + '\n[state]\npath = "state.db"\n')
    return config.load(path)


def signed(settings: Settings, path: str, lifetime: int = 600) -> str:
    source = settings.source("books")
    assert source is not None and source.signatures is not None
    return source.signatures.sign(sign_request(path, Grant(expires=int(NOW) + lifetime))).url


def test_a_url_is_revoked_by_its_grant_until_its_expiry(settings: Settings) -> None:
    url = signed(settings, "/books/a.jpg")
    record = revoke_url(settings, url, now=NOW, host="img.example")
    assert (record.source, record.kind, record.until) == ("books", Kind.GRANT, int(NOW) + 600)
    # every spelling of the grant is one revocation: the upper-case hex of md5-token
    upper = url.rpartition("=")[0] + "=" + url.rpartition("=")[2].upper()
    assert revoke_url(settings, upper, now=NOW, host="img.example").id == record.id
    # a listing names the grant by a digest, never by the signature the URL carries
    assert url.rpartition("=")[2] not in record.value


@pytest.mark.parametrize(
    ("url", "message"),
    [("/books/a.jpg?st=abc", "nothing to revoke"), ("/elsewhere/a.jpg", "no source"),
     ("/books/../a.jpg", "not canonical"), ("http://[bad/", "not a URL")],
)  # fmt: skip
def test_only_a_grant_that_verifies_can_be_revoked(
    settings: Settings, url: str, message: str
) -> None:
    with pytest.raises(RevokeError, match=message):
        revoke_url(settings, url, now=NOW, host="img.example")


def test_a_team_revokes_only_its_own_source(settings: Settings) -> None:
    url = signed(settings, "/books/a.jpg")
    with pytest.raises(RevokeError, match="no source"):
        revoke_url(settings, url, now=NOW, host="img.example", only_source="shop")


def test_keys_and_prefixes_are_named_within_a_source(settings: Settings) -> None:
    assert revoke_key(settings, "books", "k1", now=NOW).until is None
    assert revoke_prefix(settings, "books", "/books/old", now=NOW, until=NOW + 5).until == NOW + 5
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: revoke_key(settings, "books", "k9", now=NOW), "no key"),
        (lambda: revoke_key(settings, "shop", "k1", now=NOW), "no source"),
        (lambda: revoke_prefix(settings, "books", "/shop/", now=NOW), "under the source"),
        (lambda: revoke_prefix(settings, "books", "/books/../x", now=NOW), "canonical"),
        (lambda: revoke_prefix(settings, "books", "/books/x", now=NOW, until=NOW), "ended"),
    ]
    for call, message in calls:
        with pytest.raises(RevokeError, match=message):
            call()


# --- decisions with a view in force ----------------------------------------------------------


def test_a_revoked_grant_is_denied_and_others_pay_nothing(settings: Settings) -> None:
    decider = Decider(settings)
    url, other = signed(settings, "/books/a.jpg"), signed(settings, "/books/b.jpg")
    facts = RequestFacts(url, "GET", "img.example", "192.0.2.1")
    assert decider.revocations is None  # as a config without [state] leaves it
    assert decider.decide(facts, NOW).reason is Reason.OK
    record = revoke_url(settings, url, now=NOW, host="img.example")
    decider.revocations = RevokedView([record], NOW)
    denied = decider.decide(facts, NOW)
    assert (denied.status, denied.reason, denied.outcome) == (401, Reason.REVOKED, Outcome.DENY)
    assert decider.decide(facts._replace(uri=other), NOW).reason is Reason.OK
    assert decider.decide(facts, NOW + 600 - 1).reason is Reason.REVOKED


def test_a_summary_per_source_for_the_console() -> None:
    revoked = view((Kind.GRANT, grant_digest(GRANT).hex(), None), (Kind.KEY, "old", None),
                   (Kind.PREFIX, "/books/leaked", None))  # fmt: skip
    assert revoked.summary("books") == (1, 1, ("/books/leaked",))
    assert revoked.summary("other") == (0, 0, ())


@pytest.mark.parametrize(
    ("prefix", "path", "revoked"),
    [("/books/leaked/", "/books/leaked/a.jpg", True), ("/books/leaked/", "/books/leaked", True),
     ("/books/leaked", "/books/leaked/x/y/z.jpg", True), ("/books/leaked", "/books/leakedx", False),
     ("/books/leaked", "/books/a.jpg", False), ("/", "/books/a.jpg", True), ("/", "/", True)],
)  # fmt: skip
def test_a_revoked_prefix_is_found_by_the_paths_folders(
    prefix: str, path: str, revoked: bool
) -> None:
    found = view((Kind.PREFIX, prefix, None)).revoked("books", verdict(b"\x02"), path, NOW)  # type: ignore[arg-type]
    assert found is revoked
