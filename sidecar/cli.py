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

import orjson

from sidecar import __version__, config, schemes
from sidecar.core.urls import parse_url
from sidecar.errors import ConfigError, SidecarError, UrlError
from sidecar.policy.decide import NO_SOURCE, Decider, RequestFacts
from sidecar.policy.proxies import HOST_TRUST_NOTES
from sidecar.policy.settings import Settings, SourceSettings
from sidecar.policy.signing import sign
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
    parser = argparse.ArgumentParser(prog="sidecar", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = _with_config(commands.add_parser("serve", help="run the verify service"))
    serve.add_argument("--workers", type=int, help="processes (overrides [server] workers)")
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    check = _with_config(commands.add_parser("check-config", help="list every config problem"))
    check.set_defaults(run=_check_config)

    sign = _with_config(commands.add_parser("sign", help="sign a URL with a source's newest key"))
    sign.add_argument("--source", required=True)
    sign.add_argument("--expires-in", type=int, metavar="SECONDS")
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
    sign.add_argument("url")
    sign.set_defaults(run=_sign)

    verify = _with_config(
        commands.add_parser(
            "verify",
            help="decide URLs as /verify would (exit 0: all allowed, 1: any denied, 2: usage)",
        )
    )
    verify.add_argument(
        "--at", help="unix seconds or ISO 8601, UTC unless it has an offset (default: now)"
    )
    verify.add_argument("--client-ip")
    verify.add_argument("--method", default="GET")
    verify.add_argument("--host", help="host for path-only URLs")
    verify.add_argument("urls", nargs="*", help="URLs (default: one per line on stdin)")
    verify.set_defaults(run=_verify)

    token = commands.add_parser("token", help="generate or show tokens and API keys")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    new = token_commands.add_parser("new", help="a strong random token, or a key pair")
    new.add_argument("-c", "--config", metavar="FILE", help="with --source: the config")
    new.add_argument("--source", help="make what this source's scheme needs")
    new.add_argument(
        "--key-type",
        choices=sorted({kind for scheme in schemes.REGISTRY.values() for kind in scheme.key_types}),
        help="what to make (default: the source scheme's first kind, else a token)",
    )
    new.add_argument("--out", help="write to this file (mode 0600) instead of stdout")
    new.set_defaults(run=_token_new)
    show = _with_config(token_commands.add_parser("show", help="show a source's tokens"))
    show.add_argument("--source", required=True)
    show.add_argument("--force", action="store_true", help="print even when not on a terminal")
    show.set_defaults(run=_token_show)
    api_key = token_commands.add_parser("api-key", help="a new API key and its config hash")
    api_key.set_defaults(run=_token_api_key)

    demo = commands.add_parser("demo", help="nginx + sidecar + sample images on localhost")
    demo.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    demo.set_defaults(run=_demo)
    return parser


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("-c", "--config", required=True, metavar="FILE")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from sidecar.runtime import server  # noqa: PLC0415  (uvloop/aiohttp only when serving)
    from sidecar.runtime.logs import JsonLog  # noqa: PLC0415

    settings = config.load(args.config)
    if args.workers is not None:
        if not 1 <= args.workers <= 64:
            raise SystemExit("--workers must be between 1 and 64")
        settings = replace(settings, server=replace(settings.server, workers=args.workers))
    server.run(settings, JsonLog(), worker=args.worker)
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


def _demo(args: argparse.Namespace) -> int:
    from sidecar.devtools import demo  # noqa: PLC0415

    return demo.run(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
