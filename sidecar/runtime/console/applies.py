"""What decides for a source beyond its signature, as the Sources page lists it: its
rules (referrers, networks, countries) and use limit, and its 15 minutes of traffic at a
glance.

With ``[state]``, what is taken back from a source (grants, keys, prefixes) is one more
line, read from the same in-memory view ``/verify`` reads (``RevokedView.summary``).
"""

from __future__ import annotations

from html import escape

from sidecar.policy.revocations import RevokedView
from sidecar.policy.rules import OriginPattern, Rules
from sidecar.policy.settings import Mode, SourceSettings
from sidecar.runtime.console import charts, revoke_html
from sidecar.runtime.console.history import SourceWindow

_DEFAULT_PORTS = {"http": 80, "https": 443}


def lines(source: SourceSettings, revocations: RevokedView | None = None) -> list[str]:
    """One plain-text line per rule in force (none: the signature alone decides), and
    what is revoked in the source."""
    found = _rule_lines(source.rules) if source.rules is not None else []
    if source.uses is not None:
        found.append(f"max_uses {source.uses.max_uses} per grant (a client's requests within "
                     f"use_window {source.uses.window} s are one use)")  # fmt: skip
    revoked = revoke_html.summary_line(*revocations.summary(source.name)) if revocations else None
    if revoked is not None:
        found.append(revoked)
    return found


def cell(source: SourceSettings, revocations: RevokedView | None = None) -> str:
    found = lines(source, revocations)
    if not found:  # the Mode column says whether a signature is needed at all
        alone = "nothing" if source.mode is Mode.OFF else "the signature alone"
        return f'<span class="muted">{alone}</span>'
    return '<ul class="rules">' + "".join(f"<li>{escape(line)}</li>" for line in found) + "</ul>"


def spark(window: SourceWindow | None, capacity: int) -> str:
    """A source's decisions and rejections over the window, with the sums in words."""
    if window is None or not any(window.decisions):
        return '<span class="muted">no traffic in 15 min</span>'
    rejected = window.rejected()
    label = (
        f"{window.name}: {sum(window.decisions)} decisions, {sum(rejected)} rejected "
        "in the last 15 minutes"
    )
    text = f"{sum(window.decisions)} / {sum(rejected)} rejected"
    shown = charts.span(len(window.times), capacity)
    drawing = charts.sparkline(window.decisions, rejected, label=label, slots=shown)
    return f'{drawing}<span class="spark-text">{escape(text)}</span>'


def _rule_lines(rules: Rules) -> list[str]:
    found = []
    if rules.referrers is not None:
        origins = ", ".join(_origin(pattern) for pattern in rules.referrers)
        without = "allowed" if rules.allow_no_referrer else "refused"
        found.append(f"Referer from {origins} (none: {without})")
    if rules.networks is not None:
        found.append("client in " + ", ".join(str(network) for network in rules.networks))
    if rules.countries is not None:
        found.append("countries " + ", ".join(sorted(rules.countries)))
    if rules.countries_blocked is not None:
        found.append("countries blocked " + ", ".join(sorted(rules.countries_blocked)))
    return found


def _origin(pattern: OriginPattern) -> str:
    host = f"[{pattern.host}]" if ":" in pattern.host else pattern.host
    port = "" if _DEFAULT_PORTS.get(pattern.scheme) == pattern.port else f":{pattern.port}"
    return f"{pattern.scheme}://{'*' if pattern.wildcard else ''}{host}{port}"
