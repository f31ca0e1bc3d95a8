"""``[admin]``: the console's listener and admin key hashes, every problem reported."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sidecar import config
from sidecar.errors import ConfigError
from sidecar.policy.settings import Address, Settings
from tests.support.config_files import write
from tests.support.configs import ONE_SOURCE_CONFIG

KEY_HASH = hashlib.sha256(b"an-admin-key").hexdigest()
SOURCE = ONE_SOURCE_CONFIG
SERVER = """
[server]
listen = "127.0.0.1:8080"
metrics_listen = "127.0.0.1:9108"

[signing]
listen = "127.0.0.1:8081"
"""


def load(folder: Path, admin: str) -> Settings:
    return config.load(write(folder, SERVER + admin + SOURCE))


def problems(folder: Path, admin: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(folder, admin)
    return refused.value.problems


def test_the_console_is_off_unless_configured(tmp_path: Path) -> None:
    assert load(tmp_path, "").admin is None


def test_listen_and_key_hashes(tmp_path: Path) -> None:
    admin = load(tmp_path, f'[admin]\nlisten = "127.0.0.1:9102"\napi_key_sha256 = ["{KEY_HASH}"]\n')
    settings = admin.admin
    assert settings is not None
    assert settings.listen == Address("127.0.0.1", 9102)
    assert settings.api_key_sha256 == (bytes.fromhex(KEY_HASH),)
    assert KEY_HASH not in repr(settings)


def test_listen_defaults_to_loopback(tmp_path: Path) -> None:
    settings = load(tmp_path, f'[admin]\napi_key_sha256 = ["{KEY_HASH.upper()}"]\n').admin
    assert settings is not None and settings.listen == Address("127.0.0.1", 9102)


@pytest.mark.parametrize(
    ("listen", "other"),
    [
        ("127.0.0.1:8080", "[server] listen"),
        ("0.0.0.0:8080", "[server] listen"),
        ("127.0.0.1:9108", "[server] metrics_listen"),
        ("127.0.0.1:8081", "[signing] listen"),
    ],
)
def test_never_on_another_listener(tmp_path: Path, listen: str, other: str) -> None:
    found = problems(tmp_path, f'[admin]\nlisten = "{listen}"\napi_key_sha256 = ["{KEY_HASH}"]\n')
    assert found == [f"{tmp_path / 'sidecar.toml'}: admin.listen: must differ from {other} "
                     f"({Address('127.0.0.1', int(listen.rpartition(':')[2]))})"]  # fmt: skip


def test_never_on_the_verify_listener_when_metrics_share_it(tmp_path: Path) -> None:
    text = (f'[server]\nlisten = "127.0.0.1:8080"\n[admin]\nlisten = "127.0.0.1:8080"\n'
            f'api_key_sha256 = ["{KEY_HASH}"]\n{SOURCE}')  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        config.load(write(tmp_path, text))
    assert len(refused.value.problems) == 1
    assert "admin.listen: must differ from [server] listen" in refused.value.problems[0]


@pytest.mark.parametrize(
    "keys",
    ["[]", '["abc"]', f'["{KEY_HASH}", "not-hex"]', f'"{KEY_HASH}"', f'["{KEY_HASH}0"]'],
)
def test_key_hashes_must_be_hex_sha256_digests(tmp_path: Path, keys: str) -> None:
    found = problems(tmp_path, f"[admin]\napi_key_sha256 = {keys}\n")
    assert any("admin.api_key_sha256" in problem for problem in found), found
    assert all("an-admin-key" not in problem for problem in found)


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    found = problems(tmp_path, '[admin]\nlisten = "nowhere"\nport = 1\n')
    assert [problem.partition(": ")[2] for problem in found] == [
        "admin: unknown field 'port'",
        "admin.listen: 'nowhere' is not host:port",
        "admin.api_key_sha256: is required",
        "admin.api_key_sha256: must be a non-empty list of hex SHA-256 digests"
        " (sidecar token api-key)",
    ]


def test_hosts_the_console_also_answers(tmp_path: Path) -> None:
    admin = load(tmp_path, f'[admin]\napi_key_sha256 = ["{KEY_HASH}"]\n'
                           'hosts = ["Console.Example.com", "[2001:DB8::1]"]\n')  # fmt: skip
    assert admin.admin is not None
    assert admin.admin.hosts == frozenset({"console.example.com", "2001:db8::1"})


@pytest.mark.parametrize("hosts", ['["console.example.com:443"]', '["bad host"]', "[1]", '"x"'])
def test_hosts_are_names_without_a_port(tmp_path: Path, hosts: str) -> None:
    found = problems(tmp_path, f'[admin]\napi_key_sha256 = ["{KEY_HASH}"]\nhosts = {hosts}\n')
    assert any("admin.hosts: " in problem for problem in found), found
