"""What each command of the command line does (``cli.py`` declares them and their help)."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from sidecar import config, schemes
from sidecar.config.declared import DeclaredSource, declared_source, key_pair_files
from sidecar.core import canonical
from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason
from sidecar.errors import ConfigError, UrlError, UsageError
from sidecar.policy.decide import NO_SOURCE, Decider, Decision, RequestFacts
from sidecar.policy.proxies import HOST_TRUST_NOTES
from sidecar.policy.settings import Settings, SourceSettings
from sidecar.policy.signing import sign
from sidecar.runtime.logs import JsonLog
from sidecar.schemes.base import Grant, KeyKind, Scheme

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def run_serve(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if args.workers is not None:
        if not 1 <= args.workers <= 64:
            raise UsageError("--workers must be between 1 and 64")
        settings = replace(settings, server=replace(settings.server, workers=args.workers))
    if settings.server.workers > 1 and not args.worker:
        from sidecar.runtime import workers  # noqa: PLC0415

        # Before prometheus_client is imported (below): the supervisor's own counter
        # (worker restarts) then lands in the folder every worker's /metrics sums.
        workers.prepare_metrics_folder()
    from sidecar.runtime import server  # noqa: PLC0415  (uvloop/aiohttp only when serving)

    server.run(settings, JsonLog(level=args.log_level), worker=args.worker)
    return EXIT_OK


def run_check_config(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    print(f"{args.config}: ok, {len(settings.sources)} source(s)")
    for source in settings.sources:
        keys = ", ".join(source.signatures.key_ids) if source.signatures else "none"
        print(
            f"  {source.name}: {source.scheme} {source.path_prefix} mode={source.mode} keys={keys}"
        )
    for warning in settings.warnings:
        print(f"warning: {warning}")
    note = HOST_TRUST_NOTES.get(settings.server.proxy)
    if note and any(source.hosts is not None for source in settings.sources):
        print(f"note: proxy = '{settings.server.proxy}': {note}")
    return EXIT_OK


def run_sign(args: argparse.Namespace) -> int:
    grant = Grant(None, args.not_before, args.client_ip, args.resource, args.prefix,
                  cookies=args.cookies)  # fmt: skip
    settings = config.load(args.config)
    source = _source(settings, args.source)
    signed = sign(settings, args.source, args.url, grant, now=time.time(),
                  expires_in=args.expires_in)  # fmt: skip
    print(signed.url)
    lifetime = args.expires_in or source.default_ttl or source.max_ttl
    if source.signatures and not source.signatures.expiry_required and not lifetime:
        print("warning: this URL never expires: anyone holding it can use it until the key "
              "is rotated (give --expires-in, or set default_ttl on the source)",
              file=sys.stderr)  # fmt: skip
    for cookie in signed.cookies:  # a cookie grant: what the application sets
        print(f"Set-Cookie: {cookie}")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    decider = Decider(config.load(args.config))
    now = instant(args.at)
    # Bytes that are not UTF-8 are kept (as surrogates) and decided like nginx would send
    # them: denied as non-canonical, never a crash.
    lines = (raw.decode("utf-8", "surrogateescape").strip() for raw in sys.stdin.buffer)
    urls: Iterable[str] = args.urls or (line for line in lines if line)
    denied = False
    for url in urls:
        host, uri = _host_and_uri(url, args.host)
        facts = RequestFacts(
            uri, args.method, host, args.client_ip, None, True, args.referrer, args.country
        )
        decision = decider.decide(facts, now)
        denied = denied or decision.status != 200
        line: dict[str, object] = {
            "url": url.encode("utf-8", "backslashreplace").decode(),
            "source": decision.source.name if decision.source else NO_SOURCE,
            "result": decision.reason.value,
            "decision": decision.outcome.value,
            "status": decision.status,
            "key": decision.key_id,
        }
        detail = _explained(decision, uri)
        if detail is not None:
            line["detail"] = detail
        sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.flush()
    # Scripts and audits can branch on it: 0 every URL allowed, 1 any denied (2: usage,
    # raised before any URL is decided).
    return EXIT_FAILURE if denied else EXIT_OK


def _explained(decision: Decision, uri: str) -> object:
    """For a signature a source refused, what its scheme can say about which part failed
    (a scheme with an ``explain``: the text it signs, the signature's length), never the
    expected signature."""
    signatures = decision.source.signatures if decision.source is not None else None
    explain = getattr(signatures, "explain", None)
    if decision.reason not in _EXPLAINED or explain is None:
        return None
    parsed = canonical.parse(uri)
    return explain(parsed) if parsed is not None else None


_EXPLAINED = frozenset({Reason.INVALID, Reason.MALFORMED, Reason.MISSING})


def _host_and_uri(url: str, default_host: str | None) -> tuple[str | None, str]:
    try:
        parsed = parse_url(url)
    except UrlError:
        return default_host, url  # decided (and denied) as the raw URI it is
    return (parsed.host if parsed.origin else default_host), parsed.uri


def instant(text: str | None) -> float:
    """``--at``: unix seconds (ASCII digits), or ISO 8601, read as UTC unless it carries an
    offset, so the answer never depends on the machine's time zone."""
    if text is None:
        return time.time()
    if _UNIX_SECONDS.fullmatch(text):
        return float(text)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at: '{text}' is neither unix seconds nor ISO 8601") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp()


def _source(settings: Settings, name: str) -> SourceSettings:
    """The source ``--source`` names; naming none is a usage error."""
    source = settings.source(name)
    if source is None:
        known = ", ".join(s.name for s in settings.sources)
        raise UsageError(f"--source: no source named '{name}' (known: {known})")
    return source


def run_token_new(args: argparse.Namespace) -> int:
    scheme, key_type, declared = _key_maker(args)
    key = scheme.new_key(key_type)
    if key.secret is not None:
        return _write_secret(args.out, (key.secret + "\n").encode(), "token")
    assert key.private_pem is not None and key.public_pem is not None
    private, public = key_pair_files(declared, args.out)
    _refuse_unusable(private, public)
    _write_secret(private, key.private_pem, "private key")
    try:
        _write_new(public, key.public_pem, 0o644)
    except UsageError:
        os.unlink(private)  # no half-made pair: the next attempt starts clean
        raise
    print(f"wrote the public key to {public}")
    return EXIT_OK


def _key_maker(args: argparse.Namespace) -> tuple[Scheme[Any], str, DeclaredSource | None]:
    """The scheme that makes the key, which kind, and the source as the config declares
    it: the source's scheme when one is named, otherwise whichever scheme makes
    ``--key-type`` (a token by default)."""
    if args.source is not None:
        if args.config is None:
            raise UsageError("--source needs -c FILE")
        declared = declared_source(args.config, args.source)
        scheme = schemes.get(declared.scheme)
        if scheme is None:
            raise ConfigError([f"{args.config}: source '{args.source}' names no known scheme"])
        key_type = args.key_type or scheme.key_types[0]
        if key_type not in scheme.key_types:
            raise UsageError(f"--key-type: {scheme.name} keys are {', '.join(scheme.key_types)}")
        return scheme, key_type, declared
    key_type = args.key_type or "token"
    maker = next(s for s in schemes.REGISTRY.values() if key_type in s.key_types)
    return maker, key_type, None


def _refuse_unusable(private: str, public: str) -> None:
    """Both files checked before either is written: never half a pair, never over a file."""
    if os.path.realpath(private) == os.path.realpath(public):
        raise UsageError(f"{private}: the private and the public key would be the same file")
    for path in (private, public):
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write {path}: no folder {folder}")
        if os.path.lexists(path):
            raise UsageError(f"{path} exists: refusing to overwrite a key")


def _write_secret(path: str | None, data: bytes, what: str) -> int:
    if path is None:
        sys.stdout.write(data.decode())
        return EXIT_OK
    _write_new(path, data, 0o600)
    print(f"wrote a new {what} to {path} (mode 0600)")
    return EXIT_OK


def _write_new(path: str, data: bytes, mode: int) -> None:
    # O_EXCL: never over an existing file (nor through a symlink); the mode from the
    # first byte written.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UsageError(f"--out: {path} exists: refusing to overwrite a secret") from None
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror})") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def run_token_show(args: argparse.Namespace) -> int:
    if not (sys.stdout.isatty() or args.force):
        print("refusing to print a secret to a non-terminal (use --force)", file=sys.stderr)
        return EXIT_FAILURE
    source = _source(config.load(args.config), args.source)
    keys = source.signatures.key_material() if source.signatures else ()
    tokens = [key for key in keys if key.kind is KeyKind.SHARED_SECRET]
    if not tokens:
        raise UsageError(f"--source: source '{source.name}' has no shared-secret tokens")
    for token in tokens:
        print(f"{token.id}\t{token.material.decode(errors='replace')}")
    return EXIT_OK


def run_token_api_key(args: argparse.Namespace) -> int:
    key = secrets.token_urlsafe(32)
    print(f"api key (give to the caller):  {key}")
    print(f"api_key_sha256 (put in config): {hashlib.sha256(key.encode()).hexdigest()}")
    return EXIT_OK


def run_doctor(args: argparse.Namespace) -> int:
    from sidecar.runtime import doctor  # noqa: PLC0415

    return doctor.run(args.url, args.sidecar, host=args.host, timeout=args.timeout)


def run_demo(args: argparse.Namespace) -> int:
    from sidecar.devtools import demo  # noqa: PLC0415

    return demo.run(keep=args.keep)
