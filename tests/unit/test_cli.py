"""The ``sidecar`` command line, run in this process (``cli.main``, its output captured),
and as the real installed program where the process itself is the point: the console
script and ``python -m sidecar`` start, and exit codes reach the shell."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import sidecar
from sidecar import build
from sidecar.cli import main
from sidecar.errors import SidecarError, UsageError
from tests.support.configs import md5_source, sidecar_config, source_toml

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


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Ran]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``sidecar ARGS`` in this process: exit status, stdout and stderr."""

    def run(*args: str, stdin: str | bytes = b"") -> Ran:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        try:
            code = main(list(args))
        except SystemExit as exited:  # argparse: --version, --help, what it refuses
            code = exit_status(exited)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def exit_status(exited: SystemExit) -> int:
    """The status a process would exit with (as the interpreter maps ``SystemExit``)."""
    if exited.code is None or isinstance(exited.code, int):
        return exited.code or 0
    return 1  # a message: printed, and status 1


def _sidecar() -> str:
    found = Path(sys.executable).parent / "sidecar"
    return str(found) if found.exists() else (shutil.which("sidecar") or "sidecar")


SIDECAR = _sidecar()


def run_process(*command: str, stdin: str | bytes = "", cwd: Path | None = None) -> Ran:
    """A real process (the installed program, or ``python -m``): what the shell sees."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(command, input=data, capture_output=True, timeout=30, check=False,
                            cwd=cwd)  # fmt: skip
    return Ran(result.returncode, result.stdout.decode(), result.stderr.decode())


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "books-token").write_text(TOKEN + "\n", encoding="utf-8")
    path = folder / "sidecar.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def verify(cli: Cli, config_file: str, *args: str, stdin: str = "") -> list[dict[str, Any]]:
    result = cli("verify", "-c", config_file, *args, stdin=stdin)
    lines = json_lines(result.stdout)
    # The exit code says whether anything was denied: 0 all allowed, 1 any denied.
    denied = any(line["status"] != 200 for line in lines)
    assert result.returncode == (1 if denied else 0), result.stderr
    return lines


def sign(cli: Cli, config_file: str, url: str, *args: str) -> str:
    result = cli("sign", "-c", config_file, "--source", "books", *args, url)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- sign -------------------------------------------------------------------------------


def test_sign_reference_value(cli: Cli, config_file: str) -> None:
    assert sign(cli, config_file, REFERENCE) == f"{REFERENCE}&s={REFERENCE_SIGNATURE}"


def test_sign_absolute_url_keeps_origin(cli: Cli, config_file: str) -> None:
    signed = sign(cli, config_file, "https://img.example.com" + REFERENCE)
    assert signed == f"https://img.example.com{REFERENCE}&s={REFERENCE_SIGNATURE}"


def test_sign_expires_in(cli: Cli, config_file: str) -> None:
    before = int(time.time())
    signed = sign(cli, config_file, "/books/a.jpg", "--expires-in", "600")
    after = int(time.time())
    match = re.fullmatch(r"/books/a\.jpg\?expires=(\d+)&s=([0-9a-f]{32})", signed)
    assert match is not None, signed
    assert before + 600 <= int(match.group(1)) <= after + 600
    unsigned = f"/books/a.jpg?expires={match.group(1)}"
    assert match.group(2) == hashlib.md5((unsigned + TOKEN).encode()).hexdigest()


def test_sign_unknown_source(cli: Cli, config_file: str) -> None:
    result = cli("sign", "-c", config_file, "--source", "nope", "/books/a.jpg")
    assert result.returncode == 2  # --source names nothing: a usage error
    assert "nope" in result.stderr
    assert result.stdout == ""


def test_sign_non_canonical_url(cli: Cli, config_file: str) -> None:
    result = cli("sign", "-c", config_file, "--source", "books", "/books/../etc/passwd")
    assert result.returncode == 1  # the command ran, and the URL cannot be signed
    assert "canonical" in result.stderr
    assert result.stdout == ""


def test_sign_with_keyless_source(cli: Cli, config_file: str) -> None:
    result = cli("sign", "-c", config_file, "--source", "public", "/public/a.jpg")
    assert result.returncode == 1
    assert "public" in result.stderr


# --- verify -----------------------------------------------------------------------------


def test_verify_urls_as_arguments(cli: Cli, config_file: str) -> None:
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    lines = verify(cli, config_file, signed, signed.replace("w=400", "w=401"), "/videos/a.mp4")
    assert [(x["url"], x["source"], x["result"], x["status"]) for x in lines] == [
        (signed, "books", "ok", 200),
        (signed.replace("w=400", "w=401"), "books", "invalid", 401),
        ("/videos/a.mp4", lines[2]["source"], "no_source", 403),
    ]
    assert lines[0]["key"] == "2026-11"


def test_verify_urls_on_stdin(cli: Cli, config_file: str) -> None:
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    stdin = f"{signed}\n\n/books/a.jpg\nhttps://img.example.com{signed}\n/public/x.png\n"
    lines = verify(cli, config_file, stdin=stdin)
    assert [(x["result"], x["status"]) for x in lines] == [
        ("ok", 200),
        ("missing", 401),
        ("ok", 200),
        ("unsigned_allowed", 200),
    ]
    assert lines[2]["url"] == f"https://img.example.com{signed}"


def test_verify_at_unix_seconds_and_iso(cli: Cli, config_file: str) -> None:
    signed = sign(cli, config_file, "/books/a.jpg?w=1", "--expires-in", "3600")
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
        [line] = verify(cli, config_file, "--at", at, signed)
        assert line["result"] == expected, at
        assert line["status"] == (200 if expected == "ok" else 401)


@pytest.mark.parametrize("at", ["yesterday", "\u00b2", "\u0661\u0662", "-5", "1.5e9"])
def test_verify_at_rejects_nonsense(cli: Cli, config_file: str, at: str) -> None:
    result = cli("verify", "-c", config_file, "--at", at, "/books/a.jpg")
    assert result.returncode == 2  # a usage error, not a decision
    assert result.stderr.startswith("sidecar: error: --at")
    assert result.stdout == ""


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set this process's time zone (``TZ``), as a shell's would be; restored after."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_verify_at_is_utc_unless_it_carries_an_offset(
    cli: Cli, config_file: str, local_zone: Callable[[str], None]
) -> None:
    # The same audit gives the same answer on any machine, whatever its TZ.
    signed = sign(cli, config_file, "/books/a.jpg", "--expires-in", "60")
    expires = int(signed.partition("expires=")[2].partition("&")[0])
    inside = datetime.fromtimestamp(expires + SKEW - 1, UTC)  # the last second it holds
    after = datetime.fromtimestamp(expires + SKEW, UTC)
    spellings = {
        inside.replace(tzinfo=None).isoformat(): 0,  # no offset: UTC
        after.replace(tzinfo=None).isoformat(): 1,
        inside.astimezone(timezone(timedelta(hours=-5))).isoformat(): 0,  # its own offset
        after.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(): 1,
    }
    # POSIX zone rules (no time zone database needed): UTC, UTC-5, UTC+5:30.
    for tz, offset in {"UTC0": 0, "EST5": -5 * 3600, "IST-5:30": 5 * 3600 + 1800}.items():
        local_zone(tz)
        assert time.localtime(0).tm_gmtoff == offset, tz  # the zone is in force
        for at, code in spellings.items():
            result = cli("verify", "-c", config_file, "--at", at, signed)
            assert result.returncode == code, (tz, at, result.stdout)


def test_verify_exit_codes(cli: Cli, config_file: str) -> None:
    signed = sign(cli, config_file, "/books/a.jpg")
    assert cli("verify", "-c", config_file, signed).returncode == 0
    assert cli("verify", "-c", config_file, signed, "/books/b.jpg").returncode == 1
    assert cli("verify", "-c", config_file, "--method").returncode == 2


VERSION_LINE = f"sidecar {sidecar.__version__} ({build.KIND})\n"


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout == VERSION_LINE


def test_verify_client_ip(cli: Cli, config_file: str) -> None:
    # md5-token does not bind the client address: the answer is the same from anywhere.
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    for ip in ("203.0.113.9", "2001:db8::1"):
        [line] = verify(cli, config_file, "--client-ip", ip, signed)
        assert (line["result"], line["status"]) == ("ok", 200)


def test_verify_method_post(cli: Cli, config_file: str) -> None:
    signed = f"{REFERENCE}&s={REFERENCE_SIGNATURE}"
    [line] = verify(cli, config_file, "--method", "POST", signed)
    assert (line["result"], line["status"]) == ("method", 401)
    [line] = verify(cli, config_file, "--method", "HEAD", signed)
    assert (line["result"], line["status"]) == ("ok", 200)


def test_verify_non_canonical(cli: Cli, config_file: str) -> None:
    [line] = verify(cli, config_file, "/public/../books/a.jpg")
    assert (line["result"], line["status"]) == ("non_canonical", 403)


# --- check-config -----------------------------------------------------------------------


def test_check_config_good(cli: Cli, config_file: str) -> None:
    result = cli("check-config", "-c", config_file)
    assert result.returncode == 0, result.stderr
    assert "books" in result.stdout
    assert "public" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_check_config_broken_lists_every_problem(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    result = cli("check-config", "-c", str(path))
    assert result.returncode == 2  # as its help says: exit 2 on any problem
    for expected in ("server.workers", "colour", "'books'.keys", "nope"):
        assert expected in result.stderr, expected
    problems = [line for line in result.stderr.splitlines() if str(path) in line]
    assert len(problems) >= 4


def test_check_config_missing_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("check-config", "-c", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "absent.toml" in result.stderr


# --- token ------------------------------------------------------------------------------


def test_token_new_is_strong_and_fresh(cli: Cli) -> None:
    first, second = cli("token", "new"), cli("token", "new")
    assert first.returncode == second.returncode == 0
    token = first.stdout.strip()
    # 32 random bytes, URL-safe base64: at least 256 bits, safe in a TOML string.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token), token
    assert token != second.stdout.strip()


def test_token_new_out_writes_private_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "token"
    result = cli("token", "new", "--out", str(out))
    assert result.returncode == 0, result.stderr
    token = out.read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert token not in result.stdout  # written to the file, not echoed


def test_token_new_out_never_overwrites(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "token"
    out.write_text("keep me\n", encoding="utf-8")
    result = cli("token", "new", "--out", str(out))
    assert result.returncode == 2
    assert result.stderr == f"sidecar: error: --out: {out} exists: refusing to overwrite a secret\n"
    assert out.read_text(encoding="utf-8") == "keep me\n"


def test_token_show_refuses_without_terminal(cli: Cli, config_file: str) -> None:
    result = cli("token", "show", "-c", config_file, "--source", "books")
    assert result.returncode == 1  # refused to run as asked, not a usage error
    assert TOKEN not in result.stdout + result.stderr
    assert "--force" in result.stderr


def test_token_show_force(cli: Cli, config_file: str) -> None:
    result = cli("token", "show", "-c", config_file, "--source", "books", "--force")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"2026-11\t{TOKEN}", "2026-05\tthe-old-token"]


def test_token_show_unknown_source(cli: Cli, config_file: str) -> None:
    result = cli("token", "show", "-c", config_file, "--source", "nope", "--force")
    assert result.returncode == 2
    assert "nope" in result.stderr


def test_token_api_key_hash_matches(cli: Cli) -> None:
    result = cli("token", "api-key")
    assert result.returncode == 0, result.stderr
    key = re.search(r"api key[^:]*:\s*(\S+)", result.stdout)
    digest = re.search(r"api_key_sha256[^:]*:\s*([0-9a-f]{64})", result.stdout)
    assert key is not None, result.stdout
    assert digest is not None, result.stdout
    assert len(key.group(1)) >= 43
    assert hashlib.sha256(key.group(1).encode()).hexdigest() == digest.group(1)


def test_verify_survives_bytes_that_are_not_utf8(cli: Cli, config_file: str) -> None:
    # Hostile input on stdin is decided (denied), never a crash.
    stdin = b"/books/a\xff.jpg?s=1\n/books/\x01.jpg\n/books/database-internals.jpg\n"
    result = cli("verify", "-c", config_file, stdin=stdin)
    assert result.returncode == 1, result.stderr  # decided: every line denied
    lines = json_lines(result.stdout)
    assert [line["result"] for line in lines] == ["non_canonical", "non_canonical", "missing"]
    assert all(line["status"] in (401, 403) for line in lines)


def test_token_new_bootstraps_the_key_the_config_already_names(cli: Cli, tmp_path: Path) -> None:
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
    result = cli("check-config", "-c", str(path))
    assert result.returncode == 2  # the key files are missing
    made = cli("token", "new", "-c", str(path), "--source", "acme", "--out",
               str(tmp_path / "acme.pem"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "acme.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert cli("check-config", "-c", str(path)).returncode == 0  # now it loads


def acme_naming(folder: Path, public: str, private: str | None) -> Path:
    """A config whose cloudfront source names key files that do not exist yet."""
    files = {"public_key_file": public} | ({"private_key_file": private} if private else {})
    source = source_toml("acme", "cloudfront", "/acme/", {"K1": files},
                         public_origin="https://cdn.example.com")  # fmt: skip
    path = folder / "sidecar.toml"
    path.write_text(sidecar_config(source))
    return path


@pytest.mark.parametrize("out", [None, "keys/acme-private.pem"], ids=["named", "out"])
def test_token_new_writes_the_key_files_the_config_names(
    cli: Cli, tmp_path: Path, out: str | None
) -> None:
    (tmp_path / "keys").mkdir()
    path = acme_naming(tmp_path, "keys/acme-public.pem", "keys/acme-private.pem")
    given = ["--out", str(tmp_path / out)] if out else []
    made = cli("token", "new", "-c", str(path), "--source", "acme", *given)
    assert made.returncode == 0, made.stderr
    private, public = tmp_path / "keys/acme-private.pem", tmp_path / "keys/acme-public.pem"
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [private.name, public.name]
    assert cli("check-config", "-c", str(path)).returncode == 0  # the pair the config names


def test_token_new_puts_a_verify_only_keys_public_half_where_the_config_names_it(
    cli: Cli, tmp_path: Path
) -> None:
    # The config names only the public key (the signer keeps the private one elsewhere).
    path = acme_naming(tmp_path, "acme-public.pem", None)
    refused = cli("token", "new", "-c", str(path), "--source", "acme")
    assert refused.returncode == 2 and "--out" in refused.stderr
    made = cli("token", "new", "-c", str(path), "--source", "acme",
               "--out", str(tmp_path / "signer.pem"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "acme-public.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert not (tmp_path / "signer.pem.pub.pem").exists()
    assert cli("check-config", "-c", str(path)).returncode == 0


UNUSABLE = {  # what is wrong with the named files -> what the refusal names
    "no such folder": ("nowhere/acme-public.pem", "nowhere/acme-private.pem", "no folder"),
    "public exists": ("acme-public.pem", "acme-private.pem", "exists"),
    "one file for both": ("acme.pem", "acme.pem", "the same file"),
}


@pytest.mark.parametrize(("public", "private", "named"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_token_new_refuses_unusable_named_files_and_writes_nothing(
    cli: Cli, tmp_path: Path, public: str, private: str, named: str
) -> None:
    path = acme_naming(tmp_path, public, private)
    if named == "exists":
        (tmp_path / public).write_text("keep me\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    refused = cli("token", "new", "-c", str(path), "--source", "acme")
    assert refused.returncode == 2, refused
    assert named in refused.stderr and refused.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    if named == "exists":
        assert (tmp_path / public).read_text() == "keep me\n"


def test_token_new_finds_a_source_in_an_included_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "sources.d").mkdir()
    acme_naming(tmp_path / "sources.d", "acme-public.pem", "acme-private.pem").rename(
        tmp_path / "sources.d" / "acme.toml"
    )
    path = tmp_path / "sidecar.toml"
    path.write_text('include = ["sources.d/*.toml"]\n')
    made = cli("token", "new", "-c", str(path), "--source", "acme")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "sources.d" / "acme-public.pem").exists()
    assert cli("check-config", "-c", str(path)).returncode == 0


def test_token_new_key_type_ecdsa_writes_a_key_pair(cli: Cli, tmp_path: Path) -> None:
    made = cli("token", "new", "--key-type", "ecdsa", "--out", str(tmp_path / "x.pem"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "x.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "x.pem.pub.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


# --- usage errors -----------------------------------------------------------------------

USAGE_ERRORS = {  # the command line (CONFIG: the config file) -> what the message names
    "workers below 1": ("serve -c CONFIG --workers 0", "--workers"),
    "workers above 64": ("serve -c CONFIG --workers 65", "--workers"),
    "at, not a time": ("verify -c CONFIG --at noon /books/a.jpg", "--at"),
    "sign, no such source": ("sign -c CONFIG --source nope /books/a.jpg", "nope"),
    "key pair without out": ("token new --key-type rsa", "--out"),
    "source without config": ("token new --source books", "-c FILE"),
    "key type the source cannot use": (
        "token new -c CONFIG --source books --key-type rsa",
        "--key-type",
    ),
    "new, no such source": ("token new -c CONFIG --source nope", "nope"),
    "out exists": ("token new --out CONFIG", "refusing to overwrite"),
    "show, no such source": ("token show -c CONFIG --source nope --force", "nope"),
    "show, no tokens": ("token show -c CONFIG --source public --force", "no shared-secret"),
}


@pytest.mark.parametrize(("line", "named"), USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_errors_exit_2_with_one_line_in_argparse_shape(
    cli: Cli, config_file: str, line: str, named: str
) -> None:
    before = Path(config_file).read_bytes()
    result = cli(*(config_file if arg == "CONFIG" else arg for arg in line.split()))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("sidecar: error: ") and result.stderr.count("\n") == 1
    assert named in result.stderr
    assert result.stdout == ""
    assert Path(config_file).read_bytes() == before  # nothing written
    assert issubclass(UsageError, SidecarError)  # one exception tree


def test_config_problems_of_token_new_exit_2_as_check_config_does(cli: Cli, tmp_path: Path) -> None:
    absent = cli("token", "new", "-c", str(tmp_path / "absent.toml"), "--source", "x")
    assert absent.returncode == 2
    assert "absent.toml: cannot read the config" in absent.stderr
    path = tmp_path / "sidecar.toml"
    path.write_text(source_toml("odd", "no-such-scheme", "/odd/"))
    unknown = cli("token", "new", "-c", str(path), "--source", "odd")
    assert unknown.returncode == 2
    assert "source 'odd' names no known scheme" in unknown.stderr
    assert (absent.stdout, unknown.stdout) == ("", "")


# --- the real program -------------------------------------------------------------------


def test_the_console_script_runs_and_its_exit_codes_reach_the_shell(
    cli: Cli, config_file: str
) -> None:
    signed = sign(cli, config_file, "/books/a.jpg")
    version = run_process(SIDECAR, "--version")
    assert (version.returncode, version.stdout) == (0, VERSION_LINE), version.stderr
    allowed = run_process(SIDECAR, "verify", "-c", config_file, signed)
    assert (allowed.returncode, json_lines(allowed.stdout)[0]["result"]) == (0, "ok")
    denied = run_process(SIDECAR, "verify", "-c", config_file, stdin=f"{signed}\n/books/b.jpg\n")
    assert [line["result"] for line in json_lines(denied.stdout)] == ["ok", "missing"]
    assert denied.returncode == 1
    usage = run_process(SIDECAR, "verify", "-c", config_file, "--at", "noon", signed)
    assert (usage.returncode, usage.stdout) == (2, "")
    assert usage.stderr == "sidecar: error: --at: 'noon' is neither unix seconds nor ISO 8601\n"
    refused = run_process(SIDECAR, "verify", "-c", config_file, "--method")  # by argparse
    assert refused.returncode == 2 and "expected one argument" in refused.stderr


def test_python_dash_m_sidecar_runs(config_file: str, tmp_path: Path) -> None:
    # From a folder of its own: the working folder is first on ``python -m``'s path.
    module = (sys.executable, "-m", "sidecar")
    result = run_process(*module, "--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, VERSION_LINE), result.stderr
    usage = run_process(*module, "serve", "-c", config_file, "--workers", "0", cwd=tmp_path)
    assert (usage.returncode, usage.stderr) == (
        2, "sidecar: error: --workers must be between 1 and 64\n")  # fmt: skip


@pytest.mark.parametrize(
    ("url", "sidecar", "named"),
    [("ftp://image.example.com/a.png", "http://127.0.0.1:9", "--url"),
     ("http://image.example.com/a.png", "127.0.0.1:9", "--sidecar")],
)  # fmt: skip
def test_doctor_refuses_a_url_that_is_not_http_as_a_usage_error(
    cli: Cli, url: str, sidecar: str, named: str
) -> None:
    result = cli("doctor", "--url", url, "--sidecar", sidecar)
    expected = f"sidecar: error: {named} must be an http:// or https:// URL\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)
