"""What an included file may not do that the main file may (docs/configuration.md, "What
an included file may do"): shadow another file's source, read keys outside its folder or
the environment, sign for another file's source; and what no config file may be
(world-writable, or an included symlink leading out of its folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sidecar.config import load
from sidecar.errors import ConfigError
from tests.support.config_files import write
from tests.support.configs import md5_source, sidecar_config, source_toml, team_toml

SERVER = {"listen": "127.0.0.1:8080"}
BOOKS = md5_source("books", "/books/", {"k": "books-token-0123456789"})
FREE = md5_source("free", "/books/free/", mode="off")


def main_file(folder: Path, *lines: str, sources: str = BOOKS) -> Path:
    """The operator's file: ``include = ["sources.d/*.toml"]``, ``lines`` at the top level,
    then ``sources``."""
    top = 'include = ["sources.d/*.toml"]\n' + "".join(line + "\n" for line in lines)
    return write(folder, top + sidecar_config(sources, server=SERVER))


def part(folder: Path, text: str, name: str = "tenant.toml") -> Path:
    parts = folder / "sources.d"
    parts.mkdir(exist_ok=True)
    return write(parts, text, name)


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(path, environ=environ or {})
    return error.value.problems


# --- shadowing ---------------------------------------------------------------------------


def test_an_included_source_may_not_open_a_subtree_of_the_main_files_source(
    tmp_path: Path,
) -> None:
    config = main_file(tmp_path)
    tenant = part(tmp_path, FREE)
    (problem,) = [p for p in problems_of(config) if "shadow" in p]
    assert problem.startswith(f"{tenant}: source 'free'.path_prefix: ")
    assert "'books'" in problem and str(config) in problem


def test_an_included_source_may_not_shadow_another_included_files_source(
    tmp_path: Path,
) -> None:
    config = main_file(tmp_path, sources=md5_source("main", "/main/", {"k": "m" * 20}))
    part(tmp_path, BOOKS, "10-books.toml")
    greedy = part(tmp_path, md5_source("greedy", "/books/a/", {"k": "g" * 20}), "20-greedy.toml")
    (problem,) = [p for p in problems_of(config) if "shadow" in p]
    assert problem.startswith(f"{greedy}: source 'greedy'")
    assert str(tmp_path / "sources.d" / "10-books.toml") in problem


def test_a_host_bound_source_shadows_a_host_less_one_at_the_same_prefix(tmp_path: Path) -> None:
    config = main_file(tmp_path)
    tenant = part(tmp_path, md5_source("mine", "/books/", hosts=["a.example"], mode="off"))
    assert any(
        p.startswith(f"{tenant}: source 'mine'") and "shadow" in p for p in problems_of(config)
    )


def test_a_host_less_source_under_a_host_bound_one_shadows_it(tmp_path: Path) -> None:
    config = main_file(
        tmp_path, sources=md5_source("books", "/books/", {"k": "b" * 20}, hosts=["a.example"])
    )
    tenant = part(tmp_path, FREE)
    assert any(
        p.startswith(f"{tenant}: source 'free'") and "shadow" in p for p in problems_of(config)
    )


def test_sources_on_disjoint_hosts_do_not_shadow_each_other(tmp_path: Path) -> None:
    config = main_file(
        tmp_path, sources=md5_source("books", "/", {"k": "b" * 20}, hosts=["books.example"])
    )
    for index in range(3):
        part(
            tmp_path,
            md5_source(
                f"t{index}", "/", {"k": f"tenant-{index}-" + "x" * 16}, hosts=[f"t{index}.example"]
            ),
            f"t{index}.toml",
        )
    assert len(load(config).sources) == 4


def test_the_main_file_may_nest_inside_an_included_source_and_a_file_inside_its_own(
    tmp_path: Path,
) -> None:
    config = main_file(tmp_path, sources=md5_source("open", "/acme/public/", mode="off"))
    part(
        tmp_path,
        md5_source("acme", "/acme/", {"k": "a" * 20})
        + md5_source("acme-free", "/acme/free/", mode="off"),
    )
    assert {source.name for source in load(config).sources} == {"open", "acme", "acme-free"}


def test_an_included_source_beside_another_files_prefix_is_not_a_shadow(tmp_path: Path) -> None:
    # "/bookshelf/" is not under "/books/": routing matches on segment boundaries.
    config = main_file(tmp_path)
    part(tmp_path, md5_source("shelf", "/bookshelf/", mode="off"))
    assert len(load(config).sources) == 2


# --- key files and the environment -------------------------------------------------------


@pytest.mark.parametrize("path", ["../books-token", "ABSOLUTE"])
def test_an_included_file_reads_no_key_outside_its_folder(tmp_path: Path, path: str) -> None:
    (tmp_path / "books-token").write_text("the-operators-token-0123\n")
    config = main_file(tmp_path)
    value = str(tmp_path / "books-token") if path == "ABSOLUTE" else path
    tenant = part(tmp_path, source_toml("t", "md5-token", "/t/", {"k": {"secret_file": value}}))
    problems = problems_of(config)
    assert any(
        p.startswith(f"{tenant}: sources[0] 't'.keys[0].secret_file: ") and "outside" in p
        for p in problems
    ), problems
    assert not any("the-operators-token" in p for p in problems)


def test_a_symlink_in_the_folder_does_not_lead_a_key_out_of_it(tmp_path: Path) -> None:
    (tmp_path / "books-token").write_text("the-operators-token-0123\n")
    config = main_file(tmp_path)
    tenant = part(tmp_path, source_toml("t", "md5-token", "/t/", {"k": {"secret_file": "link"}}))
    (tenant.parent / "link").symlink_to(tmp_path / "books-token")
    assert any("'t'.keys[0].secret_file" in p and "outside" in p for p in problems_of(config))


def test_the_main_file_may_allow_key_roots_for_included_files(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "t-token").write_text("tenant-token-0123456789\n")
    config = main_file(tmp_path, 'include_key_roots = ["keys"]')
    part(tmp_path, source_toml("t", "md5-token", "/t/", {"k": {"secret_file": "../keys/t-token"}}))
    assert load(config).source("t") is not None


def test_key_roots_are_the_main_files_alone(tmp_path: Path) -> None:
    config = main_file(tmp_path)
    tenant = part(tmp_path, 'include_key_roots = ["/"]\n' + md5_source("t", "/t/", mode="off"))
    assert f"{tenant}: (top level): unknown field 'include_key_roots'" in problems_of(config)


def test_the_main_files_own_keys_may_lie_anywhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "token").write_text("main-token-0123456789\n")
    main = tmp_path / "main"
    main.mkdir()
    config = write(
        main, source_toml("m", "md5-token", "/m/", {"k": {"secret_file": "../elsewhere/token"}})
    )
    assert load(config).source("m") is not None


def test_an_included_file_reads_only_the_variables_the_main_file_lists(tmp_path: Path) -> None:
    environ = {"OTHER_TENANT_TOKEN": "someone-elses-0123456789", "T_TOKEN": "t-token-0123456789"}
    tenant_text = source_toml("t", "md5-token", "/t/", {"k": {"secret_env": "OTHER_TENANT_TOKEN"}})
    part(tmp_path, tenant_text)
    denied = problems_of(main_file(tmp_path, 'include_key_env = ["T_TOKEN"]'), environ)
    assert any("'t'.keys[0].secret_env" in p and "include_key_env" in p for p in denied), denied
    part(tmp_path, tenant_text.replace("OTHER_TENANT_TOKEN", "T_TOKEN"))
    assert load(main_file(tmp_path, 'include_key_env = ["T_TOKEN"]'), environ=environ)


def test_a_secret_setting_file_of_an_included_file_stays_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "salt").write_text("the-operators-salt\n")
    config = main_file(tmp_path)
    part(
        tmp_path,
        source_toml("ak", "akamai", "/ak/", {"k": {"secret": "ab" * 16}}, salt_file="../salt"),
    )
    assert any("'ak'.salt_file" in p and "outside" in p for p in problems_of(config))


# --- teams -------------------------------------------------------------------------------


def test_an_included_team_signs_only_for_its_own_files_sources(tmp_path: Path) -> None:
    config = main_file(tmp_path)
    tenant = part(
        tmp_path, md5_source("t", "/t/", {"k": "t" * 20}) + team_toml("thief", "books", "api-key")
    )
    problems = problems_of(config)
    assert any(p.startswith(f"{tenant}: teams[0].source") and "'books'" in p for p in problems)


def test_the_main_files_team_may_sign_for_an_included_source(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'include = ["sources.d/*.toml"]\n'
        + sidecar_config(BOOKS, server=SERVER, teams=[team_toml("ops", "t", "k")]),
    )
    part(tmp_path, md5_source("t", "/t/", {"k": "t" * 20}))
    team = load(config).team("ops")
    assert team is not None and team.source == "t"


# --- permissions and symlinks ------------------------------------------------------------


def test_world_writable_config_and_key_files_are_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tenant-token-0123456789\n")
    config = main_file(
        tmp_path, sources=source_toml("m", "md5-token", "/m/", {"k": {"secret_file": "token"}})
    )
    tenant = part(tmp_path, md5_source("t", "/t/", mode="off"))
    for path in (config, tenant, token):
        path.chmod(0o666)
    problems = problems_of(config)
    for path in (config, tenant, token):
        assert any(str(path) in p and "world-writable" in p for p in problems), (path, problems)


def test_group_writable_files_are_accepted(tmp_path: Path) -> None:
    config = main_file(tmp_path)
    tenant = part(tmp_path, md5_source("t", "/t/", {"k": "t" * 20}))
    config.chmod(0o664)
    tenant.chmod(0o664)
    assert len(load(config).sources) == 2


def test_an_included_symlink_leading_out_of_its_folder_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path, md5_source("t", "/t/", {"k": "t" * 20}), "outside.toml")
    config = main_file(tmp_path)
    (tmp_path / "sources.d").mkdir()
    link = tmp_path / "sources.d" / "t.toml"
    link.symlink_to(outside)
    assert any(p.startswith(f"{link}: ") and "outside" in p for p in problems_of(config))


def test_kubernetes_style_symlinks_inside_the_folder_are_followed(tmp_path: Path) -> None:
    """A ConfigMap or Secret mount: ``name -> ..data/name``, ``..data -> ..2026_x``."""
    parts = tmp_path / "sources.d"
    (parts / "..2026_12_07").mkdir(parents=True)
    (parts / "..data").symlink_to("..2026_12_07")
    write(
        parts / "..2026_12_07",
        source_toml("t", "md5-token", "/t/", {"k": {"secret_file": "t-token"}}),
        "t.toml",
    )
    (parts / "..2026_12_07" / "t-token").write_text("tenant-token-0123456789\n")
    for name in ("t.toml", "t-token"):
        (parts / name).symlink_to(f"..data/{name}")
    assert load(main_file(tmp_path)).source("t") is not None


def test_every_trust_problem_is_reported_together(tmp_path: Path) -> None:
    (tmp_path / "books-token").write_text("the-operators-token-0123\n")
    config = main_file(tmp_path)
    tenant = part(
        tmp_path,
        FREE
        + source_toml("t", "md5-token", "/t/", {"k": {"secret_file": "../books-token"}})
        + team_toml("thief", "books", "k"),
    )
    mine = [p for p in problems_of(config) if p.startswith(f"{tenant}:")]
    assert len(mine) == 3, mine


def test_the_suites_own_files_are_not_world_writable() -> None:
    # Files the tests write (tmp_path) must not trip the check by accident.
    current = os.umask(0)
    os.umask(current)
    assert current & 0o002, f"umask {current:04o} makes world-writable files"
