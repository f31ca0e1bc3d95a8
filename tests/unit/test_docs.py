"""The documentation in the repository: every reference resolves to a page it holds, and
each scheme's page says what its code declares (docs/development.md, "Adding a scheme")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sidecar import schemes
from sidecar.policy.proxies import PROFILES
from sidecar.schemes.base import Scheme
from tests.support.paths import REPO

DOCS = REPO / "docs"
# The Markdown a reader follows links in: the front door, the docs, the other READMEs.
PAGES = sorted(
    [REPO / "README.md", REPO / "SECURITY.md", REPO / "CHANGELOG.md", *DOCS.rglob("*.md")]
    + [path for path in REPO.glob("*/README.md")]
    + [path for path in REPO.glob("*/*/README.md") if "node_modules" not in path.parts]
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
# Documents that are not in the repository, as code and docs once cited them.
_OUTSIDE = re.compile("SPEC " + "§|STYLE" + r"\.md|\.\./" + "shared")
_TREE = ("sidecar", "tests", "docs", "bench", "deploy", "docker", "examples", "fuzz",
         "grafana", "nginx", "caddy", "haproxy", "scripts")  # fmt: skip


def slug(heading: str) -> str:
    """A heading's anchor as GitHub writes it: lowercase, punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def relative_links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    return [
        target
        for target in _LINK.findall(text)
        if not re.match(r"[a-z]+:", target) and not target.startswith("#")
    ] + [target for target in _LINK.findall(text) if target.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_reaches_a_file_and_heading_in_the_repository(page: Path) -> None:
    for target in relative_links(page):
        path_text, _, anchor = target.partition("#")
        linked = (page.parent / path_text).resolve() if path_text else page
        assert linked.exists(), f"{page.relative_to(REPO)}: {target} names no file"
        assert REPO in linked.parents or linked == REPO, f"{target} leaves the repository"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.relative_to(REPO)}: no heading #{anchor}"


def test_nothing_cites_a_document_outside_the_repository() -> None:
    files = [REPO / "README.md", REPO / "SECURITY.md", REPO / "pyproject.toml"] + [
        path
        for folder in _TREE
        for path in (REPO / folder).rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".md", ".toml", ".yaml", ".yml", ".conf", ".mjs", ".js", ""}
        and "node_modules" not in path.parts
        and "__pycache__" not in path.parts
    ]
    citing = [
        str(path.relative_to(REPO))
        for path in files
        if _OUTSIDE.search(path.read_text(errors="replace"))
    ]
    assert citing == []


@pytest.mark.parametrize("profile", PROFILES)
def test_each_proxy_profile_has_a_row_in_the_request_contract(profile: str) -> None:
    rows = (DOCS / "request-contract.md").read_text().splitlines()
    assert [row for row in rows if row.startswith(f"| `{profile}` |")], profile
    configuration = (DOCS / "configuration.md").read_text()
    assert f"`{profile}`" in configuration.partition("| `proxy` |")[2].partition("\n")[0]


def scheme(name: str) -> Scheme[Any]:
    found = schemes.get(name)
    assert found is not None
    return found


@pytest.mark.parametrize("name", schemes.names())
def test_each_scheme_has_its_page_and_a_row_in_the_readme(name: str) -> None:
    page = DOCS / "schemes" / f"{name}.md"
    assert page.is_file(), f"docs/schemes/{name}.md is missing"
    assert f"[`{name}`](docs/schemes/{name}.md)" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", schemes.names())
def test_each_scheme_page_states_its_deny_status_and_every_setting(name: str) -> None:
    text = (DOCS / "schemes" / f"{name}.md").read_text()
    entry = scheme(name)
    assert f"Default deny status: **{entry.default_deny_status}**" in text
    for declared in entry.settings:
        assert f"`{declared.name}`" in text, f"{name}: setting {declared.name} undocumented"
