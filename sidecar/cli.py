"""Command line: serve, check-config, sign, verify, token, demo."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

import orjson

from sidecar import __version__, config, schemes
from sidecar.core.urls import parse_url
from sidecar.errors import ConfigError, SidecarError, UrlError
from sidecar.policy.decide import NO_SOURCE, Decider, RequestFacts
from sidecar.policy.proxies import HOST_TRUST_NOTES
from sidecar.policy.settings import Settings, SourceSettings
from sidecar.policy.signing import sign
from sidecar.runtime.logs import DEFAULT_LEVEL, LEVELS, JsonLog
from sidecar.schemes.base import Grant, Scheme

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
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
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
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
    demo = _command(
        commands,
        "demo",
        "nginx + sidecar + sample images on localhost",
        "sidecar demo",
        "sidecar demo --keep",
    )
    demo.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    demo.set_defaults(run=_demo)
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
    serve.set_defaults(run=_serve)


def _check_config_command(commands: Commands) -> None:
    check = _with_config(
        _command(
            commands,
            "check-config",
            "list every config problem (exit 2 on any)",
            "sidecar check-config -c sidecar.toml",
        )
    )
    check.set_defaults(run=_check_config)


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
    sign.set_defaults(run=_sign)


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
    verify.add_argument("urls", nargs="*", help="URLs (default: one per line on stdin)")
    verify.set_defaults(run=_verify)


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
        "--out", metavar="FILE", help="write to this file (mode 0600) instead of stdout"
    )
    new.set_defaults(run=_token_new)
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
    show.set_defaults(run=_token_show)
    api_key = _command(
        token_commands, "api-key", "a new API key and its config hash", "sidecar token api-key"
    )
    api_key.set_defaults(run=_token_api_key)


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
    doctor.set_defaults(run=_doctor)


def _serve(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if args.workers is not None:
        if not 1 <= args.workers <= 64:
            raise SystemExit("--workers must be between 1 and 64")
        settings = replace(settings, server=replace(settings.server, workers=args.workers))
    if settings.server.workers > 1 and not args.worker:
        from sidecar.runtime import workers  # noqa: PLC0415

        # Before prometheus_client is imported (below): the supervisor's own counter
        # (worker restarts) then lands in the folder every worker's /metrics sums.
        workers.prepare_metrics_folder()
    from sidecar.runtime import server  # noqa: PLC0415  (uvloop/aiohttp only when serving)

    server.run(settings, JsonLog(level=args.log_level), worker=args.worker)
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    print(f"{args.config}: ok, {len(settings.sources)} source(s)")
    for source in settings.sources:
        keys = ", ".join(source.verifier.key_ids) if source.verifier else "none"
        print(
            f"  {source.name}: {source.scheme} {source.path_prefix} mode={source.mode} keys={keys}"
        )
    for warning in settings.warnings:
        print(f"warning: {warning}")
    note = HOST_TRUST_NOTES.get(settings.server.proxy)
    if note and any(source.hosts is not None for source in settings.sources):
        print(f"note: proxy = '{settings.server.proxy}': {note}")
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    grant = Grant(None, args.not_before, args.client_ip, args.resource, args.prefix,
                  cookies=args.cookies)  # fmt: skip
    settings = config.load(args.config)
    signed = sign(settings, args.source, args.url, grant, now=time.time(),
                  expires_in=args.expires_in)  # fmt: skip
    print(signed.url)
    source = settings.source(args.source)
    lifetime = args.expires_in or (source.default_ttl or source.max_ttl if source else None)
    if source and source.verifier and not source.verifier.expiry_required and not lifetime:
        print("warning: this URL never expires: anyone holding it can use it until the key "
              "is rotated (give --expires-in, or set default_ttl on the source)",
              file=sys.stderr)  # fmt: skip
    for cookie in signed.cookies:  # a cookie grant: what the application sets
        print(f"Set-Cookie: {cookie}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    decider = Decider(config.load(args.config))
    now = _instant(args.at)
    # Bytes that are not UTF-8 are kept (as surrogates) and decided like nginx would send
    # them: denied as non-canonical, never a crash.
    lines = (raw.decode("utf-8", "surrogateescape").strip() for raw in sys.stdin.buffer)
    urls: Iterable[str] = args.urls or (line for line in lines if line)
    denied = False
    for url in urls:
        host, uri = _host_and_uri(url, args.host)
        decision = decider.decide(RequestFacts(uri, args.method, host, args.client_ip), now)
        denied = denied or decision.status != 200
        line = {
            "url": url.encode("utf-8", "backslashreplace").decode(),
            "source": decision.source.name if decision.source else NO_SOURCE,
            "result": decision.reason.value,
            "decision": decision.outcome.value,
            "status": decision.status,
            "key": decision.key_id,
        }
        sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.flush()
    # Scripts and audits can branch on it: 0 every URL allowed, 1 any denied (2: usage).
    return EXIT_FAILURE if denied else EXIT_OK


def _host_and_uri(url: str, default_host: str | None) -> tuple[str | None, str]:
    try:
        parsed = parse_url(url)
    except UrlError:
        return default_host, url  # decided (and denied) as the raw URI it is
    return (parsed.host if parsed.origin else default_host), parsed.uri


def _instant(text: str | None) -> float:
    """``--at``: unix seconds (ASCII digits), or ISO 8601, read as UTC unless it carries an
    offset, so the answer never depends on the machine's time zone."""
    if text is None:
        return time.time()
    if _UNIX_SECONDS.fullmatch(text):
        return float(text)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        print(f"--at: '{text}' is neither unix seconds nor ISO 8601", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp()


def _source(settings: Settings, name: str) -> SourceSettings:
    source = settings.source(name)
    if source is None:
        known = ", ".join(s.name for s in settings.sources)
        raise SidecarError(f"no source named '{name}' (known: {known})")
    return source


def _token_new(args: argparse.Namespace) -> int:
    scheme, key_type = _key_maker(args)
    key = scheme.new_key(key_type)
    if key.secret is not None:
        return _write_secret(args.out, (key.secret + "\n").encode(), "token")
    if args.out is None:
        raise SystemExit(
            "a key pair needs --out FILE (the private key; FILE.pub.pem gets the public)"
        )
    assert key.private_pem is not None and key.public_pem is not None
    _write_secret(args.out, key.private_pem, "private key")
    Path(args.out + ".pub.pem").write_bytes(key.public_pem)
    print(f"wrote the public key to {args.out}.pub.pem (give it to the sidecar's config)")
    return EXIT_OK


def _key_maker(args: argparse.Namespace) -> tuple[Scheme, str]:
    """The scheme that makes the key, and which kind: the source's scheme when one is
    named, otherwise whichever scheme makes ``--key-type`` (a token by default)."""
    if args.source is not None:
        if args.config is None:
            raise SystemExit("--source needs -c FILE")
        scheme = schemes.get(_declared_scheme(args.config, args.source))
        if scheme is None:
            raise SystemExit(f"source '{args.source}' names no known scheme")
        key_type = args.key_type or scheme.key_types[0]
        if key_type not in scheme.key_types:
            raise SystemExit(f"{scheme.name} keys are {', '.join(scheme.key_types)}")
        return scheme, key_type
    key_type = args.key_type or "token"
    maker = next(s for s in schemes.REGISTRY.values() if key_type in s.key_types)
    return maker, key_type


def _declared_scheme(path: str, source: str) -> str:
    """The scheme a source declares, read from the TOML alone: the key being made may be
    one the config already names (its file does not exist yet), so the config need not
    load as a whole."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SystemExit(f"{path}: cannot read the config ({error})") from None
    for raw in data.get("sources", []):
        if isinstance(raw, dict) and raw.get("name") == source:
            return str(raw.get("scheme", ""))
    raise SystemExit(f"{path}: no source named '{source}'")


def _write_secret(path: str | None, data: bytes, what: str) -> int:
    if path is None:
        sys.stdout.write(data.decode())
        return EXIT_OK
    # O_EXCL: never overwrite an existing secret; 0600 from the first byte written.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SystemExit(f"{path} exists: refusing to overwrite a secret") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    print(f"wrote a new {what} to {path} (mode 0600)")
    return EXIT_OK


def _token_show(args: argparse.Namespace) -> int:
    if not (sys.stdout.isatty() or args.force):
        print("refusing to print a secret to a non-terminal (use --force)", file=sys.stderr)
        return EXIT_FAILURE
    source = _source(config.load(args.config), args.source)
    tokens = source.verifier.shared_secrets() if source.verifier else ()
    if not tokens:
        raise SidecarError(f"source '{source.name}' has no shared-secret tokens")
    for key_id, token in tokens:
        print(f"{key_id}\t{token.decode(errors='replace')}")
    return EXIT_OK


def _token_api_key(args: argparse.Namespace) -> int:
    key = secrets.token_urlsafe(32)
    print(f"api key (give to the caller):  {key}")
    print(f"api_key_sha256 (put in config): {hashlib.sha256(key.encode()).hexdigest()}")
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from sidecar.runtime import doctor  # noqa: PLC0415

    return doctor.run(args.url, args.sidecar, host=args.host, timeout=args.timeout)


def _demo(args: argparse.Namespace) -> int:
    from sidecar.devtools import demo  # noqa: PLC0415

    return demo.run(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
