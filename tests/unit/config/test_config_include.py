"""Sources split over files: ``include = [...]`` globs, relative to the main file, every
problem naming the file that holds it (docs/configuration.md, "include")."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from bench.tools.tenants import Tenants
from sidecar.config import load
from sidecar.errors import ConfigError
from sidecar.schemes.base import KeyKind, SourceKey
from tests.support.config_files import write
from tests.support.configs import md5_source, sidecar_config, source_toml, team_toml

SERVER = {"listen": "127.0.0.1:8080"}


def main_file(folder: Path, *patterns: str, sources: str = "") -> Path:
    include = "include = [" + ", ".join(f'"{p}"' for p in patterns) + "]\n"
    return write(folder, include + sidecar_config(sources, server=SERVER))


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(path)
    return error.value.problems


def test_sources_come_from_every_matching_file_in_sorted_order(tmp_path: Path) -> None:
    parts = tmp_path / "sources.d"
    parts.mkdir()
    write(parts, md5_source("b", "/b/", {"k": "token-of-b-0123456789"}), "20-b.toml")
    write(parts, md5_source("a", "/a/", {"k": "token-of-a-0123456789"}), "10-a.toml")
    write(parts, md5_source("ignored", "/x/", {"k": "not-toml-suffix-0123"}), "notes.txt")
    config = main_file(
        tmp_path, "sources.d/*.toml", sources=md5_source("m", "/m/", {"k": "m" * 20})
    )
    settings = load(config)
    assert [source.name for source in settings.sources] == ["m", "a", "b"]
    # Each file read is watched: the main file, the folder (a file added or removed), the parts.
    assert str(parts) in settings.files
    assert {str(parts / "10-a.toml"), str(parts / "20-b.toml")} <= set(settings.files)


def test_key_files_resolve_against_the_file_that_names_them(tmp_path: Path) -> None:
    tenant = tmp_path / "tenants" / "acme"
    tenant.mkdir(parents=True)
    (tenant / "token").write_text("acme-token-0123456789abcdef\n")
    write(tenant, source_toml("acme", "md5-token", "/acme/", {"k": {"secret_file": "token"}}),
          "source.toml")  # fmt: skip
    settings = load(main_file(tmp_path, "tenants/*/source.toml"))
    acme = settings.source("acme")
    assert acme is not None and acme.signatures is not None
    assert acme.signatures.key_material() == (
        SourceKey("k", KeyKind.SHARED_SECRET, b"acme-token-0123456789abcdef"),
    )


def test_an_absolute_include_path_is_taken_as_it_is(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    part = write(elsewhere, md5_source("far", "/far/", {"k": "far-token-0123456789"}), "far.toml")
    main = tmp_path / "main"
    main.mkdir()
    settings = load(main_file(main, str(part)))
    assert [source.name for source in settings.sources] == ["far"]


def test_each_problem_names_the_file_that_holds_it(tmp_path: Path) -> None:
    parts = tmp_path / "sources.d"
    parts.mkdir()
    bad = write(
        parts, md5_source("bad", "/bad/", {"k": "bad-token-0123456789"}, mode="loud"), "bad.toml"
    )
    broken = write(parts, "[[sources]\nname = ", "broken.toml")
    good = main_file(tmp_path, "sources.d/*.toml")
    problems = problems_of(good)
    assert f"{bad}: sources[0] 'bad'.mode: must be enforce, optional, report or off" in problems
    assert any(p.startswith(f"{broken}: not valid TOML") for p in problems), problems
    assert not any(p.startswith(f"{good}:") for p in problems), problems


def test_a_name_defined_in_two_files_names_both(tmp_path: Path) -> None:
    parts = tmp_path / "sources.d"
    parts.mkdir()
    one = write(parts, md5_source("same", "/one/", {"k": "token-one-0123456789"}), "one.toml")
    two = write(parts, md5_source("same", "/two/", {"k": "token-two-0123456789"}), "two.toml")
    problems = problems_of(main_file(tmp_path, "sources.d/*.toml"))
    assert any(
        "duplicate source name: same" in p and str(one) in p and str(two) in p for p in problems
    ), problems


def test_included_files_hold_sources_and_teams_only(tmp_path: Path) -> None:
    parts = tmp_path / "sources.d"
    parts.mkdir()
    part = write(
        parts,
        'include = ["more/*.toml"]\n[server]\nworkers = 2\n'
        + md5_source("t", "/t/", {"k": "tenant-token-0123456789"})
        + team_toml("t-team", "t", "api-key"),
        "t.toml",
    )
    problems = problems_of(main_file(tmp_path, "sources.d/*.toml"))
    assert f"{part}: (top level): unknown field 'include'" in problems
    assert f"{part}: (top level): unknown field 'server'" in problems


def test_a_team_in_an_included_file_signs_for_its_source(tmp_path: Path) -> None:
    parts = tmp_path / "sources.d"
    parts.mkdir()
    source = md5_source("t", "/t/", {"k": "tenant-token-0123456789"})
    write(parts, source + team_toml("t-team", "t", "api-key"), "t.toml")
    settings = load(main_file(tmp_path, "sources.d/*.toml"))
    team = settings.team("t-team")
    assert team is not None and team.source == "t"


def test_a_missing_file_is_a_problem_and_an_empty_glob_a_warning(tmp_path: Path) -> None:
    missing = main_file(tmp_path, "nowhere.toml", sources=md5_source("m", "/m/", {"k": "m" * 20}))
    assert f"{missing}: include: no file {tmp_path / 'nowhere.toml'}" in problems_of(missing)
    empty = main_file(tmp_path, "sources.d/*.toml", sources=md5_source("m", "/m/", {"k": "m" * 20}))
    settings = load(empty)
    assert f"{empty}: include: 'sources.d/*.toml' matches no file" in settings.warnings


@pytest.mark.parametrize("value", ['"sources.d/*.toml"', "[1]", '[""]'])
def test_include_must_be_a_list_of_paths(tmp_path: Path, value: str) -> None:
    config = write(
        tmp_path,
        f"include = {value}\n"
        + sidecar_config(md5_source("m", "/m/", {"k": "m" * 20}), server=SERVER),
    )
    problems = problems_of(config)
    assert any(p.startswith(f"{config}: (top level).include: must be") for p in problems)
    assert not any("unknown field 'include'" in p for p in problems)


def test_a_file_matched_by_two_patterns_is_read_once(tmp_path: Path) -> None:
    parts = tmp_path / "sources.d"
    parts.mkdir()
    write(parts, md5_source("once", "/once/", {"k": "token-once-0123456789"}), "once.toml")
    settings = load(main_file(tmp_path, "sources.d/*.toml", "sources.d/once.toml"))
    assert [source.name for source in settings.sources] == ["once"]


def test_a_loaded_config_holds_no_reference_cycles(good_config: Path) -> None:
    """The serving config is frozen out of the collector's sight (a full collection over
    10,000 sources pauses the verify loop); a replaced one must then be freed by reference
    counting alone, which a cycle would prevent: every reload would leak a whole config."""
    gc.collect()
    gc.disable()
    try:
        settings = load(good_config, environ={"BOOKS_TOKEN": "from-the-environment"})
        assert settings.source("books") is not None
        del settings
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.slow  # writes and loads 11,000 sources
def test_ten_thousand_sources_load_in_linear_time(tmp_path: Path) -> None:
    """Loading is linear in sources: 10x the sources takes about 10x the time, not 100x."""
    timings = {}
    for count in (1_000, 10_000):
        folder = tmp_path / str(count)
        config = Tenants(folder, count, "127.0.0.1:8080").write()
        started = time.perf_counter()
        settings = load(config)
        timings[count] = time.perf_counter() - started
        assert len(settings.sources) == count
        assert settings.source(f"tenant-{count - 1:05d}") is not None
    ratio = timings[10_000] / timings[1_000]
    print(f"\nload: 1,000 sources {timings[1_000]:.2f} s, 10,000 {timings[10_000]:.2f} s")
    assert ratio < 25, timings  # quadratic would be 100x; only the ratio is asserted
