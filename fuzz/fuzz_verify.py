#!/usr/bin/env python3
"""Coverage-guided fuzzing of the verify decision: bytes -> request facts -> Decider.decide.

Two drivers run the same target and the same oracle:

- ``atheris`` (libFuzzer, coverage-guided; the default when atheris is installed). Any
  libFuzzer flag is passed through: ``-max_total_time=60``, ``-runs=N``, ``-seed=1``,
  ``-dict=fuzz/verify.dict``, corpus folders (new inputs are written to the first one).
- ``random`` (``--driver=random``): plain Python, no dependency. It mutates the seed corpus
  (byte edits, dictionary tokens, splices) with a seeded RNG: ``--seconds``, ``--runs``,
  ``--seed``; corpus folders as positional arguments.

One input is up to five fields separated by ``\\n``: the request URI, the client address,
the method, the host, and the proxy profile (first byte modulo 4: nginx, ingress-nginx,
traefik, envoy). Missing fields take the values a real nginx subrequest carries. The
bytes arrive as aiohttp hands header values over (UTF-8, surrogateescape) and go through
the profile's header extractor, as on the verify listener.

The oracle: no exception; the status is 200, 401 or 403; a 200 from an enforcing source
only for a URI this harness signed, byte for byte, by that source's key, asked for with
GET/HEAD (and, when the signature binds one, from the client network); and its cache
lifetime never outlives the URL. The keys are derived from fixed seeds (fuzzing only), so
the signed seeds in ``fuzz/corpus`` stay valid from run to run. A violation raises
``WrongDecisionError``: atheris saves the input as ``crash-*``; the random driver writes it to
``--artifact-dir`` and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

_DRIVER_FLAG = re.compile(r"--driver=(atheris|random)")
DRIVER = next((m.group(1) for a in sys.argv if (m := _DRIVER_FLAG.fullmatch(a))), None)
if DRIVER != "random":
    try:
        import atheris
    except ImportError:
        if DRIVER == "atheris":
            raise
        print("atheris is not installed: using the plain-Python driver", file=sys.stderr)
        DRIVER = "random"
    else:
        DRIVER = "atheris"

if DRIVER == "atheris":
    with atheris.instrument_imports(include=["sidecar"]):
        from sidecar import config
        from sidecar.core import canonical
        from sidecar.core.verdict import Reason
        from sidecar.policy.decide import Decider, Decision, RequestFacts
        from sidecar.policy.proxies import CLIENT_CHOSEN_HOST, EXTRACTORS, PROFILES, VERIFY_PATH
        from sidecar.policy.settings import Mode
        from sidecar.schemes import cloudfront_policy as policies
        from sidecar.schemes.cloudfront import SIGNING_PARAMS, b64encode
else:
    from sidecar import config
    from sidecar.core import canonical
    from sidecar.core.verdict import Reason
    from sidecar.policy.decide import Decider, Decision, RequestFacts
    from sidecar.policy.proxies import CLIENT_CHOSEN_HOST, EXTRACTORS, PROFILES, VERIFY_PATH
    from sidecar.policy.settings import Mode
    from sidecar.schemes import cloudfront_policy as policies
    from sidecar.schemes.cloudfront import SIGNING_PARAMS, b64encode

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from multidict import CIMultiDict  # noqa: E402

NOW = 1_900_000_000
ORIGIN = "https://cdn.example.com"
CLIENT_IP = "203.0.113.7"
NETWORK = "203.0.113.0/24"
LIFETIME = 3600
BOOKS_TOKENS = {"k2026": "fuzz-books-2026", "k2025": "fuzz-books-2025"}
IMG_TOKEN = "fuzz-img-host"  # noqa: S105 (public on purpose: fuzzing only)


class WrongDecisionError(AssertionError):
    """The decision allowed (or answered) what it must not."""


# --- keys derived from fixed seeds: stable signed seeds, nothing secret ---------------------


def _probable_prime(n: int, rng: random.Random) -> bool:
    if n % 2 == 0:
        return n == 2
    for small in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int, e: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % e and _probable_prime(candidate, rng):
            return candidate


def rsa_key(seed: str) -> rsa.RSAPrivateKey:
    rng = random.Random(seed)  # noqa: S311 (a fuzzing key from a public seed, on purpose)
    e = 65537
    p, q = _prime(rng, 1024, e), _prime(rng, 1024, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return numbers.private_key()


def ec_key(seed: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big") % (2**255)
    return ec.derive_private_key(scalar + 1, ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- the config under test --------------------------------------------------------------------

CONFIG = """\
[server]
clock_skew = 30
deny_status = 403
proxy = "{proxy}"

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
  [[sources.keys]]
  id = "k2026"
  secret = "{books_2026}"
  [[sources.keys]]
  id = "k2025"
  secret = "{books_2025}"

