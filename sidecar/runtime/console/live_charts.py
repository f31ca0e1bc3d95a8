"""The Live page's charts, per source, over the window the history keeps: decisions per
second, the rejection rate, denials stacked by reason (with when each first appeared in
the window), and which keys matched and since when (a rotation shows as a new key).

Sources with traffic in the window are shown, most rejections first, at most ``SHOWN``
of them; a filter finds any other. Every label is escaped (``html.escape``).
"""

from __future__ import annotations

import time
from html import escape

from sidecar.policy.decide import NO_SOURCE, Outcome
from sidecar.runtime.console import charts
from sidecar.runtime.console.history import History, SourceWindow

SHOWN = 12  # cards at once: thousands of sources would make a page no one reads


def fragment(history: History, query: str) -> str:
    """What ``#charts`` holds: the patterns, a line saying what is shown, the cards."""
    ranked = [row for row in history.ranking() if query.lower() in row[0].lower()]
    shown = ranked[:SHOWN]
    cards = "".join(card(history.window(name), history.capacity) for name, _, _ in shown)
    if not ranked:
        what = "No source had traffic in the last 15 minutes" + (
            f" matching <code>{escape(query)}</code>." if query else "."
        )
    else:
        what = f"{len(shown)} of {len(ranked)} sources with traffic in the last 15 minutes"
        what += ", most rejections first." if len(shown) < len(ranked) else "."
    return f'{charts.defs()}<p class="muted" id="charts-shown">{what}</p>{cards}'


def card(window: SourceWindow, capacity: int) -> str:
    slots = charts.span(len(window.times), capacity)
    end = window.times[-1] if window.times else None
    rates = [
        n / span if span else 0.0 for n, span in zip(window.decisions, window.spans, strict=True)
    ]
    rejected = window.rejected()
    # No decisions in a sample: no rate (a gap), rather than 0 %.
    shares = [100.0 * r / n if n else None for r, n in zip(rejected, window.decisions, strict=True)]
    title = "no source (-)" if window.name == NO_SOURCE else window.name
    total, denied = sum(window.decisions), sum(rejected)
    share = f"{100 * denied / total:.1f} %" if total else "no decisions"
    per_second = charts.line(rates, label=f"{title}: decisions/s", unit="/s", slots=slots, end=end)
    rejected_share = charts.line(shares, label=f"{title}: rejected %", unit=" %", slots=slots,
                                 end=end, top=100.0)  # fmt: skip
    return (
        f'<section class="card" data-source="{escape(window.name)}"><h3>{escape(title)}</h3>'
        f'<p class="muted">{_counted(total, "decision")}, {denied} rejected ({share}) '
        "in the window</p>"
        '<div class="charts">'
        f"<figure><figcaption>Decisions per second</figcaption>{per_second}"
        f"</figure><figure><figcaption>Rejected %</figcaption>{rejected_share}"
        f'</figure><figure class="denials"><figcaption>Denials by reason</figcaption>'
        f"{_denials(window, title, slots, end)}</figure></div>{_keys(window)}</section>"
    )  # fmt: skip


def _denials(window: SourceWindow, title: str, slots: int, end: float | None) -> str:
    reasons = sorted(window.reasons.items())
    layers = [(_reason_name(result, decision), index, values)
              for index, ((result, decision), values) in enumerate(reasons)]  # fmt: skip
    chart = charts.stacked(layers, label=f"{title}: denials by reason", samples=len(window.times),
                           slots=slots, end=end)  # fmt: skip
    items = "".join(
        f'<li data-reason="{escape(result)}" data-decision="{escape(decision)}">'
        f"{charts.swatch(index)}<span><strong>{escape(_reason_name(result, decision))}</strong>"
        f": {sum(values)}, first in the window at {_clock(_first(window.times, values))}"
        "</span></li>"
        for index, ((result, decision), values) in enumerate(reasons)
    )
    legend = f'<ul class="legend">{items}</ul>' if items else '<p class="muted">No denials.</p>'
    return chart + legend


def _keys(window: SourceWindow) -> str:
    """Each key that matched in the window, the earliest first: a rotation's new key
    shows with the time it started to match."""
    matched = sorted(
        ((_first(window.times, values) or 0.0, key_id, values)
         for key_id, values in window.keys.items()),
        key=lambda item: (item[0], item[1]),
    )  # fmt: skip
    items = "".join(
        f'<li data-key="{escape(key_id)}"><code>{escape(key_id)}</code>: '
        f"{_counted(sum(values), 'match')}, first at {_clock(first)}, "
        f"last at {_clock(_last(window.times, values))}</li>"
        for first, key_id, values in matched
    )
    return f'<div class="keys">Keys that matched: <ul>{items}</ul></div>' if items else ""


def _counted(count: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("h") else "s")
    return f"{count} {noun if count == 1 else plural}"


def _reason_name(result: str, decision: str) -> str:
    return result if decision == Outcome.DENY else f"{result} ({decision})"


def _first(times: tuple[float, ...], values: tuple[int, ...]) -> float | None:
    return next((at for at, value in zip(times, values, strict=True) if value), None)


def _last(times: tuple[float, ...], values: tuple[int, ...]) -> float | None:
    pairs = zip(reversed(times), reversed(values), strict=True)
    return next((at for at, value in pairs if value), None)


def _clock(stamp: float | None) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(stamp)) if stamp is not None else "never"
