"""The ``sidecar`` console script, run as the real installed program."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import sidecar
from sidecar import build
from tests.conftest import md5_source, sidecar_config, source_toml

REFERENCE = "/books/database-internals.jpg?w=400&h=600&fit=crop"
REFERENCE_SIGNATURE = "7d0d58f62c945d0ca08269205228bbe7"
TOKEN = "wakanda123@"
SKEW = 30

CONFIG = sidecar_config(
    source_toml(
        "books",
        "md5-token",
        "/books/",
        {"2026-11": {"secret_file": "books-token"}, "2026-05": {"secret": "the-old-token"}},
    ),
    md5_source("public", "/public/", mode="off"),
    server={"listen": "127.0.0.1:18080", "clock_skew": SKEW},
)

BROKEN = """
[server]
workers = "2"

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
colour = "red"

[[sources]]
name = "other"
scheme = "nope"
path_prefix = "/other/"
"""


def _sidecar() -> str:
    found = Path(sys.executable).parent / "sidecar"
    return str(found) if found.exists() else (shutil.which("sidecar") or "sidecar")


SIDECAR = _sidecar()


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIDECAR, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **env} if env else None,
    )


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "books-token").write_text(TOKEN + "\n", encoding="utf-8")
    path = folder / "sidecar.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def verify(config_file: str, *args: str, stdin: str = "") -> list[dict[str, Any]]:
    result = run("verify", "-c", config_file, *args, stdin=stdin)
    lines = json_lines(result.stdout)
    # The exit code says whether anything was denied: 0 all allowed, 1 any denied.
    denied = any(line["status"] != 200 for line in lines)
    assert result.returncode == (1 if denied else 0), result.stderr
    return lines


def sign(config_file: str, url: str, *args: str) -> str:
    result = run("sign", "-c", config_file, "--source", "books", *args, url)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- sign -------------------------------------------------------------------------------


def test_sign_reference_value(config_file: str) -> None:
    assert sign(config_file, REFERENCE) == f"{REFERENCE}&s={REFERENCE_SIGNATURE}"


def test_sign_absolute_url_keeps_origin(config_file: str) -> None:
    signed = sign(config_file, "https://img.example.com" + REFERENCE)
    assert signed == f"https://img.example.com{REFERENCE}&s={REFERENCE_SIGNATURE}"


def test_sign_expires_in(config_file: str) -> None:
    before = int(time.time())
    signed = sign(config_file, "/books/a.jpg", "--expires-in", "600")
    after = int(time.time())
    match = re.fullmatch(r"/books/a\.jpg\?expires=(\d+)&s=([0-9a-f]{32})", signed)
    assert match is not None, signed
    assert before + 600 <= int(match.group(1)) <= after + 600
    unsigned = f"/books/a.jpg?expires={match.group(1)}"
    assert match.group(2) == hashlib.md5((unsigned + TOKEN).encode()).hexdigest()


def test_sign_unknown_source(config_file: str) -> None:
    result = run("sign", "-c", config_file, "--source", "nope", "/books/a.jpg")
    assert result.returncode != 0
    assert "nope" in result.stderr
    assert result.stdout == ""


def test_sign_non_canonical_url(config_file: str) -> None:
    result = run("sign", "-c", config_file, "--source", "books", "/books/../etc/passwd")
    assert result.returncode != 0
    assert "canonical" in result.stderr
    assert result.stdout == ""


def test_sign_with_keyless_source(config_file: str) -> None:
    result = run("sign", "-c", config_file, "--source", "public", "/public/a.jpg")
    assert result.returncode != 0
    assert "public" in result.stderr


# --- verify -----------------------------------------------------------------------------


def test_verify_urls_as_arguments(config_file: str) -> None:
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    lines = verify(config_file, signed, signed.replace("w=400", "w=401"), "/videos/a.mp4")
    assert [(x["url"], x["source"], x["result"], x["status"]) for x in lines] == [
        (signed, "books", "ok", 200),
        (signed.replace("w=400", "w=401"), "books", "invalid", 401),
        ("/videos/a.mp4", lines[2]["source"], "no_source", 403),
    ]
    assert lines[0]["key"] == "2026-11"


def test_verify_urls_on_stdin(config_file: str) -> None:
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    stdin = f"{signed}\n\n/books/a.jpg\nhttps://img.example.com{signed}\n/public/x.png\n"
    lines = verify(config_file, stdin=stdin)
    assert [(x["result"], x["status"]) for x in lines] == [
        ("ok", 200),
        ("missing", 401),
        ("ok", 200),
        ("unsigned_allowed", 200),
    ]
    assert lines[2]["url"] == f"https://img.example.com{signed}"


def test_verify_at_unix_seconds_and_iso(config_file: str) -> None:
    signed = sign(config_file, "/books/a.jpg?w=1", "--expires-in", "3600")
    found = re.search(r"expires=(\d+)", signed)
    assert found is not None, signed
    expires = int(found.group(1))
    earlier = datetime.fromtimestamp(expires - 60, UTC)
    later = datetime.fromtimestamp(expires + SKEW + 60, UTC)
    cases = [
        (str(expires - 1), "ok"),
        (str(expires + SKEW), "expired"),
        (earlier.isoformat(), "ok"),
        (later.isoformat(), "expired"),
        (earlier.strftime("%Y-%m-%dT%H:%M:%SZ"), "ok"),
        (later.strftime("%Y-%m-%dT%H:%M:%SZ"), "expired"),
    ]
    for at, expected in cases:
        [line] = verify(config_file, "--at", at, signed)
        assert line["result"] == expected, at
        assert line["status"] == (200 if expected == "ok" else 401)


@pytest.mark.parametrize("at", ["yesterday", "\u00b2", "\u0661\u0662", "-5", "1.5e9"])
def test_verify_at_rejects_nonsense(config_file: str, at: str) -> None:
    result = run("verify", "-c", config_file, "--at", at, "/books/a.jpg")
    assert result.returncode == 2  # a usage error, not a decision
    assert "--at" in result.stderr
    assert result.stdout == ""


def test_verify_at_is_utc_unless_it_carries_an_offset(config_file: str) -> None:
    # The same audit gives the same answer on any machine, whatever its TZ.
    signed = sign(config_file, "/books/a.jpg", "--expires-in", "60")
    expires = int(signed.partition("expires=")[2].partition("&")[0])
    inside = datetime.fromtimestamp(expires + SKEW - 1, UTC)  # the last second it holds
    after = datetime.fromtimestamp(expires + SKEW, UTC)
    spellings = {
        inside.replace(tzinfo=None).isoformat(): 0,  # no offset: UTC
        after.replace(tzinfo=None).isoformat(): 1,
        inside.astimezone(timezone(timedelta(hours=-5))).isoformat(): 0,  # its own offset
        after.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(): 1,
    }
    for tz in ("UTC", "America/New_York", "Asia/Kolkata"):
        for at, code in spellings.items():
            result = run("verify", "-c", config_file, "--at", at, signed, env={"TZ": tz})
            assert result.returncode == code, (tz, at, result.stdout)


def test_verify_exit_codes(config_file: str) -> None:
    signed = sign(config_file, "/books/a.jpg")
    assert run("verify", "-c", config_file, signed).returncode == 0
    assert run("verify", "-c", config_file, signed, "/books/b.jpg").returncode == 1
    assert run("verify", "-c", config_file, "--method").returncode == 2


def test_version(config_file: str) -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sidecar {sidecar.__version__} ({build.KIND})"


def test_verify_client_ip(config_file: str) -> None:
    # md5-token does not bind the client address: the answer is the same from anywhere.
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    for ip in ("203.0.113.9", "2001:db8::1"):
        [line] = verify(config_file, "--client-ip", ip, signed)
        assert (line["result"], line["status"]) == ("ok", 200)


def test_verify_method_post(config_file: str) -> None:
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    [line] = verify(config_file, "--method", "POST", signed)
    assert (line["result"], line["status"]) == ("method", 401)
    [line] = verify(config_file, "--method", "HEAD", signed)
    assert (line["result"], line["status"]) == ("ok", 200)


def test_verify_non_canonical(config_file: str) -> None:
    [line] = verify(config_file, "/public/../books/a.jpg")
    assert (line["result"], line["status"]) == ("non_canonical", 403)


# --- check-config -----------------------------------------------------------------------


def test_check_config_good(config_file: str) -> None:
    result = run("check-config", "-c", config_file)
    assert result.returncode == 0, result.stderr
    assert "books" in result.stdout
    assert "public" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_check_config_broken_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    result = run("check-config", "-c", str(path))
    assert result.returncode != 0
    for expected in ("server.workers", "colour", "'books'.keys", "nope"):
        assert expected in result.stderr, expected
    problems = [line for line in result.stderr.splitlines() if str(path) in line]
    assert len(problems) >= 4


def test_check_config_missing_file(tmp_path: Path) -> None:
    result = run("check-config", "-c", str(tmp_path / "absent.toml"))
    assert result.returncode != 0
    assert "absent.toml" in result.stderr


# --- token ------------------------------------------------------------------------------


def test_token_new_is_strong_and_fresh() -> None:
    first, second = run("token", "new"), run("token", "new")
    assert first.returncode == second.returncode == 0
    token = first.stdout.strip()
    # 32 random bytes, URL-safe base64: at least 256 bits, safe in a TOML string.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token), token
    assert token != second.stdout.strip()


def test_token_new_out_writes_private_file(tmp_path: Path) -> None:
    out = tmp_path / "token"
    result = run("token", "new", "--out", str(out))
    assert result.returncode == 0, result.stderr
    token = out.read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert token not in result.stdout  # written to the file, not echoed


def test_token_new_out_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "token"
    out.write_text("keep me\n", encoding="utf-8")
    result = run("token", "new", "--out", str(out))
    assert result.returncode != 0
    assert out.read_text(encoding="utf-8") == "keep me\n"


def test_token_show_refuses_without_terminal(config_file: str) -> None:
    result = run("token", "show", "-c", config_file, "--source", "books")
    assert result.returncode != 0
    assert TOKEN not in result.stdout + result.stderr
    assert "--force" in result.stderr


def test_token_show_force(config_file: str) -> None:
    result = run("token", "show", "-c", config_file, "--source", "books", "--force")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"2026-11\t{TOKEN}", "2026-05\tthe-old-token"]


def test_token_show_unknown_source(config_file: str) -> None:
    result = run("token", "show", "-c", config_file, "--source", "nope", "--force")
    assert result.returncode != 0
    assert "nope" in result.stderr


def test_token_api_key_hash_matches() -> None:
    result = run("token", "api-key")
    assert result.returncode == 0, result.stderr
    key = re.search(r"api key[^:]*:\s*(\S+)", result.stdout)
    digest = re.search(r"api_key_sha256[^:]*:\s*([0-9a-f]{64})", result.stdout)
    assert key is not None, result.stdout
    assert digest is not None, result.stdout
    assert len(key.group(1)) >= 43
    assert hashlib.sha256(key.group(1).encode()).hexdigest() == digest.group(1)


def test_verify_survives_bytes_that_are_not_utf8(config_file: str) -> None:
    # Hostile input on stdin is decided (denied), never a crash.
    result = subprocess.run(
        [SIDECAR, "verify", "-c", config_file],
        input=b"/books/a\xff.jpg?s=1\n/books/\x01.jpg\n/books/database-internals.jpg\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # decided: every line denied
    lines = json_lines(result.stdout.decode())
    assert [line["result"] for line in lines] == ["non_canonical", "non_canonical", "missing"]
    assert all(line["status"] in (401, 403) for line in lines)


def test_token_new_bootstraps_the_key_the_config_already_names(tmp_path: Path) -> None:
    # The config names acme.pem before it exists: the config cannot load yet, and the key
    # is exactly what token new is asked to make.
    source = source_toml(
        "acme",
        "cloudfront",
        "/acme/",
        {"K1": {"public_key_file": "acme.pem.pub.pem", "private_key_file": "acme.pem"}},
        public_origin="https://cdn.example.com",
    )
    path = tmp_path / "sidecar.toml"
    path.write_text(sidecar_config(source))
    result = run("check-config", "-c", str(path))
    assert result.returncode == 2  # the key files are missing
    made = run("token", "new", "-c", str(path), "--source", "acme", "--out",
               str(tmp_path / "acme.pem"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "acme.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert run("check-config", "-c", str(path)).returncode == 0  # now it loads


def test_token_new_key_type_ecdsa_writes_a_key_pair(tmp_path: Path) -> None:
    made = run("token", "new", "--key-type", "ecdsa", "--out", str(tmp_path / "x.pem"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "x.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "x.pem.pub.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