{host_bound}[[sources]]
name = "acme"
scheme = "cloudfront"
path_prefix = "/acme/"
public_origin = "{origin}"
  [[sources.keys]]
  id = "KRSA"
  public_key_file = "rsa.pub.pem"
  [[sources.keys]]
  id = "KEC"
  public_key_file = "ec.pub.pem"

[[sources]]
name = "acme-private"
scheme = "cloudfront"
path_prefix = "/acme/private/"
public_origin = "{origin}"
deny_status = 401
  [[sources.keys]]
  id = "KEC2"
  public_key_file = "ec2.pub.pem"

[[sources]]
name = "reports"
scheme = "md5-token"
path_prefix = "/reports/"
mode = "report"
  [[sources.keys]]
  id = "r"
  secret = "fuzz-report"

[[sources]]
name = "public"
scheme = "md5-token"
path_prefix = "/public/"
mode = "off"
"""

# Host-bound sources, for the profiles that route on a host the proxy chose (the config
# refuses hosts with the others). "cdn" names cdn.example.com, the host the seeds ask the
# host-less "books" on: a host no source names never reaches it under /books/, which
# "books-img" holds for its host (docs/security.md, "Hosts").
HOST_BOUND = """\
[[sources]]
name = "books-img"
scheme = "md5-token"
path_prefix = "/books/"
hosts = ["img.example.com"]
  [[sources.keys]]
  id = "img"
  secret = "{img}"

[[sources]]
name = "cdn"
scheme = "md5-token"
path_prefix = "/cdn/"
hosts = ["cdn.example.com"]
  [[sources.keys]]
  id = "cdn"
  secret = "{img}-cdn"

