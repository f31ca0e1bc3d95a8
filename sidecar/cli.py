"""Command line: serve, check-config, sign, verify, token, doctor, demo, revoke: the commands, their
options and help (what each does is in commands.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TypeAlias

from sidecar import __version__, build, schemes
from sidecar import commands as handlers
from sidecar import revocation_commands as revocations
from sidecar.commands import EXIT_FAILURE, EXIT_USAGE
from sidecar.errors import ConfigError, SidecarError, UsageError
from sidecar.runtime.logs import DEFAULT_LEVEL, LEVELS


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: its exit status (0 done; 1 it ran and failed, or denied; 2 a usage
    or configuration error: what argparse refuses exits 2 from ``parse_args``)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as error:  # argparse's shape, for what only the command can check
        print(f"sidecar: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"configuration has {len(error.problems)} problem(s):", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except SidecarError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sidecar",
        description="Verify signed image URLs for nginx auth_request, and sign them.",
        epilog=_examples("sidecar serve -c sidecar.toml", "sidecar serve --help"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__} ({build.KIND})",  # compiled, or pure Python
        help="print the version",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (COMMAND --help for more)",
    )
    _serve_command(commands)
    _check_config_command(commands)
    _sign_command(commands)
    _verify_command(commands)
    _token_command(commands)
    _doctor_command(commands)
    _revocation_commands(commands)
    demo = _command(
        commands,
        "demo",
        "nginx + sidecar + sample images on localhost",
        "sidecar demo",
        "sidecar demo --keep",
    )
    demo.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    demo.set_defaults(run=handlers.run_demo)
    return parser


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _command(
    commands: Commands, name: str, summary: str, *examples: str
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=summary[:1].upper() + summary[1:] + ".",
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _examples(*lines: str) -> str:
    return "examples:\n" + "".join(f"  {line}\n" for line in lines)


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "-c", "--config", required=True, metavar="FILE", help="the sidecar.toml to read"
    )
    return parser


def _serve_command(commands: Commands) -> None:
    serve = _with_config(
        _command(
            commands,
            "serve",
            "run the verify service (and the signing API when configured)",
            "sidecar serve -c /etc/signed-url-sidecar/sidecar.toml",
            "sidecar serve -c sidecar.toml --workers 2 --log-level warning",
        )
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes sharing the ports, 1 to 64 (overrides [server] workers)",
    )
    serve.add_argument(
        "--log-level",
        choices=LEVELS,
        default=DEFAULT_LEVEL,
        help="the least severe JSON log lines written (default: %(default)s): info adds "
        "start, reload and denial lines to warnings and errors",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # supervisor's
    serve.set_defaults(run=handlers.run_serve)


def _check_config_command(commands: Commands) -> None:
    check = _with_config(
        _command(
            commands,
            "check-config",
            "list every config problem (exit 2 on any)",
            "sidecar check-config -c sidecar.toml",
        )
    )
    check.set_defaults(run=handlers.run_check_config)


def _sign_command(commands: Commands) -> None:
    sign = _with_config(
        _command(
            commands,
            "sign",
            "sign a URL with a source's newest key",
            "sidecar sign -c sidecar.toml --source books '/books/a.jpg?w=400'",
            "sidecar sign -c sidecar.toml --source books --expires-in 3600 "
            "https://image.example.com/books/a.jpg",
            "sidecar sign -c sidecar.toml --source acme --cookies --prefix /acme/ "
            "https://cdn.example.com/acme/",
        )
    )
    sign.add_argument("--source", required=True, help="the [[sources]] name whose key signs")
    sign.add_argument(
        "--expires-in",
        type=int,
        metavar="SECONDS",
        help="lifetime of the URL (default: the source's default_ttl, else max_ttl)",
    )
    sign.add_argument(
        "--not-before", type=int, metavar="UNIX", help="grant valid from (schemes that carry it)"
    )
    sign.add_argument(
        "--client-ip", metavar="IP[/BITS]", help="bind the grant to a client address or network"
    )
    sign.add_argument("--resource", help="the resource pattern the grant covers (may hold * and ?)")
    sign.add_argument(
        "--prefix", metavar="PATH", help="grant a whole path prefix (gcdn URLPrefix, akamai ACL)"
    )
    sign.add_argument(
        "--cookies",
        action="store_true",
        help="the grant as signed cookies: prints the URL, then Set-Cookie lines",
    )
    sign.add_argument("url", help="the URL to sign: a path and query, or an absolute URL")
    sign.set_defaults(run=handlers.run_sign)


def _verify_command(commands: Commands) -> None:
    verify = _with_config(
        _command(
            commands,
            "verify",
            "decide URLs as /verify would (exit 0: all allowed, 1: any denied, 2: usage)",
            "sidecar verify -c sidecar.toml 'https://image.example.com/books/a.jpg?s=...'",
            "sidecar verify -c sidecar.toml --at 2027-01-15T07:50:00Z < urls.txt",
        )
    )
    verify.add_argument(
        "--at", help="unix seconds or ISO 8601, UTC unless it has an offset (default: now)"
    )
    verify.add_argument("--client-ip", metavar="IP", help="the client address nginx would send")
    verify.add_argument("--method", default="GET", help="the request method (default: GET)")
    verify.add_argument("--host", help="host for path-only URLs")
    verify.add_argument(
        "--referrer", metavar="URL", help="the page asking (sources with referrers)"
    )
    verify.add_argument(
        "--country", metavar="CC", help="the client's country code (sources with countries)"
    )
    verify.add_argument("urls", nargs="*", help="URLs (default: one per line on stdin)")
    verify.set_defaults(run=handlers.run_verify)


def _revocation_commands(commands: Commands) -> None:
    revoke = _with_config(
        _command(
            commands,
            "revoke",
            "take back a grant, every grant of a key, or every grant under a path prefix",
            "sidecar revoke -c sidecar.toml 'https://image.example.com/books/a.jpg?s=...'",
            "sidecar revoke -c sidecar.toml --cookie 'CloudFront-Policy=...; ...' "
            "https://cdn.example.com/acme/a.jpg",
            "sidecar revoke -c sidecar.toml --source books --key k1",
            "sidecar revoke -c sidecar.toml --source books --prefix /books/leaked/ "
            "--until 2027-01-15T00:00:00Z",
        )
    )
    revoke.add_argument("url", nargs="?", help="a signed URL: revokes the grant it carries")
    revoke.add_argument(
        "--cookie",
        metavar="'NAME=VALUE; ...'",
        help="revoke this cookie grant (with a URL it opens)",
    )
    revoke.add_argument("--client-ip", metavar="IP", help="for a grant bound to a client address")
    revoke.add_argument("--host", help="host for a path-only URL")
    revoke.add_argument("--source", help="the source whose key or prefix is revoked")
    revoke.add_argument("--key", metavar="ID", help="revoke every grant this key signed")
    revoke.add_argument("--prefix", metavar="PATH", help="revoke every grant for paths under it")
    revoke.add_argument(
        "--until",
        help="unix seconds or ISO 8601 (default: a URL's own expiry; a key or prefix: "
        "until sidecar unrevoke)",
    )
    revoke.set_defaults(run=lambda args: revocations.run_revoke(args, handlers.instant))
    listing = _with_config(
        _command(
            commands,
            "revocations",
            "list the revocations in force, one JSON object per line",
            "sidecar revocations -c sidecar.toml",
        )
    )
    listing.add_argument("--all", action="store_true", help="also those that have ended")
    listing.set_defaults(run=revocations.run_revocations)
    unrevoke = _with_config(
        _command(
            commands,
            "unrevoke",
            "remove a revocation by its id",
            "sidecar unrevoke -c sidecar.toml k-3f2a...",
        )
    )
    unrevoke.add_argument("id", help="the id sidecar revocations shows")
    unrevoke.set_defaults(run=revocations.run_unrevoke)


def _token_command(commands: Commands) -> None:
    token = _command(
        commands,
        "token",
        "generate or show tokens and API keys",
        "sidecar token new --help",
        "sidecar token api-key",
    )
    token_commands = token.add_subparsers(
        dest="token_command", required=True, metavar="ACTION", help="what to make or show"
    )
    new = _command(
        token_commands,
        "new",
        "a strong random token, or a key pair",
        "sidecar token new",
        "sidecar token new -c sidecar.toml --source books --out books-token",
        "sidecar token new -c sidecar.toml --source acme",
        "sidecar token new --key-type rsa --out acme.pem",
    )
    new.add_argument("-c", "--config", metavar="FILE", help="with --source: the config")
    new.add_argument("--source", help="make what this source's scheme needs")
    new.add_argument(
        "--key-type",
        choices=sorted({kind for scheme in schemes.REGISTRY.values() for kind in scheme.key_types}),
        help="what to make (default: the source scheme's first kind, else a token)",
    )
    new.add_argument(
        "--out",
        metavar="FILE",
        help="write to this file (mode 0600) instead of stdout; a key pair's private key "
        "(with --source: default, the files the source's key names)",
    )
    new.set_defaults(run=handlers.run_token_new)
    show = _with_config(
        _command(
            token_commands,
            "show",
            "show a source's tokens (only to a terminal)",
            "sidecar token show -c sidecar.toml --source books",
        )
    )
    show.add_argument("--source", required=True, help="the [[sources]] name")
    show.add_argument("--force", action="store_true", help="print even when not on a terminal")
    show.set_defaults(run=handlers.run_token_show)
    api_key = _command(
        token_commands, "api-key", "a new API key and its config hash", "sidecar token api-key"
    )
    api_key.set_defaults(run=handlers.run_token_api_key)


def _doctor_command(commands: Commands) -> None:
    doctor = _command(
        commands,
        "doctor",
        "probe a running sidecar and explain what it sees (proxy profile, headers, routing)",
        "sidecar doctor --url 'http://127.0.0.1/books/a.jpg?s=...' --host image.example.com",
        "sidecar doctor --sidecar http://10.0.0.5:8080 --url https://img.example.com/books/a.jpg",
    )
    doctor.add_argument(
        "--url", required=True, help="an image URL, requested through the proxy in front"
    )
    doctor.add_argument(
        "--sidecar",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="the sidecar's verify listener, asked what it saw (default: %(default)s)",
    )
    doctor.add_argument(
        "--host", help="the Host header to send (default: the URL's), e.g. the server_name"
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="for each request (default: %(default)s)",
    )
    doctor.set_defaults(run=handlers.run_doctor)


if __name__ == "__main__":
    sys.exit(main())