"""

KEYS: dict[str, Any] = {}


def load_policies() -> dict[str, Decider]:
    """One compiled policy per proxy profile, from a real config file and key files."""
    KEYS.update(KRSA=rsa_key("fuzz-rsa"), KEC=ec_key("fuzz-ec"), KEC2=ec_key("fuzz-ec2"))
    loaded = {}
    with tempfile.TemporaryDirectory(prefix="fuzz-verify-") as folder:
        for name, file in (("KRSA", "rsa"), ("KEC", "ec"), ("KEC2", "ec2")):
            (Path(folder) / f"{file}.pub.pem").write_bytes(public_pem(KEYS[name]))
        for proxy in PROFILES:
            path = Path(folder) / f"{proxy}.toml"
            path.write_text(
                CONFIG.format(
                    host_bound=""
                    if proxy in CLIENT_CHOSEN_HOST
                    else HOST_BOUND.format(img=IMG_TOKEN),
                    proxy=proxy,
                    origin=ORIGIN,
                    books_2026=BOOKS_TOKENS["k2026"],
                    books_2025=BOOKS_TOKENS["k2025"],
                )
            )
            loaded[proxy] = Decider(config.load(path))
    return loaded


# --- what this harness signs: the only URIs an enforcing source may allow ----------------


@dataclass(frozen=True)
class Grant:
    source: str
    expires: int | None
    network: str | None = None  # the client network a custom policy binds
    pattern: str | None = None  # a custom policy's wildcard Resource


def md5_sign(unsigned: str, token: str, expires: int | None) -> str:
    if expires is not None:
        unsigned += ("&" if "?" in unsigned else "?") + f"expires={expires}"
    digest = hashlib.md5((unsigned + token).encode(), usedforsecurity=False).hexdigest()
    return f"{unsigned}{'&' if '?' in unsigned else '?'}s={digest}"


def cf_sign(uri: str, key_id: str, expires: int, *, sha256: bool = False, **custom: Any) -> str:
    """A CloudFront URL signed deterministically (PKCS#1 v1.5, or RFC 6979 ECDSA)."""
    resource = custom.pop("resource", None)
    policy = policies.PolicyStatement(expires, resource or ORIGIN + uri, **custom)
    document = policies.build(policy)
    key = KEYS[key_id]
    algorithm = hashes.SHA256() if sha256 else hashes.SHA1()  # noqa: S303 (CloudFront's)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(document, padding.PKCS1v15(), algorithm)
    else:
        signature = key.sign(document, ec.ECDSA(algorithm, deterministic_signing=True))
    first = f"Policy={b64encode(document)}" if custom or resource else f"Expires={expires}"
    url = f"{uri}{'&' if '?' in uri else '?'}{first}&Signature={b64encode(signature)}"
    return url + f"&Key-Pair-Id={key_id}" + ("&Hash-Algorithm=SHA256" if sha256 else "")


def signed_urls() -> dict[str, Grant]:
    end = NOW + LIFETIME
    net = ipaddress.ip_network(NETWORK)
    token = BOOKS_TOKENS["k2026"]
    return {
        md5_sign("/books/database-internals.jpg?w=400&h=600&fit=crop", token, end): Grant(
            "books", end
        ),
        md5_sign("/books/caf%C3%A9/x.png", BOOKS_TOKENS["k2025"], None): Grant("books", None),
        md5_sign("/books/é/100%25.png?q=a+b", token, end): Grant("books", end),
        md5_sign("/books/a.jpg", IMG_TOKEN, end): Grant("books-img", end),
        cf_sign("/acme/a.jpg?w=400", "KRSA", end): Grant("acme", end),
        cf_sign("/acme/b.jpg", "KRSA", end, sha256=True): Grant("acme", end),
        cf_sign("/acme/caf%C3%A9.jpg", "KEC", end): Grant("acme", end),
        cf_sign("/acme/ip.jpg", "KRSA", end, source_ip=net): Grant("acme", end, NETWORK),
        cf_sign("/acme/nb.jpg?x=1", "KEC", end, date_greater_than=NOW - 60): Grant("acme", end),
        cf_sign("/acme/wild/x.jpg", "KEC", end, resource=ORIGIN + "/acme/wild/*"): Grant(
            "acme", end, pattern=ORIGIN + "/acme/wild/*"
        ),
        cf_sign("/acme/private/p.jpg", "KEC2", end): Grant("acme-private", end),
    }


POLICIES: dict[str, Decider] = {}
SIGNED: dict[str, Grant] = {}
WILDCARDS: dict[tuple[tuple[str, str], ...], Grant] = {}
STATS = {"allows": 0}


def setup() -> None:
    POLICIES.update(load_policies())
    SIGNED.update(signed_urls())
    for uri, grant in SIGNED.items():
        if grant.pattern is not None:
            WILDCARDS[_trio(uri)] = grant


def _trio(uri: str) -> tuple[tuple[str, str], ...]:
    query = uri.partition("?")[2]
    pairs = [pair.partition("=") for pair in query.split("&")]
    # An explicit Hash-Algorithm=SHA1 says what its absence says (CloudFront's default).
    return tuple(
        sorted(
            (name, value)
            for name, _, value in pairs
            if name in SIGNING_PARAMS and (name, value) != ("Hash-Algorithm", "SHA1")
        )
    )


# --- the target ---------------------------------------------------------------------------

FIELD_DEFAULTS = ["/", CLIENT_IP, "GET", "cdn.example.com"]


def facts_from(data: bytes) -> tuple[str, Decision, RequestFacts]:
    """Split an input into header values, extract them as the verify listener does, decide."""
    fields = data.split(b"\n", 4)
    values = [
        fields[i].decode("utf-8", "surrogateescape") if i < len(fields) else default
        for i, default in enumerate(FIELD_DEFAULTS)
    ]
    uri, ip, method, host = values
    profile = PROFILES[fields[4][0] % len(PROFILES)] if len(fields) > 4 and fields[4] else "nginx"
    headers: CIMultiDict[str] = CIMultiDict()
    path = VERIFY_PATH
    if profile == "nginx":
        headers.update(
            {
                "X-Original-URI": uri,
                "X-Original-Method": method,
                "X-Original-Host": host,
                "X-Real-IP": ip,
            }
        )
    elif profile == "ingress-nginx":
        headers.update(
            {"X-Original-URL": f"https://{host}{uri}", "X-Original-Method": method, "X-Real-IP": ip}
        )
    elif profile == "traefik":
        headers.update(
            {
                "X-Forwarded-Uri": uri,
                "X-Forwarded-Method": method,
                "X-Forwarded-Host": host,
                "X-Forwarded-For": f"10.0.0.1, {ip}",
            }
        )
    else:
        path = VERIFY_PATH + uri
        headers.update({"Host": host, "X-Forwarded-For": ip})
    facts = EXTRACTORS[profile](method, path, headers)
    return profile, POLICIES[profile].decide(facts, NOW), facts


def one_input(data: bytes) -> None:
    """The fuzz target: raises ``WrongDecisionError`` when the decision breaks the oracle."""
    profile, decision, facts = facts_from(data)
    if decision.status not in (200, 401, 403) or not isinstance(decision.reason, Reason):
        raise WrongDecisionError(f"status {decision.status} ({decision.reason}) via {profile}")
    source = decision.source
    if decision.status != 200:
        expected = (source or POLICIES[profile].settings.server).deny_status
        if decision.status != expected:
            raise WrongDecisionError(f"deny status {decision.status}, configured {expected}")
        return
    STATS["allows"] += 1
    if source is None:
        raise WrongDecisionError(f"an allow with no source: {facts!r}")
    if source.mode is not Mode.ENFORCE:
        return
    grant = _grant_for(facts.uri or "")
    problem = _why_wrong(grant, source.name, facts, decision)
    if problem:
        raise WrongDecisionError(f"{problem}: allowed {facts!r} via {profile} ({decision.reason})")


def _grant_for(uri: str) -> Grant | None:
    grant = SIGNED.get(uri)
    if grant is not None or "?" not in uri:
        return grant
    wildcard = WILDCARDS.get(_trio(uri))
    parsed = canonical.parse(uri)
    if wildcard is None or wildcard.pattern is None or parsed is None:
        return None
    own = [p for p in (parsed.query or "").split("&") if p.partition("=")[0] not in SIGNING_PARAMS]
    resource = ORIGIN + parsed.raw_path + ("?" + "&".join(own) if own else "")
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wildcard.pattern
    )
    return wildcard if re.fullmatch(regex, resource, re.DOTALL) else None


def _why_wrong(
    grant: Grant | None, source: str, facts: RequestFacts, decision: Decision
) -> str | None:
    if grant is None:
        return "no signature of this harness"
    if grant.source != source:
        return f"signed for {grant.source}, allowed by {source}"
    if facts.method not in ("GET", "HEAD"):
        return "method"
    if grant.network is not None:
        try:
            address = ipaddress.ip_address(facts.client_ip or "")
        except ValueError:
            return "IP-bound signature, no client address"
        mapped = getattr(address, "ipv4_mapped", None) or address
        if mapped not in ipaddress.ip_network(grant.network):
            return "IP-bound signature, another client"
        if decision.cache_ttl != 0:
            return "IP-bound allow made cacheable"
    if grant.expires is not None and decision.cache_ttl > grant.expires - NOW:
        return "cache lifetime past the URL's expiry"
    return None


# --- seeds and the plain-Python driver -------------------------------------------------------


def near_signed(uri: str) -> list[str]:
    """Variants one step from a signed URI: each must be refused."""
    path, _, query = uri.partition("?")
    last = query.rpartition("&")[2]
    return [
        path,  # unsigned
        uri[:-1] + ("0" if uri[-1] != "0" else "1"),  # the last character changed
        path.replace("/", "/./", 2) + "?" + query,  # a dot segment
        path.replace("/", "//", 2) + "?" + query,
        f"{path}x?{query}",  # another file
        f"{path}?{query}&{last}",  # a signing parameter twice
        f"{path}?z=1&{query}",  # a parameter added
    ]


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    for uri, grant in SIGNED.items():
        host = "img.example.com" if grant.source == "books-img" else "cdn.example.com"
        ip = "203.0.113.9" if grant.network else CLIENT_IP
        seeds.append(f"{uri}\n{ip}\nGET\n{host}".encode())
    for number, uri in enumerate(SIGNED):
        variants = near_signed(uri)
        seeds.append(variants[number % len(variants)].encode())
    expired = md5_sign("/books/old.jpg", BOOKS_TOKENS["k2026"], NOW - LIFETIME)
    seeds += [
        expired.encode(),
        f"{next(iter(SIGNED))}\n{CLIENT_IP}\nGET\ncdn.example.com\n\x03".encode(),  # envoy
        b"/public/free.jpg\n\nHEAD",
        b"/reports/r.png?s=00000000000000000000000000000000",
    ]
    for number, seed in enumerate(seeds):
        (folder / f"seed-{number:02d}").write_bytes(seed)
    print(f"wrote {len(seeds)} seeds to {folder}")


def dictionary_tokens() -> list[bytes]:
    tokens = []
    for line in (HERE / "verify.dict").read_text().splitlines():
        if line.startswith('"') and line.endswith('"'):
            tokens.append(line[1:-1].encode().decode("unicode_escape").encode("latin-1"))
    return tokens


def mutate(data: bytes, rng: random.Random, seeds: list[bytes], tokens: list[bytes]) -> bytes:
    position = rng.randrange(len(data) + 1)
    choice = rng.randrange(7)
    if choice == 0 and data:
        return data[:position] + data[position + 1 :]
    if choice == 1:
        return data[:position] + bytes([rng.randrange(256)]) + data[position + 1 :]
    if choice == 2 and position < len(data):  # a near byte: case and neighbours
        near = data[position : position + 1].swapcase()
        if near == data[position : position + 1]:
            near = bytes([(data[position] + rng.choice((-1, 1))) % 256])
        return data[:position] + near + data[position + 1 :]
    if choice == 3:
        return data[:position] + rng.choice(tokens) + data[position:]
    if choice == 4:
        other = rng.choice(seeds)
        return data[:position] + other[rng.randrange(len(other) + 1) :]
    if choice == 5 and data:
        end = min(len(data), position + rng.randrange(1, 16))
        return data[:position] + data[position:end] * 2 + data[end:]
    return data[:position] + bytes([rng.randrange(256)]) + data[position:]


def random_driver(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description="plain-Python mutation driver")
    parser.add_argument("corpus", nargs="*", type=Path, default=[HERE / "corpus"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=0, help="stop after N inputs (0: no bound)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--artifact-dir", type=Path, default=Path())
    options = parser.parse_args(arguments)
    seeds = [f.read_bytes() for d in options.corpus for f in sorted(d.iterdir()) if f.is_file()]
    seeds = seeds or [uri.encode() for uri in SIGNED]
    tokens = dictionary_tokens()
    rng = random.Random(options.seed)  # noqa: S311 (reproducible fuzzing, not secrets)
    started = time.monotonic()
    runs = 0
    while True:
        data = seeds[runs] if runs < len(seeds) else rng.choice(seeds)
        if runs >= len(seeds):
            for _ in range(rng.randrange(1, 5)):
                data = mutate(data, rng, seeds, tokens)
        try:
            one_input(data)
        except Exception as error:
            crash = options.artifact_dir / f"crash-{hashlib.sha1(data).hexdigest()}"  # noqa: S324
            crash.write_bytes(data)
            print(f"== {type(error).__name__}: {error}\n== input {data!r}\n== saved to {crash}")
            print(f"Done {runs + 1} runs (failed); wrong allows or errors: 1")
            return 1
        runs += 1
        elapsed = time.monotonic() - started
        if (options.runs and runs >= options.runs) or elapsed >= options.seconds:
            break
    print(
        f"Done {runs} runs in {elapsed:.0f} second(s); {STATS['allows']} allows checked; "
        "wrong allows: 0"
    )
    return 0


def check_seeds(folder: Path) -> int:
    """Every seed through the oracle; every signed seed must be allowed (the harness is live)."""
    signed_seeds, allowed = 0, set()
    for file in sorted(folder.iterdir()):
        data = file.read_bytes()
        one_input(data)
        profile, decision, facts = facts_from(data)
        signed = facts.uri in SIGNED
        signed_seeds += signed
        if signed and decision.status == 200:
            allowed.add(facts.uri)
        print(
            f"{file.name}: {decision.status} {decision.reason} via {profile}"
            f"{' (signed)' if signed else ''}"
        )
    print(f"{len(allowed)} of {len(SIGNED)} signed URLs allowed ({signed_seeds} signed seeds)")
    return 0 if signed_seeds and allowed == set(SIGNED) else 1


def main() -> int:
    arguments = [a for a in sys.argv[1:] if not _DRIVER_FLAG.fullmatch(a)]
    setup()
    if arguments[:1] == ["--write-corpus"]:
        write_corpus(Path(arguments[1]) if len(arguments) > 1 else HERE / "corpus")
        return 0
    if arguments[:1] == ["--check-seeds"]:
        return check_seeds(Path(arguments[1]) if len(arguments) > 1 else HERE / "corpus")
    if DRIVER == "random":
        return random_driver(arguments)
    atheris.Setup([sys.argv[0], *arguments], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
